/* compat/compat_impl.h - internals shared by the compatibility training files (not
 * public): the examples, the trainer's state, and what compat_train.c (examples, the
 * token level, set-up), compat_seq.c (the sequence level) and compat_choice.c (the
 * choice level) call of each other. */
#ifndef MUSCLE_COMPAT_COMPAT_IMPL_H
#define MUSCLE_COMPAT_COMPAT_IMPL_H

#include <stdint.h>

#include "compat/compat_train.h"
#include "compat/compat_mixgen.h"
#include "compat/compat_xtok.h"
#include "model/forward.h"

/* One training or held-out example: a row of ids; mask[j] = 1 when ids[j] is an
 * answer token (its prediction from position j - 1 carries the cross-entropy). */
typedef struct {
    int *ids;
    uint8_t *mask;
    int len;
    int labelled;  /* 0: transfer instance (no cross-entropy) */
    int label;     /* MC: the choice in the row (M1's for a transfer instance); -1 generation */
    int mc;        /* MC: index into ct->mc; -1 otherwise */
    int src;       /* its instance in the task set it came from (train, val or transfer) */
    /* sequence level: M1's greedy output as a row (prompt + output [+ EOS]; kd_mask = 1 on
     * the output) and the prompt as muscle eval reads it (whole: cut per model) */
    int *kd_ids;
    uint8_t *kd_mask;
    int kd_len;
    int *gp;
    int gn;
    /* across tokenizers (compat_xtok_train.c): M1's row of the same text in its own
     * tokenization, the teacher position aligned with each student position j (-1: none),
     * and M1's prompt (sequence level) */
    int *t_ids;
    int t_len;
    int *t_pos;        /* [len - 1]; NULL: the same tokenizer (every position is its own) */
    int *gp1;
    int gn1;
} CEx;

/* What one position of a token-level step was (pos_meta: the bits of the flags that hold),
 * gathered in the parallel loop, counted into CompatStats after it. */
typedef enum {
    COMPAT_POS_MASKED = 1 << 0,        /* the mask chose M1 (MUSCLE masks), or M1 was right (focal) */
    COMPAT_POS_DISTILLED = 1 << 1,     /* the distillation covers it */
    COMPAT_POS_ANSWER = 1 << 2,        /* an answer token */
    COMPAT_POS_STUDENT_RIGHT = 1 << 3, /* an answer token the student's argmax got right */
} CompatPosFlag;

/* A level of compatibility training (token: compat_token.c, choice: compat_choice.c,
 * sequence: compat_seq.c): what it computes of the teachers before the first step, what
 * it sets up when attached to the trainer (beyond the rows every level has; NULL: nothing),
 * its step (the trainer's step hook) and what it frees. */
typedef struct {
    CompatLevel level;
    int (*teachers)(CompatTrainer *ct);
    int (*attach)(CompatTrainer *ct, Trainer *t);
    int (*step)(CompatTrainer *ct, Trainer *t, const long *ex, int n, double *loss);
    void (*free)(CompatTrainer *ct);
} CompatLevelOps;
extern const CompatLevelOps compat_level_token, compat_level_choice, compat_level_seq;


