/* update/update_plan.c - what `muscle update` runs and records (update.h): the method
 * presets, the methods list, update.json (the settings a resumed run must share) and
 * manifest.json (the report's input). */
#include "update/update_impl.h"

#include "core/error.h"
#include "core/file.h"
#include "core/hash.h"

#include <cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The presets: every compatibility method's own (its entry in compat/compat_method_list.h
 * names them), then the ones that are no loss of compatibility training. */
#define BOTH (UPDATE_FOR_MC | UPDATE_FOR_GEN)
static const UpdatePreset other_presets[] = {
    /* name   ce only  method        level               answer ce  kinds weight-space */
    {"ce",     1, COMPAT_STUDENT_WRONG, COMPAT_LEVEL_TOKEN, 0, 0, BOTH, UPDATE_WEIGHT_NONE, 0},
    {"interp", 0, COMPAT_NONE,          COMPAT_LEVEL_TOKEN, 0, 0, BOTH, UPDATE_WEIGHT_INTERP, 0},
    {"soup",   0, COMPAT_NONE,          COMPAT_LEVEL_TOKEN, 0, 0, BOTH, UPDATE_WEIGHT_SOUP, 0},
};
#undef BOTH
#define N_OTHER (sizeof other_presets / sizeof other_presets[0])
static UpdatePreset presets_all[COMPAT_N_METHODS * COMPAT_MAX_PRESETS + N_OTHER];
static size_t n_presets;

/* The table, made once from the methods' entries (static storage). */
static const UpdatePreset *presets_table(size_t *n) {
    if (!n_presets) {
        int nm;
        const CompatMethodDef *ms = compat_methods(&nm);
        for (int i = 0; i < nm; i++)
            for (int j = 0; j < COMPAT_MAX_PRESETS && ms[i].presets[j].name; j++) {
                const CompatPresetDef *d = &ms[i].presets[j];
                presets_all[n_presets++] = (UpdatePreset){d->name, 0, ms[i].id, d->level, d->answer_only, d->ce_weight,
                                                          compat_preset_kinds(d), UPDATE_WEIGHT_NONE, d->mixture_a};
            }
        for (size_t i = 0; i < N_OTHER; i++) presets_all[n_presets++] = other_presets[i];
    }
    *n = n_presets;
    return presets_all;
}

const UpdatePreset *update_presets(int *n) {
    size_t k;
    const UpdatePreset *p = presets_table(&k);
    *n = (int)k;
    return p;
}

/* A preset's settings as the finetune options they amount to (recorded in update.json
 * and the manifest); NULL for cross-entropy only. */
static char *preset_args(const UpdatePreset *p) {
    if (p->weight == UPDATE_WEIGHT_SOUP) return strdup("seed soup: (1/K) sum of the K new adapters, exact as one rank-K*r adapter");
    if (p->weight == UPDATE_WEIGHT_INTERP)
        return strdup("interpolation: (1-a) A2 + a A1 moved to v2 (exact rank-2r adapter), a in 0..1 step 0.1 chosen on --task-val");
    if (p->ce_only) return NULL;
    char buf[160];
    int n = snprintf(buf, sizeof buf, "--compat %s", compat_method_name(p->method));
    if (p->answer_only) n += snprintf(buf + n, sizeof buf - (size_t)n, " --distill-tokens answer");
    if (p->level != COMPAT_LEVEL_TOKEN) n += snprintf(buf + n, sizeof buf - (size_t)n, " --level %s", compat_level_name(p->level));
    if (p->ce_weight != 0) n += snprintf(buf + n, sizeof buf - (size_t)n, " --ce-weight %g", p->ce_weight);
    if (p->mixture_a > 0) snprintf(buf + n, sizeof buf - (size_t)n, " --mixture-weight %g", p->mixture_a);
    return strdup(buf);
}

/* "a, b, c": every preset's name (static storage). */
static const char *preset_names(void) {
    static char buf[1024];
    size_t k = 0;
    buf[0] = 0;
    size_t np;
    const UpdatePreset *presets = presets_table(&np);
    for (size_t i = 0; i < np && k < sizeof buf; i++)
        k += (size_t)snprintf(buf + k, sizeof buf - k, "%s%s", i ? ", " : "", presets[i].name);
    return buf;
}

