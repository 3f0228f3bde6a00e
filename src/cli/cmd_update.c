/* cli/cmd_update.c - `muscle update`: the whole path of a base-model update for one task.
 *
 * Steps, each a run of this program's own commands in a child process, each skipped
 * when its output already exists (so an interrupted update resumes where it stopped;
 * an interrupted training continues from its checkpoint):
 *   1. the new task adapter(s) A2 on M2, one per seed (unless --new-adapter gives seed 1's)
 *   2. per method and seed k: a compatibility adapter from A2 seed k (finetune --compat)
 *   3. eval of M1, of M2 per seed and of every method per seed on the test set
 *   4. manifest.json and `muscle report` (report.html, report.md, report.json)
 * Layout of RUN_DIR: update.json (settings), adapters/<name>-s<k>/, preds/<name>-s<k>.jsonl,
 * logs/<step>.log (the children's stderr when --quiet), manifest.json, report.*.
 *
 * On N MPI ranks (docs/distributed.md) each rank runs its share of the steps of a phase
 * (1, 2, 3 above: step i of the run is rank i mod N's) as the same single-process child
 * commands (MUSCLE_NO_MPI=1: a child never joins the MPI job, and the parent never
 * forks an MPI process), the ranks wait for each other at the end of each phase (an
 * MPI reduction of the exit codes: a failed step stops every rank), and rank 0 writes
 * update.json, the manifest and the report. RUN_DIR must be on a file system every
 * rank sees. The outputs are those of a one-rank run: the same commands, the same bits.
 */
#include "cli.h"
#include "core/dist.h"
#include "core/error.h"
#include "core/file.h"
#include "task/task.h"

#include <cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

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
    "                        muscle for generation); each a preset or NAME=FINETUNE-ARGS:\n"
    "                          muscle            --compat student-wrong (the paper's)\n"
    "                          muscle-answer     the same on answer tokens only\n"
    "                          choice            student-wrong over the choices, + 50% CE\n"
    "                          seqkd             generation: student-wrong over M1's greedy\n"
    "                                            outputs (--level sequence), + 0.5 x CE\n"
    "                          old-correct, distill (mask none), token-likelihood,\n"
    "                          sequence-likelihood, focal, elodi, focal-choice, elodi-choice\n"
    "                          ce                more cross-entropy training only (a control)\n"
    "  --seeds K             adapters and compatibility adapters for seeds 1..K (default 1);\n"
    "                        K >= 2 also gives the noise floor (NFR between two M2 seeds)\n"
    "  --transfer FILE       unlabelled task inputs for the distillation terms\n"
    "training (every adapter): --epochs E (default 3), --lr X (default 1e-3), --batch B\n"
    "  (default 8), --grad-accum G (default 1), --seq-len T, --rank R (default 8), --bf16\n"
    "  --compat-epochs E     epochs of compatibility training (default 1)\n"
    "  --compat-lr X         its learning rate (default: --lr)\n"
    "  --format NAME, --prompt T, --answer T, --prompt-file F: as for muscle eval\n"
    "evaluation: --max-tokens N (generation, default 32), --limit N (first N test instances)\n"
    "report: --bootstrap B (default 1000), --max-acc-drop X (default 0.005)\n"
    "  --quiet               no progress; the steps' messages go to RUN_DIR/logs/\n";

typedef struct {
    const char *name;
    const char *args; /* finetune arguments, space-separated; NULL = plain cross-entropy */
    int mc_only; /* 1: multiple choice only; -1: generation only */
} Preset;

static const Preset presets[] = {
    {"muscle", "--compat student-wrong", 0},
    {"muscle-answer", "--compat student-wrong --distill-tokens answer", 0},
    {"choice", "--compat student-wrong --level choice --ce-weight 0.5", 1},
    {"old-correct", "--compat old-correct", 0},
    {"distill", "--compat none", 0},
    {"token-likelihood", "--compat token-likelihood --ce-weight 0.5", 0},
    {"sequence-likelihood", "--compat sequence-likelihood --ce-weight 0.5", 0},
    {"focal", "--compat focal", 0},
    {"elodi", "--compat elodi", 0},
    {"focal-choice", "--compat focal --level choice", 1},
    {"elodi-choice", "--compat elodi --level choice", 1},
    {"seqkd", "--compat student-wrong --level sequence --ce-weight 0.5", -1},
    {"ce", NULL, 0},
};

