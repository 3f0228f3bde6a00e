/* report/report.c - the manifest, the statistics of a report, and writing its files. */
#include "report.h"

#include "core/error.h"
#include "core/file.h"
#include "io/json.h"
#include "metrics/compat.h"
#include "metrics/mixture.h"
#include "metrics/preds.h"
#include "report_internal.h"
#include "core/num.h"
#include "core/utf8.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MANIFEST_MAX (64u << 20)

/* ================================================================ manifest */

/* Every key of o must be one of `known` (NULL-terminated); duplicates are an error too. */
static int check_keys(const char *file, const char *where, const cJSON *o, const char *const *known) {
    for (const cJSON *c = o->child; c; c = c->next) {
        int ok = 0;
        for (const char *const *k = known; *k; k++)
            if (!strcmp(c->string, *k)) ok = 1;
        if (!ok) {
            char list[256] = "";
            size_t used = 0;
            for (const char *const *k = known; *k && used < sizeof list; k++)
                used += (size_t)snprintf(list + used, sizeof list - used, "%s%s", k == known ? "" : ", ", *k);
            return err_set("%s: %s: unknown field '%.80s' (known: %s)", file, where, c->string, list);
        }
        for (const cJSON *d = c->next; d; d = d->next)
            if (!strcmp(c->string, d->string)) return err_set("%s: %s: field '%.80s' appears twice", file, where, c->string);
    }
    return 0;
}

/* A required (or optional, when def != NULL) string field, copied into *out. */
static int get_string(const char *file, const char *where, const cJSON *o, const char *key, const char *def, char **out) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!v) {
        if (!def) return err_set("%s: %s: missing field '%s'", file, where, key);
        *out = strdup(def);
    } else if (!cJSON_IsString(v)) {
        return err_set("%s: %s.%s: expected a string, got %s", file, where, key, io_json_kind(v));
    } else if (!def && !v->valuestring[0]) {
        return err_set("%s: %s.%s: expected a non-empty string", file, where, key);
    } else {
        *out = strdup(v->valuestring);
    }
    return *out ? 0 : err_set("out of memory");
}

/* Names (tasks, models) reach report.json and `muscle gate`, which refuses names longer than
 * 256 bytes (cmd_gate.c, GATE_NAME_MAX): the manifest refuses them first, so gate never meets a
 * report muscle wrote that it cannot read. */
#define REPORT_NAME_MAX 256
static int check_name(const char *file, const char *where, const char *name) {
    size_t n = strlen(name);
    if (n > REPORT_NAME_MAX)
        return err_set("%s: %s.name: %zu bytes long, expected at most %d", file, where, n, REPORT_NAME_MAX);
    return 0;
}

/* A path relative to dir (absolute paths stay as they are). */
static char *resolve(const char *dir, const char *path) {
    if (path[0] == '/' || !strcmp(dir, ".")) return strdup(path);
    return file_join(dir, path);
}

static int get_path(const char *file, const char *where, const cJSON *v, const char *dir, char **out) {
    if (!cJSON_IsString(v)) return err_set("%s: %s: expected a string (a file path), got %s", file, where, io_json_kind(v));
    if (!v->valuestring[0]) return err_set("%s: %s: expected a file path, got an empty string", file, where);
    *out = resolve(dir, v->valuestring);
    return *out ? 0 : err_set("out of memory");
}

