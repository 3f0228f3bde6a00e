/* cli/cmd_train.c - `muscle pretrain` (full-parameter training) and `muscle finetune`
 * (LoRA adapters): the options into a TrainSpec, then the run (update/train_run.h). */
#include "cli.h"
#include "compat/compat_method.h"
#include "core/error.h"
#include "model/lora.h"
#include "update/train_run.h"

#include <getopt.h>
#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>


/* The options: one entry each, the value stored at `off` in TrainSpec as `type` says
 * (SPECIAL: parsed by parse_special). */
typedef enum { T_STR, T_INT, T_LONG, T_U64, T_POS, T_NONNEG, T_SPECIAL, T_SET1, T_SET0, T_HELP } OptType; /* from T_SET1: no value */
enum { FOR_PRE = 1, FOR_FINE = 2, FOR_BOTH = 3 };
typedef struct {
    const char *name;
    OptType type;
    size_t off;
    long lo, hi;
    int cmds;
} TrainOpt;

#define F(field) offsetof(TrainSpec, field)
static const TrainOpt train_opts[] = {
    {"data", T_STR, F(data.data), 0, 0, FOR_BOTH}, {"val", T_STR, F(data.val), 0, 0, FOR_BOTH},
    {"val-frac", T_SPECIAL, 0, 0, 0, FOR_BOTH}, {"data-format", T_SPECIAL, 0, 0, 0, FOR_BOTH},
    {"out", T_STR, F(out), 0, 0, FOR_BOTH}, {"model", T_STR, F(model), 0, 0, FOR_BOTH},
    {"tokenizer", T_STR, F(tokenizer), 0, 0, FOR_BOTH}, {"seq-len", T_LONG, F(data.seq_len), 1, 1 << 20, FOR_BOTH},
    {"steps", T_LONG, F(t.steps), 1, 1L << 40, FOR_BOTH}, {"epochs", T_POS, F(t.epochs), 0, 0, FOR_BOTH},
    {"batch", T_INT, F(t.batch), 1, 65536, FOR_BOTH}, {"grad-accum", T_INT, F(t.grad_accum), 1, 65536, FOR_BOTH},
    {"lr", T_POS, F(t.lr), 0, 0, FOR_BOTH}, {"min-lr", T_NONNEG, F(t.min_lr), 0, 0, FOR_BOTH},
    {"warmup", T_LONG, F(t.warmup), 0, 1L << 40, FOR_BOTH}, {"schedule", T_SPECIAL, 0, 0, 0, FOR_BOTH},
    {"weight-decay", T_NONNEG, F(t.adamw.weight_decay), 0, 0, FOR_BOTH}, {"clip", T_NONNEG, F(t.clip), 0, 0, FOR_BOTH},
    {"seed", T_U64, F(t.seed), 0, 0x7fffffffL, FOR_BOTH}, {"eval-every", T_LONG, F(t.eval_every), 0, 1L << 40, FOR_BOTH},
    {"val-max", T_LONG, F(t.val_max), 0, 1L << 40, FOR_BOTH}, {"save-every", T_LONG, F(t.save_every), 0, 1L << 40, FOR_BOTH},
    {"resume", T_SET1, F(t.resume), 0, 0, FOR_BOTH}, {"recompute", T_SET1, F(t.recompute), 0, 0, FOR_BOTH},
    {"quiet", T_SET1, F(t.quiet), 0, 0, FOR_BOTH}, {"help", T_HELP, 0, 0, 0, FOR_BOTH},
    /* pretrain */
    {"config", T_STR, F(shape.config), 0, 0, FOR_PRE}, {"dim", T_LONG, F(shape.dim), 1, 1 << 16, FOR_PRE},
    {"layers", T_LONG, F(shape.layers), 1, 1024, FOR_PRE}, {"heads", T_LONG, F(shape.heads), 1, 1024, FOR_PRE},
    {"kv-heads", T_LONG, F(shape.kv_heads), 1, 1024, FOR_PRE}, {"hidden", T_LONG, F(shape.hidden), 1, 1 << 20, FOR_PRE},
    {"vocab", T_LONG, F(shape.vocab), 1, 1 << 24, FOR_PRE}, {"untied", T_SET1, F(shape.untied), 0, 0, FOR_PRE},
    {"dtype", T_SPECIAL, 0, 0, 0, FOR_PRE}, {"bf16", T_SET1, F(t.bf16), 0, 0, FOR_PRE},
    /* finetune */
    {"adapter-init", T_STR, F(adapter.init), 0, 0, FOR_FINE}, {"rank", T_LONG, F(adapter.rank), 1, 65536, FOR_FINE},
    {"alpha", T_POS, F(adapter.alpha), 0, 0, FOR_FINE}, {"rslora", T_SET1, F(adapter.rslora), 0, 0, FOR_FINE},
    {"targets", T_SPECIAL, 0, 0, 0, FOR_FINE}, {"bf16", T_SET1, F(adapter.bf16), 0, 0, FOR_FINE},
    {"task", T_STR, F(data.task), 0, 0, FOR_FINE}, {"format", T_STR, F(data.task_format), 0, 0, FOR_FINE},
    {"prompt", T_STR, F(data.prompt), 0, 0, FOR_FINE}, {"answer", T_STR, F(data.answer), 0, 0, FOR_FINE},
    {"prompt-file", T_STR, F(data.prompt_file), 0, 0, FOR_FINE}, {"skip-bad", T_SET1, F(data.skip_bad), 0, 0, FOR_FINE},
    {"no-keep-best", T_SET0, F(adapter.keep_best), 0, 0, FOR_FINE}, {"compat", T_SPECIAL, 0, 0, 0, FOR_FINE},
    {"old-model", T_STR, F(compat.old_model), 0, 0, FOR_FINE}, {"old-adapter", T_STR, F(compat.old_adapter), 0, 0, FOR_FINE},
    {"level", T_SPECIAL, 0, 0, 0, FOR_FINE}, {"distill-tokens", T_SPECIAL, 0, 0, 0, FOR_FINE},
    {"temperature", T_POS, F(compat.cfg.temperature), 0, 0, FOR_FINE}, {"ce-weight", T_SPECIAL, 0, 0, 0, FOR_FINE},
    {"kd-weight", T_NONNEG, F(compat.cfg.kd_weight), 0, 0, FOR_FINE}, {"focal-alpha", T_NONNEG, F(compat.cfg.focal_alpha), 0, 0, FOR_FINE},
    {"focal-beta", T_NONNEG, F(compat.cfg.focal_beta), 0, 0, FOR_FINE}, {"elodi-margin", T_NONNEG, F(compat.cfg.elodi_margin), 0, 0, FOR_FINE},
    {"elodi-p", T_INT, F(compat.cfg.elodi_p), 1, 2, FOR_FINE}, {"transfer", T_STR, F(compat.transfer), 0, 0, FOR_FINE},
    {"teacher-topk", T_INT, F(compat.cfg.topk), 1, 1 << 24, FOR_FINE}, {"teacher-cache-mb", T_POS, F(compat.cfg.cache_mb), 0, 0, FOR_FINE},
    {"max-tokens", T_INT, F(compat.cfg.gen_max_tokens), 1, 1 << 20, FOR_FINE},
    {"no-repeat-ngram", T_INT, F(compat.cfg.gen_no_repeat_ngram), 0, 64, FOR_FINE},
    {"ensemble-adapters", T_STR, F(compat.ensemble), 0, 0, FOR_FINE}, {"mixture-weight", T_SPECIAL, 0, 0, 0, FOR_FINE},
    {"mixture-tol", T_NONNEG, F(compat.cfg.mixture_tol), 0, 0, FOR_FINE},
    {"vocab-map", T_SPECIAL, 0, 0, 0, FOR_FINE},
};
#undef F
#define N_OPTS (int)(sizeof train_opts / sizeof train_opts[0])