typedef struct {
    char *name;
    char *args;
} Method;

typedef struct {
    const char *old_model, *old_adapter, *new_model, *new_adapter, *train, *val, *test, *out, *transfer;
    const char *methods_arg, *format, *prompt, *answer, *prompt_file;
    const char *epochs, *lr, *batch, *accum, *seq_len, *rank, *compat_epochs, *compat_lr, *max_tokens, *limit;
    const char *bootstrap, *max_acc_drop;
    long seeds;
    int bf16, quiet;
    TaskKind kind;
    Method *methods;
    int n_methods;
    int step, n_steps;
} Update;

/* ------------------------------------------------------------------------- */
/* argument lists                                                             */

typedef struct {
    char **v;
    int n, cap;
} Argv;

static void av_add(Argv *a, const char *s) {
    if (a->n + 2 > a->cap) {
        a->cap = a->cap ? a->cap * 2 : 32;
        char **g = realloc(a->v, (size_t)a->cap * sizeof *g);
        if (!g) abort(); /* a few hundred bytes: out of memory here cannot be recovered from */
        a->v = g;
    }
    a->v[a->n++] = strdup(s);
    a->v[a->n] = NULL;
}

static void av_opt(Argv *a, const char *opt, const char *val) {
    if (!val) return;
    av_add(a, opt);
    av_add(a, val);
}

/* Adds the space-separated words of s. */
static void av_words(Argv *a, const char *s) {
    char *c = strdup(s), *save = NULL;
    for (char *w = strtok_r(c, " ", &save); w; w = strtok_r(NULL, " ", &save)) av_add(a, w);
    free(c);
}

static void av_free(Argv *a) {
    for (int i = 0; i < a->n; i++) free(a->v[i]);
    free(a->v);
    memset(a, 0, sizeof *a);
}

/* ------------------------------------------------------------------------- */
/* running a step                                                             */

static char *pathf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static char *pathf(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    char *s = NULL;
    if (vasprintf(&s, fmt, ap) < 0) s = NULL;
    va_end(ap);
    return s;
}

static int exists(const char *p) {
    struct stat st;
    return stat(p, &st) == 0;
}

/* Runs `muscle argv...` in a child; stdout to out_path when given; stderr to the log
 * log_name when quiet (and log_name is not NULL). Returns 0, or the exit code to stop with (after printing why). */
static int run_step(Update *u, const char *what, Argv *a, const char *out_path, const char *log_name) {
    u->step++;
    fprintf(stderr, "muscle update: [%d/%d] %s\n", u->step, u->n_steps, what);
    fflush(stderr);
    fflush(stdout); /* the child must not print what the parent buffered */
    char *log = u->quiet && log_name ? pathf("%s/logs/%s.log", u->out, log_name) : NULL;
    pid_t pid = fork();
    if (pid < 0) {
        free(log);
        err_set("cannot start a process: %s", strerror(errno));
        return cli_fail();
    }
    if (pid == 0) {
        if (out_path) {
            int fd = open(out_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
            if (fd < 0 || dup2(fd, 1) < 0) _exit(126);
            close(fd);
        }
        if (log) {
            int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0644);
            if (fd < 0 || dup2(fd, 2) < 0) _exit(126);
            close(fd);
        }
        execv("/proc/self/exe", a->v);
        _exit(127);
    }
    int st = 0;
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {
    }
    int code = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + (WIFSIGNALED(st) ? WTERMSIG(st) : 0);
    if (code != 0) {
        if (code == 130 || code == 143)
            fprintf(stderr, "muscle update: stopped during step %d (%s); run the same command again to resume\n", u->step, what);
        else
            fprintf(stderr, "muscle: error: update step %d (%s) failed with exit code %d%s%s\n", u->step, what, code,
                    log ? "; see " : "", log ? log : "");
        if (out_path) unlink(out_path); /* no half-written output */
    }
    free(log);
    return code;
}