static int load_model(const char *file, const char *where, const cJSON *o, const char *dir, const char *def_name,
                      ReportModel *m) {
    static const char *const known[] = {"name", "settings", "preds", "sweeps", NULL};
    if (!cJSON_IsObject(o)) return err_set("%s: %s: expected an object, got %s", file, where, io_json_kind(o));
    if (check_keys(file, where, o, known) != 0) return -1;
    if (get_string(file, where, o, "name", def_name, &m->name) != 0) return -1;
    if (!m->name[0]) return err_set("%s: %s.name: expected a non-empty string", file, where);
    if (check_name(file, where, m->name) != 0) return -1;
    if (get_string(file, where, o, "settings", "", &m->settings) != 0) return -1;
    const cJSON *p = cJSON_GetObjectItemCaseSensitive(o, "preds");
    if (!p) return err_set("%s: %s: missing field 'preds' (the prediction files, one per seed)", file, where);
    if (!cJSON_IsArray(p) || cJSON_GetArraySize(p) == 0)
        return err_set("%s: %s.preds: expected a non-empty array of file paths (one per seed), got %s", file, where,
                       cJSON_IsArray(p) ? "an empty array" : io_json_kind(p));
    int n = cJSON_GetArraySize(p);
    m->preds = calloc((size_t)n, sizeof *m->preds);
    if (!m->preds) return err_set("out of memory");
    int i = 0;
    for (const cJSON *e = p->child; e; e = e->next, i++) {
        char w[256];
        snprintf(w, sizeof w, "%s.preds[%d]", where, i);
        if (get_path(file, w, e, dir, &m->preds[i]) != 0) return -1;
        m->n_seeds = i + 1;
    }
    const cJSON *sw = cJSON_GetObjectItemCaseSensitive(o, "sweeps"); /* optional: an interpolation's sweep files */
    if (sw && !cJSON_IsArray(sw)) return err_set("%s: %s.sweeps: expected an array of file paths, got %s", file, where, io_json_kind(sw));
    int ns = sw ? cJSON_GetArraySize(sw) : 0;
    if (ns) {
        m->sweeps = calloc((size_t)ns, sizeof *m->sweeps);
        if (!m->sweeps) return err_set("out of memory");
    }
    i = 0;
    for (const cJSON *e = sw ? sw->child : NULL; e; e = e->next, i++) {
        char w[256];
        snprintf(w, sizeof w, "%s.sweeps[%d]", where, i);
        if (get_path(file, w, e, dir, &m->sweeps[i]) != 0) return -1;
        m->n_sweeps = i + 1;
    }
    return 0;
}

