/* metrics/mcnemar.h - McNemar's exact test of two models on the same instances.
 *
 * Of N paired instances, b are right for the first model only and c for the second only
 * (the discordant pairs; pairs both get right or both get wrong say nothing about which
 * model is better). Under H0 (equal accuracy) b ~ Binomial(b + c, 1/2); the two-sided
 * exact p-value is
 *     p = min(1, 2 * sum_{i=0}^{min(b,c)} C(b+c, i) / 2^(b+c)),   p = 1 when b + c = 0.
 * For scores (generation tasks) the same test on the instances whose score went down (b)
 * and up (c), ties left out, is the exact sign test. Definitions: docs/metrics.md.
 */
#ifndef MUSCLE_METRICS_MCNEMAR_H
#define MUSCLE_METRICS_MCNEMAR_H

#include <stddef.h>

#include "compat.h"

typedef struct {
    long long b, c;  /* discordant pairs: first model only right (score down), second only (score up) */
    double p;        /* two-sided exact p-value; NAN when there is no outcome */
} McNemar;

/* The two-sided exact p-value for b and c discordant pairs. */
double mcnemar_exact_p(long long b, long long c);

/* From paired instances (x[i].correct1/2, or with no discrete outcome score1/2 with
 * |s2 - s1| <= tie_eps a tie): b = first right only, c = second right only. */
McNemar mcnemar_instances(const CompatInstance *x, size_t n, double tie_eps);

#endif