static void common_train_args(Update *u, Argv *a) {
    av_opt(a, "--epochs", u->epochs);
    av_opt(a, "--lr", u->lr);
    av_opt(a, "--batch", u->batch);
    av_opt(a, "--grad-accum", u->accum);
    av_opt(a, "--seq-len", u->seq_len);
    av_opt(a, "--format", u->format);
    av_opt(a, "--prompt", u->prompt);
    av_opt(a, "--answer", u->answer);
    av_opt(a, "--prompt-file", u->prompt_file);
    av_opt(a, "--task", u->train);
    av_opt(a, "--val", u->val);
    if (u->bf16) av_add(a, "--bf16");
    if (u->quiet) av_add(a, "--quiet");
}

/* MPI ranks: step u->step (0-based, the next one) is rank (step mod N)'s; the others skip it. */
static int other_ranks_step(Update *u) {
    if (u->step % dist_size() == dist_rank()) return 0;
    u->step++;
    return 1;
}

/* MPI ranks: the end of a phase; every rank goes on with the worst exit code of them all. */
static int phase_end(int rc) {
    if (!dist_active()) return rc;
    int worst = rc;
    if (dist_allreduce_max_int(&worst) != 0) return cli_fail();
    if (worst != 0 && rc == 0)
        fprintf(stderr, "muscle update: rank %d: stopping: a step on another rank ended with exit code %d\n", dist_rank(), worst);
    return worst;
}

/* Trains into dir unless its adapter is there; resumes from its checkpoint. */
static int train_step(Update *u, const char *what, Argv *a, const char *dir, const char *log_name) {
    if (other_ranks_step(u)) return 0;
    char *done = pathf("%s/adapter_model.safetensors", dir), *ck = pathf("%s/checkpoint/state.safetensors", dir);
    int rc = 0;
    if (exists(done)) {
        u->step++;
        if (!u->quiet) fprintf(stderr, "muscle update: [%d/%d] %s: done before\n", u->step, u->n_steps, what);
    } else {
        if (exists(ck)) av_add(a, "--resume");
        rc = run_step(u, what, a, NULL, log_name);
    }
    free(done);
    free(ck);
    return rc;
}

static int eval_step(Update *u, const char *what, const char *model, const char *adapter, const char *name) {
    if (other_ranks_step(u)) return 0;
    char *preds = pathf("%s/preds/%s.jsonl", u->out, name), *sum = pathf("%s/preds/%s.eval.json", u->out, name);
    int rc = 0;
    if (exists(preds) && exists(sum)) {
        u->step++;
        if (!u->quiet) fprintf(stderr, "muscle update: [%d/%d] %s: done before\n", u->step, u->n_steps, what);
    } else {
        Argv a = {0};
        av_add(&a, "muscle");
        av_add(&a, "eval");
        av_opt(&a, "--model", model);
        av_opt(&a, "--adapter", adapter);
        av_opt(&a, "--task", u->test);
        av_opt(&a, "--out", preds);
        av_opt(&a, "--format", u->format);
        av_opt(&a, "--prompt", u->prompt);
        av_opt(&a, "--answer", u->answer);
        av_opt(&a, "--prompt-file", u->prompt_file);
        av_opt(&a, "--limit", u->limit);
        if (u->kind == TASK_GEN) {
            av_opt(&a, "--max-tokens", u->max_tokens ? u->max_tokens : "32");
            av_opt(&a, "--no-repeat-ngram", "2"); /* the paper's decoding */
        }
        if (u->bf16) av_add(&a, "--bf16");
        if (u->quiet) av_add(&a, "--quiet");
        char *tmp = pathf("%s.tmp", sum);
        rc = run_step(u, what, &a, tmp, name);
        if (rc == 0 && rename(tmp, sum) != 0) {
            err_set("%s: cannot rename into place: %s", sum, strerror(errno));
            rc = cli_fail();
        }
        free(tmp);
        av_free(&a);
    }
    free(preds);
    free(sum);
    return rc;
}

/* ------------------------------------------------------------------------- */
/* settings and methods                                                       */

