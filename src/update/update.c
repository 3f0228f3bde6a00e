/* update/update.c - the phases of `muscle update` (update.h): the typed steps, dealt to
 * the MPI ranks, and the report. */
#include "update/update_impl.h"

#include "compat/compat_method.h"
#include "core/dist.h"
#include "core/error.h"
#include "core/file.h"
#include "core/lock.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void update_spec_default(UpdateSpec *u) {
    memset(u, 0, sizeof *u);
    u->seeds = 1;
    u->epochs = (UpdateNum){3, "3"};
    u->lr = (UpdateNum){1e-3, "1e-3"};
    u->batch = (UpdateNum){8, "8"};
    u->grad_accum = (UpdateNum){1, "1"};
    u->rank = (UpdateNum){8, "8"};
}

void update_spec_free(UpdateSpec *u) {
    for (int i = 0; i < u->n_methods; i++) {
        free(u->methods[i].name);
        free(u->methods[i].args);
        free(u->methods[i].interp_with);
    }
    free(u->methods);
    u->methods = NULL;
    u->n_methods = 0;
}

int update_phase_end(int rc) {
    if (!dist_active()) return rc;
    int worst = rc;
    if (dist_allreduce_max_int(&worst) != 0) return update_fail();
    if (worst != 0 && rc == 0)
        fprintf(stderr, "muscle update: rank %d: stopping: a step on another rank ended with exit code %d\n", dist_rank(), worst);
    return worst;
}

/* The training every adapter of the run shares. */
static void train_common(const UpdateSpec *u, TrainSpec *s, const char *model, const char *out, long seed) {
    train_spec_default(s, TRAIN_RUN_FINETUNE);
    s->model = model;
    s->out = out;
    s->t.seed = (uint64_t)seed;
    s->t.epochs = u->epochs.v;
    s->t.lr = u->lr.v;
    s->t.batch = (int)u->batch.v;
    s->t.grad_accum = (int)u->grad_accum.v;
    if (u->seq_len.text) s->data.seq_len = (long)u->seq_len.v;
    s->data.task = u->train;
    s->data.val = u->val;
    s->data.task_format = u->format;
    s->data.prompt = u->prompt;
    s->data.answer = u->answer;
    s->data.prompt_file = u->prompt_file;
    s->adapter.bf16 = u->bf16;
    s->t.quiet = u->quiet;
}

long update_gen_max_tokens(const UpdateSpec *u) { return u->max_tokens.text ? (long)u->max_tokens.v : 32; }

char *update_new_adapter(const UpdateSpec *u, long k) {
    return k == 1 && u->new_adapter ? strdup(u->new_adapter) : update_pathf("%s/adapters/new-s%ld", u->out, k);
}

/* Phase 1: the new task adapters A2, one per seed. */
static int train_new(UpdateRun *r) {
    const UpdateSpec *u = r->u;
    int rc = 0;
    for (long k = 1; rc == 0 && k <= u->seeds; k++) {
        if (k == 1 && u->new_adapter) continue;
        char *dir = update_pathf("%s/adapters/new-s%ld", u->out, k), *log = update_pathf("train-new-s%ld", k);
        char *what = update_pathf("new task adapter on %s, seed %ld", u->new_model, k);
        TrainSpec s;
        train_common(u, &s, u->new_model, dir, k);
        s.adapter.rank = (long)u->rank.v;
        rc = update_train_step(r, what, &s, NULL, log);
        free(what);
        free(dir);
        free(log);
    }
    return update_phase_end(rc);
}

/* "A,B,...": the new task adapters of seeds 1..K (malloc'd). */
static char *new_adapters_list(const UpdateSpec *u) {
    char *list = NULL;
    for (long k = 1; k <= u->seeds; k++) {
        char *ad = update_new_adapter(u, k);
        char *next = update_pathf("%s%s%s", list ? list : "", list ? "," : "", ad ? ad : "");
        free(ad);
        free(list);
        list = next;
    }
    return list;
}

/* One compatibility adapter: method m, seed k, candidate x (its epochs; a, w >= 0: the
 * mixture's a, the cross-entropy weight), into dir. */