static int opt_index(const char *name) {
    for (int i = 0; i < N_OPTS; i++)
        if (!strcmp(train_opts[i].name, name)) return i;
    return -1;
}

/* Parses a positive (or non-negative) number option; prints the error. */
static int parse_pos(const char *opt, const char *s, double *out, int allow_zero) {
    if (cli_parse_float(opt, s, out)) return -1;
    if (!isfinite(*out) || (allow_zero ? *out < 0 : *out <= 0)) {
        fprintf(stderr, "muscle: error: %s '%s': expected a number %s 0\n", opt, s, allow_zero ? ">=" : ">");
        return -1;
    }
    return 0;
}

/* The options whose value is not a plain number or string: 0, or the exit code. */
static int parse_special(TrainSpec *s, const char *name, const char *v, const char *cmd) {
    double dv;
    if (!strcmp(name, "val-frac")) {
        if (cli_parse_float("--val-frac", v, &dv)) return 2;
        if (!(dv >= 0 && dv <= 0.5)) return fprintf(stderr, "muscle: error: --val-frac '%s': expected a number in 0..0.5\n", v), 2;
        s->data.val_frac = dv;
    } else if (!strcmp(name, "data-format")) {
        if (data_format_parse(v, &s->data.format)) return cli_usage_fail(cmd, "--data-format '%s': expected auto, text, lines or jsonl", v);
    } else if (!strcmp(name, "schedule")) {
        if (!strcmp(v, "cosine")) s->t.schedule = LR_COSINE;
        else if (!strcmp(v, "linear")) s->t.schedule = LR_LINEAR;
        else if (!strcmp(v, "constant")) s->t.schedule = LR_CONSTANT;
        else return cli_usage_fail(cmd, "--schedule '%s': expected cosine, linear or constant", v);
    } else if (!strcmp(name, "dtype")) {
        s->out_dtype = !strcmp(v, "f32") ? DT_F32 : !strcmp(v, "bf16") ? DT_BF16 : !strcmp(v, "f16") ? DT_F16 : DT_COUNT;
        if (s->out_dtype == DT_COUNT) return cli_usage_fail(cmd, "--dtype '%s': expected f32, bf16 or f16", v);
    } else if (!strcmp(name, "targets")) {
        if (lora_targets_parse(v, &s->adapter.targets)) return cli_usage_fail(cmd, "--targets '%s': %s", v, err_msg());
    } else if (!strcmp(name, "compat")) {
        if (compat_method_parse(v, &s->compat.cfg.method)) return cli_usage_fail(cmd, "--compat %s", err_msg());
        s->compat.on = 1;
    } else if (!strcmp(name, "level")) {
        if (compat_level_parse(v, &s->compat.cfg.level)) return cli_usage_fail(cmd, "--level %s", err_msg());
    } else if (!strcmp(name, "distill-tokens")) {
        if (strcmp(v, "all") && strcmp(v, "answer")) return cli_usage_fail(cmd, "--distill-tokens '%s': expected all or answer", v);
        s->compat.cfg.answer_only = !strcmp(v, "answer");
    } else if (!strcmp(name, "vocab-map")) {
        if (strcmp(v, "exact") && strcmp(v, "uld")) return cli_usage_fail(cmd, "--vocab-map '%s': expected exact or uld", v);
        s->compat.cfg.vocab_map = !strcmp(v, "uld");
    } else if (!strcmp(name, "mixture-weight")) {
        if (parse_pos("--mixture-weight", v, &s->compat.cfg.mixture_a, 0)) return 2;
        if (!(s->compat.cfg.mixture_a > 0 && s->compat.cfg.mixture_a < 1))
            return cli_usage_fail(cmd, "--mixture-weight '%s': expected a number in (0, 1)", v);
    } else if (!strcmp(name, "ce-weight")) {
        if (parse_pos("--ce-weight", v, &s->compat.cfg.ce_weight, 1)) return 2;
        if (s->compat.cfg.ce_weight > 1) return cli_usage_fail(cmd, "--ce-weight '%s': expected a number in 0..1", v);
    }
    return 0;
}