static int parse_methods(Update *u) {
    const char *list = u->methods_arg ? u->methods_arg : u->kind == TASK_MC ? "muscle,choice" : "muscle";
    char *c = strdup(list), *save = NULL;
    for (char *w = strtok_r(c, ",", &save); w; w = strtok_r(NULL, ",", &save)) {
        while (*w == ' ') w++;
        if (!*w) continue;
        Method m = {0};
        char *eq = strchr(w, '=');
        if (eq) {
            *eq = 0;
            m.name = strdup(w);
            m.args = strdup(eq + 1);
        } else {
            const Preset *p = NULL;
            for (size_t i = 0; i < sizeof presets / sizeof presets[0]; i++)
                if (!strcmp(presets[i].name, w)) p = &presets[i];
            if (!p) {
                int rc = cli_usage_fail("update", "--methods: unknown method '%s' (presets: muscle, muscle-answer, choice, old-correct, distill, "
                                     "token-likelihood, sequence-likelihood, focal, elodi, focal-choice, elodi-choice, seqkd, ce; or NAME=ARGS)", w);
                free(c);
                return rc;
            }
            if (p->mc_only > 0 && u->kind != TASK_MC) {
                fprintf(stderr, "muscle update: method '%s' is for multiple choice; %s is a generation task: skipped\n", w, u->train);
                continue;
            }
            if (p->mc_only < 0 && u->kind != TASK_GEN) {
                fprintf(stderr, "muscle update: method '%s' is for generation; %s is a multiple-choice task: skipped\n", w, u->train);
                continue;
            }
            m.name = strdup(p->name);
            m.args = p->args ? strdup(p->args) : NULL;
        }
        for (const char *q = m.name; *q; q++)
            if (!((*q >= 'a' && *q <= 'z') || (*q >= 'A' && *q <= 'Z') || (*q >= '0' && *q <= '9') || *q == '-' || *q == '_')) {
                int rc = cli_usage_fail("update", "--methods: name '%s': use letters, digits, '-' and '_'", m.name);
                free(m.name);
                free(m.args);
                free(c);
                return rc;
            }
        for (int i = 0; i < u->n_methods; i++)
            if (!strcmp(u->methods[i].name, m.name)) {
                int rc = cli_usage_fail("update", "--methods: '%s' is named twice", m.name);
                free(m.name);
                free(m.args);
                free(c);
                return rc;
            }
        Method *g = realloc(u->methods, (size_t)(u->n_methods + 1) * sizeof *g);
        if (!g) abort();
        u->methods = g;
        u->methods[u->n_methods++] = m;
    }
    free(c);
    if (u->n_methods == 0) return cli_usage_fail("update", "--methods: no method to run");
    return 0;
}

/* The settings that define the run (a resumed run must have the same). */
static cJSON *settings_json(const Update *u) {
    cJSON *j = cJSON_CreateObject();
#define S(k, v) if (v) cJSON_AddStringToObject(j, k, v)
    S("old_model", u->old_model); S("old_adapter", u->old_adapter); S("new_model", u->new_model);
    S("new_adapter", u->new_adapter); S("task_train", u->train); S("task_val", u->val); S("task_test", u->test);
    S("transfer", u->transfer); S("format", u->format); S("prompt", u->prompt); S("answer", u->answer);
    S("prompt_file", u->prompt_file); S("epochs", u->epochs); S("lr", u->lr); S("batch", u->batch);
    S("grad_accum", u->accum); S("seq_len", u->seq_len); S("rank", u->rank); S("compat_epochs", u->compat_epochs);
    S("compat_lr", u->compat_lr); S("max_tokens", u->max_tokens); S("limit", u->limit);
#undef S
    cJSON_AddNumberToObject(j, "seeds", (double)u->seeds);
    cJSON_AddBoolToObject(j, "bf16", u->bf16);
    cJSON *m = cJSON_AddObjectToObject(j, "methods");
    for (int i = 0; i < u->n_methods; i++)
        cJSON_AddStringToObject(m, u->methods[i].name, u->methods[i].args ? u->methods[i].args : "(cross-entropy)");
    return j;
}

/* Writes j as formatted JSON + newline to path, atomically. */
static int write_json(const char *path, const cJSON *j) {
    char *text = cJSON_Print(j);
    if (!text) return err_set("out of memory");
    size_t n = strlen(text);
    text[n] = '\n'; /* cJSON's buffer holds the NUL here: write it as the final newline */
    int rc = file_write_all_atomic(path, text, n + 1);
    free(text);
    return rc;
}

/* A run folder is resumed only with the same settings, except that seeds and methods
 * may be added (a method already there must keep its arguments): update.json keeps the
 * union of the methods seen and the largest number of seeds. */
