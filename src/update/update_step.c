/* update/update_step.c - the steps of `muscle update` (update.h).
 *
 * Training and evaluation steps run as children of this program (fork + exec of
 * /proc/self/exe), for two reasons: isolation of memory (each step loads its own models
 * and teacher caches, all returned to the system when it ends, whatever it leaked or
 * fragmented), and MPI: a process that joined an MPI job must not run its work in a
 * forked copy, so each child is a fresh single process (MUSCLE_NO_MPI=1, set by
 * update_run) while the parent keeps its place in the job. A step's input is a typed
 * spec; train_spec_argv and eval_spec_argv below are the one place where a spec becomes
 * the child's command line (only the settings that differ from the command's defaults).
 * The report is cheap and runs in this process.
 */
#include "update/update_impl.h"

#include "core/dist.h"
#include "core/error.h"
#include "core/file.h"
#include "model/lora.h"
#include "report/report.h"

#include <cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

char *update_pathf(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    char *s = NULL;
    if (vasprintf(&s, fmt, ap) < 0) s = NULL;
    va_end(ap);
    return s;
}

int update_exists(const char *p) {
    struct stat st;
    return stat(p, &st) == 0;
}

int update_fail(void) {
    if (dist_size() > 1 && dist_rank() > 0) fprintf(stderr, "muscle: error: rank %d: %s\n", dist_rank(), err_msg());
    else fprintf(stderr, "muscle: error: %s\n", err_msg());
    return 1;
}

/* ---- a child's command line ---- */

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

