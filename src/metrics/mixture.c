/* metrics/mixture.c - the inference-time mixture of multiple-choice models (mixture.h). */
#include "metrics/mixture.h"

#include "core/error.h"

#include <ctype.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

int mixture_gold_index(const cJSON *target, int n) {
    double v = -1;
    if (cJSON_IsNumber(target)) v = target->valuedouble;
    else if (cJSON_IsString(target) && target->valuestring[0]) {
        char *end;
        long l = strtol(target->valuestring, &end, 10);
        if (!*end && isdigit((unsigned char)target->valuestring[0])) v = (double)l;
    }
    return v >= 0 && v < n && v == floor(v) ? (int)v : -1;
}

/* p[0..n) += w * softmax(lp); -1 when lp is not an array of n finite numbers */
static int add_softmax(double *p, const cJSON *lp, int n, double w) {
    if (!cJSON_IsArray(lp) || cJSON_GetArraySize(lp) != n) return -1;
    double mx = -INFINITY, z = 0;
    for (const cJSON *e = lp->child; e; e = e->next) {
        if (!cJSON_IsNumber(e) || !isfinite(e->valuedouble)) return -1;
        if (e->valuedouble > mx) mx = e->valuedouble;
    }
    for (const cJSON *e = lp->child; e; e = e->next) z += exp(e->valuedouble - mx);
    int j = 0;
    for (const cJSON *e = lp->child; e; e = e->next, j++) p[j] += w * exp(e->valuedouble - mx) / z;
    return 0;
}

int mixture_instances(const PredFile *old, const PredFile *news, size_t *const *idx, int k, double a, CompatInstance *x) {
    if (k < 1) return err_set("mixture: no new model");
    double *p = NULL;
    int cap = 0, rc = 0;
    for (size_t i = 0; i < old->n && rc == 0; i++) {
        const PredRecord *r1 = &old->rec[i];
        int n = r1->choice_logprobs ? cJSON_GetArraySize(r1->choice_logprobs) : 0;
        if (n < 1) {
            rc = err_set("%s:%zu: no choice_logprobs (the mixture needs every model's log-likelihoods of the choices)", old->path, r1->line);
            break;
        }
        if (n > cap) {
            double *g = realloc(p, (size_t)n * sizeof *g);
            if (!g) {
                rc = err_set("out of memory");
                break;
            }
            p = g;
            cap = n;
        }
        memset(p, 0, (size_t)n * sizeof *p);
        if (add_softmax(p, r1->choice_logprobs, n, a) != 0) {
            rc = err_set("%s:%zu: choice_logprobs: expected %d finite numbers", old->path, r1->line, n);
            break;
        }
        const cJSON *target = r1->target;
        for (int s = 0; s < k && rc == 0; s++) {
            const PredRecord *r2 = &news[s].rec[idx[s][i]];
            if (add_softmax(p, r2->choice_logprobs, n, (1 - a) / k) != 0)
                rc = err_set("%s:%zu: choice_logprobs: expected %d finite numbers (as many choices as %s:%zu)", news[s].path, r2->line,
                             n, old->path, r1->line);
            if (!target) target = r2->target;
        }
        if (rc) break;
        int gold = mixture_gold_index(target, n);
        if (gold < 0 && r1->correct == 1 && cJSON_IsNumber(r1->prediction)) gold = (int)r1->prediction->valuedouble;
        if (gold < 0 && r1->correct < 0) {
            rc = err_set("%s:%zu: the right choice is unknown (no \"target\" index)", old->path, r1->line);
            break;
        }
        int best = 0;
        for (int j = 1; j < n; j++)
            if (p[j] > p[best]) best = j;
        /* gold unknown and M1 wrong: the mixture is right only if some new model predicting best is right */
        int right = gold >= 0 ? best == gold : 0;
        if (gold < 0)
            for (int s = 0; s < k; s++) {
                const PredRecord *r2 = &news[s].rec[idx[s][i]];
                if (r2->correct == 1 && cJSON_IsNumber(r2->prediction) && (int)r2->prediction->valuedouble == best) right = 1;
            }
        int pred1 = cJSON_IsNumber(r1->prediction) ? (int)r1->prediction->valuedouble : -1;
        x[i] = (CompatInstance){r1->correct, (signed char)right, NAN, NAN, pred1 < 0 ? -1 : (signed char)(pred1 == best)};
    }
    free(p);
    return rc;
}
