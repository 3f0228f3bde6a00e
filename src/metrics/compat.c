/* metrics/compat.c - flip metrics and their paired-bootstrap intervals. */
#include "compat.h"

#include "core/error.h"
#include "core/rng.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

enum {
    S_ACC1, S_ACC2, S_NFR, S_PFR, S_IFR, S_NFI, S_BTC,
    S_MEAN1, S_MEAN2, S_CNFR, S_CPFR, S_MR, S_MG, S_CBTC,
    NSTAT
};

enum { F_C1 = 1, F_C2 = 2, F_NF = 4, F_PF = 8, F_INC = 16, F_CNF = 32, F_CPF = 64, F_S1POS = 128, F_KEEP = 256 };

/* What one instance adds to the sums. */
typedef struct {
    unsigned flags;
    double s1, s2, neg, pos; /* neg = |D| when D < 0, pos = D when D > 0 */
} Prep;

typedef struct {
    long long n, c1, c2, nf, pf, inc, cnf, cpf, s1pos, keep;
    double s1, s2, neg, pos;
} Sums;

typedef struct {
    int discrete, continuous, preds;
} Kinds;

void compat_options_default(CompatOptions *o) {
    o->bootstrap = 1000;
    o->seed = 42;
    o->level = 0.95;
    o->tie_eps = 1e-9;
}

static int check_options(const CompatOptions *o) {
    if (o->bootstrap < 0) return err_set("bootstrap resamples %d: expected 0 or more", o->bootstrap);
    if (!(o->level > 0 && o->level < 1)) return err_set("interval level %g: expected a number in (0, 1)", o->level);
    if (!(o->tie_eps >= 0 && isfinite(o->tie_eps))) return err_set("tie tolerance %g: expected a finite number >= 0", o->tie_eps);
    return 0;
}

/* Checks that every instance carries the same kinds of outcome and prepares the sums. */
static Prep *prepare(const CompatInstance *x, size_t n, double eps, Kinds *k) {
    if (n > 0xffffffffull) {
        err_set("%zu instances: at most 4294967295 are supported", n);
        return NULL;
    }
    k->discrete = n ? x[0].correct1 >= 0 : 0;
    k->continuous = n ? !isnan(x[0].score1) : 0;
    k->preds = n ? 1 : 0;
    Prep *p = calloc(n ? n : 1, sizeof *p);
    if (!p) {
        err_set("out of memory for %zu instances", n);
        return NULL;
    }
    for (size_t i = 0; i < n; i++) {
        const CompatInstance *a = &x[i];
        int d = a->correct1 >= 0, d2 = a->correct2 >= 0, c = !isnan(a->score1), c2 = !isnan(a->score2);
        const char *bad = NULL;
        if (a->correct1 < -1 || a->correct1 > 1 || a->correct2 < -1 || a->correct2 > 1) bad = "correct: expected 1, 0 or -1 (none)";
        else if (d != d2) bad = "only one of the two models has a discrete outcome";
        else if (d != k->discrete) bad = d ? "has a discrete outcome, but instance 0 has none" : "has no discrete outcome, but instance 0 has one";
        else if (c != c2) bad = "only one of the two models has a score";
        else if (c != k->continuous) bad = c ? "has scores, but instance 0 has none" : "has no scores, but instance 0 has";
        if (bad) {
            err_set("instance %zu: %s", i, bad);
            free(p);
            return NULL;
        }
        if (c && !(a->score1 >= 0 && a->score1 <= 1 && a->score2 >= 0 && a->score2 <= 1)) {
            err_set("instance %zu: scores (%g, %g): expected numbers in [0, 1]", i, a->score1, a->score2);
            free(p);
            return NULL;
        }
        if (a->same_pred < 0) k->preds = 0;
        unsigned f = 0;
        if (d) {
            if (a->correct1) f |= F_C1;
            if (a->correct2) f |= F_C2;
            if (a->correct1 && !a->correct2) f |= F_NF;
            if (!a->correct1 && a->correct2) f |= F_PF;
            if (!a->correct2 && a->same_pred == 0) f |= F_INC;
        }
        if (c) {
            double D = a->score2 - a->score1;
            p[i].s1 = a->score1;
            p[i].s2 = a->score2;
            if (D < -eps) {
                f |= F_CNF;
                p[i].neg = -D;
            } else if (D > eps) {
                f |= F_CPF;
                p[i].pos = D;
            }
            if (a->score1 > 0) {
                f |= F_S1POS;
                if (!(f & F_CNF)) f |= F_KEEP;
            }
        }
        p[i].flags = f;
    }
    return p;
}

