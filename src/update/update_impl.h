/* update/update_impl.h - the parts of `muscle update` (update.h), private to src/update:
 * the run's state, its steps (update_step.c) and its files (update_plan.c). */
#ifndef MUSCLE_UPDATE_UPDATE_IMPL_H
#define MUSCLE_UPDATE_UPDATE_IMPL_H

#include "update/train_run.h"
#include "update/update.h"

/* A run in progress: the spec and the step counter (steps are numbered over the run). */
typedef struct {
    const UpdateSpec *u;
    int step, n_steps;
    double mix_a_val; /* generation mixture presets: a chosen on validation (update_mixgen.c); < 0: none */
} UpdateRun;

/* An evaluation of a model (+ adapter) on the test set: `muscle eval` with these inputs. */
typedef struct {
    const char *model, *adapter, *task;
    const char *preds;        /* the predictions file */
    const char *format, *prompt, *answer, *prompt_file;
    long limit;               /* first N instances; 0 = all */
    long max_tokens;          /* generation; 0 = eval's default */
    long no_repeat_ngram;     /* generation; 0 = off */
    const char *fit_with;     /* generation: the other base (eval --fit-with), or NULL */
    int bf16, quiet;
} EvalStepSpec;

/* Formats a malloc'd path (NULL when out of memory). */
char *update_pathf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
int update_exists(const char *path);
/* Prints "muscle: error: <err_msg()>" (naming the rank on ranks > 0) and returns 1. */
int update_fail(void);

/* MPI ranks: the next step is another rank's (it is counted and skipped). */
int update_other_ranks_step(UpdateRun *r);
/* Trains into spec->out unless its adapter is there; resumes from its checkpoint.
 * `extra_args`: a user's method's own finetune options, appended (NULL: none). */
int update_train_step(UpdateRun *r, const char *what, const TrainSpec *spec, const char *extra_args, const char *log_name);
/* Evaluates into e->preds and the summary beside it (<name>.eval.json) unless both are there. */
int update_eval_step(UpdateRun *r, const char *what, const EvalStepSpec *e, const char *summary, const char *log_name);
/* Evaluates model + adapter on `task` into preds/NAME.jsonl and preds/NAME.eval.json. */
int update_eval_model(UpdateRun *r, const char *what, const char *model, const char *adapter, const char *name, const char *task);

/* M1 and every seed's M2 on the validation split (test 0: preds/old.val, new-sK.val) or the
 * test split (test 1: preds/old, new-sK), each unless done (update_weight.c). */
int update_eval_m1_m2(UpdateRun *r, int test);

/* ---- weight-space methods (update_weight.c): interp, interp-NAME, soup, soup-NAME ----
 * Checks what they need (--task-val, --old-adapter, NAME in the list): -1 with err_set(). */
int update_weight_check(const UpdateSpec *u);
/* The steps they add to a run (evaluations on the validation and test splits). */
int update_weight_steps(const UpdateSpec *u);
/* The number of interpolations in the run (each chooses its a on --task-val). */
int update_weight_interps(const UpdateSpec *u);
/* After phase 1 (rank 0): the seed soup adapters/soup-all and adapters/soup-sK, when a method needs them. */
int update_weight_soups(UpdateRun *r);
/* After phase 2: every interpolation's sweep: the combined adapter at each a, evaluated on
 * the validation and the test split (M1 and M2 on the validation split too). */
int update_weight_sweeps(UpdateRun *r);
/* Then (rank 0): a chosen per interpolation and seed on the validation split; its adapter
 * becomes adapters/NAME-sK, its test predictions preds/NAME-sK.jsonl, and the whole sweep
 * preds/NAME-sK.sweep.json (the report's curve). */
int update_weight_choose(UpdateRun *r);

/* 0 for a weight-space method (no training of its own), else 1. */
int update_method_trained(const UpdateMethod *m);
/* Copies a file (atomically at `to`). -1 with err_set(). */
int update_copy_file(const char *from, const char *to);
/* A small JSON file of the run folder (at most 1 MiB) parsed (cJSON_Delete it); NULL when it
 * is not there or not JSON. *present (when not NULL): 1 when the file was read. */
struct cJSON *update_read_json(const char *path, int *present);

