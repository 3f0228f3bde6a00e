/* report/report.c - the statistics of a report and writing its files (the manifest:
 * report_manifest.c). */
#include "report.h"

#include "core/error.h"
#include "core/file.h"
#include "io/json.h"
#include "metrics/compat.h"
#include "metrics/mixture.h"
#include "metrics/preds.h"
#include "report_internal.h"

#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ================================================================ statistics */

/* The prediction files of one task, every file's records matched to M1's order. */
typedef struct {
    PredFile old;
    PredFile **f;   /* f[m][s]: model m (0 = M2), seed s */
    size_t ***idx;  /* idx[m][s][i]: record of instance i (M1's order) in f[m][s] */
    int n_models;
    const int *seeds;
} TaskFiles;

static const ReportModel *task_model(const ReportTask *t, int m) { return m == 0 ? &t->new_model : &t->methods[m - 1]; }

static void files_free(TaskFiles *tf, const ReportTask *t) {
    if (tf->f)
        for (int m = 0; m < tf->n_models; m++) {
            int k = task_model(t, m)->n_seeds;
            for (int s = 0; s < k; s++) {
                if (tf->f[m]) preds_free(&tf->f[m][s]);
                if (tf->idx[m]) free(tf->idx[m][s]);
            }
            free(tf->f[m]);
            free(tf->idx[m]);
        }
    free(tf->f);
    free(tf->idx);
    preds_free(&tf->old);
}

static int check_kind(const PredFile *f, const ReportTask *t) {
    int gen = !strcmp(t->kind, "gen");
    if (!gen && !f->has_correct)
        return err_set("%s: task '%s' is kind \"mc\" but the file has no field 'correct' (it has 'score': is the task kind \"gen\"?)",
                       f->path, t->name);
    if (gen && !f->has_score)
        return err_set("%s: task '%s' is kind \"gen\" but the file has no field 'score' (it has 'correct': is the task kind \"mc\"?)",
                       f->path, t->name);
    return 0;
}

static int files_read(TaskFiles *tf, const ReportTask *t) {
    memset(tf, 0, sizeof *tf);
    tf->n_models = 1 + t->n_methods;
    PredsReadOptions ro = {PREDS_FMT_AUTO, t->metric};
    if (t->format && preds_format_parse(t->format, &ro.format) != 0) return -1;
    if (preds_read_opts(&tf->old, t->old_preds, &ro) != 0 || check_kind(&tf->old, t) != 0) return -1;
    tf->f = calloc((size_t)tf->n_models, sizeof *tf->f);
    tf->idx = calloc((size_t)tf->n_models, sizeof *tf->idx);
    if (!tf->f || !tf->idx) return err_set("out of memory");
    for (int m = 0; m < tf->n_models; m++) {
        const ReportModel *rm = task_model(t, m);
        tf->f[m] = calloc((size_t)rm->n_seeds, sizeof **tf->f);
        tf->idx[m] = calloc((size_t)rm->n_seeds, sizeof **tf->idx);
        if (!tf->f[m] || !tf->idx[m]) return err_set("out of memory");
        for (int s = 0; s < rm->n_seeds; s++) {
            if (preds_read_opts(&tf->f[m][s], rm->preds[s], &ro) != 0 || check_kind(&tf->f[m][s], t) != 0 ||
                preds_match(&tf->old, &tf->f[m][s], &tf->idx[m][s]) != 0)
                return err_prefix("task '%s', model '%s', seed %d", t->name, rm->name, s + 1);
        }
    }
    return 0;
}

void rr_fill(CompatInstance *x, size_t n, const PredFile *a, const size_t *ia, const PredFile *b, const size_t *ib,
                 int discrete, int continuous) {
    for (size_t i = 0; i < n; i++) {
        const PredRecord *ra = &a->rec[ia ? ia[i] : i], *rb = &b->rec[ib[i]];
        x[i].correct1 = discrete ? ra->correct : -1;
        x[i].correct2 = discrete ? rb->correct : -1;
        x[i].score1 = continuous ? ra->score : NAN;
        x[i].score2 = continuous ? rb->score : NAN;
        x[i].same_pred = (signed char)preds_same_prediction(ra, rb);
    }
}

