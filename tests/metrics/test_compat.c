/* tests/metrics/test_compat.c - flip metrics on hand-made cases with known answers, edge cases,
 * and the paired bootstrap (determinism, sanity of the intervals, joint resampling). */
#include "testutil.h"
#include "core/error.h"
#include "metrics/compat.h"
#include "core/rng.h"

#include <math.h>

#define CLOSE(a, b) assert_true(fabs((a) - (b)) <= 1e-12)
#define IS_NULL(st) assert_true(isnan((st).value))

static CompatOptions opts(int B) {
    CompatOptions o;
    compat_options_default(&o);
    o.bootstrap = B;
    return o;
}

/* discrete instances from strings of '0'/'1' and prediction equality ('=' same, '!' differ, '?' unknown) */
static CompatInstance *discrete(const char *c1, const char *c2, const char *same) {
    size_t n = strlen(c1);
    CompatInstance *x = calloc(n ? n : 1, sizeof *x);
    for (size_t i = 0; i < n; i++) {
        x[i].correct1 = (signed char)(c1[i] - '0');
        x[i].correct2 = (signed char)(c2[i] - '0');
        x[i].score1 = x[i].score2 = NAN;
        x[i].same_pred = (signed char)(!same ? -1 : same[i] == '=' ? 1 : same[i] == '!' ? 0 : -1);
    }
    return x;
}

static void test_discrete_known_answers(void **state) {
    (void)state;
    /*            instance: 0123456789 */
    CompatInstance *x = discrete("1111110000", "1111011100", "====!=!!=!");
    CompatOptions o = opts(0);
    CompatReport r;
    assert_int_equal(compat_compute(x, 10, &o, &r), 0);
    assert_int_equal(r.n, 10);
    assert_true(r.discrete && r.preds && !r.continuous);
    CLOSE(r.acc1.value, 0.6);
    CLOSE(r.acc2.value, 0.7);
    CLOSE(r.nfr.value, 0.1); /* instance 4 */
    assert_int_equal(r.nfr.num, 1);
    assert_int_equal(r.nfr.den, 10);
    CLOSE(r.pfr.value, 0.2); /* instances 6, 7 */
    CLOSE(r.ifr.value, 0.2); /* 4 (also a negative flip) and 9 (both wrong, different answers); 8 answers alike */
    CLOSE(r.nfi.value, 1.0 / 3); /* 1 negative flip among 3 M2 errors */
    assert_int_equal(r.nfi.den, 3);
    CLOSE(r.btc.value, 5.0 / 6); /* M1 right on 6, M2 keeps 5 */
    assert_int_equal(r.btc.num, 5);
    assert_int_equal(r.btc.den, 6);
    assert_true(isnan(r.nfr.lo) && isnan(r.nfr.hi)); /* B = 0: no intervals */
    IS_NULL(r.mean1);
    IS_NULL(r.cnfr);
    IS_NULL(r.m_r);
    /* unknown predictions: no inconsistency rate, the rest unchanged */
    x[3].same_pred = -1;
    assert_int_equal(compat_compute(x, 10, &o, &r), 0);
    assert_false(r.preds);
    IS_NULL(r.ifr);
    CLOSE(r.nfr.value, 0.1);
    free(x);
}