static int check_settings(const Update *u) {
    char *path = pathf("%s/update.json", u->out);
    cJSON *now = settings_json(u);
    int rc = 0;
    if (exists(path)) {
        size_t n;
        char *old = file_read_all(path, &n, 1 << 20);
        cJSON *before = old ? cJSON_Parse(old) : NULL;
        if (!before || !cJSON_IsObject(before)) {
            rc = err_set("%s: not a JSON settings file of muscle update; use another --out", path);
        } else {
            const char *diff = NULL;
            for (cJSON *it = now->child; it && !diff; it = it->next) {
                if (!strcmp(it->string, "seeds") || !strcmp(it->string, "methods")) continue;
                cJSON *b = cJSON_GetObjectItemCaseSensitive(before, it->string);
                if (!b || !cJSON_Compare(b, it, 1)) diff = it->string;
            }
            for (cJSON *it = before->child; it && !diff; it = it->next)
                if (!cJSON_GetObjectItemCaseSensitive(now, it->string)) diff = it->string;
            cJSON *mb = cJSON_GetObjectItemCaseSensitive(before, "methods"), *mn = cJSON_GetObjectItemCaseSensitive(now, "methods");
            static char mdiff[160];
            for (cJSON *it = mn ? mn->child : NULL; it && !diff; it = it->next) {
                cJSON *b = mb ? cJSON_GetObjectItemCaseSensitive(mb, it->string) : NULL;
                if (b && !cJSON_Compare(b, it, 1)) {
                    snprintf(mdiff, sizeof mdiff, "method %s", it->string);
                    diff = mdiff;
                }
            }
            if (diff) {
                rc = err_set("%s holds a run with other settings (\"%s\" differs): give the same options to resume it (seeds and methods may be added), or another --out", u->out, diff);
            } else { /* the union, written back */
                for (cJSON *it = mb ? mb->child : NULL; it; it = it->next)
                    if (!cJSON_GetObjectItemCaseSensitive(mn, it->string)) cJSON_AddItemToObject(mn, it->string, cJSON_Duplicate(it, 1));
                cJSON *sb = cJSON_GetObjectItemCaseSensitive(before, "seeds"), *sn = cJSON_GetObjectItemCaseSensitive(now, "seeds");
                if (cJSON_IsNumber(sb) && sb->valuedouble > sn->valuedouble) cJSON_SetNumberValue(sn, sb->valuedouble);
            }
        }
        cJSON_Delete(before);
        free(old);
    }
    if (rc == 0) rc = write_json(path, now);
    free(path);
    cJSON_Delete(now);
    return rc;
}

static int write_manifest(const Update *u) {
    cJSON *j = cJSON_CreateObject(), *tasks = cJSON_AddArrayToObject(j, "tasks"), *t = cJSON_CreateObject();
    char *title = pathf("muscle update: %s \u2192 %s on %s", u->old_model, u->new_model, u->test);
    cJSON_AddStringToObject(j, "title", title ? title : "muscle update");
    free(title);
    const char *base = strrchr(u->test, '/');
    cJSON_AddStringToObject(t, "name", base ? base + 1 : u->test);
    cJSON_AddStringToObject(t, "kind", u->kind == TASK_MC ? "mc" : "gen");
    cJSON_AddStringToObject(t, "old", "preds/old.jsonl");
    cJSON *nw = cJSON_AddObjectToObject(t, "new");
    cJSON_AddStringToObject(nw, "name", "M2");
    cJSON *np = cJSON_AddArrayToObject(nw, "preds");
    for (long k = 1; k <= u->seeds; k++) {
        char *p = pathf("preds/new-s%ld.jsonl", k);
        cJSON_AddItemToArray(np, cJSON_CreateString(p));
        free(p);
    }
    cJSON *ms = cJSON_AddArrayToObject(t, "methods");
    for (int i = 0; i < u->n_methods; i++) {
        cJSON *m = cJSON_CreateObject();
        cJSON_AddStringToObject(m, "name", u->methods[i].name);
        cJSON_AddStringToObject(m, "settings", u->methods[i].args ? u->methods[i].args : "cross-entropy only");
        cJSON *mp = cJSON_AddArrayToObject(m, "preds");
        for (long k = 1; k <= u->seeds; k++) {
            char *p = pathf("preds/%s-s%ld.jsonl", u->methods[i].name, k);
            cJSON_AddItemToArray(mp, cJSON_CreateString(p));
            free(p);
        }
        cJSON_AddItemToArray(ms, m);
    }
    cJSON_AddItemToArray(tasks, t);
    char *path = pathf("%s/manifest.json", u->out);
    int rc = path ? write_json(path, j) : err_set("out of memory");
    free(path);
    cJSON_Delete(j);
    return rc;
}