static int load_task(const char *file, int ti, const cJSON *o, const char *dir, ReportTask *t) {
    static const char *const known[] = {"name", "kind", "old", "new", "methods", "format", "metric", NULL};
    char where[64], w[160];
    snprintf(where, sizeof where, "tasks[%d]", ti);
    if (!cJSON_IsObject(o)) return err_set("%s: %s: expected an object, got %s", file, where, io_json_kind(o));
    if (check_keys(file, where, o, known) != 0) return -1;
    if (get_string(file, where, o, "name", NULL, &t->name) != 0) return -1;
    if (check_name(file, where, t->name) != 0) return -1;
    if (get_string(file, where, o, "kind", NULL, &t->kind) != 0) return -1;
    if (strcmp(t->kind, "mc") && strcmp(t->kind, "gen"))
        return err_set("%s: %s.kind: expected \"mc\" (discrete outcome 'correct') or \"gen\" (score 'score'), got \"%.40s\"",
                       file, where, t->kind);
    if (get_string(file, where, o, "format", "auto", &t->format) != 0) return -1;
    PredsFormat pf;
    if (preds_format_parse(t->format, &pf) != 0) return err_prefix("%s: %s.format", file, where);
    if (cJSON_GetObjectItemCaseSensitive(o, "metric")) {
        if (get_string(file, where, o, "metric", NULL, &t->metric) != 0) return -1;
        if (pf != PREDS_FMT_AUTO && pf != PREDS_FMT_LMEVAL)
            return err_set("%s: %s.metric: only lm-eval files have metrics (format is \"%s\")", file, where, t->format);
    }
    const cJSON *old = cJSON_GetObjectItemCaseSensitive(o, "old");
    if (!old) return err_set("%s: %s: missing field 'old' (M1's prediction file)", file, where);
    snprintf(w, sizeof w, "%s.old", where);
    if (get_path(file, w, old, dir, &t->old_preds) != 0) return -1;
    const cJSON *nw = cJSON_GetObjectItemCaseSensitive(o, "new");
    if (!nw) return err_set("%s: %s: missing field 'new' (M2: {\"preds\": [one file per seed]})", file, where);
    snprintf(w, sizeof w, "%s.new", where);
    if (load_model(file, w, nw, dir, "M2", &t->new_model) != 0) return -1;
    if (!strcmp(t->new_model.name, "M1")) return err_set("%s: %s.name: \"M1\" names the old model", file, w);
    const cJSON *ms = cJSON_GetObjectItemCaseSensitive(o, "methods");
    if (ms && !cJSON_IsArray(ms))
        return err_set("%s: %s.methods: expected an array of objects, got %s", file, where, io_json_kind(ms));
    int nm = ms ? cJSON_GetArraySize(ms) : 0;
    if (nm) {
        t->methods = calloc((size_t)nm, sizeof *t->methods);
        if (!t->methods) return err_set("out of memory");
    }
    int i = 0;
    for (const cJSON *e = ms ? ms->child : NULL; e; e = e->next, i++) {
        ReportModel *m = &t->methods[i];
        t->n_methods = i + 1;
        snprintf(w, sizeof w, "%s.methods[%d]", where, i);
        if (load_model(file, w, e, dir, NULL, m) != 0) return -1;
        if (!strcmp(m->name, "M1") || !strcmp(m->name, t->new_model.name))
            return err_set("%s: %s.name: \"%.60s\" names the %s model", file, w, m->name, strcmp(m->name, "M1") ? "new" : "old");
        for (int j = 0; j < i; j++)
            if (!strcmp(t->methods[j].name, m->name))
                return err_set("%s: %s.name: \"%.60s\" is also the name of methods[%d]", file, w, m->name, j);
        if (m->n_seeds > t->new_model.n_seeds)
            return err_set("%s: %s.preds: %d files, but the new model has %d (seed k of a method pairs with seed k of "
                           "the new model)", file, w, m->n_seeds, t->new_model.n_seeds);
    }
    return 0;
}

void report_input_free(ReportInput *in) {
    if (!in) return;
    for (int i = 0; i < in->n_tasks; i++) {
        ReportTask *t = &in->tasks[i];
        ReportModel *all[1] = {&t->new_model};
        for (int j = -1; j < t->n_methods; j++) {
            ReportModel *m = j < 0 ? all[0] : &t->methods[j];
            for (int k = 0; k < m->n_seeds; k++) free(m->preds[k]);
            free(m->preds);
            for (int k = 0; k < m->n_sweeps; k++) free(m->sweeps[k]);
            free(m->sweeps);
            free(m->name);
            free(m->settings);
        }
        free(t->methods);
        free(t->name);
        free(t->kind);
        free(t->format);
        free(t->metric);
        free(t->old_preds);
    }
    free(in->tasks);
    free(in->title);
    free(in->manifest);
    memset(in, 0, sizeof *in);
}

