/* update/update.h - a base-model update for one task, end to end (`muscle update`):
 *   1. the new task adapter(s) A2 on M2, one per seed (unless new_adapter gives seed 1's)
 *   2. per method and seed k: a compatibility adapter from A2 seed k (with a list of epoch
 *      counts or of mixture weights: one per candidate, chosen on the validation split)
 *   3. eval of M1, of M2 per seed and of every method per seed on the test set
 *   4. manifest.json and the report (report.html, report.md, report.json)
 * Each step is skipped when its output already exists, so an interrupted update resumes
 * where it stopped (an interrupted training continues from its checkpoint). Layout of
 * out: update.json (settings), adapters/<name>-s<k>/, preds/<name>-s<k>.jsonl and
 * .eval.json, logs/<step>.log (the steps' stderr when quiet), manifest.json, report.*.
 *
 * Steps 1-3 run as children of this program (update_step.c says why), each from a
 * typed spec: a TrainSpec (update/train_run.h) or an EvalStepSpec. On N MPI ranks
 * (docs/distributed.md) step i of a phase is rank i mod N's; the ranks wait for each
 * other at the end of each phase (a failed step stops every rank) and rank 0 writes
 * update.json, the manifest and the report: the outputs of a one-rank run, bit for bit.
 */
#ifndef MUSCLE_UPDATE_UPDATE_H
#define MUSCLE_UPDATE_UPDATE_H

#include "compat/compat_method.h"
#include "task/task.h"

/* Weight-space methods (update_weight.c): no training of their own, an adapter combined
 * exactly from others (model/lora_combine.h). */
typedef enum {
    UPDATE_WEIGHT_NONE = 0,   /* a trained method */
    UPDATE_WEIGHT_INTERP,     /* (1 - a) A2 + a X, X = A1 moved to v2 (or the adapter of the method named in
                               * interp-NAME); a in 0, 0.1, ..., 1 chosen on --task-val */
    UPDATE_WEIGHT_SOUP,       /* (1/K) sum_k A2_k: the seed soup (the same adapter for every seed) */
} UpdateWeightOp;

/* A method preset (update_plan.c): a compatibility method's presets come from its entry
 * (compat/compat_method_list.h); ce, interp and soup are update_plan.c's own. */
typedef struct {
    const char *name;
    int ce_only;              /* 1: more cross-entropy training only (no teacher, a control) */
    CompatMethod method;
    CompatLevel level;
    int answer_only;          /* distil on the answer tokens only */
    double ce_weight;
    unsigned kinds;           /* UPDATE_FOR_MC | UPDATE_FOR_GEN: the task kinds it applies to */
    UpdateWeightOp weight;    /* a weight-space method (then method, level, ... are unused) */
    double mixture_a;         /* > 0: --mixture-weight */
} UpdatePreset;
#define UPDATE_FOR_MC COMPAT_FOR_MC
#define UPDATE_FOR_GEN COMPAT_FOR_GEN

/* The presets, in the order of `muscle update --help`. */
const UpdatePreset *update_presets(int *n);
/* Their lines for --help (malloc'd), generated from the table: name, settings, task kind. */
char *update_presets_help(void);
/* Whether preset p (NULL: a user's method) has the run's K new adapters as its teacher
 * (ensemble, mixture): they reach finetune as one comma-separated list of folders. */
int update_preset_teaches_with_new(const UpdatePreset *p);

typedef struct {
    char *name;
    const UpdatePreset *preset; /* NULL: a user's method NAME=ARGS */
    char *args;               /* its settings as finetune options (a preset's rendered, a user's as given); NULL: cross-entropy only */
    char *interp_with;        /* interp-NAME: X = method NAME's adapter (NULL: interp with A1) */
    int soup_init;            /* soup-NAME: preset NAME trained from the seed soup instead of A2 seed k */
} UpdateMethod;

#define UPDATE_MAX_EPOCH_CHOICES 8
#define UPDATE_MAX_MIXTURE_WEIGHTS 10
#define UPDATE_MAX_CE_WEIGHTS 10

/* A number option and its spelling as given (update.json records the spelling, so a
 * resumed run is compared with what was typed); text NULL: not given. */
typedef struct {
    double v;
    const char *text;
} UpdateNum;

typedef struct {
    const char *old_model, *old_adapter, *new_model, *new_adapter;
    const char *train, *val, *test, *out, *transfer;
    const char *format, *prompt, *answer, *prompt_file;
    UpdateNum epochs, lr, batch, grad_accum, seq_len, rank;     /* every adapter's training */
    UpdateNum compat_epochs, compat_lr;                          /* compatibility training */
    /* --compat-epochs E1,E2,...: each trained method's adapter of each seed is trained for
     * every E (increasing), and E chosen on --task-val (update_epochs.c); n 0 or 1: one E */
    double compat_epoch_list[UPDATE_MAX_EPOCH_CHOICES];
    int n_compat_epochs;
    /* --mixture-weights A1,A2,...: a mixture preset's student of each seed is trained for
     * every a (increasing, in (0, 1); times every E of a count list) and (a, E) chosen on
     * --task-val by the students' own results (update_epochs.c); n 0: the teacher's rule */
    UpdateNum mixture_weights;
    double mixture_weight_list[UPDATE_MAX_MIXTURE_WEIGHTS];
    int n_mixture_weights;
    /* --ce-weights W1,W2,...: the same for their weight W of the cross-entropy on the gold
     * answers (loss W CE + (1 - W) KD; increasing, in [0, 1]), W inner to a, outer to E */
    UpdateNum ce_weights;
    double ce_weight_list[UPDATE_MAX_CE_WEIGHTS];
    int n_ce_weights;
    UpdateNum max_tokens, limit;                                 /* evaluation */
    UpdateNum bootstrap, max_acc_drop;                           /* the report */
    long seeds;
    int bf16, quiet;
    TaskKind kind;            /* of the training set (update_read_kind) */
    UpdateMethod *methods;
    int n_methods;
} UpdateSpec;

/* Defaults: 1 seed, 3 epochs, lr 1e-3, batch 8, accumulation 1, rank 8. */
void update_spec_default(UpdateSpec *u);
/* Reads the training set's kind into u->kind (the methods and defaults depend on it). */
int update_read_kind(UpdateSpec *u);
/* Reads every input task file (training, validation, test, transfer) before the first
 * step: formats, kinds, unique ids, and the templates fit each set. -1 with err_set(). */
int update_check_inputs(const UpdateSpec *u);
/* Turns the comma-separated list (NULL: muscle,choice
 * for multiple choice, muscle for generation) into u->methods: presets by name, `all`
 * (every preset for the task's kind), or NAME=FINETUNE-ARGS. -1 with err_set() on a bad list (methods for the other kind are
 * skipped with a message). */
int update_methods_parse(UpdateSpec *u, const char *list);
/* Runs (or resumes) the update. Returns 0, or the exit code to stop with: 1 after
 * printing an error, a failed step's code (130/143: stopped by a signal, resumable). */
int update_run(const UpdateSpec *u);
void update_spec_free(UpdateSpec *u);

#endif