static void test_discrete_edges(void **state) {
    (void)state;
    CompatOptions o = opts(200);
    CompatReport r;
    /* no flips */
    CompatInstance *x = discrete("1100", "1100", "==!!");
    assert_int_equal(compat_compute(x, 4, &o, &r), 0);
    CLOSE(r.nfr.value, 0);
    CLOSE(r.pfr.value, 0);
    CLOSE(r.nfr.lo, 0);
    CLOSE(r.nfr.hi, 0);
    CLOSE(r.btc.value, 1);
    CLOSE(r.ifr.value, 0.5); /* both wrong, different answers */
    free(x);
    /* all negative flips */
    x = discrete("111", "000", "!!!");
    assert_int_equal(compat_compute(x, 3, &o, &r), 0);
    CLOSE(r.nfr.value, 1);
    CLOSE(r.nfr.lo, 1);
    CLOSE(r.nfr.hi, 1);
    CLOSE(r.nfi.value, 1);
    CLOSE(r.btc.value, 0);
    CLOSE(r.acc2.value, 0);
    free(x);
    /* N = 1 */
    x = discrete("1", "0", "!");
    assert_int_equal(compat_compute(x, 1, &o, &r), 0);
    CLOSE(r.nfr.value, 1);
    CLOSE(r.nfr.lo, 1);
    CLOSE(r.nfr.hi, 1);
    free(x);
    /* M2 never wrong: NFI undefined (0 / 0), and so is its interval */
    x = discrete("0101", "1111", "!=!=");
    assert_int_equal(compat_compute(x, 4, &o, &r), 0);
    IS_NULL(r.nfi);
    assert_true(isnan(r.nfi.lo));
    CLOSE(r.pfr.value, 0.5);
    free(x);
    /* M1 never right: BTC undefined */
    x = discrete("000", "010", "!!!");
    assert_int_equal(compat_compute(x, 3, &o, &r), 0);
    IS_NULL(r.btc);
    CLOSE(r.nfr.value, 0);
    free(x);
    /* N = 0: every value null, not an error */
    assert_int_equal(compat_compute(NULL, 0, &o, &r), 0);
    assert_int_equal(r.n, 0);
    IS_NULL(r.nfr);
    IS_NULL(r.acc1);
    IS_NULL(r.mean1);
    /* a statistic undefined on some resample has no interval: 1 negative flip among 20 M2 errors */
    x = discrete("10000000000000000000", "00000000000000000000", NULL);
    assert_int_equal(compat_compute(x, 20, &o, &r), 0);
    CLOSE(r.btc.value, 0);
    assert_true(isnan(r.btc.lo)); /* resamples without instance 0 have no M1-correct instance */
    assert_false(isnan(r.nfr.lo));
    free(x);
}

static CompatInstance *continuous(const double *s1, const double *s2, size_t n) {
    CompatInstance *x = calloc(n, sizeof *x);
    for (size_t i = 0; i < n; i++) {
        x[i].correct1 = x[i].correct2 = -1;
        x[i].score1 = s1[i];
        x[i].score2 = s2[i];
        x[i].same_pred = -1;
    }
    return x;
}

static void test_continuous_known_answers(void **state) {
    (void)state;
    double s1[] = {0.5, 0.2, 0.0, 1.0, 0.3};
    double s2[] = {0.7, 0.2, 0.1, 0.6, 0.3 + 1e-12}; /* D = .2, 0, .1, -.4, a tie within 1e-9 */
    CompatInstance *x = continuous(s1, s2, 5);
    CompatOptions o = opts(0);
    CompatReport r;
    assert_int_equal(compat_compute(x, 5, &o, &r), 0);
    assert_true(r.continuous && !r.discrete && !r.preds);
    CLOSE(r.mean1.value, 0.4);
    assert_true(fabs(r.mean2.value - 0.38) < 1e-12);
    CLOSE(r.cnfr.value, 0.2);
    CLOSE(r.cpfr.value, 0.4);
    assert_true(fabs(r.m_r.value - 0.4) < 1e-12);
    assert_true(fabs(r.m_g.value - 0.15) < 1e-12);
    CLOSE(r.cbtc.value, 0.75); /* s1 > 0 on 0, 1, 3, 4; D >= 0 on 0, 1, 4 */
    assert_int_equal(r.cbtc.den, 4);
    IS_NULL(r.nfr);
    IS_NULL(r.nfi);
    /* a stricter tie tolerance makes instance 4 a positive flip */
    o.tie_eps = 0;
    assert_int_equal(compat_compute(x, 5, &o, &r), 0);
    CLOSE(r.cpfr.value, 0.6);
    free(x);
    /* all equal: no flips, magnitudes undefined */
    double e[] = {0.25, 0.5, 0.75};
    x = continuous(e, e, 3);
    o = opts(100);
    assert_int_equal(compat_compute(x, 3, &o, &r), 0);
    CLOSE(r.cnfr.value, 0);
    CLOSE(r.cpfr.value, 0);
    IS_NULL(r.m_r);
    IS_NULL(r.m_g);
    assert_true(isnan(r.m_r.lo));
    CLOSE(r.cbtc.value, 1);
    CLOSE(r.cnfr.lo, 0);
    CLOSE(r.cnfr.hi, 0);
    free(x);
    /* empty generations on both sides score 0: ties, and not part of cBTC's base */
    double z[] = {0, 0, 0.5}, z2[] = {0, 0, 0.25};
    x = continuous(z, z2, 3);
    assert_int_equal(compat_compute(x, 3, &o, &r), 0);
    CLOSE(r.cnfr.value, 1.0 / 3);
    CLOSE(r.cbtc.value, 0);
    assert_int_equal(r.cbtc.den, 1);
    free(x);
    double zero[] = {0, 0};
    x = continuous(zero, zero, 2);
    assert_int_equal(compat_compute(x, 2, &o, &r), 0);
    IS_NULL(r.cbtc);
    CLOSE(r.mean1.value, 0);
    free(x);
}