/* The index of the right choice (metrics/mixture.h). */
static int gold_index(const cJSON *target, int n) { return mixture_gold_index(target, n); }

/* A model's side of a flip: outcome, prediction, the chosen choice's text ("answer") and the
 * margin: log p(right choice) - max over the other choices' log p (> 0: right by that much). */
static cJSON *side_json(const PredRecord *r, const cJSON *target, const cJSON *choices) {
    cJSON *o = cJSON_CreateObject();
    if (!o) return NULL;
    if (r->correct >= 0) cJSON_AddBoolToObject(o, "correct", r->correct);
    if (!isnan(r->score)) cJSON_AddNumberToObject(o, "score", r->score);
    if (r->prediction) cJSON_AddItemToObject(o, "prediction", cJSON_Duplicate(r->prediction, 1));
    const cJSON *ch = r->choices ? r->choices : choices;
    if (ch && cJSON_IsNumber(r->prediction)) {
        const cJSON *a = cJSON_GetArrayItem(ch, (int)r->prediction->valuedouble);
        if (cJSON_IsString(a) && r->prediction->valuedouble >= 0) cJSON_AddStringToObject(o, "answer", a->valuestring);
    }
    const cJSON *lp = r->choice_logprobs;
    int n = lp ? cJSON_GetArraySize(lp) : 0, g = gold_index(target, n);
    if (g >= 0 && n >= 2) {
        double right = cJSON_GetArrayItem(lp, g)->valuedouble, best = -INFINITY;
        int j = 0;
        for (const cJSON *e = lp->child; e; e = e->next, j++)
            if (j != g && e->valuedouble > best) best = e->valuedouble;
        cJSON_AddNumberToObject(o, "margin", right - best);
    }
    return o;
}

typedef struct {
    size_t i;
    int kind;   /* 0 negative, 1 positive, 2 inconsistent */
    double d;   /* score change */
} FlipRef;

static int flipref_cmp(const void *pa, const void *pb) {
    const FlipRef *a = pa, *b = pb;
    if (a->kind != b->kind) return a->kind - b->kind;
    /* larger changes first (for scores), then M1's order */
    double x = fabs(a->d), y = fabs(b->d);
    if (x != y) return x > y ? -1 : 1;
    return a->i < b->i ? -1 : a->i > b->i;
}

/* Seed 1 of model m: the flip matrix, the score changes and the flipped instances. */
static int seed1_flips(RModel *rm, const RTask *rt, const TaskFiles *tf, int m, const CompatInstance *x, double eps) {
    size_t n = rt->n, nf = 0;
    FlipRef *fr = malloc((n ? n : 1) * sizeof *fr);
    if (!fr) return err_set("out of memory");
    int disc = rm->stats.discrete;
    for (size_t i = 0; i < n; i++) {
        const CompatInstance *a = &x[i];
        double d = rt->gen ? a->score2 - a->score1 : 0;
        if (disc) rm->matrix[a->correct1 ? 0 : 1][a->correct2 ? 0 : 1]++;
        if (rt->gen) rm->dsign[d < -eps ? 0 : d > eps ? 2 : 1]++;
        int kind = -1;
        if (rt->gen) {
            kind = d < -eps ? 0 : d > eps ? 1 : -1;
        } else {
            if (a->correct1 && !a->correct2) kind = 0;
            else if (!a->correct1 && a->correct2) kind = 1;
            else if (!a->correct1 && !a->correct2 && a->same_pred == 0) kind = 2;
        }
        if (kind < 0) continue;
        rm->flip_count[kind]++;
        fr[nf++] = (FlipRef){i, kind, d};
    }
    qsort(fr, nf, sizeof *fr, flipref_cmp);
    static const char *kinds[] = {"negative", "positive", "inconsistent"};
    rm->flips = cJSON_CreateArray();
    int rc = rm->flips ? 0 : err_set("out of memory");
    const PredFile *f = &tf->f[m][0];
    for (size_t k = 0; k < nf && rc == 0; k++) {
        const PredRecord *a = &tf->old.rec[fr[k].i], *b = &f->rec[tf->idx[m][0][fr[k].i]];
        cJSON *o = cJSON_CreateObject();
        if (!o) {
            rc = err_set("out of memory");
            break;
        }
        cJSON_AddItemToObject(o, "id", cJSON_Duplicate(a->id, 1));
        cJSON_AddStringToObject(o, "kind", kinds[fr[k].kind]);
        if (rt->gen) cJSON_AddNumberToObject(o, "delta", fr[k].d);
        const cJSON *target = a->target ? a->target : b->target;
        const cJSON *text = a->text ? a->text : b->text, *choices = a->choices ? a->choices : b->choices;
        if (text) cJSON_AddItemToObject(o, "text", cJSON_Duplicate(text, 1));
        if (choices) cJSON_AddItemToObject(o, "choices", cJSON_Duplicate(choices, 1));
        if (target) cJSON_AddItemToObject(o, "target", cJSON_Duplicate(target, 1));
        int g = gold_index(target, choices ? cJSON_GetArraySize(choices) : 0);
        if (g >= 0) cJSON_AddStringToObject(o, "target_text", cJSON_GetArrayItem(choices, g)->valuestring);
        cJSON_AddItemToObject(o, "old", side_json(a, target, choices));
        cJSON_AddItemToObject(o, "new", side_json(b, target, choices));
        cJSON_AddItemToArray(rm->flips, o);
    }
    free(fr);
    return rc;
}