static int train_compat_one(UpdateRun *r, const UpdateMethod *m, long k, const UpdateCandidate *x, const char *dir, const char *log,
                            const char *what) {
    const UpdateSpec *u = r->u;
    char *init = m->soup_init ? update_pathf("%s/adapters/soup-all", u->out) : update_new_adapter(u, k);
    TrainSpec s;
    train_common(u, &s, u->new_model, dir, k);
    s.adapter.init = init;
    s.t.epochs = x->epochs;
    if (u->compat_lr.text) s.t.lr = u->compat_lr.v;
    const UpdatePreset *p = m->preset;
    int teacher = p ? !p->ce_only : m->args != NULL; /* every method but cross-entropy only */
    int sequence = p ? p->level == COMPAT_LEVEL_SEQUENCE : m->args && strstr(m->args, "--level sequence") != NULL;
    char *ens = NULL;
    if (update_preset_teaches_with_new(p)) ens = new_adapters_list(u); /* the teacher: the K new adapters of the run */
    s.compat.ensemble = ens;
    if (p && !p->ce_only) {
        s.compat.on = 1;
        s.compat.cfg.method = p->method;
        s.compat.cfg.level = p->level;
        s.compat.cfg.answer_only = p->answer_only;
        s.compat.cfg.ce_weight = p->ce_weight;
        if (p->mixture_a > 0) s.compat.cfg.mixture_a = p->mixture_a;
        if (update_mixval_applies(u, m) && r->mix_a_val > 0) /* chosen on validation (update_mixgen.c) */
            s.compat.cfg.mixture_a = r->mix_a_val;
        if (x->a >= 0) s.compat.cfg.mixture_a = x->a; /* a candidate of --mixture-weights (update_epochs.c) */
        if (x->w >= 0) s.compat.cfg.ce_weight = x->w; /* ... of --ce-weights */
    }
    if (teacher && u->kind == TASK_GEN && sequence) { /* the outputs decoded as the evaluation decodes */
        s.compat.cfg.gen_max_tokens = (int)update_gen_max_tokens(u);
        s.compat.cfg.gen_no_repeat_ngram = UPDATE_GEN_NO_REPEAT_NGRAM;
    }
    if (teacher) {
        s.compat.old_model = u->old_model;
        s.compat.old_adapter = u->old_adapter;
        s.compat.transfer = u->transfer;
    }
    int rc = update_train_step(r, what, &s, p ? NULL : m->args, log);
    free(ens);
    free(init);
    return rc;
}

/* Phase 2: a compatibility adapter per method and seed, from that seed's A2; with a list of
 * epoch counts, mixture weights or cross-entropy weights, one per candidate (update_epochs.c
 * chooses among them). */
static int train_compat(UpdateRun *r) {
    const UpdateSpec *u = r->u;
    int rc = 0;
    for (int i = 0; rc == 0 && i < u->n_methods; i++)
        for (long k = 1; rc == 0 && k <= u->seeds; k++) {
            const UpdateMethod *m = &u->methods[i];
            if (!update_method_trained(m)) break; /* update_weight.c makes it */
            int nc = update_candidates(u, m);
            for (int c = 0; rc == 0 && c < (nc ? nc : 1); c++) {
                UpdateCandidate x;
                update_candidate(u, m, c, &x);
                /* one candidate: the method's own folder; a list: a candidate each */
                char *name = nc ? update_candidate_name(u, m, k, c) : update_pathf("%s-s%ld", m->name, k);
                char *dir = update_pathf("%s/adapters/%s", u->out, name), *log = update_pathf("train-%s", name);
                char *ct = nc ? update_candidate_text(u, m, c) : NULL;
                char *what = ct ? update_pathf("compatibility adapter '%s', seed %ld, %s", m->name, k, ct)
                                : update_pathf("compatibility adapter '%s', seed %ld", m->name, k);
                rc = train_compat_one(r, m, k, &x, dir, log, what);
                free(ct);
                free(what);
                free(dir);
                free(log);
                free(name);
            }
        }
    return update_phase_end(rc);
}

int update_eval_model(UpdateRun *r, const char *what, const char *model, const char *adapter, const char *name, const char *task) {
    const UpdateSpec *u = r->u;
    char *preds = update_pathf("%s/preds/%s.jsonl", u->out, name), *sum = update_pathf("%s/preds/%s.eval.json", u->out, name);
    EvalStepSpec e = {.model = model, .adapter = adapter, .task = task, .preds = preds, .format = u->format,
                      .prompt = u->prompt, .answer = u->answer, .prompt_file = u->prompt_file,
                      .limit = u->limit.text ? (long)u->limit.v : 0, .bf16 = u->bf16, .quiet = u->quiet};
    if (u->kind == TASK_GEN) {
        e.max_tokens = update_gen_max_tokens(u);
        e.no_repeat_ngram = UPDATE_GEN_NO_REPEAT_NGRAM;
        e.fit_with = model == u->old_model ? u->new_model : u->old_model; /* across tokenizers: one text for both */
    }
    int rc = update_eval_step(r, what, &e, sum, name);
    free(preds);
    free(sum);
    return rc;
}

