/* report/report_versus.c - what issue 18 adds to the statistics of a task (report_internal.h):
 *   - every method against the `ce` control (more cross-entropy training from the same A2):
 *     the paired difference of NFR, seed k with seed k, with its bootstrap interval (the same
 *     resampling as against M2, metrics/compat.h); a method beats ce when it qualifies
 *     (accuracy within max_acc_drop of M2's) and that interval lies below 0;
 *   - an interpolation's sweep (its seeds' sweep files from update/update_weight.c): test
 *     accuracy and NFR at each a, means over the seeds: a curve of the NFR-accuracy plot;
 *   - the inference-time mixture (1 - a) mean(M2 seeds) + a M1 over the choices
 *     (metrics/mixture.h), at a = 0, 0.1, ..., 1, with intervals: what a deployment of
 *     both models would get, the reference the methods distil towards. */
#include "report_internal.h"

#include "core/error.h"
#include "core/file.h"
#include "metrics/mixture.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

int rr_versus_ce(RTask *rt, const CompatInstance *const *const *x, const CompatOptions *o) {
    rt->ce = -1;
    rt->beats_ce = -1;
    for (int m = 1; m < rt->n_models; m++)
        if (!strcmp(rt->models[m].in->name, "ce")) rt->ce = m;
    if (rt->ce < 0) return 0;
    const RModel *ce = &rt->models[rt->ce];
    for (int m = 1; m < rt->n_models; m++) {
        RModel *rm = &rt->models[m];
        if (m == rt->ce) continue;
        int k = rm->in->n_seeds < ce->in->n_seeds ? rm->in->n_seeds : ce->in->n_seeds;
        if (compat_delta_seeds(x[rt->ce], x[m], k, rt->n, o, &rm->vs_ce) != 0) return err_prefix("'%s' against ce", rm->in->name);
        rm->has_vs_ce = 1;
        const CompatStat *d = rt_dnfr(rt, &rm->vs_ce);
        double top = o->bootstrap > 0 ? d->hi : d->value;
        rm->beats_ce = rm->qualifies && !isnan(top) && top < 0;
    }
    /* the chosen method when it beats ce, else the lowest-NFR qualifying method that does */
    if (rt->chosen >= 0 && rt->models[rt->chosen].beats_ce) {
        rt->beats_ce = rt->chosen;
    } else {
        for (int m = 1; m < rt->n_models; m++) {
            if (!rt->models[m].beats_ce) continue;
            if (rt->beats_ce < 0 || rt_nfr(rt, &rt->models[m].stats)->value < rt_nfr(rt, &rt->models[rt->beats_ce].stats)->value)
                rt->beats_ce = m;
        }
    }
    return 0;
}

static double num_of(const cJSON *o, const char *k) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsNumber(v) ? v->valuedouble : NAN;
}