/* ------------------------------------------------------------------------- */
/* the command                                                                */

enum {
    U_OLDM = 300, U_OLDA, U_NEWM, U_NEWA, U_TRAIN, U_VAL, U_TEST, U_OUT, U_METHODS, U_SEEDS, U_TRANSFER, U_EPOCHS, U_LR,
    U_BATCH, U_ACCUM, U_SEQ, U_RANK, U_BF16, U_CEPOCHS, U_CLR, U_FORMAT, U_PROMPT, U_ANSWER, U_PFILE, U_MAXTOK,
    U_LIMIT, U_BOOT, U_MAXDROP, U_QUIET, U_HELP
};

static int run_update(Update *u) {
    char *dirs[3] = {pathf("%s/adapters", u->out), pathf("%s/preds", u->out), pathf("%s/logs", u->out)};
    int rc = 0;
    if (file_mkdirs(u->out) != 0) rc = cli_fail();
    for (int i = 0; rc == 0 && i < 3; i++)
        if (file_mkdirs(dirs[i]) != 0) rc = cli_fail();
    for (int i = 0; i < 3; i++) free(dirs[i]);
    if (rc) return rc;
    if (dist_rank() == 0 && check_settings(u) != 0) rc = cli_fail(); /* only rank 0 writes files */
    if ((rc = phase_end(rc)) != 0) return rc;
    setenv("MUSCLE_NO_MPI", "1", 1); /* the steps' children run as plain single processes */
    long K = u->seeds;
    u->n_steps = (int)(K - (u->new_adapter ? 1 : 0) + K * u->n_methods + 1 + K + K * u->n_methods + 1);
    u->step = 0;
    char seed[32], *what = NULL;
    /* 1. new task adapters */
    for (long k = 1; rc == 0 && k <= K; k++) {
        if (k == 1 && u->new_adapter) continue;
        char *dir = pathf("%s/adapters/new-s%ld", u->out, k), *log = pathf("train-new-s%ld", k);
        Argv a = {0};
        av_add(&a, "muscle");
        av_add(&a, "finetune");
        av_opt(&a, "--model", u->new_model);
        av_opt(&a, "--out", dir);
        av_opt(&a, "--rank", u->rank);
        snprintf(seed, sizeof seed, "%ld", k);
        av_opt(&a, "--seed", seed);
        common_train_args(u, &a);
        what = pathf("new task adapter on %s, seed %ld", u->new_model, k);
        rc = train_step(u, what, &a, dir, log);
        free(what);
        av_free(&a);
        free(dir);
        free(log);
    }
    rc = phase_end(rc);
    /* 2. compatibility adapters */
    for (int i = 0; rc == 0 && i < u->n_methods; i++)
        for (long k = 1; rc == 0 && k <= K; k++) {
            const Method *m = &u->methods[i];
            char *dir = pathf("%s/adapters/%s-s%ld", u->out, m->name, k), *log = pathf("train-%s-s%ld", m->name, k);
            char *init = k == 1 && u->new_adapter ? strdup(u->new_adapter) : pathf("%s/adapters/new-s%ld", u->out, k);
            Argv a = {0};
            av_add(&a, "muscle");
            av_add(&a, "finetune");
            av_opt(&a, "--model", u->new_model);
            av_opt(&a, "--out", dir);
            av_opt(&a, "--adapter-init", init);
            snprintf(seed, sizeof seed, "%ld", k);
            av_opt(&a, "--seed", seed);
            common_train_args(u, &a);
            av_opt(&a, "--epochs", u->compat_epochs ? u->compat_epochs : "1"); /* the last --epochs wins */
            av_opt(&a, "--lr", u->compat_lr);
            if (m->args) {
                if (u->kind == TASK_GEN && strstr(m->args, "--level sequence")) { /* the outputs decoded as the evaluation decodes */
                    av_opt(&a, "--max-tokens", u->max_tokens ? u->max_tokens : "32");
                    av_opt(&a, "--no-repeat-ngram", "2");
                }
                av_words(&a, m->args);
                av_opt(&a, "--old-model", u->old_model);
                av_opt(&a, "--old-adapter", u->old_adapter);
                av_opt(&a, "--transfer", u->transfer);
            }
            what = pathf("compatibility adapter '%s', seed %ld", m->name, k);
            rc = train_step(u, what, &a, dir, log);
            free(what);
            av_free(&a);
            free(dir);
            free(log);
            free(init);
        }
    rc = phase_end(rc);
    /* 3. evaluations */
    if (rc == 0) rc = eval_step(u, "eval of the old task model M1", u->old_model, u->old_adapter, "old");
    for (long k = 1; rc == 0 && k <= K; k++) {
        char *ad = k == 1 && u->new_adapter ? strdup(u->new_adapter) : pathf("%s/adapters/new-s%ld", u->out, k);
        char *name = pathf("new-s%ld", k);
        what = pathf("eval of the new task model M2, seed %ld", k);
        rc = eval_step(u, what, u->new_model, ad, name);
        free(what);
        free(ad);
        free(name);
    }
    for (int i = 0; rc == 0 && i < u->n_methods; i++)
        for (long k = 1; rc == 0 && k <= K; k++) {
            char *ad = pathf("%s/adapters/%s-s%ld", u->out, u->methods[i].name, k), *name = pathf("%s-s%ld", u->methods[i].name, k);
            what = pathf("eval of '%s', seed %ld", u->methods[i].name, k);
            rc = eval_step(u, what, u->new_model, ad, name);
            free(what);
            free(ad);
            free(name);
        }
    rc = phase_end(rc);
    /* 4. the report (rank 0) */
    if (dist_rank() > 0) return rc;
    if (rc == 0 && write_manifest(u) != 0) rc = cli_fail();
    if (rc == 0) {
        char *man = pathf("%s/manifest.json", u->out);
        Argv a = {0};
        av_add(&a, "muscle");
        av_add(&a, "report");
        av_add(&a, man);
        av_opt(&a, "--out", u->out);
        av_opt(&a, "--bootstrap", u->bootstrap);
        av_opt(&a, "--max-acc-drop", u->max_acc_drop);
        rc = run_step(u, "report", &a, NULL, NULL);
        if (rc == 0) fprintf(stderr, "muscle update: report written to %s/report.html (and report.md, report.json)\n", u->out);
        av_free(&a);
        free(man);
    }
    return rc;
}

