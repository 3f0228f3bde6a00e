/* update/update_epochs.c - compatibility epochs, and a mixture preset's weight a and
 * cross-entropy weight W, chosen on the validation split (`muscle update --compat-epochs
 * E1,E2,...`, `--mixture-weights A1,A2,...`, `--ce-weights W1,W2,...`; update_impl.h has the
 * files and the rule).
 *
 * Why: how long to distil is a property of the pair and the task, not a constant. On
 * issue 18's scratch pair (docs/results.md) one epoch left the distillation under-trained
 * and three cut twice as many flips; on other cells one is enough. Choosing among a few
 * counts on held-out labelled data, by the rule an interpolation's a is chosen by, keeps
 * the test split out of the choice. Every trained method gets the same rule (the ce
 * control included, so the comparison with it stays fair); the weight-space methods have
 * no epochs of their own.
 *
 * A mixture's a is chosen by default on its teacher's validation results (compat_ensemble.c:
 * one training). On issue 18's demo pair that teacher kept M2's accuracy at a = 0.4 where
 * its students did not (docs/results.md): a list of weights judges the students instead,
 * what is deployed, at one training per a. The candidates of such a method are then the
 * pairs (a, E), a outer, and the rule is the same.
 *
 * W, in the loss W CE + (1 - W) KD, is the other end of the same trade-off: the presets
 * mixture-choice (W = 0.5) and mixture-distill (W = 0) bracketed issue 18's demo cell from
 * both sides (one kept accuracy and cut few flips, the other cut many and lost accuracy). A
 * list of W trains a student per W, chosen by the same rule, inner to a, outer to E.
 */
#include "update/update_impl.h"

#include "core/dist.h"
#include "core/error.h"
#include "core/file.h"
#include "metrics/compat.h"

#include <cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_CANDIDATES (UPDATE_MAX_EPOCH_CHOICES * UPDATE_MAX_MIXTURE_WEIGHTS * UPDATE_MAX_CE_WEIGHTS)

/* The mixture presets on multiple choice whose a (--mixture-weights) and W (--ce-weights)
 * a list sets: a choice-level mixture preset with no fixed a. */
static int mixture_choice_preset(const UpdateSpec *u, const UpdateMethod *m) {
    const UpdatePreset *p = m->preset;
    return u->kind == TASK_MC && p && !p->ce_only && p->weight == UPDATE_WEIGHT_NONE && p->method == COMPAT_MIXTURE &&
           p->level == COMPAT_LEVEL_CHOICE && !(p->mixture_a > 0);
}

int update_mixw_applies(const UpdateSpec *u, const UpdateMethod *m) { return u->n_mixture_weights > 0 && mixture_choice_preset(u, m); }
int update_cew_applies(const UpdateSpec *u, const UpdateMethod *m) { return u->n_ce_weights > 0 && mixture_choice_preset(u, m); }

static int n_epochs(const UpdateSpec *u) { return u->n_compat_epochs > 1 ? u->n_compat_epochs : 1; }
static int n_weights(const UpdateSpec *u, const UpdateMethod *m) { return update_mixw_applies(u, m) ? u->n_mixture_weights : 1; }
static int n_ce(const UpdateSpec *u, const UpdateMethod *m) { return update_cew_applies(u, m) ? u->n_ce_weights : 1; }

int update_candidates(const UpdateSpec *u, const UpdateMethod *m) {
    int n = update_method_trained(m) ? n_epochs(u) * n_weights(u, m) * n_ce(u, m) : 1;
    return n > 1 ? n : 0;
}

/* c = (i_a * n_W + i_W) * n_E + i_E: a outer, then W, the count inner */
void update_candidate(const UpdateSpec *u, const UpdateMethod *m, int c, UpdateCandidate *out) {
    int nE = n_epochs(u), nW = n_ce(u, m);
    out->epochs = u->n_compat_epochs > 1 ? u->compat_epoch_list[c % nE] : u->compat_epochs.text ? u->compat_epochs.v : 1;
    out->a = update_mixw_applies(u, m) ? u->mixture_weight_list[c / nE / nW] : -1;
    out->w = update_cew_applies(u, m) ? u->ce_weight_list[(c / nE) % nW] : -1;
}