static void test_both_kinds_and_errors(void **state) {
    (void)state;
    CompatInstance x[3] = {
        {1, 0, 0.9, 0.1, 0}, {0, 1, 0.1, 0.8, 0}, {1, 1, 0.5, 0.5, 1},
    };
    CompatOptions o = opts(50);
    CompatReport r;
    assert_int_equal(compat_compute(x, 3, &o, &r), 0);
    assert_true(r.discrete && r.continuous && r.preds);
    CLOSE(r.nfr.value, 1.0 / 3);
    CLOSE(r.cnfr.value, 1.0 / 3);
    assert_true(fabs(r.m_r.value - 0.8) < 1e-12);
    /* mixed kinds name the instance */
    x[2].correct2 = -1;
    assert_int_equal(compat_compute(x, 3, &o, &r), -1);
    assert_non_null(strstr(err_msg(), "instance 2: only one of the two models has a discrete outcome"));
    x[2].correct1 = -1;
    assert_int_equal(compat_compute(x, 3, &o, &r), -1);
    assert_non_null(strstr(err_msg(), "instance 2: has no discrete outcome, but instance 0 has one"));
    x[2].correct1 = x[2].correct2 = 1;
    x[1].score2 = 1.5;
    assert_int_equal(compat_compute(x, 3, &o, &r), -1);
    assert_non_null(strstr(err_msg(), "instance 1: scores (0.1, 1.5): expected numbers in [0, 1]"));
    x[1].score2 = NAN;
    assert_int_equal(compat_compute(x, 3, &o, &r), -1);
    assert_non_null(strstr(err_msg(), "instance 1: only one of the two models has a score"));
    x[1].score2 = 0.8;
    o.level = 1;
    assert_int_equal(compat_compute(x, 3, &o, &r), -1);
    assert_non_null(strstr(err_msg(), "interval level"));
    o = opts(-1);
    assert_int_equal(compat_compute(x, 3, &o, &r), -1);
    assert_non_null(strstr(err_msg(), "bootstrap"));
}

static void test_percentile(void **state) {
    (void)state;
    double v[] = {1, 2, 3, 4};
    CLOSE(compat_percentile(v, 4, 0.025), 1.075); /* numpy.percentile([1,2,3,4], 2.5) */
    CLOSE(compat_percentile(v, 4, 0.975), 3.925);
    CLOSE(compat_percentile(v, 4, 0), 1);
    CLOSE(compat_percentile(v, 4, 1), 4);
    CLOSE(compat_percentile(v, 1, 0.3), 1);
    assert_true(isnan(compat_percentile(v, 0, 0.5)));
}