/* Per-seed point values of model m (instances xs[s]). */
static int per_seed(RModel *rm, CompatInstance **xs, int k, size_t n, const CompatOptions *o) {
    CompatOptions p = *o;
    p.bootstrap = 0;
    rm->per_seed = calloc((size_t)k, sizeof *rm->per_seed);
    if (!rm->per_seed) return err_set("out of memory");
    for (int s = 0; s < k; s++)
        if (compat_compute(xs[s], n, &p, &rm->per_seed[s]) != 0) return -1;
    return 0;
}

static void choose(RTask *rt, double max_drop) {
    rt->chosen = -1;
    for (int m = 1; m < rt->n_models; m++) {
        RModel *rm = &rt->models[m];
        double dacc = rt_dacc(rt, &rm->delta)->value;
        rm->qualifies = !isnan(dacc) && dacc >= -max_drop - 1e-12;
        if (!rm->qualifies) continue;
        if (rt->chosen < 0) {
            rt->chosen = m;
            continue;
        }
        const RModel *c = &rt->models[rt->chosen];
        double a = rt_nfr(rt, &rm->stats)->value, b = rt_nfr(rt, &c->stats)->value;
        double acc_a = rt_acc(rt, &rm->stats)->value, acc_b = rt_acc(rt, &c->stats)->value;
        if (a < b - 1e-12 || (fabs(a - b) <= 1e-12 && acc_a > acc_b + 1e-12)) rt->chosen = m;
    }
}