char *update_candidate_name(const UpdateSpec *u, const UpdateMethod *m, long k, int c) {
    UpdateCandidate x;
    update_candidate(u, m, c, &x);
    char e[40] = "", a[40] = "", w[40] = "";
    if (n_epochs(u) > 1 || (x.a < 0 && x.w < 0)) snprintf(e, sizeof e, "-e%g", x.epochs);
    if (x.a >= 0) snprintf(a, sizeof a, "-a%g", x.a);
    if (x.w >= 0) snprintf(w, sizeof w, "-w%g", x.w);
    return update_pathf("%s-s%ld%s%s%s", m->name, k, e, a, w);
}

char *update_candidate_text(const UpdateSpec *u, const UpdateMethod *m, int c) {
    UpdateCandidate x;
    update_candidate(u, m, c, &x);
    char a[40] = "", w[40] = "";
    if (x.a >= 0) snprintf(a, sizeof a, ", a = %g", x.a);
    if (x.w >= 0) snprintf(w, sizeof w, ", W = %g", x.w);
    return update_pathf("%g epochs%s%s", x.epochs, a, w);
}

/* A list of the mixture presets (--mixture-weights, --ce-weights): -1 with err_set() when it
 * has more than one value and no --task-val, or when no method of the run takes it. */
static int list_check(const UpdateSpec *u, const char *flag, const char *what, const UpdateNum *list, int n,
                      int (*applies)(const UpdateSpec *, const UpdateMethod *)) {
    if (n == 0) return 0;
    if (n > 1 && !u->val)
        return err_set("%s %s: the %s is chosen on a validation split: give --task-val (held-out labelled instances)", flag, list->text, what);
    int any = 0;
    for (int i = 0; i < u->n_methods; i++) any |= applies(u, &u->methods[i]);
    if (!any)
        return err_set("%s %s: no method of the run distils a mixture over the choices of a multiple-choice task "
                       "(mixture-choice, mixture-distill, soup-mixture-distill)", flag, list->text);
    return 0;
}

int update_epochs_check(const UpdateSpec *u) {
    if (u->n_compat_epochs > 1 && !u->val)
        return err_set("--compat-epochs %s: the number of epochs is chosen on a validation split: give --task-val (held-out labelled instances)",
                       u->compat_epochs.text);
    if (list_check(u, "--mixture-weights", "weight", &u->mixture_weights, u->n_mixture_weights, update_mixw_applies)) return -1;
    return list_check(u, "--ce-weights", "cross-entropy weight", &u->ce_weights, u->n_ce_weights, update_cew_applies);
}

int update_epochs_steps(const UpdateSpec *u) {
    long K = u->seeds, n = 0;
    for (int i = 0; i < u->n_methods; i++) {
        int nc = update_candidates(u, &u->methods[i]);
        /* per seed: nc - 1 more trainings and nc evaluations */
        if (nc) n += K * (nc - 1) + K * nc;
    }
    return n ? (int)(n + 1 + K) : 0; /* M1 and each M2 on validation */
}