/* n instances: M1 right on ~78%, flips at the given rates, from a fixed pattern generator */
static CompatInstance *synthetic(size_t n, uint64_t seed) {
    CompatInstance *x = calloc(n, sizeof *x);
    uint64_t s = seed;
    for (size_t i = 0; i < n; i++) {
        s = s * 6364136223846793005ull + 1442695040888963407ull;
        double u = (double)(s >> 11) / 9007199254740992.0;
        int c1 = u < 0.78;
        int nf = c1 && u < 0.0635, pf = !c1 && u > 1 - 0.073;
        x[i].correct1 = (signed char)c1;
        x[i].correct2 = (signed char)(nf ? 0 : pf ? 1 : c1);
        x[i].same_pred = (signed char)(x[i].correct1 == x[i].correct2 && (u > 0.9 ? 0 : 1));
        x[i].score1 = u;
        x[i].score2 = nf ? u * 0.5 : pf ? (1 + u) / 2 : u;
    }
    return x;
}

static void test_bootstrap_determinism_and_sanity(void **state) {
    (void)state;
    size_t n = 2000;
    CompatInstance *x = synthetic(n, 7);
    CompatOptions o = opts(1000);
    CompatReport a, b, c;
    assert_int_equal(compat_compute(x, n, &o, &a), 0);
    assert_int_equal(compat_compute(x, n, &o, &b), 0);
    assert_memory_equal(&a, &b, sizeof a); /* same seed, same bits */
    o.seed = 43;
    assert_int_equal(compat_compute(x, n, &o, &c), 0);
    assert_true(a.nfr.lo != c.nfr.lo || a.nfr.hi != c.nfr.hi || a.acc1.lo != c.acc1.lo);
    CLOSE(a.nfr.value, c.nfr.value);
    /* every defined interval contains its point estimate */
    const CompatStat *st[] = {&a.acc1, &a.acc2, &a.nfr, &a.pfr, &a.ifr, &a.nfi, &a.btc,
                              &a.mean1, &a.mean2, &a.cnfr, &a.cpfr, &a.m_r, &a.m_g, &a.cbtc};
    for (size_t i = 0; i < sizeof st / sizeof st[0]; i++) {
        assert_false(isnan(st[i]->lo));
        assert_true(st[i]->lo <= st[i]->value && st[i]->value <= st[i]->hi);
        assert_true(st[i]->lo < st[i]->hi);
    }
    /* the NFR interval is close to the normal approximation p +- 1.96 sqrt(p (1 - p) / n) */
    double p = a.nfr.value, half = 1.96 * sqrt(p * (1 - p) / (double)n);
    printf("# NFR %.4f, bootstrap [%.4f, %.4f], normal approximation [%.4f, %.4f]\n", p, a.nfr.lo, a.nfr.hi, p - half,
           p + half);
    assert_true(fabs((a.nfr.hi - a.nfr.lo) / (2 * half) - 1) < 0.15);
    assert_true(fabs((a.nfr.lo + a.nfr.hi) / 2 - p) < 0.25 * half);
    /* width shrinks like 1/sqrt(N): 100x the instances, about a tenth of the width */
    CompatInstance *small = synthetic(200, 7), *big = synthetic(20000, 7);
    CompatReport rs, rb;
    o.seed = 42;
    assert_int_equal(compat_compute(small, 200, &o, &rs), 0);
    assert_int_equal(compat_compute(big, 20000, &o, &rb), 0);
    double ws = rs.acc1.hi - rs.acc1.lo, wb = rb.acc1.hi - rb.acc1.lo;
    printf("# acc1 interval width: N=200 %.4f, N=20000 %.4f (ratio %.2f)\n", ws, wb, ws / wb);
    assert_true(ws / wb > 7 && ws / wb < 14);
    assert_true(rb.nfr.hi - rb.nfr.lo < (rs.nfr.hi - rs.nfr.lo) / 5);
    free(x);
    free(small);
    free(big);
}