int update_preset_teaches_with_new(const UpdatePreset *p) {
    return p && !p->ce_only && (compat_method_def(p->method)->teachers & (COMPAT_TEACH_ENSEMBLE | COMPAT_TEACH_MIXTURE));
}

char *update_presets_help(void) {
    size_t cap = 4096, k = 0;
    char *buf = malloc(cap);
    if (!buf) return NULL;
    buf[0] = 0;
    size_t np;
    const UpdatePreset *presets = presets_table(&np);
    for (size_t i = 0; i < np; i++) {
        const UpdatePreset *p = &presets[i];
        char *args = preset_args(p);
        const char *kind = p->kinds == UPDATE_FOR_MC ? " (multiple choice)" : p->kinds == UPDATE_FOR_GEN ? " (generation)" : "";
        int n = snprintf(buf + k, cap - k, "                          %-19s %s%s\n", p->name,
                         args ? args : "more cross-entropy training only (a control)", kind);
        free(args);
        if (n < 0 || (size_t)n >= cap - k) break;
        k += (size_t)n;
    }
    return buf;
}

static int method_name_ok(const char *s) {
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') || *s == '-' || *s == '_')) return 0;
    return 1;
}

/* One word of the list into m: 0, 1 (skipped: for the other task kind) or -1. */
static int method_parse(const UpdateSpec *u, char *w, UpdateMethod *m) {
    char *eq = strchr(w, '=');
    if (eq) {
        *eq = 0;
        m->name = strdup(w);
        m->args = strdup(eq + 1);
        return 0;
    }
    /* interp-NAME: (1 - a) A2 + a (method NAME's adapter); soup-NAME: preset NAME trained from the soup */
    size_t np;
    const UpdatePreset *presets = presets_table(&np);
    int interp = !strncmp(w, "interp-", 7), soup = !strncmp(w, "soup-", 5);
    if (interp || soup) {
        const char *rest = w + (interp ? 7 : 5);
        const UpdatePreset *base = NULL;
        for (size_t i = 0; i < np; i++)
            if (!strcmp(presets[i].name, rest)) base = &presets[i];
        if (soup && (!base || base->weight != UPDATE_WEIGHT_NONE))
            return err_set("--methods: '%s': soup-NAME needs NAME a trained preset (e.g. soup-choice, soup-ce)", w);
        if (interp && !*rest) return err_set("--methods: '%s': interp-NAME needs the name of another method of the list", w);
        if (base && !(base->kinds & (u->kind == TASK_MC ? UPDATE_FOR_MC : UPDATE_FOR_GEN))) {
            fprintf(stderr, "muscle update: method '%s' is for %s: skipped\n", w, u->kind == TASK_MC ? "generation" : "multiple choice");
            return 1;
        }
        m->name = strdup(w);
        if (interp) {
            for (size_t i = 0; i < np; i++)
                if (presets[i].weight == UPDATE_WEIGHT_INTERP) m->preset = &presets[i];
            m->interp_with = strdup(rest);
            m->args = update_pathf("interpolation: (1-a) A2 + a X, X = the adapter of '%s' (exact rank-sum adapter), a in 0..1 "
                                   "step 0.1 chosen on --task-val", rest);
        } else {
            char *pa = preset_args(base);
            m->preset = base;
            m->soup_init = 1;
            m->args = update_pathf("%s, trained from the seed soup", pa ? pa : "cross-entropy only");
            free(pa);
        }
        return 0;
    }
    for (size_t i = 0; i < np; i++) {
        const UpdatePreset *p = &presets[i];
        if (strcmp(p->name, w)) continue;
        if (!(p->kinds & (u->kind == TASK_MC ? UPDATE_FOR_MC : UPDATE_FOR_GEN))) {
            fprintf(stderr, "muscle update: method '%s' is for %s; %s is a %s task: skipped\n", w,
                    u->kind == TASK_MC ? "generation" : "multiple choice", u->train, u->kind == TASK_MC ? "multiple-choice" : "generation");
            return 1;
        }
        m->name = strdup(p->name);
        m->preset = p;
        m->args = preset_args(p);
        return 0;
    }
    return err_set("--methods: unknown method '%s' (presets: %s; interp-METHOD, soup-METHOD; all; or NAME=ARGS)", w, preset_names());
}