static void add(Sums *s, const Prep *p) {
    unsigned f = p->flags;
    s->n++;
    s->c1 += (f & F_C1) != 0;
    s->c2 += (f & F_C2) != 0;
    s->nf += (f & F_NF) != 0;
    s->pf += (f & F_PF) != 0;
    s->inc += (f & F_INC) != 0;
    s->cnf += (f & F_CNF) != 0;
    s->cpf += (f & F_CPF) != 0;
    s->s1pos += (f & F_S1POS) != 0;
    s->keep += (f & F_KEEP) != 0;
    s->s1 += p->s1;
    s->s2 += p->s2;
    s->neg += p->neg;
    s->pos += p->pos;
}

static double ratio(long long a, long long b) { return b > 0 ? (double)a / (double)b : NAN; }

/* All statistics from the sums; num/den (may be NULL) receive the share counts. */
static void stats(const Sums *s, double v[NSTAT], long long num[NSTAT], long long den[NSTAT]) {
    long long nn[NSTAT], dd[NSTAT];
    for (int i = 0; i < NSTAT; i++) nn[i] = dd[i] = -1;
#define SHARE(k, a, b) (nn[k] = (a), dd[k] = (b), v[k] = ratio(nn[k], dd[k]))
    SHARE(S_ACC1, s->c1, s->n);
    SHARE(S_ACC2, s->c2, s->n);
    SHARE(S_NFR, s->nf, s->n);
    SHARE(S_PFR, s->pf, s->n);
    SHARE(S_IFR, s->inc, s->n);
    SHARE(S_NFI, s->nf, s->n - s->c2);
    SHARE(S_BTC, s->c1 - s->nf, s->c1);
    SHARE(S_CNFR, s->cnf, s->n);
    SHARE(S_CPFR, s->cpf, s->n);
    SHARE(S_CBTC, s->keep, s->s1pos);
#undef SHARE
    v[S_MEAN1] = s->n ? s->s1 / (double)s->n : NAN;
    v[S_MEAN2] = s->n ? s->s2 / (double)s->n : NAN;
    v[S_MR] = s->cnf ? s->neg / (double)s->cnf : NAN;
    v[S_MG] = s->cpf ? s->pos / (double)s->cpf : NAN;
    if (num) memcpy(num, nn, sizeof nn);
    if (den) memcpy(den, dd, sizeof dd);
}

/* Uniform index in [0, n), n <= 2^32, without modulo bias. */
static size_t draw(Rng *r, uint64_t n) {
    uint32_t limit = (uint32_t)((0x100000000ull - n) % n); /* 2^32 mod n */
    uint32_t x;
    do x = rng_u32(r);
    while (x < limit);
    return (size_t)(x % n);
}

/* vals[s * B + b] = statistic s on resample b. The draws depend only on (seed, n, B),
 * so two calls with the same options resample the same instances: that is how the
 * two comparisons of a delta are resampled jointly. */