static int task_compute(RTask *rt, const ReportTask *t, const CompatOptions *o, double max_drop) {
    TaskFiles tf;
    int rc = -1;
    CompatInstance ***x = NULL; /* x[m][s] */
    CompatInstance **nx = NULL; /* noise pairs */
    rt->in = t;
    rt->chosen = -1;
    rt->gen = !strcmp(t->kind, "gen");
    if (files_read(&tf, t) != 0) goto done;
    rt->n = tf.old.n;
    int discrete = tf.old.has_correct, continuous = rt->gen;
    for (int m = 0; m < tf.n_models; m++)
        for (int s = 0; s < task_model(t, m)->n_seeds; s++) discrete &= tf.f[m][s].has_correct;
    rt->n_models = tf.n_models;
    size_t nm = (size_t)(tf.n_models > 0 ? tf.n_models : 1);
    rt->models = calloc(nm, sizeof *rt->models);
    x = calloc(nm, sizeof *x);
    if (!rt->models || !x) {
        err_set("out of memory");
        goto done;
    }
    size_t n = rt->n;
    for (int m = 0; m < rt->n_models; m++) {
        const ReportModel *in = task_model(t, m);
        x[m] = calloc((size_t)in->n_seeds, sizeof **x);
        if (!x[m]) {
            err_set("out of memory");
            goto done;
        }
        for (int s = 0; s < in->n_seeds; s++) {
            x[m][s] = calloc(n, sizeof ***x);
            if (!x[m][s]) {
                err_set("out of memory for %zu instances", n);
                goto done;
            }
            rr_fill(x[m][s], n, &tf.old, NULL, &tf.f[m][s], tf.idx[m][s], discrete, continuous);
        }
    }
    for (int m = 0; m < rt->n_models; m++) {
        RModel *rm = &rt->models[m];
        const ReportModel *in = task_model(t, m);
        rm->in = in;
        rm->is_new = m == 0;
        if (m == 0) {
            if (compat_compute_seeds((const CompatInstance *const *)x[0], in->n_seeds, n, o, &rm->stats) != 0) goto fail_model;
        } else {
            rm->paired_seeds = in->n_seeds;
            if (compat_delta_seeds((const CompatInstance *const *)x[0], (const CompatInstance *const *)x[m], in->n_seeds, n, o,
                                   &rm->delta) != 0)
                goto fail_model;
            memcpy(&rm->stats, &rm->delta.cand, sizeof rm->stats);
        }
        if (per_seed(rm, x[m], in->n_seeds, n, o) != 0) goto fail_model;
        if (seed1_flips(rm, rt, &tf, m, x[m][0], o->tie_eps) != 0) goto fail_model;
        /* paired exact tests on seed 1: against M1, and a method against M2 (the headline
         * outcome: 'correct' for mc, the score's sign for gen) */
        CompatInstance *y = calloc(n ? n : 1, sizeof *y);
        if (!y) {
            err_set("out of memory for %zu instances", n);
            goto fail_model;
        }
        rr_fill(y, n, &tf.old, NULL, &tf.f[m][0], tf.idx[m][0], !rt->gen, rt->gen);
        rm->mc_m1 = mcnemar_instances(y, n, o->tie_eps);
        rm->mc_m2 = (McNemar){0, 0, NAN};
        if (m > 0) {
            rr_fill(y, n, &tf.f[0][0], tf.idx[0][0], &tf.f[m][0], tf.idx[m][0], !rt->gen, rt->gen);
            rm->mc_m2 = mcnemar_instances(y, n, o->tie_eps);
        }
        free(y);
        continue;
    fail_model:
        err_prefix("task '%s', model '%s'", t->name, in->name);
        goto done;
    }
    /* the noise floor: M2 seed i -> M2 seed j, every ordered pair */
    int k2 = t->new_model.n_seeds;
    if (k2 >= 2) {
        rt->n_pairs = k2 * (k2 - 1);
        rt->pairs = calloc((size_t)rt->n_pairs, sizeof *rt->pairs);
        nx = calloc((size_t)rt->n_pairs, sizeof *nx);
        if (!rt->pairs || !nx) {
            err_set("out of memory");
            goto done;
        }
        int p = 0;
        CompatOptions p0 = *o;
        p0.bootstrap = 0;
        for (int i = 0; i < k2; i++)
            for (int j = 0; j < k2; j++) {
                if (i == j) continue;
                nx[p] = calloc(n, sizeof **nx);
                if (!nx[p]) {
                    err_set("out of memory for %zu instances", n);
                    goto done;
                }
                rr_fill(nx[p], n, &tf.f[0][i], tf.idx[0][i], &tf.f[0][j], tf.idx[0][j], discrete, continuous);
                rt->pairs[p].from = i + 1;
                rt->pairs[p].to = j + 1;
                if (compat_compute(nx[p], n, &p0, &rt->pairs[p].r) != 0) goto noise_fail;
                p++;
            }
        if (compat_compute_seeds((const CompatInstance *const *)nx, rt->n_pairs, n, o, &rt->noise) != 0) goto noise_fail;
        rt->has_noise = 1;
    }
    choose(rt, max_drop);
    /* against the ce control, the interpolation sweeps, the inference-time mixture (report_versus.c) */
    if (rr_versus_ce(rt, (const CompatInstance *const *const *)x, o) != 0 || rr_sweeps_read(rt) != 0 ||
        rr_mixture(rt, &tf.old, tf.f[0], tf.idx[0], t->new_model.n_seeds, o) != 0) {
        err_prefix("task '%s'", t->name);
        goto done;
    }
    rc = 0;
    goto done;
noise_fail:
    err_prefix("task '%s', noise floor (M2 seed against M2 seed)", t->name);
done:
    if (x)
        for (int m = 0; m < rt->n_models; m++) {
            if (!x[m]) continue;
            for (int s = 0; s < task_model(t, m)->n_seeds; s++) free(x[m][s]);
            free(x[m]);
        }
    free(x);
    if (nx)
        for (int p = 0; p < rt->n_pairs; p++) free(nx[p]);
    free(nx);
    files_free(&tf, t);
    return rc;
}

