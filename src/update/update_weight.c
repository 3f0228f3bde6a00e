/* update/update_weight.c - the weight-space methods of `muscle update` (update_impl.h):
 * adapters combined exactly from others (model/lora_combine.h), no training of their own.
 *
 *   soup          (1/K) sum_k A2_k, one rank-K*r adapter (adapters/soup-all), the same for
 *                 every seed k (adapters/soup-sK); soup-NAME trains preset NAME from it.
 *   interp        (1 - a) A2_k + a A1, A1 (trained on v1) moved to v2 where the shapes match;
 *   interp-NAME   (1 - a) A2_k + a X_k, X_k = method NAME's adapter of seed k.
 * An interpolation is evaluated at a = 0, 0.1, ..., 1 on the validation split (--task-val)
 * and the test split; a is chosen on validation: the lowest NFR (against M1 on the same
 * split) among the a whose accuracy (mean score) is at least M2's minus the tolerance
 * (--max-acc-drop, default 0.5 points), the smaller a on a tie. a = 0 is A2 itself, so
 * some a always qualifies. The whole sweep goes to preds/NAME-sK.sweep.json:
 *   {"method", "seed", "with", "tolerance", "chosen_a",
 *    "m2": {"val_acc", "val_nfr", "test_acc", "test_nfr"},
 *    "points": [{"a", "val_acc", "val_nfr", "test_acc", "test_nfr"}, ...]}
 * (fractions; NFR against M1; accuracy is the mean score for generation).
 */
#include "update/update_impl.h"

#include "core/dist.h"
#include "core/error.h"
#include "core/file.h"
#include "metrics/compat.h"
#include "metrics/preds.h"
#include "model/lora_combine.h"
#include "model/lora_peft.h"

#include <cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define GRID_N 11 /* a = 0, 0.1, ..., 1 */
static double grid_a(int g) { return g / 10.0; }

static int is_weight(const UpdateMethod *m, UpdateWeightOp op) { return m->preset && m->preset->weight == op; }

int update_method_trained(const UpdateMethod *m) { return !(m->preset && m->preset->weight != UPDATE_WEIGHT_NONE); }

static int needs_soup(const UpdateSpec *u) {
    for (int i = 0; i < u->n_methods; i++)
        if (is_weight(&u->methods[i], UPDATE_WEIGHT_SOUP) || u->methods[i].soup_init) return 1;
    return 0;
}

int update_weight_interps(const UpdateSpec *u) {
    int n = 0;
    for (int i = 0; i < u->n_methods; i++) n += is_weight(&u->methods[i], UPDATE_WEIGHT_INTERP);
    return n;
}

int update_weight_check(const UpdateSpec *u) {
    for (int i = 0; i < u->n_methods; i++) {
        const UpdateMethod *m = &u->methods[i];
        if (!is_weight(m, UPDATE_WEIGHT_INTERP)) continue;
        if (!u->val)
            return err_set("--methods: '%s' chooses its weight on a validation split: give --task-val (held-out labelled instances)", m->name);
        if (!m->interp_with && !u->old_adapter)
            return err_set("--methods: 'interp' interpolates with the old adapter: give --old-adapter (or interp-NAME with a method NAME)");
        if (m->interp_with) {
            int found = 0;
            for (int j = 0; j < u->n_methods; j++)
                if (!strcmp(u->methods[j].name, m->interp_with)) {
                    found = 1;
                    if (is_weight(&u->methods[j], UPDATE_WEIGHT_INTERP))
                        return err_set("--methods: '%s': '%s' is itself an interpolation", m->name, m->interp_with);
                }
            if (!found) return err_set("--methods: '%s' interpolates with method '%s': add it to --methods", m->name, m->interp_with);
        }
    }
    if (needs_soup(u) && u->seeds < 2)
        fprintf(stderr, "muscle update: note: a seed soup of %ld seed is the new adapter itself (use --seeds 2 or more)\n", u->seeds);
    return 0;
}