/* ---- compatibility epochs, mixture weights and cross-entropy weights chosen on validation
 * (update_epochs.c; --compat-epochs E1,E2,..., --mixture-weights A1,A2,..., --ce-weights
 * W1,W2,...) ----
 * Each trained method's adapter of seed k is trained once per candidate: every E of a count
 * list, and for a mixture preset on multiple choice (update_mixw_applies, update_cew_applies)
 * every triple (a, W, E) of the lists given, a outer, E inner, into adapters/NAME-sK-eE,
 * NAME-sK-aA (a list of weights alone), NAME-sK-eE-aA, NAME-sK-eE-aA-wW, NAME-sK-wW...: -eE
 * with a count list or no other list, -aA and -wW with their lists.
 * Then M1, M2 and every candidate are evaluated on --task-val (preds/<candidate>.val.jsonl)
 * and the candidate chosen by the rule of an interpolation's a (update_weight.c): the lowest
 * validation NFR among the candidates whose validation accuracy is at least M2's (same seed)
 * minus --max-acc-drop, the first (fewest epochs, smallest a and W) on a tie or when none
 * qualifies. The chosen candidate is copied to adapters/NAME-sK (the test phase evaluates
 * it) and the sweep written to preds/NAME-sK.epochs.json: {"method", "seed", "tolerance",
 * "chosen_epochs", ["chosen_mixture_weight",] ["chosen_ce_weight",] "m2": {"val_acc", "val_nfr"},
 * "points": [{"epochs", ["mixture_weight",] ["ce_weight",] "val_acc", "val_nfr"}, ...]}. */
int update_mixw_applies(const UpdateSpec *u, const UpdateMethod *m); /* a mixture preset whose a the list sets */
int update_cew_applies(const UpdateSpec *u, const UpdateMethod *m);  /* ... whose W the list sets */
int update_candidates(const UpdateSpec *u, const UpdateMethod *m);   /* method m's candidates; 0: one, no choice */
typedef struct {
    double epochs;
    double a, w; /* the mixture's a and the cross-entropy weight; < 0: the method's own */
} UpdateCandidate;
void update_candidate(const UpdateSpec *u, const UpdateMethod *m, int c, UpdateCandidate *out);
char *update_candidate_name(const UpdateSpec *u, const UpdateMethod *m, long k, int c); /* "NAME-sK-eE"... (malloc'd) */
char *update_candidate_text(const UpdateSpec *u, const UpdateMethod *m, int c);         /* "3 epochs, a = 0.2, W = 0.1" (malloc'd) */
int update_epochs_check(const UpdateSpec *u);  /* a list needs --task-val: -1 with err_set() */
int update_epochs_steps(const UpdateSpec *u);  /* the steps the lists add */
int update_epochs_choose(UpdateRun *r);        /* after phase 2; every rank (ends its phases) */
/* The choices as one line for the manifest's settings ("compatibility epochs chosen on
 * validation among 1, 3: seed 1 3, ..."; malloc'd), NULL without a list or a choice. */
char *update_epochs_note(const UpdateSpec *u, const UpdateMethod *m);

/* Generation: the decoding of the evaluation (and of a sequence-level teacher's outputs). */
long update_gen_max_tokens(const UpdateSpec *u); /* --max-tokens, default 32 */
#define UPDATE_GEN_NO_REPEAT_NGRAM 2 /* the paper's decoding */
/* The new task adapter of seed k (1-based): --new-adapter for seed 1 when given (malloc'd). */
char *update_new_adapter(const UpdateSpec *u, long k);

/* ---- the inference-time mixture of generators (update_mixgen.c) ----
 * On a generation task: the test set decoded greedily from (1 - a) mean(M2 seeds) + a M1
 * for a in update_mixgen_grid, into preds/mixgen-aA.jsonl (rank 0, after the evaluations). */
#define UPDATE_MIXGEN_N 3
extern const double update_mixgen_grid[UPDATE_MIXGEN_N];
char *update_mixgen_preds(double a, const char *sfx); /* "preds/mixgen-a0.3<sfx>.jsonl" (relative to the run folder; malloc'd) */
int update_mixgen_steps(const UpdateSpec *u);
int update_mixgen(UpdateRun *r);
/* On a generation task with --task-val and a mixture preset: M1 and M2 on the validation
 * split, the mixture there at a = 0.1, ..., 0.5 and the choice of a (preds/mixgen.val.json),
 * after the new adapters (every rank: the steps are counted everywhere). */
int update_mixval_steps(const UpdateSpec *u);
/* 1 for a method whose a update chooses there: a mixture preset on a generation task. */
int update_mixval_applies(const UpdateSpec *u, const UpdateMethod *m);
int update_mixval(UpdateRun *r);
/* The a chosen on validation (*a < 0: none chosen, the file is not there) and, when sweep is
 * not NULL, the sweep as one line of text (malloc'd; NULL when none). */
int update_mixval_read(const UpdateSpec *u, double *a, char **sweep);

/* Mean score (accuracy) of `new` and its (score) NFR against `old`, two prediction files. */
int update_pair_stats(const UpdateSpec *u, const char *old, const char *new, double *acc, double *nfr);
/* MPI ranks: the end of a phase; every rank goes on with the worst exit code of them all. */
int update_phase_end(int rc);

/* The report of the manifest into out (in this process). */
int update_report_step(UpdateRun *r);

/* update.json: the settings of a run folder, checked against a resumed run's (rank 0). */
int update_check_settings(const UpdateSpec *u);
int update_write_manifest(const UpdateSpec *u);

#endif