int cmd_update(int argc, char **argv) {
    static const struct option opts[] = {
        {"old-model", 1, 0, U_OLDM}, {"old-adapter", 1, 0, U_OLDA}, {"new-model", 1, 0, U_NEWM},
        {"new-adapter", 1, 0, U_NEWA}, {"task-train", 1, 0, U_TRAIN}, {"task-val", 1, 0, U_VAL},
        {"task-test", 1, 0, U_TEST}, {"out", 1, 0, U_OUT}, {"methods", 1, 0, U_METHODS}, {"seeds", 1, 0, U_SEEDS},
        {"transfer", 1, 0, U_TRANSFER}, {"epochs", 1, 0, U_EPOCHS}, {"lr", 1, 0, U_LR}, {"batch", 1, 0, U_BATCH},
        {"grad-accum", 1, 0, U_ACCUM}, {"seq-len", 1, 0, U_SEQ}, {"rank", 1, 0, U_RANK}, {"bf16", 0, 0, U_BF16},
        {"compat-epochs", 1, 0, U_CEPOCHS}, {"compat-lr", 1, 0, U_CLR}, {"format", 1, 0, U_FORMAT},
        {"prompt", 1, 0, U_PROMPT}, {"answer", 1, 0, U_ANSWER}, {"prompt-file", 1, 0, U_PFILE},
        {"max-tokens", 1, 0, U_MAXTOK}, {"limit", 1, 0, U_LIMIT}, {"bootstrap", 1, 0, U_BOOT},
        {"max-acc-drop", 1, 0, U_MAXDROP}, {"quiet", 0, 0, U_QUIET}, {"help", 0, 0, U_HELP}, {0, 0, 0, 0}};
    Update u;
    memset(&u, 0, sizeof u);
    u.seeds = 1;
    u.epochs = "3";
    u.lr = "1e-3";
    u.batch = "8";
    u.accum = "1";
    u.rank = "8";
    int c;
    long lv;
    double dv;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":", opts, NULL)) != -1) {
        switch (c) {
        case U_OLDM: u.old_model = optarg; break;
        case U_OLDA: u.old_adapter = optarg; break;
        case U_NEWM: u.new_model = optarg; break;
        case U_NEWA: u.new_adapter = optarg; break;
        case U_TRAIN: u.train = optarg; break;
        case U_VAL: u.val = optarg; break;
        case U_TEST: u.test = optarg; break;
        case U_OUT: u.out = optarg; break;
        case U_METHODS: u.methods_arg = optarg; break;
        case U_SEEDS: if (cli_parse_int("--seeds", optarg, 1, 100, &lv)) return 2; u.seeds = lv; break;
        case U_TRANSFER: u.transfer = optarg; break;
        case U_EPOCHS: if (cli_parse_float("--epochs", optarg, &dv)) return 2; u.epochs = optarg; break;
        case U_LR: if (cli_parse_float("--lr", optarg, &dv)) return 2; u.lr = optarg; break;
        case U_BATCH: if (cli_parse_int("--batch", optarg, 1, 65536, &lv)) return 2; u.batch = optarg; break;
        case U_ACCUM: if (cli_parse_int("--grad-accum", optarg, 1, 65536, &lv)) return 2; u.accum = optarg; break;
        case U_SEQ: if (cli_parse_int("--seq-len", optarg, 1, 1 << 20, &lv)) return 2; u.seq_len = optarg; break;
        case U_RANK: if (cli_parse_int("--rank", optarg, 1, 65536, &lv)) return 2; u.rank = optarg; break;
        case U_BF16: u.bf16 = 1; break;
        case U_CEPOCHS: if (cli_parse_float("--compat-epochs", optarg, &dv)) return 2; u.compat_epochs = optarg; break;
        case U_CLR: if (cli_parse_float("--compat-lr", optarg, &dv)) return 2; u.compat_lr = optarg; break;
        case U_FORMAT: u.format = optarg; break;
        case U_PROMPT: u.prompt = optarg; break;
        case U_ANSWER: u.answer = optarg; break;
        case U_PFILE: u.prompt_file = optarg; break;
        case U_MAXTOK: if (cli_parse_int("--max-tokens", optarg, 1, 1 << 20, &lv)) return 2; u.max_tokens = optarg; break;
        case U_LIMIT: if (cli_parse_int("--limit", optarg, 1, 1L << 40, &lv)) return 2; u.limit = optarg; break;
        case U_BOOT: if (cli_parse_int("--bootstrap", optarg, 0, 1000000, &lv)) return 2; u.bootstrap = optarg; break;
        case U_MAXDROP: if (cli_parse_float("--max-acc-drop", optarg, &dv)) return 2; u.max_acc_drop = optarg; break;
        case U_QUIET: u.quiet = 1; break;
        case U_HELP: fputs(update_help, stdout); return 0;
        case ':': return cli_usage_fail("update", "option '%s' needs a value", argv[optind - 1]);
        default: return cli_usage_fail("update", "unknown option '%s'", argv[optind - 1]);
        }
    }
    if (optind != argc) return cli_usage_fail("update", "unexpected argument '%s'", argv[optind]);
    const char *missing = !u.old_model ? "--old-model" : !u.old_adapter ? "--old-adapter" : !u.new_model ? "--new-model"
                        : !u.train ? "--task-train" : !u.test ? "--task-test" : !u.out ? "--out" : NULL;
    if (missing) return cli_usage_fail("update", "%s is required", missing);
    /* the task's kind decides the defaults */
    TaskLoadOptions lo;
    task_load_options_default(&lo);
    if (u.format && task_format_from_name(u.format, &lo.format) != 0) return cli_usage_fail("update", "--format %s", err_msg());
    TaskSet ts;
    if (task_set_load(&ts, u.train, &lo) != 0) return cli_fail();
    u.kind = ts.kind;
    task_set_free(&ts);
    int rc = parse_methods(&u);
    if (rc == 0) rc = run_update(&u);
    for (int i = 0; i < u.n_methods; i++) {
        free(u.methods[i].name);
        free(u.methods[i].args);
    }
    free(u.methods);
    return rc;
}