int report_load_manifest(ReportInput *in, const char *path) {
    static const char *const known[] = {"title", "tasks", NULL};
    memset(in, 0, sizeof *in);
    in->bootstrap = 1000;
    in->seed = 42;
    in->max_acc_drop = 0.005;
    size_t size;
    char *text = file_read_all(path, &size, MANIFEST_MAX);
    if (!text) return -1;
    /* names and the title reach report.* and the terminal: valid UTF-8 without NUL */
    size_t bad = utf8_valid_prefix(text, size);
    if (bad != size || io_json_refuse_nul(text, size, path) != 0) {
        if (bad != size) err_set("%s: byte %zu: not valid UTF-8", path, bad + 1);
        free(text);
        return -1;
    }
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(text, size, &end, 0);
    if (!root) {
        const char *ep = cJSON_GetErrorPtr();
        size_t line = 1, col = 1;
        if (ep && ep >= text && ep <= text + size)
            for (const char *c = text; c < ep; c++) {
                if (*c == '\n') line++, col = 1;
                else col++;
            }
        free(text);
        return err_set("%s:%zu:%zu: not valid JSON", path, line, col);
    }
    while (end && end < text + size && isspace((unsigned char)*end)) end++;
    int extra = end && end < text + size;
    free(text);
    int rc = -1;
    char *dir = file_dirname(path);
    in->manifest = strdup(path);
    if (!dir || !in->manifest) {
        err_set("out of memory");
        goto done;
    }
    if (extra) {
        err_set("%s: unexpected text after the JSON object", path);
        goto done;
    }
    if (!cJSON_IsObject(root)) {
        err_set("%s: expected a JSON object ({\"title\": ..., \"tasks\": [...]}), got %s", path, io_json_kind(root));
        goto done;
    }
    if (io_json_refuse_controls(root, path) != 0) goto done; /* names reach the terminal */
    if (check_keys(path, "manifest", root, known) != 0) goto done;
    if (get_string(path, "manifest", root, "title", "muscle report", &in->title) != 0) goto done;
    const cJSON *ts = cJSON_GetObjectItemCaseSensitive(root, "tasks");
    if (!ts) {
        err_set("%s: missing field 'tasks'", path);
        goto done;
    }
    if (!cJSON_IsArray(ts) || cJSON_GetArraySize(ts) == 0) {
        err_set("%s: tasks: expected a non-empty array of tasks, got %s", path, cJSON_IsArray(ts) ? "an empty array" : io_json_kind(ts));
        goto done;
    }
    int n = cJSON_GetArraySize(ts), i = 0;
    in->tasks = calloc((size_t)n, sizeof *in->tasks);
    if (!in->tasks) {
        err_set("out of memory");
        goto done;
    }
    for (const cJSON *e = ts->child; e; e = e->next, i++) {
        in->n_tasks = i + 1;
        if (load_task(path, i, e, dir, &in->tasks[i]) != 0) goto done;
        for (int j = 0; j < i; j++)
            if (!strcmp(in->tasks[j].name, in->tasks[i].name)) {
                err_set("%s: tasks[%d].name: \"%.60s\" is also the name of tasks[%d]", path, i, in->tasks[i].name, j);
                goto done;
            }
    }
    rc = 0;
done:
    free(dir);
    cJSON_Delete(root);
    if (rc != 0) report_input_free(in);
    return rc;
}

int report_parse_fraction(const char *s, double *out) {
    double v;
    size_t n = num_parse_decimal(s, &v); /* strict decimal: "0x10" is not 16 */
    const char *end = s + n;
    if (n == 0) return err_set("'%s': expected a fraction (0.05) or a percentage (5%%)", s);
    if (*end == '%') {
        v /= 100;
        end++;
    }
    if (*end) return err_set("'%s': expected a fraction (0.05) or a percentage (5%%)", s);
    *out = v;
    return 0;
}

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

/* Instances of the comparison a -> b (both in M1's order through their index maps). */
static void fill(CompatInstance *x, size_t n, const PredFile *a, const size_t *ia, const PredFile *b, const size_t *ib,
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
            fill(x[m][s], n, &tf.old, NULL, &tf.f[m][s], tf.idx[m][s], discrete, continuous);
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
        fill(y, n, &tf.old, NULL, &tf.f[m][0], tf.idx[m][0], !rt->gen, rt->gen);
        rm->mc_m1 = mcnemar_instances(y, n, o->tie_eps);
        rm->mc_m2 = (McNemar){0, 0, NAN};
        if (m > 0) {
            fill(y, n, &tf.f[0][0], tf.idx[0][0], &tf.f[m][0], tf.idx[m][0], !rt->gen, rt->gen);
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
                fill(nx[p], n, &tf.f[0][i], tf.idx[0][i], &tf.f[0][j], tf.idx[0][j], discrete, continuous);
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