/* [A-Za-z0-9_-] for HTML ids; "task" when nothing is left; "-2", "-3", ... when taken. */
static char *make_slug(const Report *r, int ti) {
    const char *name = r->tasks[ti].in->name;
    size_t len = strlen(name);
    char *s = malloc(len + 24);
    if (!s) return NULL;
    size_t k = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)name[i];
        s[k++] = (char)(isalnum(c) || c == '_' || c == '-' ? c : '-');
    }
    s[k] = 0;
    if (!k) strcpy(s, "task"), k = 4;
    for (int suffix = 2;; suffix++) {
        int taken = 0;
        for (int j = 0; j < ti; j++)
            if (!strcmp(r->tasks[j].slug, s)) taken = 1;
        if (!taken) break;
        snprintf(s + k, 24, "-%d", suffix);
    }
    return s;
}

void report_free(Report *r) {
    if (!r) return;
    for (int i = 0; i < r->n_tasks; i++) {
        RTask *t = &r->tasks[i];
        for (int m = 0; m < t->n_models; m++) {
            free(t->models[m].per_seed);
            cJSON_Delete(t->models[m].flips);
        }
        free(t->models);
        free(t->pairs);
        free(t->slug);
    }
    free(r->tasks);
    free(r);
}

int report_compute(const ReportInput *in, Report **out) {
    *out = NULL;
    if (in->n_tasks < 1) return err_set("report: no tasks");
    if (!(in->max_acc_drop >= 0 && isfinite(in->max_acc_drop)))
        return err_set("maximum accuracy drop %g: expected a finite number >= 0", in->max_acc_drop);
    Report *r = calloc(1, sizeof *r);
    if (!r) return err_set("out of memory");
    r->in = in;
    compat_options_default(&r->o);
    r->o.bootstrap = in->bootstrap;
    r->o.seed = in->seed;
    r->tasks = calloc((size_t)in->n_tasks, sizeof *r->tasks);
    if (!r->tasks) {
        free(r);
        return err_set("out of memory");
    }
    for (int i = 0; i < in->n_tasks; i++) {
        r->n_tasks = i + 1;
        if (task_compute(&r->tasks[i], &in->tasks[i], &r->o, in->max_acc_drop) != 0 || !(r->tasks[i].slug = make_slug(r, i))) {
            if (!r->tasks[i].slug && !err_msg()[0]) err_set("out of memory");
            report_free(r);
            return -1;
        }
    }
    *out = r;
    return 0;
}

/* ================================================================ files */

int report_write(const char *out_dir, const Report *r) {
    static const struct { const char *name; ReportFormat f; } files[] = {
        {"report.json", REPORT_JSON}, {"report.md", REPORT_MD}, {"report.html", REPORT_HTML}, {"flips.csv", REPORT_FLIPS_CSV}};
    if (file_mkdirs(out_dir) != 0) return -1;
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        char *text = report_render(r, files[i].f);
        if (!text) return -1;
        char *path = file_join(out_dir, files[i].name);
        int rc = path ? file_write_all_atomic(path, text, strlen(text)) : err_set("out of memory");
        free(path);
        free(text);
        if (rc != 0) return -1;
    }
    return 0;
}