int update_weight_steps(const UpdateSpec *u) {
    long K = u->seeds;
    int w = 0;
    for (int i = 0; i < u->n_methods; i++) w += u->methods[i].preset && u->methods[i].preset->weight != UPDATE_WEIGHT_NONE;
    int ni = update_weight_interps(u);
    /* no training steps for the weight-space methods; per interpolation and seed 2 x 11 evaluations,
     * plus M1 and each M2 on both splits; one step for the soup */
    return (int)(-K * w + (ni ? 2 * (1 + K) + K * ni * 2 * GRID_N : 0) + (needs_soup(u) ? 1 : 0));
}

/* A done adapter folder (both files). */
static int adapter_done(const char *dir) {
    char *a = update_pathf("%s/adapter_model.safetensors", dir), *c = update_pathf("%s/adapter_config.json", dir);
    int ok = update_exists(a) && update_exists(c);
    free(a);
    free(c);
    return ok;
}

/* out_dir = sum_i w[i] * adapter dirs[i] (cfgs[i]: the config each was trained for; c: v2's). */
static int combine_dirs(const char *out_dir, const ModelConfig *c, const char *const *dirs, const ModelConfig *const *cfgs,
                        const double *w, int n, const char *base_name, const char *what) {
    LoraAdapter *in = calloc((size_t)n, sizeof *in), out;
    const LoraAdapter **pin = calloc((size_t)n, sizeof *pin);
    if (!in || !pin) {
        free(in);
        free(pin);
        return err_set("out of memory");
    }
    int rc = 0, loaded = 0, skipped = 0;
    for (; rc == 0 && loaded < n; loaded++) {
        if (lora_load_peft(&in[loaded], cfgs[loaded], dirs[loaded]) != 0) {
            rc = err_prefix("%s", dirs[loaded]);
            break;
        }
        pin[loaded] = &in[loaded];
    }
    if (rc == 0 && lora_combine(&out, c, pin, w, n, 1, &skipped) == 0) {
        LoraMeta meta[] = {{"muscle.combine", what}};
        if (skipped) fprintf(stderr, "muscle update: %s: %d matrices of another shape left out\n", out_dir, skipped);
        rc = lora_save_peft(&out, c, out_dir, base_name, meta, 1);
        lora_free(&out);
    } else if (rc == 0) {
        rc = err_prefix("%s", out_dir);
    }
    for (int i = 0; i < loaded; i++) lora_free(&in[i]);
    free(in);
    free(pin);
    return rc;
}

static int load_config(Model *m, const char *path, const char *what) {
    if (model_load(m, path, NULL) != 0) return err_prefix("%s %s", what, path);
    return 0;
}

int update_weight_soups(UpdateRun *r) {
    const UpdateSpec *u = r->u;
    if (!needs_soup(u)) return 0;
    r->step++;
    char *all = update_pathf("%s/adapters/soup-all", u->out);
    int rc = 0;
    Model m2;
    memset(&m2, 0, sizeof m2);
    int have_model = 0;
    if (!adapter_done(all)) {
        fprintf(stderr, "muscle update: [%d/%d] seed soup of %ld new adapters\n", r->step, r->n_steps, u->seeds);
        rc = load_config(&m2, u->new_model, "--new-model");
        have_model = rc == 0;
        char **dirs = calloc((size_t)u->seeds, sizeof *dirs);
        const ModelConfig **cfgs = calloc((size_t)u->seeds, sizeof *cfgs);
        double *w = calloc((size_t)u->seeds, sizeof *w);
        if (!dirs || !cfgs || !w) rc = err_set("out of memory");
        for (long k = 1; rc == 0 && k <= u->seeds; k++) {
            dirs[k - 1] = update_new_adapter(u, k);
            cfgs[k - 1] = &m2.cfg;
            w[k - 1] = 1.0 / (double)u->seeds;
        }
        char what[64];
        snprintf(what, sizeof what, "mean of %ld seeds", u->seeds);
        if (rc == 0) rc = combine_dirs(all, &m2.cfg, (const char *const *)dirs, cfgs, w, (int)u->seeds, u->new_model, what);
        for (long k = 0; dirs && k < u->seeds; k++) free(dirs[k]);
        free(dirs);
        free(cfgs);
        free(w);
    } else if (!u->quiet) {
        fprintf(stderr, "muscle update: [%d/%d] seed soup: done before\n", r->step, r->n_steps);
    }
    /* the soup method's adapter of every seed: the same soup */
    for (int i = 0; rc == 0 && i < u->n_methods; i++) {
        if (!is_weight(&u->methods[i], UPDATE_WEIGHT_SOUP)) continue;
        for (long k = 1; rc == 0 && k <= u->seeds; k++) {
            char *dir = update_pathf("%s/adapters/%s-s%ld", u->out, u->methods[i].name, k);
            if (!adapter_done(dir)) {
                if (!have_model && (rc = load_config(&m2, u->new_model, "--new-model")) == 0) have_model = 1;
                const char *dirs[1] = {all};
                const ModelConfig *cfgs[1] = {&m2.cfg};
                double w[1] = {1};
                if (rc == 0) rc = combine_dirs(dir, &m2.cfg, dirs, cfgs, w, 1, u->new_model, "seed soup");
            }
            free(dir);
        }
    }
    if (have_model) model_free(&m2);
    free(all);
    return rc ? update_fail() : 0;
}

