/* compat/compat_loss.h - the losses of compatibility training (../shared/spec/MUSCLE.md,
 * docs/compat.md): per token position, and per multiple-choice instance.
 *
 * Notation: z the student's logits [V] at one position, y the token it must predict,
 * q = softmax(z / T), q1 = softmax(z). Teachers M1 (old) and M2 (new) are given by what
 * the teacher cache keeps of their logits (TeacherPos). a_k = KL(p_k || q), the teacher
 * first, p_k = softmax(z_k / T).
 *
 * Token level, one position (the caller sums over positions; ce_scale and kd_scale are
 * the step's normalisers, e.g. w / #answer positions and (1 - w) / #distilled positions):
 *   MUSCLE masks:  kd = m * a_1 + (1 - m) * a_2, m from the mask:
 *     student-wrong      m = [argmax z != y]
 *     old-correct        m = [argmax z_1 == y]
 *     none               m = 1 (plain distillation from M1)
 *     token-likelihood   m = [q1(y) < p1_1(y)]            (temperature 1)
 *     sequence-likelihood m = the example's flag (given: sum of log q1(y) over its
 *                         answer tokens < the same under M1)
 *   focal distillation (Yan et al. 2021):  kd = (alpha + beta * [argmax z_1 == y]) * a_1
 *   logit-difference inhibition (ELODI, Zhao et al. 2022), on log-probabilities at
 *     temperature 1 over the teacher's kept classes K:
 *       kd = (1/|K|) sum_{j in K, |D_j| > margin} |D_j|^p,  D_j = log q1_j - log p1_1_j
 *   loss = ce_scale * [answer] * (-log q1(y)) + kd_scale * [distill] * kd
 * and its gradient with respect to z. No gradient flows through a mask.
 *
 * Top-k teachers: a teacher kept as its k largest logits plus the log-sum-exp over the
 * whole vocabulary has the rest of its mass r = 1 - sum_K p_j as one bucket; the KL is
 * taken between the bucketed distributions (exact when k = V):
 *   a = sum_K p_j log(p_j / q_j) + r log(r / q_rest),  q_rest = 1 - sum_K q_j,
 *   d a / d z = (q - p~) / T,  p~_j = p_j on K, r * q_j / q_rest elsewhere.
 */
#ifndef MUSCLE_COMPAT_COMPAT_LOSS_H
#define MUSCLE_COMPAT_COMPAT_LOSS_H

#include <stddef.h>
#include <stdint.h>

#include "compat/compat_method_list.h"

/* The methods: COMPAT_<ID> for each entry of compat_method_list.h, in its order. */
#define COMPAT_METHOD_ENUM_(id, ...) COMPAT_##id,
typedef enum {
    COMPAT_METHOD_LIST(COMPAT_METHOD_ENUM_)
    COMPAT_N_METHODS
} CompatMethod;

typedef enum { COMPAT_LEVEL_TOKEN = 0, COMPAT_LEVEL_CHOICE, COMPAT_LEVEL_SEQUENCE } CompatLevel;

typedef struct {
    CompatMethod method;
    CompatLevel level;
    int answer_only;     /* distil on answer tokens only (default 0: every non-padding token, the paper's) */
    double temperature;  /* T (default 2) */
    double ce_weight;    /* MUSCLE masks: w in (1 - w) * kd + w * ce (default 0) */
    double kd_weight;    /* focal, ELODI: lambda in ce + lambda * kd (default 1) */
    double focal_alpha, focal_beta; /* default 1, 5 */
    double elodi_margin; /* default 0.5 (nats) */
    int elodi_p;         /* 1 or 2 (default 2) */
    int topk;            /* teacher cache: 0 = exact when it fits in cache_mb, else 64 */
    double cache_mb;     /* default 1024 */
    /* sequence level: greedy decoding of the teachers' and the student's outputs, as
     * `muscle eval` decodes (its --max-tokens and --no-repeat-ngram) */
    int gen_max_tokens;  /* default 128 */
    int gen_no_repeat_ngram; /* default 0 */
    /* token level across tokenizers (compat_xtok.h): 0 exact mapping of pieces, 1 ULD */
    int vocab_map;
    /* mixture teacher: a in (1 - a) mean(K new) + a M1; < 0: chosen on the validation split
     * (multiple choice; compat_mixture_choose) with the accuracy tolerance mixture_tol */
    double mixture_a;    /* default -1 (chosen) */
    double mixture_tol;  /* default 0.005 */
} CompatConfig;

void compat_config_default(CompatConfig *c);
/* The method's name (compat_method.h: the table); "?" for an unknown value. */
const char *compat_method_name(CompatMethod m);
int compat_method_parse(const char *s, CompatMethod *m); /* -1 with err_set otherwise */
const char *compat_level_name(CompatLevel l);
int compat_level_parse(const char *s, CompatLevel *l);
/* Checks ranges; one message per bad value. */
int compat_config_check(const CompatConfig *c);
/* The settings as compact JSON (malloc'd), for adapter metadata and logs. */
char *compat_config_json(const CompatConfig *c);

/* What the cache keeps of a teacher at one position. */
typedef struct {
    int k;            /* kept classes: k == V means all of them */
    const int *ids;   /* [k] their ids (descending logits); NULL when k == V (id = index) */
    const float *z;   /* [k] their logits */
    float lse1;       /* log sum_j exp(z_j) over the whole vocabulary */
    float lseT;       /* log sum_j exp(z_j / T) over the whole vocabulary */
    float logp_y;     /* log p(y) at temperature 1 */
    int argmax;
} TeacherPos;