int update_read_kind(UpdateSpec *u) {
    TaskLoadOptions lo;
    task_load_options_default(&lo);
    if (u->format && task_format_from_name(u->format, &lo.format) != 0) return -1;
    TaskSet ts;
    if (task_set_load(&ts, u->train, &lo) != 0) return -1;
    u->kind = ts.kind;
    task_set_free(&ts);
    return 0;
}

/* The first id of ts given twice: -1 with err_set naming both lines. */
static int ids_unique(const TaskSet *ts) {
    int n = ts->n;
    const char **ids = malloc((size_t)(n ? n : 1) * sizeof *ids);
    int *lines = malloc((size_t)(n ? n : 1) * sizeof *lines);
    int rc = ids && lines ? 0 : err_set("out of memory");
    for (int i = 0; rc == 0 && i < n; i++) {
        ids[i] = ts->kind == TASK_MC ? ts->mc[i].id : ts->gen[i].id;
        lines[i] = ts->kind == TASK_MC ? ts->mc[i].line : ts->gen[i].line;
    }
    /* n log n would need a sort with the lines; task files are small: a hash set of indices */
    size_t cap = 16;
    while (cap < (size_t)n * 2) cap *= 2;
    int *slot = rc == 0 ? malloc(cap * sizeof *slot) : NULL;
    if (rc == 0 && !slot) rc = err_set("out of memory");
    for (size_t i = 0; rc == 0 && i < cap; i++) slot[i] = -1;
    for (int i = 0; rc == 0 && i < n; i++) {
        if (!ids[i]) continue;
        size_t h = (size_t)hash_fnv64_str(ids[i]);
        for (size_t k = h & (cap - 1);; k = (k + 1) & (cap - 1)) {
            if (slot[k] < 0) { slot[k] = i; break; }
            if (!strcmp(ids[slot[k]], ids[i])) {
                rc = err_set("%s: id \"%.80s\" appears twice (lines %d and %d): ids must be unique (predictions are paired by id)",
                             ts->path, ids[i], lines[slot[k]], lines[i]);
                break;
            }
        }
    }
    free(slot);
    free(ids);
    free(lines);
    return rc;
}

/* Whether the run pairs validation predictions by id: a count of compatibility epochs, an
 * interpolation's a or a generation mixture's a is chosen on --task-val. */
static int val_paired(const UpdateSpec *u) {
    return u->val && (update_epochs_steps(u) > 0 || update_mixval_steps(u) > 0 || update_weight_interps(u) > 0);
}

int update_check_inputs(const UpdateSpec *u) {
    TaskLoadOptions lo;
    task_load_options_default(&lo);
    if (u->format && task_format_from_name(u->format, &lo.format) != 0) return -1;
    /* the test file's name is the report's task name: printable (it reaches the terminal) */
    for (const char *c = u->test; *c; c++)
        if ((unsigned char)*c < 0x20 || *c == 0x7f)
            return err_set("--task-test: the file name holds a control character (0x%02x): rename it", (unsigned)*c);
    for (int i = 0; i < u->n_methods; i++) { /* a user's method trains into RUN_DIR/adapters/NAME-sK, never elsewhere */
        const char *a = u->methods[i].preset ? NULL : u->methods[i].args;
        for (const char *w = a; w && (w = strstr(w, "--out")); w += 5)
            if ((w == a || w[-1] == ' ') && (w[5] == 0 || w[5] == ' ' || w[5] == '='))
                return err_set("--methods: '%s' gives --out: a method's adapter is written inside RUN_DIR", u->methods[i].name);
    }
    for (int i = 0; i < u->n_methods; i++)
        if (update_preset_teaches_with_new(u->methods[i].preset) && strchr(u->out, ','))
            return err_set("--out '%s': method '%s' needs a folder without a comma (its teacher's adapters are passed as a comma-separated list)",
                           u->out, u->methods[i].name);
    if (update_weight_check(u) != 0 || update_epochs_check(u) != 0) return -1;
    const char *files[4] = {u->train, u->val, u->test, u->transfer};
    const char *what[4] = {"--task-train", "--task-val", "--task-test", "--transfer"};
    int rc = 0;
    for (int i = 0; rc == 0 && i < 4; i++) {
        if (!files[i]) continue;
        TaskSet ts;
        TaskPrompt p;
        memset(&p, 0, sizeof p);
        if (task_set_load(&ts, files[i], &lo) != 0) return err_prefix("%s", what[i]);
        if (i < 3 && ts.kind != u->kind)
            rc = err_set("%s %s is a %s task, --task-train a %s one", what[i], files[i], ts.kind == TASK_MC ? "multiple-choice" : "generation",
                         u->kind == TASK_MC ? "multiple-choice" : "generation");
        /* the test set's predictions are paired by id, the validation set's when a choice is made on it;
         * training files may repeat an id (a package in two sections) */
        if (rc == 0 && (i == 2 || (i == 1 && val_paired(u))) && ids_unique(&ts) != 0) rc = err_prefix("%s", what[i]);
        if (rc == 0 && i < 3 && task_prompt_setup(&p, &ts, u->prompt_file, u->prompt, u->answer, NULL, 0) != 0) rc = err_prefix("%s", what[i]);
        task_prompt_free(&p);
        task_set_free(&ts);
    }
    return rc;
}