/* The adapter folder and preds name of interpolation m, seed k, grid point g. */
static char *sweep_name(const UpdateMethod *m, long k, int g) { return update_pathf("%s-s%ld-a%02d", m->name, k, g); }

int update_eval_m1_m2(UpdateRun *r, int test) {
    const UpdateSpec *u = r->u;
    const char *task = test ? u->test : u->val, *sfx = test ? "" : ".val", *sname = test ? "test" : "validation";
    char *name = update_pathf("old%s", sfx), *what = update_pathf("eval of M1 on the %s split", sname);
    int rc = update_eval_model(r, what, u->old_model, u->old_adapter, name, task);
    free(name);
    free(what);
    for (long k = 1; rc == 0 && k <= u->seeds; k++) {
        char *ad = update_new_adapter(u, k);
        name = update_pathf("new-s%ld%s", k, sfx);
        what = update_pathf("eval of M2 seed %ld on the %s split", k, sname);
        rc = update_eval_model(r, what, u->new_model, ad, name, task);
        free(ad);
        free(name);
        free(what);
    }
    return rc;
}

int update_weight_sweeps(UpdateRun *r) {
    const UpdateSpec *u = r->u;
    if (!update_weight_interps(u)) return 0;
    /* M1 and M2 on both splits (the test split's under the names of the evaluation phase, which
     * then finds them done): the choice of a needs the validation split's, the sweep files the test split's */
    int rc = 0;
    for (int split = 0; rc == 0 && split < 2; split++) rc = update_eval_m1_m2(r, split);
    Model m1, m2;
    int have1 = 0, have2 = 0;
    for (int i = 0; rc == 0 && i < u->n_methods; i++) {
        const UpdateMethod *m = &u->methods[i];
        if (!is_weight(m, UPDATE_WEIGHT_INTERP)) continue;
        for (long k = 1; rc == 0 && k <= u->seeds; k++)
            for (int g = 0; rc == 0 && g < GRID_N; g++) {
                char *name = sweep_name(m, k, g), *dir = update_pathf("%s/adapters/%s", u->out, name);
                for (int split = 0; rc == 0 && split < 2; split++) {
                    /* the combined adapter, made by the rank whose step this is, when missing */
                    int mine = r->step % dist_size() == dist_rank();
                    if (mine && !adapter_done(dir)) {
                        if (!have2 && (rc = load_config(&m2, u->new_model, "--new-model")) == 0) have2 = 1;
                        if (rc == 0 && !m->interp_with && !have1 && (rc = load_config(&m1, u->old_model, "--old-model")) == 0) have1 = 1;
                        char *a2 = update_new_adapter(u, k);
                        char *x = m->interp_with ? update_pathf("%s/adapters/%s-s%ld", u->out, m->interp_with, k) : strdup(u->old_adapter);
                        const char *dirs[2] = {a2, x};
                        const ModelConfig *cfgs[2] = {&m2.cfg, m->interp_with ? &m2.cfg : &m1.cfg};
                        double w[2] = {1 - grid_a(g), grid_a(g)};
                        char what[96];
                        snprintf(what, sizeof what, "%.1f * A2 seed %ld + %.1f * %s", w[0], k, w[1], m->interp_with ? m->interp_with : "A1");
                        if (rc == 0) rc = combine_dirs(dir, &m2.cfg, dirs, cfgs, w, 2, u->new_model, what);
                        if (rc) rc = update_fail();
                        free(a2);
                        free(x);
                    }
                    if (rc) break;
                    char *pn = split ? strdup(name) : update_pathf("%s.val", name);
                    char *what = update_pathf("eval of '%s' seed %ld at a = %.1f on the %s split", m->name, k, grid_a(g), split ? "test" : "validation");
                    rc = update_eval_model(r, what, u->new_model, dir, pn, split ? u->test : u->val);
                    free(pn);
                    free(what);
                }
                free(name);
                free(dir);
            }
    }
    if (have1) model_free(&m1);
    if (have2) model_free(&m2);
    return rc;
}

