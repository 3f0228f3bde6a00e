/* cli/cmd_update.c - `muscle update`: the options into an UpdateSpec, then the whole
 * path of a base-model update for one task (update/update.h: its steps, its run
 * folder, resuming, and MPI ranks). */
#include "cli.h"
#include "core/error.h"
#include "update/update.h"

#include <getopt.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *update_help =
    "usage: muscle update --old-model M1 --old-adapter A1 --new-model M2 --task-train TRAIN\n"
    "                     --task-test TEST --out RUN_DIR [options]\n"
    "Updates a task model to a new base model and shows what the update breaks: trains the\n"
    "new task adapter on M2 (unless --new-adapter is given), trains compatibility adapters\n"
    "with each method, evaluates the old model, the new one and every method on TEST,\n"
    "compares them instance by instance and writes RUN_DIR/report.html, report.md and\n"
    "report.json (docs/compat.md, docs/report.md). Run it again to resume an interrupted run.\n"
    "  --task-val VAL        held-out set for keeping the best epoch (default: 20% of TRAIN)\n"
    "  --new-adapter A2      the new task adapter of seed 1, already trained\n"
    "  --methods LIST        comma-separated (default: muscle,choice for multiple choice,\n"
    "                        muscle for generation); each a preset, all (every preset for\n"
    "                        the task's kind) or NAME=FINETUNE-ARGS; the presets:\n";

/* after the presets' lines (update_presets_help, generated from the presets' table) */
static const char *update_help_tail =
    "                          interp-NAME         (1-a) A2 + a X, X = method NAME's adapter (a on --task-val)\n"
    "                          soup-NAME           preset NAME trained from the seed soup\n"
    "                        (all: every preset for the task's kind; interp only with --task-val\n"
    "                        and --old-adapter)\n"
    "  --seeds K             adapters and compatibility adapters for seeds 1..K (default 1);\n"
    "                        K >= 2 also gives the noise floor (NFR between two M2 seeds);\n"
    "                        the ensemble and mixture presets' teacher is the K new adapters\n"
    "  --transfer FILE       unlabelled task inputs for the distillation terms\n"
    "training (every adapter): --epochs E (default 3), --lr X (default 1e-3), --batch B\n"
    "  (default 8), --grad-accum G (default 1), --seq-len T, --rank R (default 8), --bf16\n"
    "  --compat-epochs E     epochs of compatibility training (default 1); a list E1,E2,...\n"
    "                        trains each and chooses per method and seed on --task-val (the\n"
    "                        lowest validation NFR keeping M2's accuracy, as interp's a)\n"
    "  --compat-lr X         its learning rate (default: --lr)\n"
    "  --mixture-weights A1,A2,...\n"
    "                        the mixture presets on multiple choice (mixture-choice,\n"
    "                        mixture-distill): one student per a (in (0, 1), increasing),\n"
    "                        and a chosen per seed on --task-val by the students' own\n"
    "                        accuracy and NFR (the rule of --compat-epochs; with a count\n"
    "                        list, each pair of a and count), not by the teacher's\n"
    "  --ce-weights W1,W2,...\n"
    "                        the same presets: one student per weight W of the cross-\n"
    "                        entropy on the gold answers (loss W CE + (1 - W) KD; in [0, 1],\n"
    "                        increasing; mixture-choice has 0.5, mixture-distill 0), chosen\n"
    "                        per seed on --task-val by the same rule (with the other lists,\n"
    "                        every combination)\n"
    "  --format NAME, --prompt T, --answer T, --prompt-file F: as for muscle eval\n"
    "evaluation: --max-tokens N (generation, default 32), --limit N (first N test instances)\n"
    "report: --bootstrap B (default 1000), --max-acc-drop X (default 0.005)\n"
    "  --quiet               no progress; the steps' messages go to RUN_DIR/logs/\n";

/* The options: strings and flags stored at `off` in UpdateSpec; numbers as UpdateNum
 * (value and spelling), integers in [lo, hi] or (hi < lo) any number. */
typedef enum { U_STR, U_FLAG, U_NUM, U_EPOCHS, U_MIXW, U_CEW, U_METHODS, U_SEEDS, U_HELP } UOptType;
typedef struct {
    const char *name;
    UOptType type;
    size_t off;
    long lo, hi;
} UpdateOpt;