int update_methods_parse(UpdateSpec *u, const char *list) {
    if (!list) list = u->kind == TASK_MC ? "muscle,choice" : "muscle";
    char *c = strdup(list), *save = NULL;
    int rc = 0;
    size_t np;
    const UpdatePreset *presets = presets_table(&np);
    for (char *w = strtok_r(c, ",", &save); w && rc == 0; w = strtok_r(NULL, ",", &save)) {
        while (*w == ' ') w++;
        if (!*w) continue;
        if (!strcmp(w, "all")) { /* every preset for this task kind */
            for (size_t i = 0; rc == 0 && i < np; i++) {
                const UpdatePreset *p = &presets[i];
                int dup = 0;
                if (!(p->kinds & (u->kind == TASK_MC ? UPDATE_FOR_MC : UPDATE_FOR_GEN))) continue;
                /* interp needs a validation split and the old adapter (update_weight.c): in `all` only when given */
                if (p->weight == UPDATE_WEIGHT_INTERP && (!u->val || !u->old_adapter)) continue;
                for (int j = 0; j < u->n_methods; j++) dup |= !strcmp(u->methods[j].name, p->name);
                if (dup) continue;
                UpdateMethod *g = realloc(u->methods, (size_t)(u->n_methods + 1) * sizeof *g);
                if (!g) abort();
                u->methods = g;
                u->methods[u->n_methods++] = (UpdateMethod){.name = strdup(p->name), .preset = p, .args = preset_args(p)};
            }
            continue;
        }
        UpdateMethod m = {0};
        int r = method_parse(u, w, &m);
        if (r == 1) continue;
        if (r < 0) rc = -1;
        else if (!method_name_ok(m.name)) rc = err_set("--methods: name '%s': use letters, digits, '-' and '_'", m.name);
        for (int i = 0; rc == 0 && i < u->n_methods; i++)
            if (!strcmp(u->methods[i].name, m.name)) rc = err_set("--methods: '%s' is named twice", m.name);
        if (rc == 0) {
            UpdateMethod *g = realloc(u->methods, (size_t)(u->n_methods + 1) * sizeof *g);
            if (!g) abort();
            u->methods = g;
            u->methods[u->n_methods++] = m;
        } else {
            free(m.name);
            free(m.args);
            free(m.interp_with);
        }
    }
    free(c);
    if (rc == 0 && u->n_methods == 0) rc = err_set("--methods: no method to run");
    return rc;
}

