/* compat/compat_xtok.h - compatibility training across tokenizers (issue 14): the old
 * model M1 and the student may tokenize the same text differently.
 *
 * Alignment by byte offsets. The same text tokenized by two tokenizers gives two rows;
 * off[i] is the byte offset in the decoded text where token i starts (the length of
 * the decoded prefix ids[0..i)). Row position j predicts token j + 1, so it "stands at"
 * byte off[j + 1]. A student position j and a teacher position i are aligned when
 * off_s[j + 1] == off_t[i + 1]: both models have read exactly the same bytes and both
 * tokenizations have a token boundary there. Only aligned positions are distilled.
 *
 * Spans. The aligned positions cut both rows into spans: aligned pair (j, i) opens the
 * span of student positions j .. j' - 1 and M1 positions i .. i' - 1, (j', i') the next
 * aligned pair, or for the last pair the rows' ends (ns - 1, nt - 1; kept only when both
 * rows end at the same byte, else the last pair is not aligned: its span is incomplete).
 * Both sides of a span predict the same bytes (from one shared boundary to the next) after
 * the same bytes. The masks are defined per span, each side under teacher forcing on its
 * own tokens y:
 *     wrong(side) = some position k of the side has argmax z_k != y_k
 *     ll(side)    = sum_k log softmax(z_k)[y_k]       (temperature 1: log P(span bytes | prefix))
 *     student-wrong     m = wrong(student)
 *     old-correct       m = not wrong(M1)
 *     token-likelihood  m = ll(student) < ll(M1)
 *     none              m = 1
 * and the span's mask holds for every student position in it. Only its first position
 * (the aligned one) has an M1 distribution in the student's terms, so the loss term
 * m a_1 + (1 - m) a_2 is taken there; the span's other positions carry no distillation
 * term (as before). With one tokenizer every span is one token on each side and the masks
 * are the per-position ones exactly. M1's side is computed once (its cache: the aligned
 * position's TeacherPos holds logp_y = ll(M1) and argmax = the student's next token when
 * M1 is right on the whole span, else -1); the student's side at every step from the row's
 * logits before the loss.
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

#include "compat/compat_loss.h"
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
 * or -1 (t_of_s [ns - 1]); the last aligned pair only when off_s[ns] == off_t[nt] (its
 * span complete). Returns the number of aligned positions. */
int compat_xtok_align(const int *off_s, int ns, const int *off_t, int nt, int *t_of_s);

/* The span opened by aligned student position j (t_of_s[j] >= 0): returns j', the end of
 * its student positions (exclusive: the next aligned position, or ns - 1); *t_end (when
 * not NULL) the end of its M1 positions (t_of_s[j'], or nt - 1). */
int compat_xtok_span_end(const int *t_of_s, int ns, int nt, int j, int *t_end);

/* One side of a span under teacher forcing: n positions of logits z [n x V] (position k
 * predicts y[k]). */
typedef struct {
    int wrong;  /* some position's argmax is not its y */
    double ll;  /* sum_k log softmax(z_k)[y_k] */
} CompatSpanSide;
void compat_xtok_span_side(const float *z, int V, const int *y, int n, CompatSpanSide *out);

/* The span mask of a MUSCLE method (above; 1 for the others). */
int compat_xtok_span_mask(CompatMethod method, const CompatSpanSide *student, const CompatSpanSide *old);

/* The masks of one student row of ns tokens ids [ns] with logits z [(ns - 1) x V] (row
 * position j predicts ids[j + 1]) and M1's cache t1 [ns - 1] (read at aligned positions:
 * logp_y = ll(M1 side), argmax == ids[j + 1] when M1 is right on the span): m[j] for every
 * position j in 0 .. ns - 2, the mask of the span j lies in (-1 before the first span). */
void compat_xtok_row_masks(CompatMethod method, const int *t_of_s, int ns, int nt, const int *ids, const float *z, int V,
                           const TeacherPos *t1, int *m);

/* One aligned or unaligned student position across tokenizers with its span mask m:
 *   ce_s [ans] (-log q1(y)) + kd_s [dist] (m a_1 + (1 - m) a_2)
 * a_1 = KL(p~1 || q) (t1 is M1 in the student's vocabulary, exact mapping) or uld(p1, q)
 * (uld: t1->z holds M1's t1->k sorted probabilities); a_2 = KL(p2 || q), M2's (t2, or no
 * term when t2 is NULL or the method is none). With m from compat_xtok_span_mask on
 * one-token spans and the identity mapping, this is compat_token_loss with c's method bit
 * for bit. dz may be z. scratch: [7 V] floats. out->masked = m. */
double compat_xtok_pos_loss(const CompatConfig *c, int uld, int m, const float *z, int V, int y, int ans, int dist,
                            const TeacherPos *t1, const TeacherPos *t2, double ce_s, double kd_s, float *dz, float *scratch,
                            CompatTokenOut *out);

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