struct CompatTrainer {
    CompatConfig cfg;
    const CompatLevelOps *lv;
    CompatSetup s;
    TaskKind kind;
    int V;
    CEx *ex[2];                /* [DATA_TRAIN], [DATA_VAL] */
    long n[2];
    int max_len;
    /* multiple choice: the tokenized training instances and the teachers' choice scores */
    TaskMCTokens *mc;
    int n_mc, max_choices;
    double *ll1, *ll2;         /* [n_mc * max_choices] */
    /* token level: teacher cache, position p = pos_off[e] + j (j = 0 .. len - 2) */
    size_t *pos_off;           /* [n_train + 1] */
    TeacherPos *tp[2];         /* [positions] M1, M2 (NULL when not needed) */
    int *ids_pool[2];
    float *z_pool[2];
    int k;                     /* kept per covered position (V = exact) */
    /* training */
    Trainer *t;
    RunState cs;               /* choice level: every choice of a micro-batch's instances */
    int have_cs;
    int *rows_tok;             /* micro-batch tokens */
    float *scratch;            /* [threads, 3 V] */
    double *pos_loss;          /* [rows * T] */
    int *pos_meta;             /* per position: CompatPosFlag bits */
    int *row_ex, *row_c, *seq_flag; /* per row of a micro-batch: its example, its choice; per example: the flag */
    double *row_ll, *row_dll;  /* per row: the choice's log-likelihood and d loss / d it */
    /* choice level: per (example, choice) of a pass, where its segment starts and where its
     * row starts in the logits; per example its first (example, choice) (row_cap each) */
    int *row_at, row_cap;
    int *pk_pos, *pk_seg;      /* [B * T] positions and segments of the packed rows */
    long *mb_ex;               /* [2 B] a micro-batch's examples: packed, then plain */
    int unpacked;              /* MUSCLE_COMPAT_UNPACKED=1: every choice a plain row (the old path);
                                  MUSCLE_COMPAT_PACK_MAX=N: packed rows of at most max(N, T)
                                  tokens, the longer ones as plain rows (test knobs) */
    /* sequence level: per training example, ROUGE-1 F of M1's and M2's outputs, M1's text,
     * [M2's text == M1's], the current mask and the epoch it was computed for */
    double *r1, *r2;
    char **text1;
    uint8_t *same2, *smask;
    long mask_epoch;
    int *gen_buf;              /* a prompt cut to a model's context */
    /* across tokenizers: M1 has its own tokenizer (s.old_tok differs from s.tok) */
    int xtok;
    CompatVocabMap vmap;       /* token level, --vocab-map exact */
    TaskMCTokens *mc1;         /* [n_mc] the multiple-choice instances in M1's tokenization */
    float *uld_pool;           /* token level, --vocab-map uld: M1's sorted probabilities per covered position [C x Vt] */
    int vt;
    int *span_m;               /* token level: the span mask of each position of a micro-batch [b x Tm] */
    size_t span_cap;
    double cover_sum;          /* exact mapping: sum over aligned positions of the mass covered */
    long cover_n;
    /* mixture teacher: the a in use (given, or chosen on the validation split) and, for the
     * choice, the held-out multiple-choice instances */
    double mix_a;
    TaskMCTokens *mcv;
    int n_mcv;
    CompatStats st;
};

/* compat_train.c */
int compat_covered(const CompatTrainer *ct, const CEx *e, int j); /* distilled at position j */
int compat_is_answer(const CEx *e, int j);
int compat_argmax_row(const double *v, int n); /* the first largest */
void compat_step_scales(const CompatConfig *c, double n_answer, double n_distill, double *ce, double *kd);
/* Summed log-likelihoods of every choice of mc[0..n) under m + a into ll [n x max_choices]. */
int compat_mc_scores(CompatTrainer *ct, const TaskMCTokens *mc, int n, const Model *m, const LoraAdapter *a, double *ll,
                     const char *who);

/* compat_ensemble.c: the new-side teacher (M2, the ensemble of K, or the mixture) */
int compat_needs_new_teacher(const CompatConfig *c);
/* The members of the new-side teacher (malloc'd): M2; the K new adapters, 1/K each; or
 * those at (1 - a)/K and M1 at a. */
int compat_new_members(const CompatTrainer *ct, CompatMember **mem, int *n);
/* Choice level: the new-side teacher's scores into ll [n_mc x max_choices] (as logits
 * T log p for an ensemble or mixture). */
int compat_new_choice_scores(CompatTrainer *ct, double *ll);
/* Mixture: ct->mix_a, given or chosen on the held-out split (compat_loss.h: mixture_a). */
int compat_mixture_choose(CompatTrainer *ct);

/* compat_xtok_train.c: across tokenizers */
int compat_xtok_rows(CompatTrainer *ct);
int compat_xtok_token_cache(CompatTrainer *ct, size_t covered_n);
int compat_xtok_mc_tokens(CompatTrainer *ct, const TaskSet *sub, const int *keep, int n);
int compat_xtok_gen_prompts(CompatTrainer *ct, const TaskGenText *txt, CEx *e);
int compat_xtok_step_masks(CompatTrainer *ct, const long *ex, int b, int Tm, const float *logits);
double compat_xtok_step_pos(const CompatTrainer *ct, int q, const TeacherPos *t1, const TeacherPos *t2, const float *z, int y,
                            int ans, int dist, double ce_s, double kd_s, float *dz, float *scratch, CompatTokenOut *o);

/* compat_choice.c: the choice level */
int compat_choice_packed_len(const TaskMCTokens *tk);

#endif