#define F(field) offsetof(UpdateSpec, field)
static const UpdateOpt update_opts[] = {
    {"old-model", U_STR, F(old_model), 0, 0}, {"old-adapter", U_STR, F(old_adapter), 0, 0},
    {"new-model", U_STR, F(new_model), 0, 0}, {"new-adapter", U_STR, F(new_adapter), 0, 0},
    {"task-train", U_STR, F(train), 0, 0}, {"task-val", U_STR, F(val), 0, 0}, {"task-test", U_STR, F(test), 0, 0},
    {"out", U_STR, F(out), 0, 0}, {"methods", U_METHODS, 0, 0, 0}, {"seeds", U_SEEDS, 0, 1, 100},
    {"transfer", U_STR, F(transfer), 0, 0}, {"epochs", U_NUM, F(epochs), 1, 0}, {"lr", U_NUM, F(lr), 1, 0},
    {"batch", U_NUM, F(batch), 1, 65536}, {"grad-accum", U_NUM, F(grad_accum), 1, 65536},
    {"seq-len", U_NUM, F(seq_len), 1, 1 << 20}, {"rank", U_NUM, F(rank), 1, 65536}, {"bf16", U_FLAG, F(bf16), 0, 0},
    {"compat-epochs", U_EPOCHS, F(compat_epochs), 1, 0}, {"compat-lr", U_NUM, F(compat_lr), 1, 0},
    {"mixture-weights", U_MIXW, F(mixture_weights), 1, 0}, {"ce-weights", U_CEW, F(ce_weights), 1, 0},
    {"format", U_STR, F(format), 0, 0}, {"prompt", U_STR, F(prompt), 0, 0}, {"answer", U_STR, F(answer), 0, 0},
    {"prompt-file", U_STR, F(prompt_file), 0, 0}, {"max-tokens", U_NUM, F(max_tokens), 1, 1 << 20},
    {"limit", U_NUM, F(limit), 1, 1L << 40}, {"bootstrap", U_NUM, F(bootstrap), 0, 100000},
    {"max-acc-drop", U_NUM, F(max_acc_drop), 1, 0}, {"quiet", U_FLAG, F(quiet), 0, 0}, {"help", U_HELP, 0, 0, 0},
};
#undef F
#define N_UOPTS (int)(sizeof update_opts / sizeof update_opts[0])

/* An increasing comma-separated list of numbers (a single number is a list of one) into
 * out[0..*n), each in (0, hi] (hi_open: (0, hi); lo_closed: from 0 on): 0, or the exit code.
 * `noun` names the numbers in the messages ("epoch counts"), `range` their range ("(0, 1e6]"). */
static int parse_list(const char *flag, const char *v, const char *noun, const char *range, int lo_closed, double hi, int hi_open,
                      double *out, int max, int *n_out) {
    char one[64];
    int n = 0;
    for (const char *p = v;; n++) {
        const char *c = strchr(p, ',');
        size_t len = c ? (size_t)(c - p) : strlen(p);
        if (n == max) return cli_usage_fail("update", "%s '%s': at most %d %s", flag, v, max, noun);
        if (len == 0 || len >= sizeof one)
            return cli_usage_fail("update", "%s '%s': expected a number or an increasing comma-separated list of numbers", flag, v);
        memcpy(one, p, len);
        one[len] = 0;
        double dv;
        if (cli_parse_float(flag, one, &dv)) return 2;
        if (dv == 0) dv = 0; /* "-0": the names and files say 0 */
        if (!((lo_closed ? dv >= 0 : dv > 0) && (hi_open ? dv < hi : dv <= hi)))
            return cli_usage_fail("update", "%s '%s': expected a number in %s", flag, one, range);
        if (n > 0 && !(dv > out[n - 1]))
            return cli_usage_fail("update", "%s '%s': the %s must increase ('%s' after %g)", flag, v, noun, one, out[n - 1]);
        out[n] = dv;
        if (!c) break;
        p = c + 1;
    }
    *n_out = n + 1;
    return 0;
}

/* --compat-epochs E, or E1,E2,... (update_epochs.c chooses among them on --task-val);
 * --mixture-weights A1,A2,... (the same, for the mixture presets' a), --ce-weights W1,W2,...
 * (their cross-entropy weight): 0, or the exit code. */
static int parse_epochs(UpdateSpec *u, const char *v) {
    int rc = parse_list("--compat-epochs", v, "epoch counts", "(0, 1e6]", 0, 1e6, 0, u->compat_epoch_list, UPDATE_MAX_EPOCH_CHOICES, &u->n_compat_epochs);
    if (rc == 0) u->compat_epochs = (UpdateNum){u->compat_epoch_list[0], v};
    return rc;
}