static void test_delta(void **state) {
    (void)state;
    size_t n = 2000;
    CompatInstance *base = synthetic(n, 11), *cand = synthetic(n, 11);
    CompatOptions o = opts(1000);
    CompatDelta d;
    /* identical comparisons: every resample differs by exactly 0 (joint resampling) */
    assert_int_equal(compat_delta(base, cand, n, &o, &d), 0);
    CLOSE(d.dnfr.value, 0);
    CLOSE(d.dnfr.lo, 0);
    CLOSE(d.dnfr.hi, 0);
    CLOSE(d.rel_dnfr.lo, 0);
    CLOSE(d.dacc.hi, 0);
    CLOSE(d.dmean.lo, 0);
    /* the candidate keeps every other negative flip correct */
    size_t nf = 0, fixed = 0;
    for (size_t i = 0; i < n; i++)
        if (base[i].correct1 == 1 && base[i].correct2 == 0 && nf++ % 2 == 0) {
            cand[i].correct2 = 1;
            cand[i].score2 = cand[i].score1;
            fixed++;
        }
    assert_int_equal(compat_delta(base, cand, n, &o, &d), 0);
    double nfr_b = (double)nf / (double)n, nfr_c = (double)(nf - fixed) / (double)n;
    CLOSE(d.base.nfr.value, nfr_b);
    CLOSE(d.cand.nfr.value, nfr_c);
    CLOSE(d.dnfr.value, nfr_c - nfr_b);
    CLOSE(d.rel_dnfr.value, 100 * (nfr_c - nfr_b) / nfr_b);
    CLOSE(d.dacc.value, (double)fixed / (double)n);
    CLOSE(d.dpfr.value, 0);
    assert_true(d.dnfr.lo <= d.dnfr.value && d.dnfr.value <= d.dnfr.hi && d.dnfr.hi < 0);
    assert_true(d.rel_dnfr.lo < -40 && d.rel_dnfr.hi > -60 && d.rel_dnfr.hi < 0);
    printf("# delta: NFR %.4f -> %.4f, rel %.1f%% [%.1f, %.1f], dNFR interval [%.4f, %.4f]\n", nfr_b, nfr_c,
           d.rel_dnfr.value, d.rel_dnfr.lo, d.rel_dnfr.hi, d.dnfr.lo, d.dnfr.hi);
    /* paired: the delta's interval is narrower than the two intervals put together */
    assert_true(d.dnfr.hi - d.dnfr.lo < (d.base.nfr.hi - d.base.nfr.lo));
    /* the base report is exactly compat_compute's: the same resamples */
    CompatReport r;
    assert_int_equal(compat_compute(base, n, &o, &r), 0);
    assert_memory_equal(&r, &d.base, sizeof r);
    /* NFR_base = 0: the relative change is undefined (null) */
    CompatInstance *z = discrete("1100", "1110", NULL), *z2 = discrete("1100", "0110", NULL);
    assert_int_equal(compat_delta(z, z2, 4, &o, &d), 0);
    IS_NULL(d.rel_dnfr);
    assert_true(isnan(d.rel_dnfr.lo));
    CLOSE(d.dnfr.value, 0.25);
    CLOSE(d.dacc.value, -0.25);
    IS_NULL(d.dcnfr);
    /* different kinds of outcome */
    cand[5].score1 = cand[5].score2 = NAN;
    assert_int_equal(compat_delta(base, cand, n, &o, &d), -1);
    assert_non_null(strstr(err_msg(), "candidate comparison: instance 5: has no scores, but instance 0 has"));
    free(base);
    free(cand);
    free(z);
    free(z2);
}

/* Several seeds: hand-computed means over seeds. M1 is right on instances 0, 1 of 4.
 *   M2 seed 1: 1010  NF {1}  PF {2}  acc .50   MC seed 1: 1110  NF {}   PF {2}  acc .75
 *   M2 seed 2: 0110  NF {0}  PF {2}  acc .50   MC seed 2: 0100  NF {0}  PF {}   acc .25
 * M2: NFR (1/4 + 1/4) / 2 = .25 (2/8), acc .5; MC: NFR .125 (1/8), PFR .125, acc .5;
 * dNFR = -.125, relative -50%, dPFR = .125 - .25 = -.125, dacc = 0.
 * NFI: M2 .5 on both seeds (1 of 2 errors; equal denominators: 2/4); MC 0/1 and 1/3: mean 1/6,
 * no count (denominators differ). BTC: M2 1/2 on both seeds (2/4). */