/* Accuracy (mean score) of `new` and its NFR against `old`, from two prediction files. */
int update_pair_stats(const UpdateSpec *u, const char *old, const char *new, double *acc, double *nfr) {
    PredFile a, b;
    memset(&a, 0, sizeof a);
    memset(&b, 0, sizeof b);
    size_t *idx = NULL;
    CompatInstance *x = NULL;
    int rc = preds_read(&a, old) != 0 || preds_read(&b, new) != 0 || preds_match(&a, &b, &idx) != 0 ? -1 : 0;
    int gen = u->kind == TASK_GEN;
    if (rc == 0 && !(x = calloc(a.n ? a.n : 1, sizeof *x))) rc = err_set("out of memory");
    for (size_t i = 0; rc == 0 && i < a.n; i++) {
        const PredRecord *ra = &a.rec[i], *rb = &b.rec[idx[i]];
        x[i] = (CompatInstance){gen ? -1 : ra->correct, gen ? -1 : rb->correct, gen ? ra->score : NAN, gen ? rb->score : NAN, -1};
    }
    CompatOptions o;
    compat_options_default(&o);
    o.bootstrap = 0;
    CompatReport cr;
    if (rc == 0 && compat_compute(x, a.n, &o, &cr) == 0) {
        *acc = gen ? cr.mean2.value : cr.acc2.value;
        *nfr = gen ? cr.cnfr.value : cr.nfr.value;
    } else if (rc == 0) {
        rc = -1;
    }
    free(x);
    free(idx);
    preds_free(&a);
    preds_free(&b);
    return rc;
}

static cJSON *stats_json(double va, double vn, double ta, double tn) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "val_acc", va);
    cJSON_AddNumberToObject(o, "val_nfr", vn);
    cJSON_AddNumberToObject(o, "test_acc", ta);
    cJSON_AddNumberToObject(o, "test_nfr", tn);
    return o;
}