/* The settings that define the run (a resumed run must have the same). */
static cJSON *settings_json(const UpdateSpec *u) {
    cJSON *j = cJSON_CreateObject();
#define S(k, v) if (v) cJSON_AddStringToObject(j, k, v)
    S("old_model", u->old_model); S("old_adapter", u->old_adapter); S("new_model", u->new_model);
    S("new_adapter", u->new_adapter); S("task_train", u->train); S("task_val", u->val); S("task_test", u->test);
    S("transfer", u->transfer); S("format", u->format); S("prompt", u->prompt); S("answer", u->answer);
    S("prompt_file", u->prompt_file); S("epochs", u->epochs.text); S("lr", u->lr.text); S("batch", u->batch.text);
    S("grad_accum", u->grad_accum.text); S("seq_len", u->seq_len.text); S("rank", u->rank.text);
    S("compat_epochs", u->compat_epochs.text); S("compat_lr", u->compat_lr.text); S("max_tokens", u->max_tokens.text);
    S("mixture_weights", u->mixture_weights.text); S("ce_weights", u->ce_weights.text);
    S("limit", u->limit.text);
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

/* The first setting that differs between a run folder's update.json and now (NULL:
 * none; seeds and methods may be added, but a method already there keeps its arguments). */
static const char *settings_differ(const cJSON *before, const cJSON *now) {
    static char mdiff[160];
    for (cJSON *it = now->child; it; it = it->next) {
        if (!strcmp(it->string, "seeds") || !strcmp(it->string, "methods")) continue;
        cJSON *b = cJSON_GetObjectItemCaseSensitive(before, it->string);
        if (!b || !cJSON_Compare(b, it, 1)) return it->string;
    }
    for (cJSON *it = before->child; it; it = it->next)
        if (!cJSON_GetObjectItemCaseSensitive(now, it->string)) return it->string;
    cJSON *mb = cJSON_GetObjectItemCaseSensitive(before, "methods"), *mn = cJSON_GetObjectItemCaseSensitive(now, "methods");
    for (cJSON *it = mn ? mn->child : NULL; it; it = it->next) {
        cJSON *b = mb ? cJSON_GetObjectItemCaseSensitive(mb, it->string) : NULL;
        if (b && !cJSON_Compare(b, it, 1)) {
            snprintf(mdiff, sizeof mdiff, "method %s", it->string);
            return mdiff;
        }
    }
    return NULL;
}

/* A run folder is resumed only with the same settings, except that seeds and methods
 * may be added: update.json keeps the union of the methods seen and the largest number of seeds. */
int update_check_settings(const UpdateSpec *u) {
    char *path = update_pathf("%s/update.json", u->out);
    cJSON *now = settings_json(u);
    int rc = 0;
    if (update_exists(path)) {
        size_t n;
        char *old = file_read_all(path, &n, 1 << 20);
        cJSON *before = old ? cJSON_Parse(old) : NULL;
        const char *diff = NULL;
        if (!before || !cJSON_IsObject(before)) {
            rc = err_set("%s: not a JSON settings file of muscle update; use another --out", path);
        } else if ((diff = settings_differ(before, now))) {
            rc = err_set("%s holds a run with other settings (\"%s\" differs): give the same options to resume it (seeds and methods may be added), or another --out", u->out, diff);
        } else { /* the union, written back */
            cJSON *mb = cJSON_GetObjectItemCaseSensitive(before, "methods"), *mn = cJSON_GetObjectItemCaseSensitive(now, "methods");
            for (cJSON *it = mb ? mb->child : NULL; it; it = it->next)
                if (!cJSON_GetObjectItemCaseSensitive(mn, it->string)) cJSON_AddItemToObject(mn, it->string, cJSON_Duplicate(it, 1));
            cJSON *sb = cJSON_GetObjectItemCaseSensitive(before, "seeds"), *sn = cJSON_GetObjectItemCaseSensitive(now, "seeds");
            if (cJSON_IsNumber(sb) && sb->valuedouble > sn->valuedouble) cJSON_SetNumberValue(sn, sb->valuedouble);
        }
        cJSON_Delete(before);
        free(old);
    }
    if (rc == 0) rc = write_json(path, now);
    free(path);
    cJSON_Delete(now);
    return rc;
}

static void add_seed_paths(cJSON *arr, const char *name, long seeds) {
    for (long k = 1; k <= seeds; k++) {
        char *p = update_pathf("preds/%s-s%ld.jsonl", name, k);
        cJSON_AddItemToArray(arr, cJSON_CreateString(p));
        free(p);
    }
}

/* The base's family and tokenizer as its eval step recorded them ("base" of the summary
 * JSON; "" when absent): the title names both, as an update may change the tokenizer. */
static char *eval_base(const UpdateSpec *u, const char *name) {
    char *p = update_pathf("%s/preds/%s.eval.json", u->out, name), *r = NULL;
    cJSON *j = update_read_json(p, NULL);
    const cJSON *b = cJSON_GetObjectItemCaseSensitive(j, "base");
    r = update_pathf(cJSON_IsString(b) ? " (%s)" : "%s", cJSON_IsString(b) ? b->valuestring : "");
    cJSON_Delete(j);
    free(p);
    return r;
}

int update_write_manifest(const UpdateSpec *u) {
    cJSON *j = cJSON_CreateObject(), *tasks = cJSON_AddArrayToObject(j, "tasks"), *t = cJSON_CreateObject();
    char *b1 = eval_base(u, "old"), *b2 = eval_base(u, "new-s1");
    char *title = update_pathf("muscle update: %s%s \u2192 %s%s on %s", u->old_model, b1 ? b1 : "", u->new_model, b2 ? b2 : "", u->test);
    free(b1);
    free(b2);
    cJSON_AddStringToObject(j, "title", title ? title : "muscle update");
    free(title);
    const char *base = strrchr(u->test, '/');
    cJSON_AddStringToObject(t, "name", base ? base + 1 : u->test);
    cJSON_AddStringToObject(t, "kind", u->kind == TASK_MC ? "mc" : "gen");
    cJSON_AddStringToObject(t, "old", "preds/old.jsonl");
    cJSON *nw = cJSON_AddObjectToObject(t, "new");
    cJSON_AddStringToObject(nw, "name", "M2");
    add_seed_paths(cJSON_AddArrayToObject(nw, "preds"), "new", u->seeds);
    cJSON *ms = cJSON_AddArrayToObject(t, "methods");
    for (int i = 0; i < u->n_methods; i++) {
        cJSON *m = cJSON_CreateObject();
        cJSON_AddStringToObject(m, "name", u->methods[i].name);
        char *sweep = NULL, *set = NULL;
        double mix_a;
        if (update_mixval_applies(u, &u->methods[i]) && update_mixval_read(u, &mix_a, &sweep) == 0 && sweep) /* its a chosen on validation (update_mixgen.c), and the sweep */
            set = update_pathf("%s; %s", u->methods[i].args ? u->methods[i].args : "", sweep);
        const char *base = set ? set : u->methods[i].args ? u->methods[i].args : "cross-entropy only";
        char *ep = update_epochs_note(u, &u->methods[i]), *both = ep ? update_pathf("%s; %s", base, ep) : NULL; /* update_epochs.c */
        cJSON_AddStringToObject(m, "settings", both ? both : base);
        free(both);
        free(ep);
        free(set);
        free(sweep);
        add_seed_paths(cJSON_AddArrayToObject(m, "preds"), u->methods[i].name, u->seeds);
        if (u->methods[i].preset && u->methods[i].preset->weight == UPDATE_WEIGHT_INTERP) { /* update_weight.c's sweeps */
            cJSON *sw = cJSON_AddArrayToObject(m, "sweeps");
            for (long k = 1; k <= u->seeds; k++) {
                char *p = update_pathf("preds/%s-s%ld.sweep.json", u->methods[i].name, k);
                cJSON_AddItemToArray(sw, cJSON_CreateString(p));
                free(p);
            }
        }
        cJSON_AddItemToArray(ms, m);
    }
    /* the inference-time mixture of generators (update_mixgen.c): the files it wrote */
    cJSON *mx = NULL;
    for (int g = 0; g < update_mixgen_steps(u); g++) {
        char *rel = update_mixgen_preds(update_mixgen_grid[g], ""), *abs = rel ? update_pathf("%s/%s", u->out, rel) : NULL;
        if (abs && update_exists(abs)) {
            cJSON *e = cJSON_CreateObject();
            cJSON_AddNumberToObject(e, "a", update_mixgen_grid[g]);
            cJSON_AddStringToObject(e, "preds", rel);
            if (!mx) mx = cJSON_AddArrayToObject(t, "mixture");
            cJSON_AddItemToArray(mx, e);
        }
        free(rel);
        free(abs);
    }
    cJSON_AddItemToArray(tasks, t);
    char *path = update_pathf("%s/manifest.json", u->out);
    int rc = path ? write_json(path, j) : err_set("out of memory");
    free(path);
    cJSON_Delete(j);
    return rc;
}