static void test_seeds_known_answers(void **state) {
    (void)state;
    CompatInstance *b1 = discrete("1100", "1010", "=!!="), *b2 = discrete("1100", "0110", "!=!=");
    CompatInstance *c1 = discrete("1100", "1110", "==!="), *c2 = discrete("1100", "0100", "!===");
    const CompatInstance *base[] = {b1, b2}, *cand[] = {c1, c2};
    CompatOptions o = opts(0);
    CompatDelta d;
    assert_int_equal(compat_delta_seeds(base, cand, 2, 4, &o, &d), 0);
    CLOSE(d.base.nfr.value, 0.25);
    assert_int_equal(d.base.nfr.num, 2);
    assert_int_equal(d.base.nfr.den, 8);
    CLOSE(d.base.acc2.value, 0.5);
    CLOSE(d.base.acc1.value, 0.5);
    assert_int_equal(d.base.acc1.num, 4);
    CLOSE(d.base.pfr.value, 0.25);
    CLOSE(d.cand.nfr.value, 0.125);
    assert_int_equal(d.cand.nfr.num, 1);
    assert_int_equal(d.cand.nfr.den, 8);
    CLOSE(d.cand.pfr.value, 0.125);
    CLOSE(d.cand.acc2.value, 0.5);
    CLOSE(d.dnfr.value, -0.125);
    CLOSE(d.rel_dnfr.value, -50);
    CLOSE(d.dpfr.value, -0.125);
    CLOSE(d.dacc.value, 0);
    CLOSE(d.base.nfi.value, 0.5);
    assert_int_equal(d.base.nfi.num, 2);
    assert_int_equal(d.base.nfi.den, 4);
    CLOSE(d.cand.nfi.value, 1.0 / 6);
    assert_int_equal(d.cand.nfi.num, -1);
    assert_int_equal(d.cand.nfi.den, -1);
    CLOSE(d.base.btc.value, 0.5);
    assert_int_equal(d.base.btc.den, 4);
    /* IFR: M2 wrong with another answer than M1 on 1 (seed 1) and on 0 (seed 2); 3 alike: 1/4 each */
    CLOSE(d.base.ifr.value, 0.25);
    IS_NULL(d.dcnfr);
    /* compute_seeds gives the base comparison's numbers */
    CompatReport r;
    assert_int_equal(compat_compute_seeds(base, 2, 4, &o, &r), 0);
    assert_memory_equal(&r, &d.base, sizeof r);
    free(b1);
    free(b2);
    free(c1);
    free(c2);
}

/* One seed: exactly compat_compute / compat_delta (same bits, intervals included). Two
 * identical seeds: the same values and intervals, counts doubled. */
static void test_seeds_one_and_identical(void **state) {
    (void)state;
    size_t n = 500;
    CompatInstance *b = synthetic(n, 3), *c = synthetic(n, 5);
    for (size_t i = 0; i < n; i++) { /* same M1 in both comparisons */
        c[i].correct1 = b[i].correct1;
        c[i].score1 = b[i].score1;
        if (c[i].correct1 == 0 && c[i].correct2 == 0) c[i].same_pred = 0;
    }
    CompatOptions o = opts(300);
    CompatDelta d1, dk;
    assert_int_equal(compat_delta(b, c, n, &o, &d1), 0);
    const CompatInstance *bs[] = {b, b}, *cs[] = {c, c};
    assert_int_equal(compat_delta_seeds(bs, cs, 1, n, &o, &dk), 0);
    assert_memory_equal(&d1, &dk, sizeof d1);
    CompatReport r1, rk;
    assert_int_equal(compat_compute(b, n, &o, &r1), 0);
    assert_int_equal(compat_compute_seeds(bs, 1, n, &o, &rk), 0);
    assert_memory_equal(&r1, &rk, sizeof r1);
    assert_int_equal(compat_delta_seeds(bs, cs, 2, n, &o, &dk), 0);
    const CompatStat *a[] = {&d1.cand.nfr, &d1.cand.acc2, &d1.cand.cnfr, &d1.cand.mean2, &d1.dnfr, &d1.rel_dnfr, &d1.dacc, &d1.dmean};
    const CompatStat *k2[] = {&dk.cand.nfr, &dk.cand.acc2, &dk.cand.cnfr, &dk.cand.mean2, &dk.dnfr, &dk.rel_dnfr, &dk.dacc, &dk.dmean};
    for (size_t i = 0; i < sizeof a / sizeof a[0]; i++) {
        CLOSE(a[i]->value, k2[i]->value);
        CLOSE(a[i]->lo, k2[i]->lo);
        CLOSE(a[i]->hi, k2[i]->hi);
    }
    assert_int_equal(dk.cand.nfr.num, 2 * d1.cand.nfr.num);
    assert_int_equal(dk.cand.nfr.den, 2 * (long long)n);
    free(b);
    free(c);
}