static int parse_mixture_weights(UpdateSpec *u, const char *v) {
    int rc = parse_list("--mixture-weights", v, "mixture weights", "(0, 1)", 0, 1, 1, u->mixture_weight_list, UPDATE_MAX_MIXTURE_WEIGHTS, &u->n_mixture_weights);
    if (rc == 0) u->mixture_weights = (UpdateNum){u->mixture_weight_list[0], v};
    return rc;
}

static int parse_ce_weights(UpdateSpec *u, const char *v) {
    int rc = parse_list("--ce-weights", v, "cross-entropy weights", "[0, 1]", 1, 1, 0, u->ce_weight_list, UPDATE_MAX_CE_WEIGHTS, &u->n_ce_weights);
    if (rc == 0) u->ce_weights = (UpdateNum){u->ce_weight_list[0], v};
    return rc;
}

/* One option into u: 0, or the exit code (-1: help printed). */
static int parse_one(UpdateSpec *u, const UpdateOpt *o, const char *v, const char **methods) {
    char flag[64];
    snprintf(flag, sizeof flag, "--%s", o->name);
    long lv;
    double dv;
    switch (o->type) {
    case U_STR: *(const char **)((char *)u + o->off) = v; return 0;
    case U_FLAG: *(int *)((char *)u + o->off) = 1; return 0;
    case U_HELP: {
        char *ph = update_presets_help();
        fputs(update_help, stdout);
        fputs(ph ? ph : "", stdout);
        fputs(update_help_tail, stdout);
        free(ph);
        return -1;
    }
    case U_EPOCHS: return parse_epochs(u, v);
    case U_MIXW: return parse_mixture_weights(u, v);
    case U_CEW: return parse_ce_weights(u, v);
    case U_METHODS: *methods = v; return 0;
    case U_SEEDS: if (cli_parse_int(flag, v, o->lo, o->hi, &lv)) return 2; u->seeds = lv; return 0;
    case U_NUM:
        if (o->hi < o->lo ? cli_parse_float(flag, v, &dv) : (cli_parse_int(flag, v, o->lo, o->hi, &lv) || ((dv = (double)lv), 0))) return 2;
        if (!strcmp(o->name, "max-acc-drop") && !(dv >= 0 && dv <= 1)) return cli_usage_fail("update", "--max-acc-drop '%s': expected a fraction in [0, 1]", v);
        /* every step's own checks, here: a bad value is refused before the first step, not after training */
        if (strstr(o->name, "epochs") && !(dv > 0 && dv <= 1e6)) return cli_usage_fail("update", "--%s '%s': expected a number in (0, 1e6]", o->name, v);
        if (strstr(o->name, "lr") && !(dv > 0 && dv <= 10)) return cli_usage_fail("update", "--%s '%s': expected a number in (0, 10]", o->name, v);
        *(UpdateNum *)((char *)u + o->off) = (UpdateNum){dv, v};
        return 0;
    }
    return 0;
}

int cmd_update(int argc, char **argv) {
    struct option opts[N_UOPTS + 1];
    for (int i = 0; i < N_UOPTS; i++)
        opts[i] = (struct option){update_opts[i].name, update_opts[i].type != U_FLAG && update_opts[i].type != U_HELP, 0, 256 + i};
    memset(&opts[N_UOPTS], 0, sizeof opts[N_UOPTS]);
    UpdateSpec u;
    update_spec_default(&u);
    const char *methods = NULL;
    int c;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":", opts, NULL)) != -1) {
        if (c == ':') return cli_usage_fail("update", "option '%s' needs a value", argv[optind - 1]);
        if (c < 256) return cli_usage_fail("update", "unknown option '%s'", argv[optind - 1]);
        int rc = parse_one(&u, &update_opts[c - 256], optarg, &methods);
        if (rc) return rc < 0 ? 0 : rc;
    }
    if (optind != argc) return cli_usage_fail("update", "unexpected argument '%s'", argv[optind]);
    const char *missing = !u.old_model ? "--old-model" : !u.old_adapter ? "--old-adapter" : !u.new_model ? "--new-model"
                        : !u.train ? "--task-train" : !u.test ? "--task-test" : !u.out ? "--out" : NULL;
    if (missing) return cli_usage_fail("update", "%s is required", missing);
    TaskFormat f;
    if (u.format && task_format_from_name(u.format, &f) != 0) return cli_usage_fail("update", "--format %s", err_msg());
    if (update_read_kind(&u) != 0) return cli_fail(); /* the task's kind decides the defaults */
    int rc = update_methods_parse(&u, methods) != 0 ? cli_usage_fail("update", "%s", err_msg())
           : update_check_inputs(&u) != 0         ? cli_fail() /* every input file, before the first step */
                                                  : update_run(&u);
    update_spec_free(&u);
    return rc;
}