/* One interpolation, one seed: choose a, write the sweep, the chosen adapter and predictions. */
static int choose_one(const UpdateSpec *u, const UpdateMethod *m, long k, double tol) {
    const char *p = u->out;
    char *old_val = update_pathf("%s/preds/old.val.jsonl", p), *old_test = update_pathf("%s/preds/old.jsonl", p);
    char *m2_val = update_pathf("%s/preds/new-s%ld.val.jsonl", p, k), *m2_test = update_pathf("%s/preds/new-s%ld.jsonl", p, k);
    double m2va, m2vn, m2ta, m2tn, va[GRID_N], vn[GRID_N], ta[GRID_N], tn[GRID_N];
    int rc = update_pair_stats(u, old_val, m2_val, &m2va, &m2vn);
    if (rc == 0) rc = update_pair_stats(u, old_test, m2_test, &m2ta, &m2tn);
    for (int g = 0; rc == 0 && g < GRID_N; g++) {
        char *name = sweep_name(m, k, g);
        char *pv = update_pathf("%s/preds/%s.val.jsonl", p, name), *pt = update_pathf("%s/preds/%s.jsonl", p, name);
        rc = update_pair_stats(u, old_val, pv, &va[g], &vn[g]);
        if (rc == 0) rc = update_pair_stats(u, old_test, pt, &ta[g], &tn[g]);
        free(name);
        free(pv);
        free(pt);
    }
    int best = rc == 0 ? compat_choose_on_val(va, vn, GRID_N, m2va, tol, COMPAT_VAL_FIRST) : 0; /* none: a = 0, A2 itself (only float rounding can move its accuracy) */
    cJSON *j = rc == 0 ? cJSON_CreateObject() : NULL;
    if (j) {
        cJSON_AddStringToObject(j, "method", m->name);
        cJSON_AddNumberToObject(j, "seed", (double)k);
        cJSON_AddStringToObject(j, "with", m->interp_with ? m->interp_with : "A1");
        cJSON_AddNumberToObject(j, "tolerance", tol);
        cJSON_AddNumberToObject(j, "chosen_a", grid_a(best));
        cJSON_AddItemToObject(j, "m2", stats_json(m2va, m2vn, m2ta, m2tn));
        cJSON *pts = cJSON_AddArrayToObject(j, "points");
        for (int g = 0; g < GRID_N; g++) {
            cJSON *o = stats_json(va[g], vn[g], ta[g], tn[g]);
            cJSON_AddNumberToObject(o, "a", grid_a(g));
            cJSON_AddItemToArray(pts, o);
        }
        char *text = cJSON_Print(j), *sp = update_pathf("%s/preds/%s-s%ld.sweep.json", p, m->name, k);
        rc = text ? file_write_all_atomic(sp, text, strlen(text)) : err_set("out of memory");
        free(text);
        free(sp);
        cJSON_Delete(j);
        fprintf(stderr, "muscle update: '%s' seed %ld: a = %.1f chosen on validation (accuracy %.2f vs M2 %.2f, NFR %.2f vs M2 %.2f)\n",
                m->name, k, grid_a(best), 100 * va[best], 100 * m2va, 100 * vn[best], 100 * m2vn);
    }
    /* the chosen a's adapter and test predictions under the method's own names */
    char *name = sweep_name(m, k, best);
    const char *files[4][2] = {{"adapters/%s/adapter_config.json", "adapters/%s-s%ld/adapter_config.json"},
                               {"adapters/%s/adapter_model.safetensors", "adapters/%s-s%ld/adapter_model.safetensors"},
                               {"preds/%s.jsonl", "preds/%s-s%ld.jsonl"},
                               {"preds/%s.eval.json", "preds/%s-s%ld.eval.json"}};
    char *dir = update_pathf("%s/adapters/%s-s%ld", p, m->name, k);
    if (rc == 0 && file_mkdirs(dir) != 0) rc = -1;
    for (int f = 0; rc == 0 && f < 4; f++) {
        char *rel_from = update_pathf(files[f][0], name), *rel_to = update_pathf(files[f][1], m->name, k);
        char *from = update_pathf("%s/%s", p, rel_from), *to = update_pathf("%s/%s", p, rel_to);
        rc = update_copy_file(from, to);
        free(rel_from);
        free(rel_to);
        free(from);
        free(to);
    }
    free(dir);
    free(name);
    free(old_val);
    free(old_test);
    free(m2_val);
    free(m2_test);
    return rc;
}

int update_weight_choose(UpdateRun *r) {
    const UpdateSpec *u = r->u;
    double tol = u->max_acc_drop.text ? u->max_acc_drop.v : 0.005;
    int rc = 0;
    for (int i = 0; rc == 0 && i < u->n_methods; i++) {
        if (!is_weight(&u->methods[i], UPDATE_WEIGHT_INTERP)) continue;
        for (long k = 1; rc == 0 && k <= u->seeds; k++)
            if (choose_one(u, &u->methods[i], k, tol) != 0) rc = err_prefix("choosing a of '%s', seed %ld", u->methods[i].name, k);
    }
    return rc ? update_fail() : 0;
}
