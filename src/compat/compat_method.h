/* compat/compat_method.h - a compatibility method as one table entry (docs/compat.md):
 * its name, the levels it has, the teachers it reads, what it decides per position or
 * instance (which teacher's KL, with what weight), its sequence-level mask and weight,
 * how the step mixes cross-entropy and distillation, and its help line. The method list
 * of --compat's error and of `muscle finetune --help` is generated from the table.
 *
 * A method is the table entry plus its function(s): the entry is one X() line of
 * compat_method_list.h (which also makes the CompatMethod enum and the method's `muscle
 * update` presets), the functions are in compat_method.c. The levels (compat_impl.h:
 * CompatLevelOps; compat_token.c, compat_choice.c, compat_seq.c) and the losses
 * (compat_loss.c) read only the entry.
 *
 * Teachers: M1 (the old task model) and the new-side teacher, read by the losses as "t2":
 *   COMPAT_TEACH_M2        M2, the new task model (its adapter = the student's start)
 *   COMPAT_TEACH_ENSEMBLE  the mean distribution of K new adapters (ELODI's ensemble),
 *                          p = (1/K) sum_k softmax(z2_k / T)
 *   COMPAT_TEACH_MIXTURE   (1 - a) * (the mean of K) + a * softmax(z1 / T)
 * An ensemble or mixture teacher is kept as logits T log p (softmax(them / T) = p), so
 * the losses take it as any single teacher.
 */
#ifndef MUSCLE_COMPAT_COMPAT_METHOD_H
#define MUSCLE_COMPAT_COMPAT_METHOD_H

#include "compat/compat_loss.h"

enum {
    COMPAT_TEACH_M1 = 1u,
    COMPAT_TEACH_M2 = 2u,
    COMPAT_TEACH_ENSEMBLE = 4u,
    COMPAT_TEACH_MIXTURE = 8u,
};
#define COMPAT_LEVEL_BIT(l) (1u << (unsigned)(l))

/* What a method reads to decide at one position (token level) or one instance (choice
 * level). Log-probabilities at temperature 1 of the label (the next token, or the gold
 * choice); argmaxes -1 where the teacher is not given. */
typedef struct {
    int label;
    int student_argmax, old_argmax, new_argmax;
    double student_logp, old_logp;
    double old_prob;     /* M1's probability of the label at temperature 1 (token: p1(y); choice:
                            softmax(ll1)[label]) */
    int seq_flag;        /* token level: the example's sequence-likelihood flag;
                            choice level: student_logp < old_logp (the choice is the sequence) */
} CompatPickIn;

/* Its decision: the KL of which teacher (0 none, 1 M1, 2 the new-side teacher), times w. */
typedef struct {
    int teacher;
    double w;
    int masked;          /* reported: m of the MUSCLE masks, [M1 correct] for focal, the flip */
} CompatPick;

typedef enum {
    COMPAT_KD_KL = 0,    /* w * KL(p_teacher || q) as pick says */
    COMPAT_KD_LOGIT_DIFF /* ELODI's logit-difference term against M1 (compat_loss.h) */
} CompatKdKind;

typedef enum {
    COMPAT_SCALES_MIX = 0, /* (1 - ce_weight) * distillation + ce_weight * cross-entropy */
    COMPAT_SCALES_ADD      /* cross-entropy + kd_weight * distillation (the baselines) */
} CompatScales;

typedef enum {
    COMPAT_XTOK_TOKEN_NO = 0, /* token level not defined across tokenizers */
    COMPAT_XTOK_TOKEN_EXACT,  /* only with the exact vocabulary mapping */
    COMPAT_XTOK_TOKEN_YES,
} CompatXtokToken;

/* The task kinds a preset applies to (update.h: UPDATE_FOR_MC, UPDATE_FOR_GEN). */
#define COMPAT_FOR_MC 1u
#define COMPAT_FOR_GEN 2u
/* The mixture's weight a of the generation presets (mixture-gen, mixture-seqkd): a fixed
 * default, as a is chosen on the held-out split for multiple choice only (docs/compat.md). */
#define COMPAT_MIXTURE_A_GEN 0.3

/* One `muscle update` preset of a method: `--compat METHOD --level L [--ce-weight W]
 * [--distill-tokens answer] [--mixture-weight A]`. */
typedef struct {
    const char *name;         /* NULL: the end of the method's presets */
    CompatLevel level;
    double ce_weight;
    int answer_only;
    unsigned kinds;           /* COMPAT_FOR_*; 0: from the level (token: both, choice: MC, sequence: generation) */
    double mixture_a;         /* > 0: passed as --mixture-weight */
} CompatPresetDef;
#define COMPAT_MAX_PRESETS 5

typedef struct {
    CompatMethod id;
    const char *name;
    unsigned levels;          /* COMPAT_LEVEL_BIT()s */
    unsigned teachers;        /* COMPAT_TEACH_*: what the trainer computes */
    CompatKdKind kd;
    CompatScales scales;
    CompatPick (*pick)(const CompatConfig *c, const CompatPickIn *in); /* token and choice levels (KL kind) */
    int (*seq_mask)(const CompatSeqScores *s);     /* sequence level: 0 or 1 */
    double (*seq_weight)(const CompatSeqScores *s); /* sequence level: the weight of M1's row; NULL: 1 */
    int seq_reads_student;    /* the sequence mask reads the student's outputs (refreshed every epoch) */
    int token_seq_flag;       /* token level: reads the example's sequence-likelihood flag */
    CompatXtokToken xtok_token;
    const char *help;         /* one line for --help */
    CompatPresetDef presets[COMPAT_MAX_PRESETS]; /* its `muscle update` presets */
} CompatMethodDef;

/* The task kinds preset p applies to (its kinds, or from its level). */
unsigned compat_preset_kinds(const CompatPresetDef *p);

/* The entry of m (NULL for an unknown value). */
const CompatMethodDef *compat_method_def(CompatMethod m);
/* The table, in --help order. */
const CompatMethodDef *compat_methods(int *n);
/* "a, b, c or d": the methods that have one of the levels in level_bits and, when
 * xtok is set, are defined at the token level across tokenizers (xtok 1: exact map,
 * 2: ULD). Static storage. */
const char *compat_methods_list(unsigned level_bits, int xtok);
/* The methods' help lines, indented (static storage). */
const char *compat_methods_help(void);
/* Whether m has level l. */
int compat_method_has_level(CompatMethod m, CompatLevel l);

#endif