/* One option's value into the spec: 0, or the exit code (-1: help printed, exit 0). */
static int parse_one(TrainSpec *s, const TrainOpt *o, const char *v, const char *cmd) {
    char flag[64];
    snprintf(flag, sizeof flag, "--%s", o->name);
    char *at = (char *)s + o->off;
    long lv;
    switch (o->type) {
    case T_STR: *(const char **)at = v; return 0;
    case T_SET1: *(int *)at = 1; return 0;
    case T_SET0: *(int *)at = 0; return 0;
    case T_POS: case T_NONNEG: return parse_pos(flag, v, (double *)at, o->type == T_NONNEG) ? 2 : 0;
    case T_INT: case T_LONG: case T_U64:
        if (cli_parse_int(flag, v, o->lo, o->hi, &lv)) return 2;
        if (o->type == T_INT) *(int *)at = (int)lv;
        else if (o->type == T_LONG) *(long *)at = lv;
        else *(uint64_t *)at = (uint64_t)lv;
        return 0;
    case T_SPECIAL: return parse_special(s, o->name, v, cmd);
    case T_HELP: return train_help_print(s->kind == TRAIN_RUN_FINETUNE), -1;
    }
    return 0;
}

/* The checks that need to know which options were given (`seen`), then the spec's own
 * (train_spec_check); resolves the defaults that depend on other options. 0, or the exit code. */