/* The intervals, replayed: the same draws (xorshift64* from core/rng.h, rejection for the
 * bound), one index set per resample applied to both seeds and both comparisons, the mean
 * over seeds on it, numpy-style percentiles. */
static size_t replay_draw(Rng *r, uint64_t n) {
    uint32_t limit = (uint32_t)((0x100000000ull - n) % n), x;
    do x = rng_u32(r);
    while (x < limit);
    return (size_t)(x % n);
}

static int cmp_dbl(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static void test_seeds_bootstrap_replay(void **state) {
    (void)state;
    const char *m1 = "1111110000";
    const char *m2[] = {"1111011100", "0111111010"}, *mc[] = {"1111111100", "1111101010"};
    CompatInstance *b[2], *c[2];
    for (int s = 0; s < 2; s++) {
        b[s] = discrete(m1, m2[s], NULL);
        c[s] = discrete(m1, mc[s], NULL);
    }
    size_t n = 10, B = 400;
    CompatOptions o = opts((int)B);
    o.seed = 9;
    CompatDelta d;
    assert_int_equal(compat_delta_seeds((const CompatInstance *const *)b, (const CompatInstance *const *)c, 2, n, &o, &d), 0);
    double *nfr_b = malloc(B * sizeof(double)), *nfr_c = malloc(B * sizeof(double)), *dnfr = malloc(B * sizeof(double)),
           *dacc = malloc(B * sizeof(double));
    Rng r;
    rng_seed(&r, 9);
    for (size_t k = 0; k < B; k++) {
        size_t idx[10];
        for (size_t i = 0; i < n; i++) idx[i] = replay_draw(&r, n);
        double nb = 0, nc = 0, ab = 0, ac = 0;
        for (int s = 0; s < 2; s++) {
            int fb = 0, fc = 0, rb = 0, rc = 0;
            for (size_t i = 0; i < n; i++) {
                size_t j = idx[i];
                fb += m1[j] == '1' && m2[s][j] == '0';
                fc += m1[j] == '1' && mc[s][j] == '0';
                rb += m2[s][j] == '1';
                rc += mc[s][j] == '1';
            }
            nb += (double)fb / (double)n / 2;
            nc += (double)fc / (double)n / 2;
            ab += (double)rb / (double)n / 2;
            ac += (double)rc / (double)n / 2;
        }
        nfr_b[k] = nb;
        nfr_c[k] = nc;
        dnfr[k] = nc - nb;
        dacc[k] = ac - ab;
    }
    double *v[] = {nfr_b, nfr_c, dnfr, dacc};
    const CompatStat *st[] = {&d.base.nfr, &d.cand.nfr, &d.dnfr, &d.dacc};
    for (int j = 0; j < 4; j++) {
        qsort(v[j], B, sizeof(double), cmp_dbl);
        printf("# stat %d: %.4f [%.4f, %.4f], replay [%.4f, %.4f]\n", j, st[j]->value, st[j]->lo, st[j]->hi,
               compat_percentile(v[j], B, 0.025), compat_percentile(v[j], B, 0.975));
        CLOSE(st[j]->lo, compat_percentile(v[j], B, 0.025));
        CLOSE(st[j]->hi, compat_percentile(v[j], B, 0.975));
        assert_true(st[j]->lo < st[j]->hi);
    }
    /* point values: NFR M2 (1/10 + 1/10) / 2, MC (0 + 1/10) / 2 */
    CLOSE(d.base.nfr.value, 0.1);
    CLOSE(d.cand.nfr.value, 0.05);
    CLOSE(d.rel_dnfr.value, -50);
    for (int j = 0; j < 4; j++) free(v[j]);
    for (int s = 0; s < 2; s++) {
        free(b[s]);
        free(c[s]);
    }
}

static void test_seeds_errors(void **state) {
    (void)state;
    CompatInstance *a = discrete("1100", "1010", NULL);
    double s1[] = {0.1, 0.2, 0.3, 0.4};
    CompatInstance *sc = continuous(s1, s1, 4);
    const CompatInstance *x[] = {a, sc};
    CompatOptions o = opts(10);
    CompatReport r;
    CompatDelta d;
    assert_int_equal(compat_compute_seeds(x, 0, 4, &o, &r), -1);
    assert_non_null(strstr(err_msg(), "0 seeds"));
    assert_int_equal(compat_compute_seeds(x, 2, 4, &o, &r), -1);
    assert_non_null(strstr(err_msg(), "seed 2 carries other kinds of outcome than seed 1"));
    CompatInstance *bad = discrete("1100", "1010", NULL);
    bad[1].correct2 = 5;
    const CompatInstance *y[] = {a, bad};
    assert_int_equal(compat_delta_seeds(x, y, 2, 4, &o, &d), -1); /* the base fails first */
    assert_non_null(strstr(err_msg(), "base comparison: seed 2 carries"));
    assert_int_equal(compat_delta_seeds(y, y, 2, 4, &o, &d), -1);
    assert_non_null(strstr(err_msg(), "base comparison: seed 2: instance 1: correct"));
    free(a);
    free(sc);
    free(bad);
}

/* The validation rule: lowest NFR among the candidates within the accuracy tolerance, the
 * first on a tie; the slack admits a mean that rounds just below the line; the two fallbacks. */
static void test_choose_on_val(void **state) {
    (void)state;
    double acc[4] = {0.50, 0.48, 0.47, 0.49}, nfr[4] = {0.10, 0.05, 0.01, 0.05};
    assert_int_equal(compat_choose_on_val(acc, nfr, 4, 0.50, 0.02, COMPAT_VAL_FIRST), 1);   /* 2 is too inaccurate; 1 before 3 */
    assert_int_equal(compat_choose_on_val(acc, nfr, 4, 0.50, 0.03, COMPAT_VAL_FIRST), 2);
    assert_int_equal(compat_choose_on_val(acc, nfr, 4, 0.50, 0.0, COMPAT_VAL_FIRST), 0);
    double m2 = (0.1 + 0.2 + 0.3) / 3 * 5; /* 1.0000000000000002 */
    double a1[2] = {0.9, 1.0}, n1[2] = {0.0, 0.2};
    assert_int_equal(compat_choose_on_val(a1, n1, 2, m2, 0.0, COMPAT_VAL_FIRST), 1);
    double a2[3] = {0.40, 0.45, 0.45}, n2[3] = {0.1, 0.3, 0.2};
    assert_int_equal(compat_choose_on_val(a2, n2, 3, 0.50, 0.01, COMPAT_VAL_FIRST), 0);
    assert_int_equal(compat_choose_on_val(a2, n2, 3, 0.50, 0.01, COMPAT_VAL_MOST_ACCURATE), 1);
    assert_int_equal(compat_choose_on_val(a2, n2, 1, 0.50, 0.01, COMPAT_VAL_MOST_ACCURATE), 0);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_discrete_known_answers),
        cmocka_unit_test(test_discrete_edges),
        cmocka_unit_test(test_continuous_known_answers),
        cmocka_unit_test(test_both_kinds_and_errors),
        cmocka_unit_test(test_percentile),
        cmocka_unit_test(test_bootstrap_determinism_and_sanity),
        cmocka_unit_test(test_delta),
        cmocka_unit_test(test_seeds_known_answers),
        cmocka_unit_test(test_seeds_one_and_identical),
        cmocka_unit_test(test_seeds_bootstrap_replay),
        cmocka_unit_test(test_seeds_errors),
        cmocka_unit_test(test_choose_on_val),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