static int bootstrap(const Prep *p, size_t n, const CompatOptions *o, double **vals_out) {
    size_t B = (size_t)o->bootstrap;
    double *vals = malloc((size_t)NSTAT * (B ? B : 1) * sizeof *vals);
    if (!vals) return err_set("out of memory for %zu bootstrap resamples", B);
    Rng r;
    rng_seed(&r, o->seed);
    for (size_t b = 0; b < B; b++) {
        Sums s = {0};
        for (size_t i = 0; i < n; i++) add(&s, &p[draw(&r, n)]);
        double v[NSTAT];
        stats(&s, v, NULL, NULL);
        for (int k = 0; k < NSTAT; k++) vals[(size_t)k * B + b] = v[k];
    }
    *vals_out = vals;
    return 0;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

int compat_choose_on_val(const double *acc, const double *nfr, int n, double m2_acc, double tol, CompatValFallback none) {
    int best = -1;
    for (int i = 0; i < n; i++)
        if (acc[i] >= m2_acc - tol - 1e-12 && (best < 0 || nfr[i] < nfr[best] - 1e-12)) best = i;
    if (best >= 0 || none == COMPAT_VAL_FIRST) return best < 0 ? 0 : best;
    best = 0;
    for (int i = 1; i < n; i++)
        if (acc[i] > acc[best] + 1e-12) best = i;
    return best;
}

double compat_percentile(const double *v, size_t n, double p) {
    if (n == 0) return NAN;
    double h = (double)(n - 1) * p;
    size_t lo = (size_t)floor(h);
    if (lo >= n - 1) return v[n - 1];
    return v[lo] + (h - (double)lo) * (v[lo + 1] - v[lo]);
}

/* Interval of B resampled values (sorted in place); NAN when any is undefined. */
static void interval(double *v, size_t B, double level, double *lo, double *hi) {
    *lo = *hi = NAN;
    if (B == 0) return;
    for (size_t b = 0; b < B; b++)
        if (isnan(v[b])) return;
    qsort(v, B, sizeof *v, cmp_double);
    double a = (1 - level) / 2;
    *lo = compat_percentile(v, B, a);
    *hi = compat_percentile(v, B, 1 - a);
}

static void set_stat(CompatStat *st, double value, long long num, long long den) {
    st->value = value;
    st->lo = st->hi = NAN;
    st->num = num;
    st->den = den;
}

static CompatStat *report_stat(CompatReport *r, int k) {
    CompatStat *map[NSTAT] = {&r->acc1, &r->acc2, &r->nfr, &r->pfr,  &r->ifr, &r->nfi, &r->btc,
                              &r->mean1, &r->mean2, &r->cnfr, &r->cpfr, &r->m_r, &r->m_g, &r->cbtc};
    return map[k];
}

/* Point estimates, kinds and (unsorted) resampled values of one comparison. */
static int run(const CompatInstance *x, size_t n, const CompatOptions *o, CompatReport *out, double **vals) {
    memset(out, 0, sizeof *out);
    *vals = NULL;
    if (check_options(o) != 0) return -1;
    Kinds k;
    Prep *p = prepare(x, n, o->tie_eps, &k);
    if (!p) return -1;
    out->n = n;
    out->discrete = k.discrete;
    out->continuous = k.continuous;
    out->preds = k.discrete && k.preds;
    Sums s = {0};
    for (size_t i = 0; i < n; i++) add(&s, &p[i]);
    double v[NSTAT];
    long long num[NSTAT], den[NSTAT];
    stats(&s, v, num, den);
    for (int i = 0; i < NSTAT; i++) set_stat(report_stat(out, i), v[i], num[i], den[i]);
    int rc = 0;
    if (n > 0 && o->bootstrap > 0) rc = bootstrap(p, n, o, vals);
    free(p);
    return rc;
}

static void finish(CompatReport *r, double *vals, const CompatOptions *o) {
    size_t B = (size_t)o->bootstrap;
    if (vals)
        for (int k = 0; k < NSTAT; k++) {
            CompatStat *st = report_stat(r, k);
            interval(vals + (size_t)k * B, B, o->level, &st->lo, &st->hi);
        }
    /* statistics of a family that is absent are undefined */
    for (int k = 0; k < NSTAT; k++) {
        int disc = k <= S_BTC;
        if ((disc && !r->discrete) || (!disc && !r->continuous) || (k == S_IFR && !r->preds)) {
            CompatStat *st = report_stat(r, k);
            set_stat(st, NAN, -1, -1);
        }
    }
}

/* K seeds: per-seed point values and resampled values, averaged over the seeds. Every seed's
 * bootstrap draws the same index sets (they depend only on seed, n and B), so the averaged
 * resample b is the mean over seeds of the statistic on one and the same index set. */
static int run_seeds(const CompatInstance *const *x, int k, size_t n, const CompatOptions *o, CompatReport *out,
                     double **vals) {
    memset(out, 0, sizeof *out);
    *vals = NULL;
    if (k < 1) return err_set("%d seeds: expected at least 1", k);
    size_t B = (size_t)(o->bootstrap > 0 ? o->bootstrap : 0);
    long long sum_num[NSTAT], den0[NSTAT];
    int same_den[NSTAT];
    double *acc = NULL;
    for (int s = 0; s < k; s++) {
        CompatReport r;
        double *v;
        if (run(x[s], n, o, &r, &v) != 0) {
            free(acc);
            return k > 1 ? err_prefix("seed %d", s + 1) : -1;
        }
        if (s == 0) {
            memcpy(out, &r, sizeof r);
            acc = v;
            for (int i = 0; i < NSTAT; i++) {
                const CompatStat *st = report_stat(&r, i);
                sum_num[i] = st->num;
                den0[i] = st->den;
                same_den[i] = st->den >= 0;
            }
            continue;
        }
        if (r.discrete != out->discrete || r.continuous != out->continuous) {
            free(v);
            free(acc);
            return err_set("seed %d carries other kinds of outcome than seed 1 (discrete %d/%d, scores %d/%d)", s + 1,
                           r.discrete, out->discrete, r.continuous, out->continuous);
        }
        out->preds &= r.preds;
        for (int i = 0; i < NSTAT; i++) {
            const CompatStat *st = report_stat(&r, i);
            report_stat(out, i)->value += st->value;
            if (st->den != den0[i]) same_den[i] = 0;
            sum_num[i] += st->num;
        }
        if (acc && v)
            for (size_t j = 0; j < (size_t)NSTAT * B; j++) acc[j] += v[j];
        free(v);
    }
    if (k > 1) {
        for (int i = 0; i < NSTAT; i++) {
            CompatStat *st = report_stat(out, i);
            st->value /= k;
            /* counts: summed over the seeds when every seed has the same denominator
             * (then value = sum num / sum den); otherwise not a share of one count */
            st->num = same_den[i] ? sum_num[i] : -1;
            st->den = same_den[i] ? den0[i] * k : -1;
        }
        if (acc)
            for (size_t j = 0; j < (size_t)NSTAT * B; j++) acc[j] /= k;
    }
    *vals = acc;
    return 0;
}

int compat_compute_seeds(const CompatInstance *const *x, int k, size_t n, const CompatOptions *o, CompatReport *out) {
    double *vals;
    if (run_seeds(x, k, n, o, out, &vals) != 0) return -1;
    finish(out, vals, o);
    free(vals);
    return 0;
}

int compat_compute(const CompatInstance *x, size_t n, const CompatOptions *o, CompatReport *out) {
    return compat_compute_seeds(&x, 1, n, o, out);
}

int compat_delta_seeds(const CompatInstance *const *base, const CompatInstance *const *cand, int k, size_t n,
                       const CompatOptions *o, CompatDelta *out) {
    memset(out, 0, sizeof *out);
    double *vb = NULL, *vc = NULL;
    if (run_seeds(base, k, n, o, &out->base, &vb) != 0) return err_prefix("base comparison");
    if (run_seeds(cand, k, n, o, &out->cand, &vc) != 0) {
        free(vb);
        return err_prefix("candidate comparison");
    }
    if (out->base.discrete != out->cand.discrete || out->base.continuous != out->cand.continuous) {
        free(vb);
        free(vc);
        return err_set("the two comparisons carry different kinds of outcome (discrete %d/%d, scores %d/%d)",
                       out->base.discrete, out->cand.discrete, out->base.continuous, out->cand.continuous);
    }
    out->discrete = out->base.discrete;
    out->continuous = out->base.continuous;
    /* d[j][b]: the delta statistics on resample b (j = 0..6), then the point values */
    enum { D_NFR, D_REL, D_PFR, D_ACC, D_CNFR, D_CREL, D_MEAN, ND };
    CompatStat *dst[ND] = {&out->dnfr, &out->rel_dnfr, &out->dpfr, &out->dacc, &out->dcnfr, &out->rel_dcnfr, &out->dmean};
    size_t B = (size_t)o->bootstrap;
    double pb[NSTAT], pc[NSTAT];
    for (int k = 0; k < NSTAT; k++) {
        pb[k] = report_stat(&out->base, k)->value;
        pc[k] = report_stat(&out->cand, k)->value;
    }
    double point[ND];
#define DELTAS(b, c, d)                                                              \
    do {                                                                             \
        (d)[D_NFR] = (c)[S_NFR] - (b)[S_NFR];                                        \
        (d)[D_REL] = (b)[S_NFR] > 0 ? 100 * (d)[D_NFR] / (b)[S_NFR] : NAN;           \
        (d)[D_PFR] = (c)[S_PFR] - (b)[S_PFR];                                        \
        (d)[D_ACC] = (c)[S_ACC2] - (b)[S_ACC2];                                      \
        (d)[D_CNFR] = (c)[S_CNFR] - (b)[S_CNFR];                                     \
        (d)[D_CREL] = (b)[S_CNFR] > 0 ? 100 * (d)[D_CNFR] / (b)[S_CNFR] : NAN;       \
        (d)[D_MEAN] = (c)[S_MEAN2] - (b)[S_MEAN2];                                   \
    } while (0)
    DELTAS(pb, pc, point);
    double *dv = NULL;
    if (vb && vc) {
        dv = malloc((size_t)ND * B * sizeof *dv);
        if (!dv) {
            free(vb);
            free(vc);
            return err_set("out of memory for %zu bootstrap resamples", B);
        }
        for (size_t b = 0; b < B; b++) {
            double xb[NSTAT], xc[NSTAT], d[ND];
            for (int k = 0; k < NSTAT; k++) {
                xb[k] = vb[(size_t)k * B + b];
                xc[k] = vc[(size_t)k * B + b];
            }
            DELTAS(xb, xc, d);
            for (int j = 0; j < ND; j++) dv[(size_t)j * B + b] = d[j];
        }
    }
#undef DELTAS
    for (int j = 0; j < ND; j++) {
        set_stat(dst[j], point[j], -1, -1);
        if (dv) interval(dv + (size_t)j * B, B, o->level, &dst[j]->lo, &dst[j]->hi);
        int disc = j <= D_ACC;
        if ((disc && !out->discrete) || (!disc && !out->continuous)) set_stat(dst[j], NAN, -1, -1);
    }
    finish(&out->base, vb, o);
    finish(&out->cand, vc, o);
    free(vb);
    free(vc);
    free(dv);
    return 0;
}

int compat_delta(const CompatInstance *base, const CompatInstance *cand, size_t n, const CompatOptions *o,
                 CompatDelta *out) {
    return compat_delta_seeds(&base, &cand, 1, n, o, out);
}