/* Fills a TeacherPos from a teacher's logits z [V] at temperature T, keeping the top k
 * (k >= V: all, ids_out unused) into ids_out / z_out [k]. */
void compat_teacher_pos(const float *z, int V, double T, int y, int k, int *ids_out, float *z_out, TeacherPos *tp);

typedef struct {
    double ce, kd;    /* unscaled contributions of this position */
    int masked;       /* m (MUSCLE masks), or [M1 correct] (focal) */
    int student_correct;
} CompatTokenOut;

/* One position: returns ce_scale * ce + kd_scale * kd and writes its gradient into dz
 * [V] (dz may be z itself: z is read before dz is written). scratch: [3 V] floats
 * (q at T and at 1, then ELODI's per-class terms).
 * t1, t2 may be NULL where the method does not read them (t2: only the MUSCLE masks
 * other than none read it). seq_flag: the example's sequence-likelihood mask. */
double compat_token_loss(const CompatConfig *c, const float *z, int V, int y, int answer, int distill,
                         int seq_flag, const TeacherPos *t1, const TeacherPos *t2, double ce_scale, double kd_scale,
                         float *dz, float *scratch, CompatTokenOut *out);

/* Ensemble and mixture teachers (compat_method.h), a distribution over V classes built as
 *   acc = sum_k w_k softmax(z_k / T)   (compat_teacher_acc, once per teacher, acc zeroed first)
 *   out = T log acc                    (compat_teacher_logits: softmax(out / T) = acc)
 * with w_k = (1 - a) / K for the K new adapters and a for M1 (a = 0: the ensemble). A
 * class of probability 0 gets T log 1e-300. */
void compat_teacher_acc(const float *z, int V, double T, double w, double *acc);
void compat_teacher_acc_d(const double *z, int V, double T, double w, double *acc);
void compat_teacher_logits(const double *acc, int V, double T, float *out);
void compat_teacher_logits_d(const double *acc, int V, double T, double *out);

/* log q1(y) = z_y - logsumexp(z) (for the sequence-likelihood mask). */
double compat_logprob(const float *z, int V, int y);

/* Choice level, one multiple-choice instance of n choices: ll, ll1, ll2 [n] are the
 * summed log-likelihoods of each choice's tokens under the student, M1 and M2 (ll2
 * may be NULL where unused); label in 0..n-1 (a transfer instance passes M1's choice).
 * Distributions over the choices: softmax(ll / T). The masks act per instance (student-
 * wrong: argmax ll != label; old-correct: argmax ll1 == label; token/sequence-
 * likelihood: ll[label] < ll1[label]); focal weighs a_1 by alpha + beta [M1 correct];
 * ELODI takes D_c = log softmax(ll)_c - log softmax(ll1)_c. with_ce: add
 * ce_scale * (-ll[label]). Returns the loss; dll [n] = d loss / d ll. */
double compat_choice_loss(const CompatConfig *c, const double *ll, const double *ll1, const double *ll2, int n, int label,
                          int with_ce, double ce_scale, double kd_scale, double *dll, CompatTokenOut *out);

/* Sequence level (generation; sequence-level knowledge distillation, Kim & Rush 2016):
 * the student learns M1's greedy output by teacher forcing, on the instances the mask
 * picks. Scores are ROUGE-1 F against the reference: r1 of M1's output, r2 of M2's, rs of
 * the student's current output. The mask of one instance:
 *   none            1
 *   old-correct     labelled: r1 >= r2 and r1 > 0 (M1 at least as good: a possible
 *                   negative flip); transfer (no reference): 1
 *   student-wrong   labelled: rs < r1; transfer: the student's output differs from M1's
 * Returns 0 or 1; -1 with err_set for the methods that have no sequence level. */
typedef struct {
    int labelled;
    double r1, r2, rs;
    int student_same; /* transfer instances: the student's output text equals M1's */
} CompatSeqScores;
int compat_seq_mask(CompatMethod m, const CompatSeqScores *s);
/* The weight of M1's row of one instance (compat_method.h: the method's seq_weight; 1 without one). */
double compat_seq_weight(CompatMethod m, const CompatSeqScores *s);
/* Checks that the method has a sequence level (-1 with a message naming the others). */
int compat_seq_method_check(CompatMethod m);

/* The step's normalisers at the sequence level: ce = ce_weight / n_ref (the reference
 * answer tokens of the step's labelled instances), kd = kd_weight / n_m1 (the tokens of
 * M1's outputs of all the step's instances, masked or not): the step's loss is
 *   ce_weight * mean CE(reference) + kd_weight * mean over M1's tokens of mask * CE(M1's output). */
void compat_seq_scales(const CompatConfig *c, double n_ref, double n_m1, double *ce, double *kd);

/* Cross-entropy of one row under teacher forcing: z [(len - 1) x V] the student's logits
 * at positions 0 .. len - 2; position j predicts ids[j + 1] and counts when mask[j + 1].
 * Returns scale * sum over counted positions of -log softmax(z_j)[ids[j + 1]] and writes
 * its gradient scale * (softmax(z_j) - onehot) into dz (0 at positions that do not count;
 * dz may be z). *correct (may be NULL): counted positions where argmax z_j is the token. */
double compat_seq_row_loss(const float *z, int V, const int *ids, const uint8_t *mask, int len, double scale, float *dz,
                           int *correct);

#endif
