/* compat/compat_xtok.h - compatibility training across tokenizers (issue 14): the old
 * model M1 and the student may tokenize the same text differently.
 *
 * Alignment by byte offsets. The same text tokenized by two tokenizers gives two rows;
 * off[i] is the byte offset in the decoded text where token i starts (the length of
 * the decoded prefix ids[0..i)). Row position j predicts token j + 1, so it "stands at"
 * byte off[j + 1]. A student position j and a teacher position i are aligned when
 * off_s[j + 1] == off_t[i + 1]: both models have read exactly the same bytes and both
 * tokenizations have a token boundary there. Only aligned positions are distilled; the
 * masks are evaluated there, each model against its own next token (the span from the
 * boundary to each model's next token boundary).
 *
 * Strategy "exact" (vocabulary mapping by byte string). Teacher piece t maps to the
 * student piece s(t) whose decoded bytes are identical (special tokens by role: BOS to
 * BOS, EOS to EOS; unmapped pieces have no image). With p = softmax(z_t / T) over the
 * teacher's whole vocabulary and M the mapped set, the teacher is renormalised over M:
 *     p~_s = sum_{t in M, s(t) = s} p_t / sum_{t in M} p_t
 * and the distillation term is KL(p~ || q), q = softmax(z_s / T) the student's. Its
 * gradient d/dz_s = (q_s - p~_s) / T (the ordinary KL's, with the pushed-forward
 * target). Implemented by writing the teacher's logits into the student's vocabulary
 * (T log-sum-exp(z / T) of the logits mapping to one student piece; COMPAT_XTOK_NONE = -1e30
 * elsewhere, which is exp() = 0 exactly) and using the same-tokenizer loss unchanged:
 * with identical vocabularies the mapping is the identity and the loss is bit for bit
 * the same-tokenizer loss. coverage = sum_{t in M} softmax(z_t)_t (temperature 1): the
 * share of the teacher's probability mass the mapping keeps.
 *
 * Strategy "uld" (Universal Logit Distillation, Boizard et al. 2024). Tokenizer-free:
 * both distributions at temperature T sorted in decreasing order and padded with zeros
 * to N = max(V_t, V_s):
 *     uld = sum_{i < N} | p_(i) - q_(i) |
 * (the Wasserstein-1 distance between the sorted vectors as the paper writes it).
 * Gradient: with r(j) the rank of student class j, g_j = sign(q_j - p_(r(j))), and
 * through the softmax d uld / d z_j = q_j (g_j - sum_k q_k g_k) / T.
 */
#ifndef MUSCLE_COMPAT_COMPAT_XTOK_H
#define MUSCLE_COMPAT_COMPAT_XTOK_H

#include "tokenizer/tokenizer.h"

#define COMPAT_XTOK_NONE (-1e30f)
/* Below this share of the teacher's mass (mean over aligned positions) the exact
 * mapping is refused (its KL would be taken over a small, unrepresentative part). */
#define COMPAT_XTOK_MIN_COVERAGE 0.5

typedef enum { COMPAT_XTOK_EXACT = 0, COMPAT_XTOK_ULD } CompatXtokMap;

const char *compat_xtok_map_name(CompatXtokMap m);
int compat_xtok_map_parse(const char *s, CompatXtokMap *m); /* -1 with err_set */

/* 1 when both tokenizers have the same pieces in the same order (same vocabulary). */
int compat_tok_same(const Tokenizer *a, const Tokenizer *b);

/* off[0..n]: off[i] = byte length of tok_decode(ids[0..i)), or -1 when that prefix is
 * not a byte prefix of the whole decoded text (a piece cut inside a UTF-8 character).
 * Returns 0 / -1 (err_set). */
int compat_xtok_offsets(const Tokenizer *t, const int *ids, int n, int *off);

/* For every student position j in 0 .. ns - 2: the aligned teacher position (0 .. nt - 2)
 * or -1 (t_of_s [ns - 1]). Returns the number of aligned positions. */
int compat_xtok_align(const int *off_s, int ns, const int *off_t, int nt, int *t_of_s);

typedef struct {
    int vt, vs;
    int *s_of_t;      /* [vt] student id of each teacher id, -1 unmapped */
    int n_mapped;
} CompatVocabMap;

int compat_vocab_map_init(CompatVocabMap *m, const Tokenizer *teacher, const Tokenizer *student);
void compat_vocab_map_free(CompatVocabMap *m);
/* Teacher logits zt [vt] -> zs [vs] in the student's vocabulary (above; several teacher
 * pieces with one image: T log sum exp(z_t / T), so that softmax(zs / T) = p~ at the
 * distillation temperature T); returns the coverage (mass of the mapped teacher pieces
 * at temperature 1; 0 when none). */
double compat_vocab_map_logits(const CompatVocabMap *m, const float *zt, double T, float *zs);

/* ULD at one position: pt [kt] the teacher's probabilities at temperature T sorted in
 * decreasing order (the rest of its N entries 0), z [V] the student's logits. Returns
 * scale * uld and adds scale * d uld / d z into dz [V] (dz may not be z). scratch:
 * [3 V] floats. */
double compat_uld_loss(const float *pt, int kt, const float *z, int V, double T, double scale, float *dz, float *scratch);
/* Teacher logits z [V] -> their probabilities at temperature T sorted decreasing (p [V]). */
void compat_uld_teacher(const float *z, int V, double T, float *p);

#endif
