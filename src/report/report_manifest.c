/* report/report_manifest.c - the report manifest (docs/report.md): tasks, models and their
 * prediction files read strictly (unknown keys, types, names and paths checked, one message
 * naming the file and field), and report_parse_fraction. */
#include "report.h"

#include "core/error.h"
#include "core/file.h"
#include "core/num.h"
#include "core/utf8.h"
#include "io/json.h"
#include "report_internal.h"

#include <ctype.h>
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

/* Names reach report.json and `muscle gate`: at most REPORT_NAME_MAX bytes (report.h). */
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

/* "mixture": [{"a": A, "preds": FILE}, ...] (optional; generation tasks): the inference-time
 * mixture's predictions at each weight a in [0, 1], at most RR_MIX_MAX of them. */
static int load_mixture(const char *file, const char *where, const cJSON *mx, const char *dir, ReportTask *t) {
    if (!mx) return 0;
    int n = cJSON_IsArray(mx) ? cJSON_GetArraySize(mx) : -1;
    if (n < 0 || n > REPORT_MIX_MAX)
        return err_set("%s: %s.mixture: expected an array of at most %d objects {\"a\": weight, \"preds\": file}, got %s", file, where,
                       REPORT_MIX_MAX, n < 0 ? io_json_kind(mx) : "more");
    if (strcmp(t->kind, "gen"))
        return err_set("%s: %s.mixture: only a generation task (kind \"gen\") has mixture files (multiple choice mixes the choices' log-likelihoods)", file, where);
    t->mix_a = calloc((size_t)(n ? n : 1), sizeof *t->mix_a);
    t->mix_preds = calloc((size_t)(n ? n : 1), sizeof *t->mix_preds);
    if (!t->mix_a || !t->mix_preds) return err_set("out of memory");
    int i = 0;
    for (const cJSON *e = mx->child; e; e = e->next, i++) {
        static const char *const known[] = {"a", "preds", NULL};
        char w[160];
        snprintf(w, sizeof w, "%s.mixture[%d]", where, i);
        if (!cJSON_IsObject(e)) return err_set("%s: %s: expected an object, got %s", file, w, io_json_kind(e));
        if (check_keys(file, w, e, known) != 0) return -1;
        const cJSON *a = cJSON_GetObjectItemCaseSensitive(e, "a");
        if (!cJSON_IsNumber(a) || !(a->valuedouble >= 0 && a->valuedouble <= 1))
            return err_set("%s: %s.a: expected a number in [0, 1] (M1's weight)", file, w);
        if (i > 0 && !(a->valuedouble > t->mix_a[i - 1])) return err_set("%s: %s.a: expected the weights in increasing order", file, w);
        snprintf(w + strlen(w), sizeof w - strlen(w), ".preds");
        const cJSON *p = cJSON_GetObjectItemCaseSensitive(e, "preds");
        if (!p) return err_set("%s: %s: missing field (the mixture's prediction file)", file, w);
        if (get_path(file, w, p, dir, &t->mix_preds[i]) != 0) return -1;
        t->mix_a[i] = a->valuedouble;
        t->n_mix = i + 1;
    }
    return 0;
}

static int load_task(const char *file, int ti, const cJSON *o, const char *dir, ReportTask *t) {
    static const char *const known[] = {"name", "kind", "old", "new", "methods", "format", "metric", "mixture", NULL};
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
    return load_mixture(file, where, cJSON_GetObjectItemCaseSensitive(o, "mixture"), dir, t);
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
        for (int k = 0; k < t->n_mix; k++) free(t->mix_preds[k]);
        free(t->mix_preds);
        free(t->mix_a);
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