static int eval_one(UpdateRun *r, const char *what, const char *model, const char *adapter, const char *name) {
    return update_eval_model(r, what, model, adapter, name, r->u->test);
}

/* Phase 3: M1, M2 per seed, every method per seed on the test set. */
static int evaluate(UpdateRun *r) {
    const UpdateSpec *u = r->u;
    int rc = eval_one(r, "eval of the old task model M1", u->old_model, u->old_adapter, "old");
    for (long k = 1; rc == 0 && k <= u->seeds; k++) {
        char *ad = update_new_adapter(u, k);
        char *name = update_pathf("new-s%ld", k), *what = update_pathf("eval of the new task model M2, seed %ld", k);
        rc = eval_one(r, what, u->new_model, ad, name);
        free(what);
        free(ad);
        free(name);
    }
    for (int i = 0; rc == 0 && i < u->n_methods; i++)
        for (long k = 1; rc == 0 && k <= u->seeds; k++) {
            const char *mn = u->methods[i].name;
            char *ad = update_pathf("%s/adapters/%s-s%ld", u->out, mn, k), *name = update_pathf("%s-s%ld", mn, k);
            char *what = update_pathf("eval of '%s', seed %ld", mn, k);
            rc = eval_one(r, what, u->new_model, ad, name);
            free(what);
            free(ad);
            free(name);
        }
    return update_phase_end(rc);
}

static int update_run_locked(const UpdateSpec *u);

int update_run(const UpdateSpec *u) {
    const char *sub[3] = {"adapters", "preds", "logs"};
    int rc = file_mkdirs(u->out) != 0 ? update_fail() : 0;
    for (int i = 0; rc == 0 && i < 3; i++) {
        char *d = update_pathf("%s/%s", u->out, sub[i]);
        if (file_mkdirs(d) != 0) rc = update_fail();
        free(d);
    }
    if (rc) return rc;
    /* one run per RUN_DIR (core/lock.h), inherited by the steps: a step left running
     * after this process died keeps the folder locked, so a rerun refuses it */
    DirLock lk = {-1, NULL};
    if (dist_rank() == 0 && dir_lock_acquire(&lk, u->out, "muscle update", DIR_LOCK_INHERIT) != 0) rc = update_fail();
    if ((rc = update_phase_end(rc)) != 0) return rc;
    rc = update_run_locked(u);
    dir_lock_release(&lk);
    return rc;
}

static int update_run_locked(const UpdateSpec *u) {
    int rc = 0;
    if (dist_rank() == 0 && update_check_settings(u) != 0) rc = update_fail(); /* only rank 0 writes files */
    if ((rc = update_phase_end(rc)) != 0) return rc;
    /* MUSCLE_NO_MPI (core/dist.h): the steps' children run as plain single processes,
     * never joining this MPI job */
    setenv("MUSCLE_NO_MPI", "1", 1);
    long K = u->seeds;
    UpdateRun r = {u, 0, (int)(K - (u->new_adapter ? 1 : 0) + K * u->n_methods + 1 + K + K * u->n_methods + 1), -1.0};
    r.n_steps += update_weight_steps(u) + update_mixgen_steps(u) + update_mixval_steps(u) + update_epochs_steps(u);
    rc = train_new(&r);
    if (rc == 0) rc = update_mixval(&r);
    double mix_a = -1.0;
    if (rc == 0 && update_mixval_read(u, &mix_a, NULL) != 0) rc = update_fail();
    r.mix_a_val = mix_a;
    if (rc == 0) rc = update_phase_end(dist_rank() == 0 ? update_weight_soups(&r) : 0);
    if (rc == 0) rc = train_compat(&r);
    if (rc == 0) rc = update_epochs_choose(&r);
    if (rc == 0) rc = update_phase_end(update_weight_sweeps(&r));
    if (rc == 0) rc = update_phase_end(dist_rank() == 0 ? update_weight_choose(&r) : 0);
    if (rc == 0) rc = evaluate(&r);
    if (rc == 0) rc = update_phase_end(dist_rank() == 0 ? update_mixgen(&r) : 0);
    /* 4. the report (rank 0) */
    if (dist_rank() > 0) return rc;
    if (rc == 0 && update_write_manifest(u) != 0) rc = update_fail();
    if (rc == 0) rc = update_report_step(&r);
    if (rc == 0) fprintf(stderr, "muscle update: report written to %s/report.html (and report.md, report.json)\n", u->out);
    return rc;
}