/* Method m, seed k: choose its candidate, copy its adapter, write the sweep (rank 0). */
static int choose_one(const UpdateSpec *u, const UpdateMethod *m, long k, double tol) {
    int nc = update_candidates(u, m), rc = 0;
    double m2a, m2n, va[MAX_CANDIDATES], vn[MAX_CANDIDATES];
    char *old = update_pathf("%s/preds/old.val.jsonl", u->out), *m2 = update_pathf("%s/preds/new-s%ld.val.jsonl", u->out, k);
    rc = update_pair_stats(u, old, m2, &m2a, &m2n);
    for (int c = 0; rc == 0 && c < nc; c++) {
        char *name = update_candidate_name(u, m, k, c), *pv = update_pathf("%s/preds/%s.val.jsonl", u->out, name);
        rc = update_pair_stats(u, old, pv, &va[c], &vn[c]);
        free(name);
        free(pv);
    }
    free(old);
    free(m2);
    if (rc) return rc;
    /* none keeps M2's accuracy: the first (the fewest epochs, the smallest a and W) */
    int best = compat_choose_on_val(va, vn, nc, m2a, tol, COMPAT_VAL_FIRST);
    UpdateCandidate x;
    update_candidate(u, m, best, &x);
    /* the chosen candidate under the method's own name; training.json last: the folder's "done" mark */
    char *name = update_candidate_name(u, m, k, best), *dir = update_pathf("%s/adapters/%s-s%ld", u->out, m->name, k);
    const char *files[3] = {"adapter_config.json", "adapter_model.safetensors", "training.json"};
    if (file_mkdirs(dir) != 0) rc = -1;
    for (int f = 0; rc == 0 && f < 3; f++) {
        char *from = update_pathf("%s/adapters/%s/%s", u->out, name, files[f]), *to = update_pathf("%s/%s", dir, files[f]);
        rc = update_copy_file(from, to);
        free(from);
        free(to);
    }
    free(name);
    free(dir);
    cJSON *j = rc == 0 ? cJSON_CreateObject() : NULL;
    if (rc == 0 && !j) rc = err_set("out of memory");
    if (j) {
        cJSON_AddStringToObject(j, "method", m->name);
        cJSON_AddNumberToObject(j, "seed", (double)k);
        cJSON_AddNumberToObject(j, "tolerance", tol);
        cJSON_AddNumberToObject(j, "chosen_epochs", x.epochs);
        if (x.a >= 0) cJSON_AddNumberToObject(j, "chosen_mixture_weight", x.a);
        if (x.w >= 0) cJSON_AddNumberToObject(j, "chosen_ce_weight", x.w);
        cJSON *o = cJSON_AddObjectToObject(j, "m2");
        cJSON_AddNumberToObject(o, "val_acc", m2a);
        cJSON_AddNumberToObject(o, "val_nfr", m2n);
        cJSON *pts = cJSON_AddArrayToObject(j, "points");
        for (int c = 0; c < nc; c++) {
            UpdateCandidate y;
            update_candidate(u, m, c, &y);
            cJSON *p = cJSON_CreateObject();
            cJSON_AddNumberToObject(p, "epochs", y.epochs);
            if (y.a >= 0) cJSON_AddNumberToObject(p, "mixture_weight", y.a);
            if (y.w >= 0) cJSON_AddNumberToObject(p, "ce_weight", y.w);
            cJSON_AddNumberToObject(p, "val_acc", va[c]);
            cJSON_AddNumberToObject(p, "val_nfr", vn[c]);
            cJSON_AddItemToArray(pts, p);
        }
        char *text = cJSON_Print(j), *sp = update_pathf("%s/preds/%s-s%ld.epochs.json", u->out, m->name, k);
        rc = text && sp ? file_write_all_atomic(sp, text, strlen(text)) : err_set("out of memory");
        free(text);
        free(sp);
        cJSON_Delete(j);
    }
    if (rc == 0 && !u->quiet) {
        char *what = update_candidate_text(u, m, best);
        fprintf(stderr, "muscle update: '%s' seed %ld: %s chosen on validation (accuracy %.2f vs M2 %.2f, NFR %.2f vs M2 %.2f)\n",
                m->name, k, what ? what : "?", 100 * va[best], 100 * m2a, 100 * vn[best], 100 * m2n);
        free(what);
    }
    return rc;
}

int update_epochs_choose(UpdateRun *r) {
    const UpdateSpec *u = r->u;
    if (!update_epochs_steps(u)) return 0;
    int rc = update_eval_m1_m2(r, 0);
    for (int i = 0; rc == 0 && i < u->n_methods; i++) {
        const UpdateMethod *m = &u->methods[i];
        int nc = update_candidates(u, m);
        for (long k = 1; nc && rc == 0 && k <= u->seeds; k++)
            for (int c = 0; rc == 0 && c < nc; c++) {
                char *name = update_candidate_name(u, m, k, c), *dir = update_pathf("%s/adapters/%s", u->out, name);
                char *ct = update_candidate_text(u, m, c), *pn = update_pathf("%s.val", name);
                char *what = update_pathf("eval of '%s' seed %ld, %s, on the validation split", m->name, k, ct ? ct : "?");
                rc = update_eval_model(r, what, u->new_model, dir, pn, u->val);
                free(name);
                free(dir);
                free(ct);
                free(pn);
                free(what);
            }
    }
    if ((rc = update_phase_end(rc)) != 0) return rc;
    double tol = u->max_acc_drop.text ? u->max_acc_drop.v : 0.005;
    for (int i = 0; dist_rank() == 0 && rc == 0 && i < u->n_methods; i++) {
        if (!update_candidates(u, &u->methods[i])) continue;
        for (long k = 1; rc == 0 && k <= u->seeds; k++)
            if (choose_one(u, &u->methods[i], k, tol) != 0) rc = err_prefix("choosing the candidate of '%s', seed %ld", u->methods[i].name, k);
    }
    return update_phase_end(rc ? update_fail() : 0);
}