int rr_sweeps_read(RTask *rt) {
    for (int m = 1; m < rt->n_models; m++) {
        RModel *rm = &rt->models[m];
        const ReportModel *in = rm->in;
        if (in->n_sweeps == 0) continue;
        double acc[RR_SWEEP_MAX] = {0}, nfr[RR_SWEEP_MAX] = {0}, a[RR_SWEEP_MAX] = {0}, chosen = 0;
        int np = -1;
        for (int s = 0; s < in->n_sweeps; s++) {
            size_t n;
            char *text = file_read_all(in->sweeps[s], &n, 1u << 22);
            if (!text) return err_prefix("'%s' sweep %d", in->name, s + 1);
            cJSON *j = cJSON_ParseWithLength(text, n);
            free(text);
            const cJSON *pts = cJSON_GetObjectItemCaseSensitive(j, "points");
            int cnt = cJSON_IsArray(pts) ? cJSON_GetArraySize(pts) : 0;
            if (!j || cnt < 1 || cnt > RR_SWEEP_MAX || (np >= 0 && cnt != np) || isnan(num_of(j, "chosen_a"))) {
                cJSON_Delete(j);
                return err_set("%s: expected a sweep file of muscle update (\"chosen_a\" and 1..%d \"points\", as many in every seed's)",
                               in->sweeps[s], RR_SWEEP_MAX);
            }
            np = cnt;
            chosen += num_of(j, "chosen_a") / in->n_sweeps;
            int g = 0;
            for (const cJSON *p = pts->child; p; p = p->next, g++) {
                double ta = num_of(p, "test_acc"), tn = num_of(p, "test_nfr"), pa = num_of(p, "a");
                if (isnan(ta) || isnan(tn) || isnan(pa)) {
                    cJSON_Delete(j);
                    return err_set("%s: points[%d]: expected numbers \"a\", \"test_acc\", \"test_nfr\"", in->sweeps[s], g);
                }
                a[g] = pa;
                acc[g] += ta / in->n_sweeps;
                nfr[g] += tn / in->n_sweeps;
            }
            cJSON_Delete(j);
        }
        rm->n_sweep = np;
        rm->chosen_a_mean = chosen;
        memcpy(rm->sweep_a, a, sizeof a);
        memcpy(rm->sweep_acc, acc, sizeof acc);
        memcpy(rm->sweep_nfr, nfr, sizeof nfr);
    }
    return 0;
}

/* Generation: the manifest's mixture files (update/update_mixgen.c), each against M1. */
static int mixture_gen(RTask *rt, const PredFile *old, const CompatOptions *o) {
    const ReportTask *t = rt->in;
    CompatInstance *x = calloc(old->n ? old->n : 1, sizeof *x);
    if (!x) return err_set("out of memory");
    int rc = 0;
    for (int g = 0; g < t->n_mix && g < RR_SWEEP_MAX && rc == 0; g++) {
        PredsReadOptions ro = {PREDS_FMT_AUTO, t->metric};
        PredFile f;
        size_t *idx = NULL;
        memset(&f, 0, sizeof f);
        if (preds_read_opts(&f, t->mix_preds[g], &ro) != 0 || preds_match(old, &f, &idx) != 0)
            rc = -1;
        else if (!f.has_score)
            rc = err_set("%s: expected the scores of a generation task (field 'score')", t->mix_preds[g]);
        if (rc == 0) {
            rr_fill(x, old->n, old, NULL, &f, idx, old->has_correct && f.has_correct, 1);
            rt->mix_a[g] = t->mix_a[g];
            rc = compat_compute(x, old->n, o, &rt->mix[g]);
        }
        if (rc != 0) err_prefix("the inference-time mixture at a = %.1f", t->mix_a[g]);
        else rt->n_mix = g + 1;
        free(idx);
        preds_free(&f);
    }
    free(x);
    return rc;
}

int rr_mixture(RTask *rt, const PredFile *old, const PredFile *news, size_t *const *idx, int k, const CompatOptions *o) {
    rt->n_mix = 0;
    if (rt->gen) return mixture_gen(rt, old, o);
    if ( old->n == 0 || !old->rec[0].choice_logprobs) return 0; /* multiple choice with log-likelihoods only */
    for (int s = 0; s < k; s++)
        if (!news[s].rec[0].choice_logprobs) return 0;
    CompatInstance *x = calloc(old->n, sizeof *x);
    if (!x) return err_set("out of memory");
    int rc = 0;
    for (int g = 0; g < RR_SWEEP_MAX && rc == 0; g++) {
        rt->mix_a[g] = g / 10.0;
        if (mixture_instances(old, news, idx, k, rt->mix_a[g], x) != 0 || compat_compute(x, old->n, o, &rt->mix[g]) != 0)
            rc = err_prefix("the inference-time mixture at a = %.1f", rt->mix_a[g]);
        else
            rt->n_mix = g + 1;
    }
    free(x);
    return rc;
}
