/* update/update_epochs.c - compatibility epochs, and a mixture preset's weight a, chosen
 * on the validation split (`muscle update --compat-epochs E1,E2,...`, `--mixture-weights
 * A1,A2,...`; update_impl.h has the files and the rule).
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

#define MAX_CANDIDATES (UPDATE_MAX_EPOCH_CHOICES * UPDATE_MAX_MIXTURE_WEIGHTS)

int update_mixw_applies(const UpdateSpec *u, const UpdateMethod *m) {
    const UpdatePreset *p = m->preset;
    return u->n_mixture_weights > 0 && u->kind == TASK_MC && p && !p->ce_only && p->weight == UPDATE_WEIGHT_NONE &&
           p->method == COMPAT_MIXTURE && p->level == COMPAT_LEVEL_CHOICE && !(p->mixture_a > 0);
}

static int n_epochs(const UpdateSpec *u) { return u->n_compat_epochs > 1 ? u->n_compat_epochs : 1; }
static int n_weights(const UpdateSpec *u, const UpdateMethod *m) { return update_mixw_applies(u, m) ? u->n_mixture_weights : 1; }

int update_candidates(const UpdateSpec *u, const UpdateMethod *m) {
    int n = update_method_trained(m) ? n_epochs(u) * n_weights(u, m) : 1;
    return n > 1 ? n : 0;
}

void update_candidate(const UpdateSpec *u, const UpdateMethod *m, int c, double *epochs, double *a) {
    int nE = n_epochs(u);
    *epochs = u->n_compat_epochs > 1 ? u->compat_epoch_list[c % nE] : u->compat_epochs.text ? u->compat_epochs.v : 1;
    *a = update_mixw_applies(u, m) ? u->mixture_weight_list[c / nE] : -1;
}

char *update_candidate_name(const UpdateSpec *u, const UpdateMethod *m, long k, int c) {
    double E, a;
    update_candidate(u, m, c, &E, &a);
    if (a < 0) return update_pathf("%s-s%ld-e%g", m->name, k, E);
    if (n_epochs(u) == 1) return update_pathf("%s-s%ld-a%g", m->name, k, a);
    return update_pathf("%s-s%ld-e%g-a%g", m->name, k, E, a);
}

char *update_candidate_text(const UpdateSpec *u, const UpdateMethod *m, int c) {
    double E, a;
    update_candidate(u, m, c, &E, &a);
    return a < 0 ? update_pathf("%g epochs", E) : update_pathf("%g epochs, a = %g", E, a);
}

int update_epochs_check(const UpdateSpec *u) {
    if (u->n_compat_epochs > 1 && !u->val)
        return err_set("--compat-epochs %s: the number of epochs is chosen on a validation split: give --task-val (held-out labelled instances)",
                       u->compat_epochs.text);
    if (u->n_mixture_weights > 0) {
        if (u->n_mixture_weights > 1 && !u->val)
            return err_set("--mixture-weights %s: the weight is chosen on a validation split: give --task-val (held-out labelled instances)",
                           u->mixture_weights.text);
        int any = 0;
        for (int i = 0; i < u->n_methods; i++) any |= update_mixw_applies(u, &u->methods[i]);
        if (!any)
            return err_set("--mixture-weights %s: no method of the run distils a mixture over the choices of a multiple-choice task "
                           "(mixture-choice, mixture-distill, soup-mixture-distill)", u->mixture_weights.text);
    }
    return 0;
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
    /* none keeps M2's accuracy: the first, the closest to A2 (the fewest epochs, the smallest a) */
    int best = compat_choose_on_val(va, vn, nc, m2a, tol, COMPAT_VAL_FIRST);
    double E, A;
    update_candidate(u, m, best, &E, &A);
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
        cJSON_AddNumberToObject(j, "chosen_epochs", E);
        if (A > 0) cJSON_AddNumberToObject(j, "chosen_mixture_weight", A);
        cJSON *o = cJSON_AddObjectToObject(j, "m2");
        cJSON_AddNumberToObject(o, "val_acc", m2a);
        cJSON_AddNumberToObject(o, "val_nfr", m2n);
        cJSON *pts = cJSON_AddArrayToObject(j, "points");
        for (int c = 0; c < nc; c++) {
            double Ec, Ac;
            update_candidate(u, m, c, &Ec, &Ac);
            cJSON *p = cJSON_CreateObject();
            cJSON_AddNumberToObject(p, "epochs", Ec);
            if (Ac > 0) cJSON_AddNumberToObject(p, "mixture_weight", Ac);
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

char *update_epochs_note(const UpdateSpec *u, const UpdateMethod *m) {
    if (!update_candidates(u, m))
        return update_mixw_applies(u, m) ? update_pathf("mixture weight %s (--mixture-weights)", u->mixture_weights.text) : NULL;
    int nw = n_weights(u, m) > 1, ne = n_epochs(u) > 1;
    char *note = nw && ne ? update_pathf("compatibility epochs and mixture weight chosen on validation among %s and %s:",
                                         u->compat_epochs.text, u->mixture_weights.text)
               : nw ? update_pathf("mixture weight chosen on validation (its students) among %s:", u->mixture_weights.text)
                    : update_pathf("compatibility epochs chosen on validation among %s:", u->compat_epochs.text);
    for (long k = 1; note && k <= u->seeds; k++) {
        char *p = update_pathf("%s/preds/%s-s%ld.epochs.json", u->out, m->name, k);
        cJSON *j = update_read_json(p, NULL);
        const cJSON *c = cJSON_GetObjectItemCaseSensitive(j, "chosen_epochs"), *a = cJSON_GetObjectItemCaseSensitive(j, "chosen_mixture_weight");
        char *what = !cJSON_IsNumber(c) || (nw && !cJSON_IsNumber(a)) ? update_pathf("?")
                   : nw && ne ? update_pathf("%g epochs a %g", c->valuedouble, a->valuedouble)
                   : nw       ? update_pathf("%g", a->valuedouble)
                              : update_pathf("%g", c->valuedouble);
        char *next = update_pathf("%s%s seed %ld %s", note, k > 1 ? "," : "", k, what ? what : "?");
        free(what);
        free(note);
        note = next;
        cJSON_Delete(j);
        free(p);
    }
    return note;
}