/* The lists a method's candidates come from, in the order of the manifest's note */
typedef struct {
    const char *noun, *json, *seed_fmt; /* "mixture weight", "chosen_mixture_weight", "a %g" */
    const char *list;                   /* as typed */
    const char *alone;                  /* after "chosen on validation" when it is the only list */
} NoteDim;

/* The lists of one value the method takes, which set it with no choice: "mixture weight 0.3
 * (--mixture-weights)"; NULL when none (malloc'd). */
static char *note_fixed(const UpdateSpec *u, const UpdateMethod *m) {
    char *a = update_mixw_applies(u, m) && u->n_mixture_weights == 1 ? update_pathf("mixture weight %s (--mixture-weights)", u->mixture_weights.text) : NULL;
    char *w = update_cew_applies(u, m) && u->n_ce_weights == 1 ? update_pathf("cross-entropy weight %s (--ce-weights)", u->ce_weights.text) : NULL;
    char *both = a && w ? update_pathf("%s; %s", a, w) : NULL;
    if (both || !a) free(a);
    if (both || !w) free(w);
    return both ? both : a ? a : w;
}

char *update_epochs_note(const UpdateSpec *u, const UpdateMethod *m) {
    char *fixed = note_fixed(u, m);
    if (!update_candidates(u, m)) return fixed;
    NoteDim d[3];
    int n = 0;
    if (n_epochs(u) > 1) d[n++] = (NoteDim){"compatibility epochs", "chosen_epochs", "%g epochs", u->compat_epochs.text, ""};
    /* " (its students)": against the default, a chosen on the teacher */
    if (n_weights(u, m) > 1) d[n++] = (NoteDim){"mixture weight", "chosen_mixture_weight", "a %g", u->mixture_weights.text, " (its students)"};
    if (n_ce(u, m) > 1) d[n++] = (NoteDim){"cross-entropy weight", "chosen_ce_weight", "W %g", u->ce_weights.text, ""};
    /* "compatibility epochs and mixture weight chosen on validation among 1,3 and 0.1,0.2:" */
    char *nouns = update_pathf("%s", d[0].noun), *lists = update_pathf("%s", d[0].list);
    for (int i = 1; i < n && nouns && lists; i++) {
        const char *sep = i == n - 1 ? " and " : ", ", *lsep = i == n - 1 ? " and " : "; "; /* the lists hold commas */
        char *a = update_pathf("%s%s%s", nouns, sep, d[i].noun), *b = update_pathf("%s%s%s", lists, lsep, d[i].list);
        free(nouns);
        free(lists);
        nouns = a;
        lists = b;
    }
    char *note = nouns && lists ? update_pathf("%s chosen on validation%s among %s:", nouns, n == 1 ? d[0].alone : "", lists) : NULL;
    free(nouns);
    free(lists);
    for (long k = 1; note && k <= u->seeds; k++) {
        char *p = update_pathf("%s/preds/%s-s%ld.epochs.json", u->out, m->name, k);
        cJSON *j = update_read_json(p, NULL);
        char *what = update_pathf("%s", "");
        for (int i = 0; i < n && what; i++) { /* one list: the value alone; more: "3 epochs a 0.2" */
            const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, d[i].json);
            char one[64];
            if (!cJSON_IsNumber(v)) snprintf(one, sizeof one, "?");
            else snprintf(one, sizeof one, n == 1 ? "%g" : d[i].seed_fmt, v->valuedouble);
            char *next = update_pathf("%s%s%s", what, i ? " " : "", one);
            free(what);
            what = next;
        }
        char *next = update_pathf("%s%s seed %ld %s", note, k > 1 ? "," : "", k, what ? what : "?");
        free(what);
        free(note);
        note = next;
        cJSON_Delete(j);
        free(p);
    }
    if (note && fixed) { /* a list of one beside the lists chosen among */
        char *next = update_pathf("%s; %s", note, fixed);
        free(note);
        note = next;
    }
    free(fixed);
    return note;
}