static int check_spec(TrainSpec *s, const unsigned char *seen, const char *cmd) {
#define SEEN(name) seen[opt_index(name)]
    if (train_spec_check(s) != 0) return cli_usage_fail(cmd, "%s", err_msg());
    if (SEEN("steps") && SEEN("epochs")) return cli_usage_fail(cmd, "give --steps or --epochs, not both");
    if (s->data.val && SEEN("val-frac")) return cli_usage_fail(cmd, "give --val or --val-frac, not both");
    if (s->kind == TRAIN_RUN_PRETRAIN) {
        if (!SEEN("min-lr")) s->t.min_lr = s->t.lr / 10;
        return 0;
    }
    if (s->adapter.init && (SEEN("rank") || SEEN("alpha") || SEEN("targets") || s->adapter.rslora))
        return cli_usage_fail(cmd, "--adapter-init brings its own rank, alpha and targets: drop --rank, --alpha, --targets and --rslora");
    if ((SEEN("ensemble-adapters") || SEEN("mixture-weight") || SEEN("mixture-tol")) &&
        !(s->compat.on && (compat_method_def(s->compat.cfg.method)->teachers & (COMPAT_TEACH_ENSEMBLE | COMPAT_TEACH_MIXTURE))))
        return cli_usage_fail(cmd, "--ensemble-adapters, --mixture-weight and --mixture-tol go with --compat ensemble or mixture");
    if ((SEEN("max-tokens") || SEEN("no-repeat-ngram")) && !s->compat.on)
        return cli_usage_fail(cmd, "--old-model, --old-adapter, --transfer, --max-tokens and --no-repeat-ngram go with --compat");
    if ((SEEN("max-tokens") || SEEN("no-repeat-ngram")) && s->compat.cfg.level != COMPAT_LEVEL_SEQUENCE)
        return cli_usage_fail(cmd, "--max-tokens and --no-repeat-ngram go with --level sequence");
    /* test knobs of the choice level (docs/compat.md), read here, not in the library */
    const char *plain = getenv("MUSCLE_COMPAT_UNPACKED"), *cap = getenv("MUSCLE_COMPAT_PACK_MAX");
    s->compat.choice_rows_plain = plain && !strcmp(plain, "1");
    s->compat.pack_max = cap && *cap ? (int)strtol(cap, NULL, 10) : 0;
    const char *cov = getenv("MUSCLE_XTOK_MIN_COVERAGE");
    s->compat.min_coverage = cov && *cov ? strtod(cov, NULL) : 0.0;
    return 0;
#undef SEEN
}

static int train_command(int argc, char **argv, TrainRunKind kind) {
    const char *cmd = kind == TRAIN_RUN_FINETUNE ? "finetune" : "pretrain";
    TrainSpec s;
    train_spec_default(&s, kind);
    struct option opts[N_OPTS + 1];
    unsigned char seen[N_OPTS];
    int n = 0, c, want = kind == TRAIN_RUN_FINETUNE ? FOR_FINE : FOR_PRE;
    memset(seen, 0, sizeof seen);
    for (int i = 0; i < N_OPTS; i++)
        if (train_opts[i].cmds & want)
            opts[n++] = (struct option){train_opts[i].name, train_opts[i].type < T_SET1, 0, 256 + i};
    memset(&opts[n], 0, sizeof opts[n]);
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":", opts, NULL)) != -1) {
        if (c == ':') return cli_usage_fail(cmd, "option '%s' needs a value", argv[optind - 1]);
        if (c < 256) return cli_usage_fail(cmd, "unknown option '%s'", argv[optind - 1]);
        int rc = parse_one(&s, &train_opts[c - 256], optarg, cmd);
        if (rc) return rc < 0 ? 0 : rc;
        seen[c - 256] = 1;
    }
    if (optind != argc) return cli_usage_fail(cmd, "unexpected argument '%s'", argv[optind]);
    int rc = check_spec(&s, seen, cmd);
    if (rc) return rc;
    rc = train_run(&s);
    return rc > 0 ? 128 + rc : rc < 0 ? cli_fail() : 0;
}

int cmd_pretrain(int argc, char **argv) { return train_command(argc, argv, TRAIN_RUN_PRETRAIN); }
int cmd_finetune(int argc, char **argv) { return train_command(argc, argv, TRAIN_RUN_FINETUNE); }
