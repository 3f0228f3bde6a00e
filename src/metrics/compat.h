/* metrics/compat.h - how an update changes per-instance outcomes: flip rates and friends,
 * with paired-bootstrap confidence intervals. Definitions: docs/metrics.md.
 *
 * Discrete outcomes (c1, c2 = M1, M2 correct):
 *   acc1, acc2; NFR = mean[c1 & !c2]; PFR = mean[!c1 & c2];
 *   IFR (inconsistency flips) = mean[!c2 & pred1 != pred2]   (needs predictions);
 *   NFI = NFR / (1 - acc2)  = #NF / #(M2 wrong)               (null when M2 is never wrong);
 *   BTC = #(c1 & c2) / #c1                                    (null when M1 is never right).
 * Continuous outcomes (s1, s2 in [0,1], D = s2 - s1; |D| <= tie_eps is a tie, D = 0):
 *   mean1, mean2; cNFR = mean[D < 0]; cPFR = mean[D > 0];
 *   m_r = sum(|D| over D < 0) / #(D < 0);  m_g = sum(D over D > 0) / #(D > 0)  (null when no such flip);
 *   cBTC = #(s1 > 0 & D >= 0) / #(s1 > 0)                     (null when every s1 is 0).
 * A compatibility model MC is judged by two comparisons on the same instances,
 * base = (M1, M2) and cand = (M1, MC): dNFR = NFR_cand - NFR_base,
 * rel_dNFR = 100 * dNFR / NFR_base (null when NFR_base = 0), dacc = acc(MC) - acc(M2).
 *
 * Intervals: percentile bootstrap over B resamples of the N instances (with
 * replacement; one index draw per resample serves every statistic, and both
 * comparisons of a delta). The seed fixes every bit. A statistic's interval is
 * null when the statistic is 0/0 on any resample (e.g. NFI when a resample has
 * no M2 error). N = 0 makes every value null.
 */
#ifndef MUSCLE_METRICS_COMPAT_H
#define MUSCLE_METRICS_COMPAT_H

#include <stddef.h>
#include <stdint.h>

/* One test instance as the old and the new model saw it. */
typedef struct {
    signed char correct1, correct2; /* 1 right, 0 wrong, -1 no discrete outcome */
    double score1, score2;          /* per-instance scores in [0, 1]; NAN = none */
    signed char same_pred;          /* the two predictions are equal 1, differ 0, unknown -1 */
} CompatInstance;

typedef struct {
    int bootstrap;   /* resamples B; 0 = no intervals (default 1000) */
    uint64_t seed;   /* default 42 */
    double level;    /* interval coverage, in (0, 1) (default 0.95) */
    double tie_eps;  /* continuous |D| <= tie_eps counts as no change (default 1e-9) */
} CompatOptions;

void compat_options_default(CompatOptions *o);

typedef struct {
    double value;    /* point estimate; NAN = undefined (JSON null) */
    double lo, hi;   /* interval; NAN when not computed or unbounded */
    long long num, den; /* value = num / den for shares of instances; -1, -1 otherwise */
} CompatStat;

typedef struct {
    size_t n;
    int discrete, continuous, preds; /* which families were computed */
    CompatStat acc1, acc2, nfr, pfr, ifr, nfi, btc;        /* discrete */
    CompatStat mean1, mean2, cnfr, cpfr, m_r, m_g, cbtc;   /* continuous */
} CompatReport;

/* Every instance must carry the same kinds of outcome (all discrete or none, all
 * scores or none); scores must be finite and in [0, 1]. Errors name the instance. */
int compat_compute(const CompatInstance *x, size_t n, const CompatOptions *o, CompatReport *out);

typedef struct {
    CompatReport base, cand;          /* (M1, M2) and (M1, MC), same resamples */
    int discrete, continuous;
    CompatStat dnfr, rel_dnfr, dpfr, dacc;     /* discrete; rel_dnfr in percent */
    CompatStat dcnfr, rel_dcnfr, dmean;        /* continuous; dmean = mean(MC) - mean(M2) */
} CompatDelta;

/* base[i] and cand[i] are the same instance; both comparisons must carry the same
 * kinds of outcome. */
int compat_delta(const CompatInstance *base, const CompatInstance *cand, size_t n, const CompatOptions *o,
                 CompatDelta *out);

/* Several seeds of the same model(s) on the same n instances: x[s] (base[s], cand[s]) holds
 * seed s's instances, instance i being the same test instance in every seed (seed s of the
 * candidate pairs with seed s of the base). Each value is the mean over the k seeds of the
 * per-seed statistic (a ratio is 0/0 when it is on any seed); relative dNFR is 100 * (mean
 * dNFR) / (mean base NFR). num/den are the sums over the seeds when every seed has the same
 * denominator (acc, NFR, PFR, IFR, BTC), else -1. Intervals: each bootstrap resample draws ONE
 * index set, applied to every seed and both comparisons, and takes the mean over the seeds
 * on it. The draws depend only on (seed, n, B): separate calls with the same options
 * resample the same instances. With k = 1 these are exactly compat_compute / compat_delta. */
int compat_compute_seeds(const CompatInstance *const *x, int k, size_t n, const CompatOptions *o, CompatReport *out);
int compat_delta_seeds(const CompatInstance *const *base, const CompatInstance *const *cand, int k, size_t n,
                       const CompatOptions *o, CompatDelta *out);

/* The validation rule every choice on held-out labelled data shares (an interpolation's a,
 * the mixture teacher's a, the number of compatibility epochs; docs/compat.md): of n >= 1
 * candidates with validation accuracy acc[i] and NFR nfr[i], the lowest NFR among those whose
 * accuracy is at least m2_acc - tol (with 1e-12 of slack for the rounding of a mean over
 * seeds); the first on a tie. When none qualifies: candidate 0 (COMPAT_VAL_FIRST: the one
 * closest to M2) or the most accurate, the first on a tie (COMPAT_VAL_MOST_ACCURATE). */
typedef enum { COMPAT_VAL_FIRST, COMPAT_VAL_MOST_ACCURATE } CompatValFallback;
int compat_choose_on_val(const double *acc, const double *nfr, int n, double m2_acc, double tol, CompatValFallback none);

/* Percentile of sorted values v[0..n) at p in [0, 1], linear interpolation between
 * order statistics (numpy's default): h = (n - 1) p, v[floor h] + (h - floor h) * step. */
double compat_percentile(const double *sorted, size_t n, double p);

/* ---- JSON (compat_json.c): the statistics named once, for `muscle compare --json` and
 * report.json alike ---------------------------------------------------------------------- */
struct cJSON;
/* {"value", "lo", "hi"} (NaN -> null), plus "num", "den" for a defined share of instances. */
struct cJSON *compat_stat_json(const CompatStat *s);
/* Adds the report's statistics to o: acc_old, acc_new, nfr, pfr, ifr, nfi, btc (discrete);
 * score_old, score_new, score_nfr, score_pfr, m_r, m_g, score_btc (continuous). */
void compat_report_json_add(struct cJSON *o, const CompatReport *r);
/* Adds the delta's statistics to o: dnfr, rel_dnfr_pct, dpfr, dacc (discrete); score_dnfr,
 * score_rel_dnfr_pct, dscore (continuous). */
void compat_delta_json_add(struct cJSON *o, const CompatDelta *d);

#endif