static void av_num(Argv *a, const char *opt, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void av_num(Argv *a, const char *opt, const char *fmt, ...) {
    char v[64];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(v, sizeof v, fmt, ap);
    va_end(ap);
    av_opt(a, opt, v);
}

static void av_free(Argv *a) {
    for (int i = 0; i < a->n; i++) free(a->v[i]);
    free(a->v);
    memset(a, 0, sizeof *a);
}

/* `muscle finetune` with the settings of s that differ from its defaults (doubles as
 * %.17g: read back bit for bit). The settings `muscle update` never sets (pretraining,
 * the shape of a new model, LoRA targets, schedules) are not written. */
static void train_spec_argv(const TrainSpec *s, Argv *a) {
    TrainSpec d;
    train_spec_default(&d, TRAIN_RUN_FINETUNE);
    const TrainOptions *t = &s->t, *dt = &d.t;
    const CompatConfig *c = &s->compat.cfg, *dc = &d.compat.cfg;
    av_add(a, "muscle");
    av_add(a, "finetune");
    av_opt(a, "--model", s->model);
    av_opt(a, "--tokenizer", s->tokenizer);
    av_opt(a, "--out", s->out);
    av_opt(a, "--adapter-init", s->adapter.init);
    if (s->adapter.rank != d.adapter.rank) av_num(a, "--rank", "%ld", s->adapter.rank);
    if (s->adapter.alpha != d.adapter.alpha) av_num(a, "--alpha", "%.17g", s->adapter.alpha);
    if (t->seed != dt->seed) av_num(a, "--seed", "%llu", (unsigned long long)t->seed);
    if (t->steps != dt->steps) av_num(a, "--steps", "%ld", t->steps);
    if (t->epochs != dt->epochs) av_num(a, "--epochs", "%.17g", t->epochs);
    if (t->lr != dt->lr) av_num(a, "--lr", "%.17g", t->lr);
    if (t->batch != dt->batch) av_num(a, "--batch", "%d", t->batch);
    if (t->grad_accum != dt->grad_accum) av_num(a, "--grad-accum", "%d", t->grad_accum);
    if (s->data.seq_len != d.data.seq_len) av_num(a, "--seq-len", "%ld", s->data.seq_len);
    av_opt(a, "--format", s->data.task_format);
    av_opt(a, "--prompt", s->data.prompt);
    av_opt(a, "--answer", s->data.answer);
    av_opt(a, "--prompt-file", s->data.prompt_file);
    av_opt(a, "--task", s->data.task);
    av_opt(a, "--data", s->data.data);
    av_opt(a, "--val", s->data.val);
    if (s->data.val_frac != d.data.val_frac) av_num(a, "--val-frac", "%.17g", s->data.val_frac);
    if (s->adapter.bf16) av_add(a, "--bf16");
    if (!s->adapter.keep_best) av_add(a, "--no-keep-best");
    if (t->quiet) av_add(a, "--quiet");
    if (s->compat.on) {
        av_opt(a, "--compat", compat_method_name(c->method));
        if (c->level != dc->level) av_opt(a, "--level", compat_level_name(c->level));
        if (c->answer_only) av_opt(a, "--distill-tokens", "answer");
        if (c->ce_weight != dc->ce_weight) av_num(a, "--ce-weight", "%.17g", c->ce_weight);
        if (c->temperature != dc->temperature) av_num(a, "--temperature", "%.17g", c->temperature);
        if (c->kd_weight != dc->kd_weight) av_num(a, "--kd-weight", "%.17g", c->kd_weight);
        if (c->vocab_map) av_opt(a, "--vocab-map", "uld");
        if (c->mixture_a != dc->mixture_a) av_num(a, "--mixture-weight", "%.17g", c->mixture_a);
        if (c->mixture_tol != dc->mixture_tol) av_num(a, "--mixture-tol", "%.17g", c->mixture_tol);
        av_opt(a, "--ensemble-adapters", s->compat.ensemble);
    }
    if (c->gen_max_tokens != dc->gen_max_tokens) av_num(a, "--max-tokens", "%d", c->gen_max_tokens);
    if (c->gen_no_repeat_ngram != dc->gen_no_repeat_ngram) av_num(a, "--no-repeat-ngram", "%d", c->gen_no_repeat_ngram);
    av_opt(a, "--old-model", s->compat.old_model);
    av_opt(a, "--old-adapter", s->compat.old_adapter);
    av_opt(a, "--transfer", s->compat.transfer);
    if (t->resume) av_add(a, "--resume");
}

/* `muscle eval` with the settings of e. */
static void eval_spec_argv(const EvalStepSpec *e, Argv *a) {
    av_add(a, "muscle");
    av_add(a, "eval");
    av_opt(a, "--model", e->model);
    av_opt(a, "--adapter", e->adapter);
    av_opt(a, "--task", e->task);
    av_opt(a, "--out", e->preds);
    av_opt(a, "--format", e->format);
    av_opt(a, "--prompt", e->prompt);
    av_opt(a, "--answer", e->answer);
    av_opt(a, "--prompt-file", e->prompt_file);
    if (e->limit) av_num(a, "--limit", "%ld", e->limit);
    if (e->max_tokens) av_num(a, "--max-tokens", "%ld", e->max_tokens);
    if (e->no_repeat_ngram) av_num(a, "--no-repeat-ngram", "%ld", e->no_repeat_ngram);
    av_opt(a, "--fit-with", e->fit_with);
    if (e->bf16) av_add(a, "--bf16");
    if (e->quiet) av_add(a, "--quiet");
}

/* ---- running a step ---- */

static void step_begin(UpdateRun *r, const char *what) {
    r->step++;
    fprintf(stderr, "muscle update: [%d/%d] %s\n", r->step, r->n_steps, what);
    fflush(stderr);
}

/* The running step's process group (0: none) and the first stop signal received. A step
 * runs in its own group; SIGINT/SIGTERM/SIGHUP of update are forwarded to the whole group
 * (the trainer saves its checkpoint and exits 130/143), and the group is killed when update
 * exits while a step runs (run_child_kill_group, atexit). A SIGKILLed update cannot forward
 * anything: the step gets SIGTERM from the kernel then (PR_SET_PDEATHSIG), and until it has
 * stopped it keeps RUN_DIR locked (core/lock.h), so a rerun refuses it instead of racing it. */
static volatile sig_atomic_t child_pgid, stop_signal;

static void forward_signal(int sig) {
    if (!stop_signal) stop_signal = sig;
    if (child_pgid > 0) {
        kill(-(pid_t)child_pgid, sig);
        return;
    }
    signal(sig, SIG_DFL); /* no step running: stop now, as before (every output is atomic) */
    raise(sig);
}

static void run_child_kill_group(void) {
    if (child_pgid > 0) kill(-(pid_t)child_pgid, SIGKILL);
}

static void run_child_signals(void) {
    static int installed;
    if (installed) return;
    installed = 1;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = forward_signal;
    sigemptyset(&sa.sa_mask);
    int sigs[3] = {SIGINT, SIGTERM, SIGHUP};
    for (int i = 0; i < 3; i++) sigaction(sigs[i], &sa, NULL);
    atexit(run_child_kill_group);
}

/* Runs `muscle argv...` in a child; stdout to out_path when given; stderr to the log
 * log_name when quiet (and log_name is not NULL). Returns 0, or the exit code to stop with (after printing why). */
static int run_child(UpdateRun *r, const char *what, Argv *a, const char *out_path, const char *log_name) {
    if (stop_signal) return 128 + stop_signal; /* stopped between two steps */
    run_child_signals();
    step_begin(r, what);
    fflush(stdout); /* the child must not print what the parent buffered */
    char *log = r->u->quiet && log_name ? update_pathf("%s/logs/%s.log", r->u->out, log_name) : NULL;
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid < 0) {
        free(log);
        err_set("cannot start a process: %s", strerror(errno));
        return update_fail();
    }
    if (pid == 0) {
        setpgid(0, 0);
        /* update gone (even by SIGKILL): the step stops as on SIGTERM */
        if (prctl(PR_SET_PDEATHSIG, SIGTERM) != 0 || getppid() != parent) _exit(143);
        signal(SIGINT, SIG_DFL);
        signal(SIGTERM, SIG_DFL);
        signal(SIGHUP, SIG_DFL);
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
    setpgid(pid, pid); /* also here: the group exists before any signal is forwarded */
    child_pgid = pid;
    if (stop_signal) kill(-pid, stop_signal); /* a signal that came before child_pgid was set */
    int st = 0;
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {
    }
    kill(-pid, SIGKILL); /* anything the step left in its group */
    child_pgid = 0;
    int code = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + (WIFSIGNALED(st) ? WTERMSIG(st) : 0);
    if (code == 0 && stop_signal) code = 128 + stop_signal; /* the step finished, but update was told to stop */
    if (code != 0) {
        if (code == 130 || code == 143 || code == 129)
            fprintf(stderr, "muscle update: stopped during step %d (%s); run the same command again to resume\n", r->step, what);
        else
            fprintf(stderr, "muscle: error: update step %d (%s) failed with exit code %d%s%s\n", r->step, what, code,
                    log ? "; see " : "", log ? log : "");
        if (out_path) unlink(out_path); /* no half-written output */
    }
    free(log);
    return code;
}

int update_other_ranks_step(UpdateRun *r) {
    if (r->step % dist_size() == dist_rank()) return 0;
    r->step++;
    return 1;
}

static void done_before(UpdateRun *r, const char *what) {
    r->step++;
    if (!r->u->quiet) fprintf(stderr, "muscle update: [%d/%d] %s: done before\n", r->step, r->n_steps, what);
}

int update_copy_file(const char *from, const char *to) {
    size_t n;
    char *d = file_read_all(from, &n, (size_t)1 << 34);
    if (!d) return err_prefix("%s", from);
    int rc = file_write_all_atomic(to, d, n);
    free(d);
    return rc;
}

struct cJSON *update_read_json(const char *path, int *present) {
    size_t n = 0;
    char *txt = path && update_exists(path) ? file_read_all(path, &n, 1u << 20) : NULL;
    if (present) *present = txt != NULL;
    cJSON *j = txt ? cJSON_ParseWithLength(txt, n) : NULL;
    free(txt);
    return j;
}

int update_train_step(UpdateRun *r, const char *what, const TrainSpec *spec, const char *extra_args, const char *log_name) {
    if (update_other_ranks_step(r)) return 0;
    /* done only when every output is there: the adapter's two files and training.json,
     * which finetune writes last (the step's completion marker); a step killed between
     * two of them resumes from its checkpoint */
    char *done = update_pathf("%s/adapter_model.safetensors", spec->out), *ck = update_pathf("%s/checkpoint/state.safetensors", spec->out);
    char *cfg = update_pathf("%s/adapter_config.json", spec->out), *mark = update_pathf("%s/training.json", spec->out);
    int rc = 0;
    if (update_exists(done) && update_exists(cfg) && update_exists(mark)) {
        done_before(r, what);
    } else {
        TrainSpec s = *spec;
        s.t.resume = update_exists(ck);
        Argv a = {0};
        train_spec_argv(&s, &a);
        if (extra_args) { /* a user's method: its own finetune options, last (they win) */
            char *c = strdup(extra_args), *save = NULL;
            for (char *w = strtok_r(c, " ", &save); w; w = strtok_r(NULL, " ", &save)) av_add(&a, w);
            free(c);
        }
        rc = run_child(r, what, &a, NULL, log_name);
        av_free(&a);
    }
    free(done);
    free(ck);
    free(cfg);
    free(mark);
    return rc;
}

int update_eval_step(UpdateRun *r, const char *what, const EvalStepSpec *e, const char *summary, const char *log_name) {
    if (update_other_ranks_step(r)) return 0;
    if (update_exists(e->preds) && update_exists(summary)) {
        done_before(r, what);
        return 0;
    }
    Argv a = {0};
    eval_spec_argv(e, &a);
    char *tmp = update_pathf("%s.tmp-%ld", summary, (long)getpid()); /* unique: never shared with another run */
    int rc = run_child(r, what, &a, tmp, log_name);
    if (rc == 0 && rename(tmp, summary) != 0) {
        err_set("%s: cannot rename into place: %s", summary, strerror(errno));
        rc = update_fail();
    }
    free(tmp);
    av_free(&a);
    return rc;
}

int update_report_step(UpdateRun *r) {
    const UpdateSpec *u = r->u;
    step_begin(r, "report");
    char *man = update_pathf("%s/manifest.json", u->out), *text = NULL;
    ReportInput in;
    Report *rep = NULL;
    int rc = report_load_manifest(&in, man);
    free(man);
    if (rc != 0) return update_fail();
    if (u->bootstrap.text) in.bootstrap = (int)u->bootstrap.v;
    if (u->max_acc_drop.text) in.max_acc_drop = u->max_acc_drop.v;
    if (report_compute(&in, &rep) == 0 && report_write(u->out, rep) == 0 && (text = report_render(rep, REPORT_TEXT))) {
        fputs(text, stdout);
        printf("\nwritten: %s/report.json, report.md, report.html\n", u->out);
        fflush(stdout);
    } else {
        rc = update_fail();
    }
    free(text);
    report_free(rep);
    report_input_free(&in);
    return rc;
}
