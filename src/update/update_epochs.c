/* update/update_epochs.c - compatibility epochs chosen on the validation split
 * (`muscle update --compat-epochs E1,E2,...`; update_impl.h has the files and the rule).
 *
 * Why: how long to distil is a property of the pair and the task, not a constant. On
 * issue 18's scratch pair (docs/results.md) one epoch left the distillation under-trained
 * and three cut twice as many flips; on other cells one is enough. Choosing among a few
 * counts on held-out labelled data, by the rule an interpolation's a is chosen by, keeps
 * the test split out of the choice. Every trained method gets the same rule (the ce
 * control included, so the comparison with it stays fair); the weight-space methods have
 * no epochs of their own.
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

static int n_choices(const UpdateSpec *u) { return u->n_compat_epochs > 1 ? u->n_compat_epochs : 0; }

static int n_trained(const UpdateSpec *u) {
    int n = 0;
    for (int i = 0; i < u->n_methods; i++) n += update_method_trained(&u->methods[i]);
    return n;
}

char *update_epochs_name(const UpdateMethod *m, long k, double epochs) { return update_pathf("%s-s%ld-e%g", m->name, k, epochs); }

int update_epochs_check(const UpdateSpec *u) {
    if (n_choices(u) && !u->val)
        return err_set("--compat-epochs %s: the number of epochs is chosen on a validation split: give --task-val (held-out labelled instances)",
                       u->compat_epochs.text);
    return 0;
}

int update_epochs_steps(const UpdateSpec *u) {
    int nE = n_choices(u);
    if (!nE) return 0;
    long K = u->seeds, t = n_trained(u);
    /* per trained method and seed: nE - 1 more trainings and nE evaluations; M1 and each M2 on validation */
    return (int)(K * t * (nE - 1) + K * t * nE + 1 + K);
}

/* Method m, seed k: choose E, copy its adapter, write the sweep (rank 0). */
static int choose_one(const UpdateSpec *u, const UpdateMethod *m, long k, double tol) {
    int nE = n_choices(u), rc = 0;
    double m2a, m2n, va[UPDATE_MAX_EPOCH_CHOICES], vn[UPDATE_MAX_EPOCH_CHOICES];
    char *old = update_pathf("%s/preds/old.val.jsonl", u->out), *m2 = update_pathf("%s/preds/new-s%ld.val.jsonl", u->out, k);
    rc = update_pair_stats(u, old, m2, &m2a, &m2n);
    for (int e = 0; rc == 0 && e < nE; e++) {
        char *name = update_epochs_name(m, k, u->compat_epoch_list[e]), *pv = update_pathf("%s/preds/%s.val.jsonl", u->out, name);
        rc = update_pair_stats(u, old, pv, &va[e], &vn[e]);
        free(name);
        free(pv);
    }
    free(old);
    free(m2);
    if (rc) return rc;
    int best = compat_choose_on_val(va, vn, nE, m2a, tol, COMPAT_VAL_FIRST); /* none keeps M2's accuracy: the fewest epochs, the closest to A2 */
    double E = u->compat_epoch_list[best];
    /* the chosen candidate under the method's own name; training.json last: the folder's "done" mark */
    char *name = update_epochs_name(m, k, E), *dir = update_pathf("%s/adapters/%s-s%ld", u->out, m->name, k);
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
        cJSON *o = cJSON_AddObjectToObject(j, "m2");
        cJSON_AddNumberToObject(o, "val_acc", m2a);
        cJSON_AddNumberToObject(o, "val_nfr", m2n);
        cJSON *pts = cJSON_AddArrayToObject(j, "points");
        for (int e = 0; e < nE; e++) {
            cJSON *p = cJSON_CreateObject();
            cJSON_AddNumberToObject(p, "epochs", u->compat_epoch_list[e]);
            cJSON_AddNumberToObject(p, "val_acc", va[e]);
            cJSON_AddNumberToObject(p, "val_nfr", vn[e]);
            cJSON_AddItemToArray(pts, p);
        }
        char *text = cJSON_Print(j), *sp = update_pathf("%s/preds/%s-s%ld.epochs.json", u->out, m->name, k);
        rc = text && sp ? file_write_all_atomic(sp, text, strlen(text)) : err_set("out of memory");
        free(text);
        free(sp);
        cJSON_Delete(j);
    }
    if (rc == 0 && !u->quiet)
        fprintf(stderr, "muscle update: '%s' seed %ld: %g compatibility epochs chosen on validation (accuracy %.2f vs M2 %.2f, NFR %.2f vs M2 %.2f)\n",
                m->name, k, E, 100 * va[best], 100 * m2a, 100 * vn[best], 100 * m2n);
    return rc;
}

int update_epochs_choose(UpdateRun *r) {
    const UpdateSpec *u = r->u;
    int nE = n_choices(u);
    if (!nE) return 0;
    int rc = update_eval_m1_m2(r, 0);
    for (int i = 0; rc == 0 && i < u->n_methods; i++) {
        const UpdateMethod *m = &u->methods[i];
        if (!update_method_trained(m)) continue;
        for (long k = 1; rc == 0 && k <= u->seeds; k++)
            for (int e = 0; rc == 0 && e < nE; e++) {
                double E = u->compat_epoch_list[e];
                char *name = update_epochs_name(m, k, E), *dir = update_pathf("%s/adapters/%s", u->out, name);
                char *pn = update_pathf("%s.val", name), *what = update_pathf("eval of '%s' seed %ld, %g epochs, on the validation split", m->name, k, E);
                rc = update_eval_model(r, what, u->new_model, dir, pn, u->val);
                free(name);
                free(dir);
                free(pn);
                free(what);
            }
    }
    if ((rc = update_phase_end(rc)) != 0) return rc;
    double tol = u->max_acc_drop.text ? u->max_acc_drop.v : 0.005;
    for (int i = 0; dist_rank() == 0 && rc == 0 && i < u->n_methods; i++) {
        if (!update_method_trained(&u->methods[i])) continue;
        for (long k = 1; rc == 0 && k <= u->seeds; k++)
            if (choose_one(u, &u->methods[i], k, tol) != 0) rc = err_prefix("choosing the epochs of '%s', seed %ld", u->methods[i].name, k);
    }
    return update_phase_end(rc ? update_fail() : 0);
}

char *update_epochs_note(const UpdateSpec *u, const UpdateMethod *m) {
    if (!n_choices(u) || !update_method_trained(m)) return NULL;
    char *note = update_pathf("compatibility epochs chosen on validation among %s:", u->compat_epochs.text);
    for (long k = 1; note && k <= u->seeds; k++) {
        char *p = update_pathf("%s/preds/%s-s%ld.epochs.json", u->out, m->name, k);
        cJSON *j = update_read_json(p, NULL);
        const cJSON *c = cJSON_GetObjectItemCaseSensitive(j, "chosen_epochs");
        char *next = cJSON_IsNumber(c) ? update_pathf("%s%s seed %ld %g", note, k > 1 ? "," : "", k, c->valuedouble)
                                       : update_pathf("%s%s seed %ld ?", note, k > 1 ? "," : "", k);
        free(note);
        note = next;
        cJSON_Delete(j);
        free(p);
    }
    return note;
}
