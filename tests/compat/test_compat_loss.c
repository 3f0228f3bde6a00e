/* tests/compat/test_compat_loss.c - the losses of compatibility training
 * (src/compat/compat_loss.h; issue 5: "unit tests of each loss and mask against
 * hand-computed values, and gradients of each by finite differences").
 *
 *  1. compat_teacher_pos against direct float64 computations; the top-k order and ids.
 *  2. Hand-computed values, vocabulary of 4: every MUSCLE mask (both branches), focal,
 *     ELODI (p = 1, 2; differences below and above the margin), CE only, the ce/kd
 *     mix, the top-k bucketed KL; a few gradients too. The constants come from
 *     tests/compat/hand_values.py (the header's formulas written out in python3
 *     float64, run once), pasted here beside their formulas; nothing is computed by
 *     the code under test.
 *  3. Gradients of compat_token_loss for every method, exact and top-k teachers:
 *     dz against central differences of a float64 re-implementation of the header's
 *     formulas (tight), and of the returned loss itself (coarse); dz aliasing z.
 *     The top-k bucket with a large vocabulary, and with a student far more
 *     confident than its teacher (q_rest down to 1e-9, and below float range).
 *  4. compat_choice_loss: hand values for n = 2..4 choices, every method, with and
 *     without CE; dll against central differences of the returned loss.
 *  5. Settings: compat_config_check, the name parsers, compat_config_json.
 *  7. Sequence level: compat_seq_mask against hand-picked ROUGE-1 scores (every method,
 *     ties, transfer rows), a tiny instance's loss against hand values, the gradient of
 *     compat_seq_row_loss by central differences, its settings.
 *  6. model_backward_logits given the cross-entropy's gradient equals model_loss +
 *     model_backward; the compat gradient through a tiny model against central
 *     differences of a float64 model; mixing the two APIs is an error.
 */
#include "model/gradcheck.h"
#include "compat/compat_loss.h"
#include "core/error.h"

#include <cJSON.h>
#include <float.h>

/* ------------------------------------------------------------------------- */
/* helpers                                                                    */

static double rel_err_dd(const double *a, const double *b, size_t n) {
    double num = 0, den = 0;
    for (size_t i = 0; i < n; i++) {
        double e = fabs(a[i] - b[i]);
        if (e > num || isnan(e)) num = isnan(e) ? INFINITY : e;
        if (fabs(b[i]) > den) den = fabs(b[i]);
    }
    return den > 0 ? num / den : num;
}

static void expect_near(const char *what, double got, double want, double tol) {
    if (!(fabs(got - want) <= tol)) fail_msg("%s: got %.15g, expected %.15g (|diff| %.3e > %.1e)", what, got, want, fabs(got - want), tol);
}

static void expect_vec_near(const char *what, const float *got, const double *want, int n, double tol) {
    for (int i = 0; i < n; i++)
        if (!(fabs((double)got[i] - want[i]) <= tol))
            fail_msg("%s[%d]: got %.12g, expected %.12g (tol %.1e)", what, i, (double)got[i], want[i], tol);
}

static CompatConfig cfg_of(CompatMethod m) {
    CompatConfig c;
    compat_config_default(&c);
    c.method = m;
    return c;
}

/* what each method reads: t2 only for the MUSCLE masks other than none */
/* the paper's masks and the two baselines (the methods of issue 18 have tests of their own) */
#define N_PAPER_METHODS (COMPAT_ELODI + 1)

static int reads_t2(CompatMethod m) { return m != COMPAT_NONE && m != COMPAT_FOCAL && m != COMPAT_ELODI; }

/* ------------------------------------------------------------------------- */
/* 1. teacher positions                                                       */

/* reference top-k: largest first, ties to the lower id */
static void ref_topk(const float *z, int V, int k, int *ids) {
    char used[256] = {0};
    assert_true(V <= 256);
    for (int i = 0; i < k; i++) {
        int b = -1;
        for (int j = 0; j < V; j++)
            if (!used[j] && (b < 0 || z[j] > z[b])) b = j;
        used[b] = 1;
        ids[i] = b;
    }
}

static void check_teacher_pos(const float *z, int V, double T, int y, const char *what) {
    /* float64 references */
    double mx = -INFINITY;
    int am = 0;
    for (int j = 0; j < V; j++)
        if (z[j] > mx) mx = z[j], am = j;
    double s1 = 0, sT = 0;
    for (int j = 0; j < V; j++) {
        s1 += exp((double)z[j] - mx);
        sT += exp(((double)z[j] - mx) / T);
    }
    double lse1 = mx + log(s1), lseT = mx / T + log(sT);
    int ks[] = {1, 3, 5, 17, V - 1, V, V + 5};
    for (size_t t = 0; t < sizeof ks / sizeof *ks; t++) {
        int k = ks[t], kk = k < V ? k : V;
        int *ids = malloc((size_t)kk * sizeof *ids); /* exactly k: ASan sees any write past it */
        float *zo = malloc((size_t)(k > V ? k : V) * sizeof *zo);
        for (int i = 0; i < kk; i++) ids[i] = -7;
        TeacherPos tp;
        memset(&tp, 0xab, sizeof tp);
        compat_teacher_pos(z, V, T, y, k, ids, zo, &tp);
        /* stored as floats: within a float's rounding (relative 2^-24) of the float64 values */
        expect_near(what, tp.lse1, lse1, 1.2e-7 * fmax(1.0, fabs(lse1)));
        expect_near(what, tp.lseT, lseT, 1.2e-7 * fmax(1.0, fabs(lseT)));
        if (y >= 0 && y < V) expect_near(what, tp.logp_y, (double)z[y] - lse1, 4e-7 * fmax(1.0, fabs(lse1)));
        else assert_true(tp.logp_y == 0.0f);
        assert_int_equal(tp.argmax, am);
        if (k >= V) {
            assert_int_equal(tp.k, V);
            assert_null(tp.ids);
            assert_ptr_equal(tp.z, zo);
            assert_memory_equal(zo, z, (size_t)V * sizeof *z);
            for (int i = 0; i < kk; i++) assert_int_equal(ids[i], -7); /* ids_out unused */
        } else {
            int ref[256];
            ref_topk(z, V, k, ref);
            assert_int_equal(tp.k, k);
            assert_ptr_equal(tp.ids, ids);
            assert_ptr_equal(tp.z, zo);
            for (int i = 0; i < k; i++) {
                if (ids[i] != ref[i]) fail_msg("%s: top-%d: rank %d holds id %d, expected %d", what, k, i, ids[i], ref[i]);
                assert_true(zo[i] == z[ids[i]]);
                if (i) assert_true(zo[i] <= zo[i - 1]);
            }
        }
        free(ids);
        free(zo);
    }
}

static void test_teacher_pos(void **state) {
    (void)state;
    enum { V = 40 };
    TRng r = {21};
    float z[V];
    trng_fill(&r, z, V, 4.0f);
    z[19] = z[7] = z[30] = 5.0f;   /* a three-way tie at the top: ids 7, 19, 30 in that order */
    z[3] = z[25] = z[11] = 4.5f;   /* and one just below (ranks 3..5) */
    double Ts[] = {2.0, 1.0, 0.7};
    int ys[] = {0, 19, V - 1, -1, V};
    for (size_t a = 0; a < 3; a++)
        for (size_t b = 0; b < 5; b++) check_teacher_pos(z, V, Ts[a], ys[b], "teacher pos");
    /* the tie at the top: the first of them is the argmax, and the top 3 are 7, 19, 30 */
    int ids[3];
    float zo[V];
    TeacherPos tp;
    compat_teacher_pos(z, V, 2.0, 0, 3, ids, zo, &tp);
    assert_int_equal(tp.argmax, 7);
    assert_int_equal(ids[0], 7);
    assert_int_equal(ids[1], 19);
    assert_int_equal(ids[2], 30);
    /* large logits (exp would overflow without the shift), very negative ones, all equal */
    float big[V], neg[V], flat[V];
    for (int j = 0; j < V; j++) {
        big[j] = 80.0f + 10.0f * trng_sym(&r, 1.0f);
        neg[j] = -1000.0f + trng_sym(&r, 3.0f);
        flat[j] = 0.25f;
    }
    check_teacher_pos(big, V, 2.0, 3, "large logits");
    check_teacher_pos(neg, V, 0.5, 3, "negative logits");
    check_teacher_pos(flat, V, 2.0, 3, "equal logits");
    compat_teacher_pos(flat, V, 2.0, 3, 3, ids, zo, &tp);
    assert_int_equal(tp.argmax, 0);
    assert_int_equal(ids[0], 0); /* all tied: the lowest ids */
    assert_int_equal(ids[1], 1);
    assert_int_equal(ids[2], 2);
    expect_near("equal logits: log p(y) = -log V", tp.logp_y, -log((double)V), 1e-6);
    /* a small vocabulary, by hand: z = (2, 1, 0, -1): lse1 = 2.4401896985612 (hand_values.py),
     * lseT at T = 2: 1 + log(1 + e^-.5 + e^-1 + e^-1.5) */
    const float hz[4] = {2, 1, 0, -1};
    compat_teacher_pos(hz, 4, 2.0, 1, 4, NULL, zo, &tp);
    expect_near("hand lse1", tp.lse1, 2.4401896985612, 3e-7);
    expect_near("hand lseT", tp.lseT, 1.0 + log(1 + exp(-0.5) + exp(-1.0) + exp(-1.5)), 3e-7);
    expect_near("hand logp_y", tp.logp_y, 1.0 - 2.4401896985612, 3e-7);
}

/* ------------------------------------------------------------------------- */
/* 2. hand-computed values, token level                                       */

/* V = 4, T = 2. Student z: argmax 0. M1: argmax 1, top-2 {1, 0}. M2: argmax 0, top-2 {0, 2}. */
static const float HZ[4] = {2.0f, 1.0f, 0.0f, -1.0f};
static const float HZ1[4] = {0.5f, 2.5f, -0.5f, 0.0f};
static const float HZ2[4] = {3.0f, -0.5f, 1.0f, -1.0f};
/* a_k = KL(p_k || q) = sum_j p_j log(p_j / q_j), p_k = softmax(z_k / 2), q = softmax(z / 2) */
#define H_A1 0.206487619200211
#define H_A2 0.100459998133434
/* top-2 teachers, bucketed: sum_{j in K} p_j log(p_j / q_j) + r log(r / q_rest),
 * r = 1 - sum_K p_j, q_rest = 1 - sum_K q_j (M1: r = 0.271441304259838, q_rest = 0.268941421369995) */
#define H_A1_TOP2 0.187549175697815
#define H_A2_TOP2 0.0883517757591656
/* -log softmax(z)_y = lse(z) - z_y, lse(z) = 2.4401896985612 */
static const double H_NLL[4] = {0.440189698561195, 1.4401896985612, 2.4401896985612, 3.4401896985612};
/* the token-likelihood mask at temperature 1: log q1 = (-0.440, -1.440, -2.440, -3.440),
 * log p1_1 = z1 - 2.73681554243082 = (-2.237, -0.237, -3.237, -2.737): y = 0 -> m 0, y = 1 -> m 1 */

typedef struct {
    CompatMethod m;
    int y, seq, answer, distill;
    double ce_s, kd_s;
    int top2, masked;
    double loss;
} TokCase;

/* focal here: alpha 0.5, beta 2 (not the defaults, so that they are seen to be read) */
static const TokCase tok_cases[] = {
    /* distillation only, kd_scale 1: the loss is the chosen a_k */
    {COMPAT_STUDENT_WRONG, 0, 0, 0, 1, 1, 1, 0, 0, H_A2},   /* student right (argmax 0 == y) -> a_2 */
    {COMPAT_STUDENT_WRONG, 1, 0, 0, 1, 1, 1, 0, 1, H_A1},   /* student wrong -> a_1 */
    {COMPAT_OLD_CORRECT, 0, 0, 0, 1, 1, 1, 0, 0, H_A2},     /* M1 wrong (argmax 1) -> a_2 */
    {COMPAT_OLD_CORRECT, 1, 0, 0, 1, 1, 1, 0, 1, H_A1},     /* M1 right -> a_1 */
    {COMPAT_NONE, 0, 0, 0, 1, 1, 1, 0, 1, H_A1},
    {COMPAT_NONE, 1, 0, 0, 1, 1, 1, 0, 1, H_A1},
    {COMPAT_TOKEN_LIKELIHOOD, 0, 0, 0, 1, 1, 1, 0, 0, H_A2}, /* q1(0) > p1_1(0) -> a_2 */
    {COMPAT_TOKEN_LIKELIHOOD, 1, 0, 0, 1, 1, 1, 0, 1, H_A1}, /* q1(1) < p1_1(1) -> a_1 */
    {COMPAT_SEQ_LIKELIHOOD, 0, 0, 0, 1, 1, 1, 0, 0, H_A2},   /* the flag alone decides */
    {COMPAT_SEQ_LIKELIHOOD, 0, 1, 0, 1, 1, 1, 0, 1, H_A1},
    {COMPAT_SEQ_LIKELIHOOD, 1, 0, 0, 1, 1, 1, 0, 0, H_A2},
    {COMPAT_SEQ_LIKELIHOOD, 1, 1, 0, 1, 1, 1, 0, 1, H_A1},
    {COMPAT_FOCAL, 0, 0, 0, 1, 1, 1, 0, 0, 0.5 * H_A1},     /* (alpha + beta * 0) a_1 = 0.103243809600106 */
    {COMPAT_FOCAL, 1, 0, 0, 1, 1, 1, 0, 1, 2.5 * H_A1},     /* (alpha + beta * 1) a_1 = 0.516219048000528 */
    /* the same with top-2 teachers */
    {COMPAT_STUDENT_WRONG, 0, 0, 0, 1, 1, 1, 1, 0, H_A2_TOP2},
    {COMPAT_STUDENT_WRONG, 1, 0, 0, 1, 1, 1, 1, 1, H_A1_TOP2},
    {COMPAT_OLD_CORRECT, 0, 0, 0, 1, 1, 1, 1, 0, H_A2_TOP2},
    {COMPAT_OLD_CORRECT, 1, 0, 0, 1, 1, 1, 1, 1, H_A1_TOP2},
    {COMPAT_NONE, 0, 0, 0, 1, 1, 1, 1, 1, H_A1_TOP2},
    {COMPAT_TOKEN_LIKELIHOOD, 0, 0, 0, 1, 1, 1, 1, 0, H_A2_TOP2},
    {COMPAT_TOKEN_LIKELIHOOD, 1, 0, 0, 1, 1, 1, 1, 1, H_A1_TOP2},
    {COMPAT_SEQ_LIKELIHOOD, 1, 0, 0, 1, 1, 1, 1, 0, H_A2_TOP2},
    {COMPAT_SEQ_LIKELIHOOD, 1, 1, 0, 1, 1, 1, 1, 1, H_A1_TOP2},
    {COMPAT_FOCAL, 0, 0, 0, 1, 1, 1, 1, 0, 0.5 * H_A1_TOP2},
    {COMPAT_FOCAL, 1, 0, 0, 1, 1, 1, 1, 1, 2.5 * H_A1_TOP2},
    /* CE only (distill 0): ce_scale * -log q1(y); the mask is not computed */
    {COMPAT_STUDENT_WRONG, 0, 0, 1, 0, 0.5, 0.7, 0, 0, 0.5 * H_NLL[0]},
    {COMPAT_STUDENT_WRONG, 1, 0, 1, 0, 0.5, 0.7, 0, 0, 0.5 * H_NLL[1]},
    {COMPAT_OLD_CORRECT, 2, 0, 1, 0, 0.5, 0.7, 0, 0, 0.5 * H_NLL[2]},
    {COMPAT_FOCAL, 3, 0, 1, 0, 0.5, 0.7, 0, 0, 0.5 * H_NLL[3]},
    {COMPAT_ELODI, 3, 0, 1, 0, 1.0, 0.7, 0, 0, H_NLL[3]},
    /* neither: nothing */
    {COMPAT_STUDENT_WRONG, 1, 0, 0, 0, 0.5, 0.7, 0, 0, 0.0},
    /* both: ce_scale * ce + kd_scale * kd */
    {COMPAT_STUDENT_WRONG, 0, 0, 1, 1, 0.3, 0.7, 0, 0, 0.3 * H_NLL[0] + 0.7 * H_A2}, /* 0.202378908261762 */
    {COMPAT_STUDENT_WRONG, 2, 0, 1, 1, 0.3, 0.7, 0, 1, 0.3 * H_NLL[2] + 0.7 * H_A1},
    {COMPAT_NONE, 0, 0, 1, 1, 0.3, 0.7, 0, 1, 0.3 * H_NLL[0] + 0.7 * H_A1},          /* 0.276598243008506 */
    {COMPAT_TOKEN_LIKELIHOOD, 1, 0, 1, 1, 0.3, 0.7, 0, 1, 0.3 * H_NLL[1] + 0.7 * H_A1},
    {COMPAT_OLD_CORRECT, 1, 0, 1, 1, 0.3, 0.7, 1, 1, 0.3 * H_NLL[1] + 0.7 * H_A1_TOP2},
    {COMPAT_SEQ_LIKELIHOOD, 0, 0, 1, 1, 0.3, 0.7, 1, 0, 0.3 * H_NLL[0] + 0.7 * H_A2_TOP2},
    {COMPAT_FOCAL, 1, 0, 1, 1, 0.3, 0.7, 0, 1, 0.3 * H_NLL[1] + 0.7 * 2.5 * H_A1},   /* 0.793410243168728 */
};

/* The hand constants are of exact inputs; the code keeps lse1, lseT in floats and
 * sums q in floats, so its values are off by a few float roundings of O(1) numbers:
 * 1e-6 absolute is ~8 float ulps at 1, and far below any mistake worth catching. */
#define TOL_HAND 1e-6

typedef struct {
    int ids1[4], ids2[4];
    float z1[4], z2[4];
    TeacherPos t1, t2;
} HandTeachers;

static void hand_teachers(HandTeachers *h, int y, int top2) {
    compat_teacher_pos(HZ1, 4, 2.0, y, top2 ? 2 : 4, h->ids1, h->z1, &h->t1);
    compat_teacher_pos(HZ2, 4, 2.0, y, top2 ? 2 : 4, h->ids2, h->z2, &h->t2);
}

static void test_token_hand_values(void **state) {
    (void)state;
    float dz[4], scratch[3 * 4];
    for (size_t i = 0; i < sizeof tok_cases / sizeof *tok_cases; i++) {
        const TokCase *tc = &tok_cases[i];
        CompatConfig c = cfg_of(tc->m);
        c.focal_alpha = 0.5;
        c.focal_beta = 2.0;
        HandTeachers h;
        hand_teachers(&h, tc->y, tc->top2);
        if (tc->top2) { /* the kept classes are what the formulas above assume */
            assert_int_equal(h.ids1[0], 1);
            assert_int_equal(h.ids1[1], 0);
            assert_int_equal(h.ids2[0], 0);
            assert_int_equal(h.ids2[1], 2);
        }
        /* t1, t2 NULL where the method does not read them */
        const TeacherPos *t1 = tc->distill ? &h.t1 : NULL, *t2 = tc->distill && reads_t2(tc->m) ? &h.t2 : NULL;
        CompatTokenOut o;
        memset(&o, 0x5a, sizeof o);
        for (int j = 0; j < 4; j++) dz[j] = 7.0f; /* every element must be written */
        double l = compat_token_loss(&c, HZ, 4, tc->y, tc->answer, tc->distill, tc->seq, t1, t2, tc->ce_s, tc->kd_s,
                                     dz, scratch, &o);
        char what[128];
        snprintf(what, sizeof what, "case %zu (%s, y %d, seq %d, answer %d, distill %d, %s)", i, compat_method_name(tc->m),
                 tc->y, tc->seq, tc->answer, tc->distill, tc->top2 ? "top-2" : "exact");
        expect_near(what, l, tc->loss, TOL_HAND);
        if (o.masked != tc->masked) fail_msg("%s: masked %d, expected %d", what, o.masked, tc->masked);
        if (tc->answer || tc->distill) assert_int_equal(o.student_correct, tc->y == 0);
        expect_near(what, o.ce, tc->answer ? H_NLL[tc->y] : 0.0, TOL_HAND);
        expect_near(what, tc->ce_s * o.ce + tc->kd_s * o.kd, l, 1e-12);
        if (!tc->answer && !tc->distill)
            for (int j = 0; j < 4; j++) assert_true(dz[j] == 0.0f);
        /* the gradient of a loss without distillation: ce_scale (softmax(z) - e_y) */
        if (tc->answer && !tc->distill) {
            double q1[4], s = 0;
            for (int j = 0; j < 4; j++) s += (q1[j] = exp(HZ[j] - 2.4401896985612));
            assert_true(fabs(s - 1) < 1e-12);
            double want[4];
            for (int j = 0; j < 4; j++) want[j] = tc->ce_s * (q1[j] - (j == tc->y));
            expect_vec_near(what, dz, want, 4, TOL_HAND);
        }
    }

    /* gradients, by hand (hand_values.py) */
    HandTeachers h;
    CompatConfig c = cfg_of(COMPAT_STUDENT_WRONG);
    /* student-wrong, y = 0 (-> a_2), answer and distill, 0.3 / 0.7:
     * dz = 0.3 (softmax(z) - e_0) + 0.7 (softmax(z/2) - softmax(z2/2)) / 2 */
    const double g_combo[4] = {-0.156264173137, 0.131398452418, 0.00795590585822, 0.0169098148606};
    hand_teachers(&h, 0, 0);
    compat_token_loss(&c, HZ, 4, 0, 1, 1, 0, &h.t1, &h.t2, 0.3, 0.7, dz, scratch, NULL);
    expect_vec_near("hand dz, student-wrong + CE", dz, g_combo, 4, TOL_HAND);
    /* top-2 M1 (student-wrong, y = 1): dz = (q - p~) / T, p~ = p on K = {1, 0}, r q_j / q_rest elsewhere */
    const double g_top1[4] = {0.12955731137, -0.128307369925, -0.000778037715847, -0.000471903729074};
    hand_teachers(&h, 1, 1);
    double l = compat_token_loss(&c, HZ, 4, 1, 0, 1, 0, &h.t1, &h.t2, 1.0, 1.0, dz, scratch, NULL);
    expect_near("top-2 a_1", l, H_A1_TOP2, TOL_HAND);
    expect_vec_near("hand dz, top-2 M1", dz, g_top1, 4, TOL_HAND);
    /* top-2 M2 (student-wrong, y = 0), K = {0, 2} */
    const double g_top2[4] = {-0.0706263587195, 0.0706263587195, -0.0259819853777, 0.0259819853777};
    hand_teachers(&h, 0, 1);
    compat_token_loss(&c, HZ, 4, 0, 0, 1, 0, &h.t1, &h.t2, 1.0, 1.0, dz, scratch, NULL);
    expect_vec_near("hand dz, top-2 M2", dz, g_top2, 4, TOL_HAND);
}

/* ELODI, by hand: D_j = log softmax(z)_j - log softmax(z1)_j (temperature 1)
 *   = (1.79662584386962, -1.20337415613038, 0.796625843869621, -0.703374156130379);
 * margin 1: D_0, D_1 count, D_2, D_3 do not. */
static void test_elodi_hand_values(void **state) {
    (void)state;
    float dz[4], scratch[3 * 4];
    struct {
        int p, top2;
        double kd;
        double dz[4];
    } cs[] = {
        /* (|D_0| + |D_1|) / 4 = 3 / 4; dz_i = g_i - q1_i sum g, g = sign(D) / 4 on D_0, D_1: sum g = 0 */
        {1, 0, 0.75, {0.25, -0.25, 0, 0}},
        /* (D_0^2 + D_1^2) / 4; g = 2 D / 4 */
        {2, 0, 1.16899344562568, {0.707311311216, -0.671952643879, -0.0258492570853, -0.00950941025124}},
        /* top-2 (K = {1, 0}): over |K| = 2 */
        {1, 1, 1.5, {0.5, -0.5, 0, 0}},
        {2, 1, 2.33798689125137, {1.41462262243, -1.34390528776, -0.0516985141706, -0.0190188205025}},
    };
    for (size_t i = 0; i < sizeof cs / sizeof *cs; i++) {
        CompatConfig c = cfg_of(COMPAT_ELODI);
        c.elodi_margin = 1.0;
        c.elodi_p = cs[i].p;
        for (int Ti = 0; Ti < 2; Ti++) { /* ELODI is at temperature 1 whatever T is */
            c.temperature = Ti ? 0.7 : 2.0;
            HandTeachers h;
            compat_teacher_pos(HZ1, 4, c.temperature, 2, cs[i].top2 ? 2 : 4, h.ids1, h.z1, &h.t1);
            CompatTokenOut o;
            char what[64];
            snprintf(what, sizeof what, "elodi p %d %s T %g", cs[i].p, cs[i].top2 ? "top-2" : "exact", c.temperature);
            double l = compat_token_loss(&c, HZ, 4, 2, 0, 1, 0, &h.t1, NULL, 1.0, 1.0, dz, scratch, &o);
            expect_near(what, l, cs[i].kd, TOL_HAND);
            expect_near(what, o.kd, cs[i].kd, TOL_HAND);
            assert_int_equal(o.masked, 0);
            expect_vec_near(what, dz, cs[i].dz, 4, TOL_HAND);
            /* with the answer's CE: 0.3 * -log q1(2) + 0.7 * kd */
            l = compat_token_loss(&c, HZ, 4, 2, 1, 1, 0, &h.t1, NULL, 0.3, 0.7, dz, scratch, &o);
            expect_near(what, l, 0.3 * H_NLL[2] + 0.7 * cs[i].kd, TOL_HAND);
        }
    }
    /* margin 0.5: every D counts: p 1: (sum |D|) / 4 = (1.79662584386962 + 1.20337415613038 + 0.796625843869621
     * + 0.703374156130379) / 4 = 4.5 / 4 */
    CompatConfig c = cfg_of(COMPAT_ELODI);
    c.elodi_p = 1;
    HandTeachers h;
    hand_teachers(&h, 0, 0);
    expect_near("elodi margin 0.5 p 1", compat_token_loss(&c, HZ, 4, 0, 0, 1, 0, &h.t1, NULL, 1, 1, dz, scratch, NULL),
                1.125, TOL_HAND);
    /* margin 2: none counts: 0, gradient 0 */
    c.elodi_margin = 2.0;
    expect_near("elodi margin 2", compat_token_loss(&c, HZ, 4, 0, 0, 1, 0, &h.t1, NULL, 1, 1, dz, scratch, NULL), 0.0, 0.0);
    for (int j = 0; j < 4; j++) assert_true(dz[j] == 0.0f);
}

/* ------------------------------------------------------------------------- */
/* 3. token-level gradients by finite differences                             */

enum { FV = 13, FK = 5, VMAX = 128 }; /* the instances' vocabulary, kept, the arrays' room */

typedef struct {
    CompatConfig cfg;
    int V, y, answer, distill, seq_flag, k; /* k == V: exact teachers */
    double ce_s, kd_s;
    float z[VMAX], z1[VMAX], z2[VMAX];
    int K1[VMAX], K2[VMAX];                 /* the teachers' kept ids, by ref_topk */
    int ids1[VMAX], ids2[VMAX];
    float kz1[VMAX], kz2[VMAX];
    TeacherPos t1, t2;
} TokInst;

static void ref_logsoftmax(const double *v, int n, double T, double *out) {
    double mx = v[0];
    for (int i = 1; i < n; i++) mx = v[i] > mx ? v[i] : mx;
    double s = 0;
    for (int i = 0; i < n; i++) s += exp((v[i] - mx) / T);
    for (int i = 0; i < n; i++) out[i] = (v[i] - mx) / T - log(s);
}
static int ref_argmax_f(const float *v, int n) {
    int a = 0;
    for (int i = 1; i < n; i++) if (v[i] > v[a]) a = i;
    return a;
}
static int ref_argmax_d(const double *v, int n) {
    int a = 0;
    for (int i = 1; i < n; i++) if (v[i] > v[a]) a = i;
    return a;
}

/* KL(p || q) of the teacher's logits zt (bucketed over the complement of K when k < V) */
static double ref_kl(const float *zt, const double *z, int V, const int *K, int k, double T) {
    double t[VMAX] = {0}, lp[VMAX], lq[VMAX];
    for (int j = 0; j < V; j++) t[j] = zt[j];
    ref_logsoftmax(t, V, T, lp);
    ref_logsoftmax(z, V, T, lq);
    if (k >= V) {
        double a = 0;
        for (int j = 0; j < V; j++) a += exp(lp[j]) * (lp[j] - lq[j]);
        return a;
    }
    char in[VMAX] = {0};
    double a = 0, r = 0, qr = 0;
    for (int i = 0; i < k; i++) in[K[i]] = 1;
    for (int j = 0; j < V; j++) {
        if (in[j]) a += exp(lp[j]) * (lp[j] - lq[j]);
        else r += exp(lp[j]), qr += exp(lq[j]);
    }
    return a + r * log(r / qr);
}

/* ELODI's differences D_j over the kept classes (all when k == V) */
static int ref_elodi_D(const TokInst *I, const double *z, double *D) {
    double t[VMAX] = {0}, lq1[VMAX], lp1[VMAX];
    for (int j = 0; j < I->V; j++) t[j] = I->z1[j];
    ref_logsoftmax(z, I->V, 1.0, lq1);
    ref_logsoftmax(t, I->V, 1.0, lp1);
    int n = I->k < I->V ? I->k : I->V;
    for (int i = 0; i < n; i++) {
        int j = I->k < I->V ? I->K1[i] : i;
        D[i] = lq1[j] - lp1[j];
    }
    return n;
}

/* The loss of compat_loss.h, from its formulas, in float64. */
static double ref_token(const TokInst *I, const double *z, int *masked) {
    const CompatConfig *c = &I->cfg;
    int V = I->V, y = I->y;
    double T = c->temperature, lq1[VMAX], t[VMAX] = {0}, lp1[VMAX];
    ref_logsoftmax(z, V, 1.0, lq1);
    for (int j = 0; j < V; j++) t[j] = I->z1[j];
    ref_logsoftmax(t, V, 1.0, lp1);
    double kd = 0;
    int m = 0;
    if (I->distill) {
        if (c->method == COMPAT_ELODI) {
            double D[VMAX];
            int n = ref_elodi_D(I, z, D);
            for (int i = 0; i < n; i++)
                if (fabs(D[i]) > c->elodi_margin) kd += c->elodi_p == 2 ? D[i] * D[i] : fabs(D[i]);
            kd /= n;
        } else if (c->method == COMPAT_FOCAL) {
            m = ref_argmax_f(I->z1, V) == y;
            kd = (c->focal_alpha + c->focal_beta * m) * ref_kl(I->z1, z, V, I->K1, I->k, T);
        } else {
            switch (c->method) {
            case COMPAT_STUDENT_WRONG: m = ref_argmax_d(z, V) != y; break;
            case COMPAT_OLD_CORRECT: m = ref_argmax_f(I->z1, V) == y; break;
            case COMPAT_NONE: m = 1; break;
            case COMPAT_TOKEN_LIKELIHOOD: m = lq1[y] < lp1[y]; break;
            default: m = I->seq_flag != 0; break;
            }
            kd = m ? ref_kl(I->z1, z, V, I->K1, I->k, T) : ref_kl(I->z2, z, V, I->K2, I->k, T);
        }
    }
    if (masked) *masked = m;
    return (I->answer ? I->ce_s * -lq1[y] : 0.0) + (I->distill ? I->kd_s * kd : 0.0);
}

/* How far the instance is from flipping a mask or crossing ELODI's margin. */
static double inst_slack(const TokInst *I) {
    double z[VMAX] = {0}, lq1[VMAX], t[VMAX] = {0}, lp1[VMAX];
    int V = I->V;
    for (int j = 0; j < V; j++) z[j] = I->z[j], t[j] = I->z1[j];
    int a = ref_argmax_d(z, V);
    double second = -INFINITY;
    for (int j = 0; j < V; j++) if (j != a && z[j] > second) second = z[j];
    double slack = z[a] - second;
    ref_logsoftmax(z, V, 1.0, lq1);
    ref_logsoftmax(t, V, 1.0, lp1);
    slack = fmin(slack, fabs(lq1[I->y] - lp1[I->y]));
    double D[VMAX];
    int n = ref_elodi_D(I, z, D);
    for (int i = 0; i < n; i++) slack = fmin(slack, fabs(fabs(D[i]) - I->cfg.elodi_margin));
    return slack;
}

static void inst_teachers(TokInst *I) {
    ref_topk(I->z1, I->V, I->k < I->V ? I->k : I->V, I->K1);
    ref_topk(I->z2, I->V, I->k < I->V ? I->k : I->V, I->K2);
    double T = I->cfg.temperature;
    compat_teacher_pos(I->z1, I->V, T, I->y, I->k, I->ids1, I->kz1, &I->t1);
    compat_teacher_pos(I->z2, I->V, T, I->y, I->k, I->ids2, I->kz2, &I->t2);
}

/* A random instance number i, its masks at least `slack` from flipping. */
static void inst_make(TokInst *I, const CompatConfig *c, int k, int i, TRng *r, double slack) {
    memset(I, 0, sizeof *I);
    I->cfg = *c;
    I->V = FV;
    I->k = k;
    I->ce_s = 0.3;
    I->kd_s = 0.7;
    I->answer = i % 5 != 3;  /* mostly both; some distillation only, some CE only */
    I->distill = i % 5 != 4;
    I->seq_flag = (i / 2) % 2;
    for (int tries = 0;; tries++) {
        assert_true(tries < 1000);
        for (int j = 0; j < FV; j++) {
            I->z[j] = trng_sym(r, 3.0f);
            I->z1[j] = I->z[j] + trng_sym(r, 2.0f);
            I->z2[j] = I->z[j] + trng_sym(r, 2.0f);
        }
        switch (i % 4) { /* the student right, M1 right, M2 right, anything */
        case 0: I->y = ref_argmax_f(I->z, FV); break;
        case 1: I->y = ref_argmax_f(I->z1, FV); break;
        case 2: I->y = ref_argmax_f(I->z2, FV); break;
        default: I->y = (int)(trng_uniform(r) * FV); break;
        }
        inst_teachers(I); /* the kept classes first: ELODI's slack is over them */
        if (inst_slack(I) > slack) break;
    }
}

static double inst_code(const TokInst *I, const float *z, float *dz, CompatTokenOut *o) {
    float *scratch = malloc(3 * (size_t)I->V * sizeof *scratch); /* the size compat_loss.h asks for, exactly */
    double l = compat_token_loss(&I->cfg, z, I->V, I->y, I->answer, I->distill, I->seq_flag, I->distill ? &I->t1 : NULL,
                                 I->distill && reads_t2(I->cfg.method) ? &I->t2 : NULL, I->ce_s, I->kd_s, dz, scratch, o);
    free(scratch);
    return l;
}

typedef struct { TokInst *I; double *z; } RefCtx;
static double ref_obj(void *p) {
    RefCtx *c = p;
    return ref_token(c->I, c->z, NULL);
}

/* Tolerances.
 * TOL_VAL: the returned loss against the float64 formulas, relative: the code rounds
 *   lse1, lseT and q to floats (2^-24 each), a few of them add up: 1e-6.
 * TOL_FD: dz (float) against central differences of the float64 formulas (step 1e-5:
 *   truncation ~h^2 = 1e-10, cancellation ~1e-16/1e-5 = 1e-11): what is left is dz's
 *   own float rounding, ~1e-7 of the largest component; 1e-5 leaves a factor 100 and
 *   still catches a 1% error in any component as large as 0.1% of the largest.
 * TOL_FD_CODE: dz against central differences of the returned loss itself, whose
 *   values carry float noise ~1e-7: step 2^-7 gives cancellation ~1e-7/8e-3 ~ 1e-5
 *   and truncation ~h^2/6 |f'''| ~ 1e-5 (f''' = O(1) at these logits): 1e-3. */
#define TOL_VAL 1e-6
#define TOL_FD 1e-5
#define TOL_FD_CODE 1e-3
#define FD_H 1e-5
#define FD_H_CODE 0.0078125

typedef struct {
    int masked[2];        /* distilled instances with m = 0, 1 */
    int elodi_in, elodi_out;
    double worst_val, worst_fd, worst_fd_code;
} TokStats;

static void token_fd_one(TokInst *I, TokStats *st, const char *what) {
    int V = I->V;
    float dz[FV], dz2[FV];
    CompatTokenOut o;
    double l = inst_code(I, I->z, dz, &o);
    /* the value against the formulas */
    double zd[FV];
    for (int j = 0; j < V; j++) zd[j] = I->z[j];
    int m;
    double lr = ref_token(I, zd, &m);
    double ev = fabs(l - lr) / fmax(1.0, fabs(lr));
    if (!(ev < TOL_VAL)) fail_msg("%s: loss %.12g, float64 formulas %.12g", what, l, lr);
    if (ev > st->worst_val) st->worst_val = ev;
    if (I->distill && I->cfg.method != COMPAT_ELODI) {
        if (o.masked != m) fail_msg("%s: masked %d, formulas say %d", what, o.masked, m);
        st->masked[m]++;
    }
    if (I->distill && I->cfg.method == COMPAT_ELODI) {
        double D[FV];
        int n = ref_elodi_D(I, zd, D);
        for (int i = 0; i < n; i++) fabs(D[i]) > I->cfg.elodi_margin ? st->elodi_out++ : st->elodi_in++;
    }
    assert_int_equal(o.student_correct, ref_argmax_f(I->z, V) == I->y);
    /* dz against central differences of the formulas */
    double num[FV] = {0};
    RefCtx rc = {I, zd};
    fd_grad(zd, V, FD_H, ref_obj, &rc, num);
    double e = rel_err_fd(dz, num, V);
    if (!(e < TOL_FD)) {
        for (int j = 0; j < V; j++) printf("#   dz[%d] %.9g numeric %.9g\n", j, (double)dz[j], num[j]);
        fail_msg("%s: dz rel err %.3e against central differences (tol %.0e)", what, e, TOL_FD);
    }
    if (e > st->worst_fd) st->worst_fd = e;
    /* a 1% error in the largest component would be caught */
    int im = 0;
    for (int j = 1; j < V; j++) if (fabs(num[j]) > fabs(num[im])) im = j;
    memcpy(dz2, dz, sizeof dz);
    dz2[im] = (float)(num[im] * 1.01);
    if (!(rel_err_fd(dz2, num, V) >= TOL_FD)) fail_msg("%s: a 1%% error passes the tolerance", what);
    /* dz against central differences of the returned loss (float logits, the actual step) */
    double numc[FV];
    float zf[FV], dtmp[FV];
    memcpy(zf, I->z, sizeof zf);
    for (int j = 0; j < V; j++) {
        float save = zf[j], zp = (float)(save + FD_H_CODE), zm = (float)(save - FD_H_CODE);
        zf[j] = zp;
        double fp = inst_code(I, zf, dtmp, NULL);
        zf[j] = zm;
        double fm = inst_code(I, zf, dtmp, NULL);
        zf[j] = save;
        numc[j] = (fp - fm) / ((double)zp - (double)zm);
    }
    double ec = rel_err_fd(dz, numc, V);
    if (!(ec < TOL_FD_CODE)) fail_msg("%s: dz rel err %.3e against differences of the returned loss (tol %.0e)", what, ec, TOL_FD_CODE);
    if (ec > st->worst_fd_code) st->worst_fd_code = ec;
    /* in place: dz aliasing z gives the same loss and the same bits */
    float zz[FV];
    memcpy(zz, I->z, sizeof zz);
    CompatTokenOut o2;
    double l2 = inst_code(I, zz, zz, &o2);
    if (l2 != l) fail_msg("%s: in place: loss %.17g, separate buffers %.17g", what, l2, l);
    assert_memory_equal(zz, dz, sizeof dz);
    assert_memory_equal(&o2, &o, sizeof o);
}

static void token_fd_method(CompatMethod meth, int elodi_p) {
    for (int topk = 0; topk < 2; topk++) {
        TokStats st = {0};
        double Ts[] = {2.0, 0.7};
        for (int ti = 0; ti < 2; ti++) {
            CompatConfig c = cfg_of(meth);
            c.temperature = Ts[ti];
            c.elodi_p = elodi_p;
            c.focal_alpha = 0.5;
            c.focal_beta = 2.0;
            TRng r = {1000 + 97 * (uint64_t)meth + 13 * (uint64_t)topk + 7 * (uint64_t)ti + (uint64_t)elodi_p};
            for (int i = 0; i < 20; i++) {
                TokInst I;
                inst_make(&I, &c, topk ? FK : FV, i, &r, 0.05); /* 0.05 >> the 2 * 2^-7 a step moves a mask's quantity */
                char what[128];
                snprintf(what, sizeof what, "%s%s, %s, T %g, instance %d", compat_method_name(meth),
                         meth == COMPAT_ELODI ? (elodi_p == 1 ? " p 1" : " p 2") : "", topk ? "top-5 of 13" : "exact", Ts[ti], i);
                token_fd_one(&I, &st, what);
            }
        }
        printf("# %-20s %-5s %s: loss vs formulas %.1e, dz vs differences of the formulas %.1e, of the loss %.1e",
               compat_method_name(meth), meth == COMPAT_ELODI ? (elodi_p == 1 ? "p 1" : "p 2") : "", topk ? "top-5" : "exact",
               st.worst_val, st.worst_fd, st.worst_fd_code);
        if (meth == COMPAT_ELODI) printf(" (D beyond the margin %d, within %d)\n", st.elodi_out, st.elodi_in);
        else printf(" (m = 0: %d, m = 1: %d)\n", st.masked[0], st.masked[1]);
        /* both branches of every mask were exercised */
        if (meth == COMPAT_ELODI) assert_true(st.elodi_in > 0 && st.elodi_out > 0);
        else if (meth == COMPAT_NONE) assert_true(st.masked[1] > 0);
        else assert_true(st.masked[0] > 0 && st.masked[1] > 0);
    }
}

static void test_fd_student_wrong(void **state) { (void)state; token_fd_method(COMPAT_STUDENT_WRONG, 2); }
static void test_fd_old_correct(void **state) { (void)state; token_fd_method(COMPAT_OLD_CORRECT, 2); }
static void test_fd_none(void **state) { (void)state; token_fd_method(COMPAT_NONE, 2); }
static void test_fd_token_likelihood(void **state) { (void)state; token_fd_method(COMPAT_TOKEN_LIKELIHOOD, 2); }
static void test_fd_seq_likelihood(void **state) { (void)state; token_fd_method(COMPAT_SEQ_LIKELIHOOD, 2); }
static void test_fd_focal(void **state) { (void)state; token_fd_method(COMPAT_FOCAL, 2); }
static void test_fd_elodi_p1(void **state) { (void)state; token_fd_method(COMPAT_ELODI, 1); }
static void test_fd_elodi_p2(void **state) { (void)state; token_fd_method(COMPAT_ELODI, 2); }

/* A larger vocabulary with a peaked teacher: the bucket is small but not negligible,
 * and the top-k path stays consistent with the formulas. Also the scratch size the
 * header promises is enough (exactly that much is allocated: ASan checks it). */
static void test_topk_large_vocab(void **state) {
    (void)state;
    enum { V = 200, K = 8 };
    TRng r = {77};
    float z[V], z1[V], kz[V], dz[V];
    int ids[K];
    for (int j = 0; j < V; j++) {
        z[j] = trng_sym(&r, 2.0f);
        z1[j] = z[j] + trng_sym(&r, 1.0f);
    }
    for (int j = 0; j < K; j++) z1[(j * 37) % V] += 8.0f; /* a peaked teacher: most mass on 8 classes */
    for (int meth = 0; meth < N_PAPER_METHODS; meth++) {
        CompatConfig c = cfg_of((CompatMethod)meth);
        TeacherPos tp;
        compat_teacher_pos(z1, V, c.temperature, 5, K, ids, kz, &tp);
        /* the bucket's mass at T = 2, by the formula */
        double lp[V], t[V], zd[V];
        for (int j = 0; j < V; j++) t[j] = z1[j], zd[j] = z[j];
        ref_logsoftmax(t, V, 2.0, lp);
        double rr = 1;
        for (int i = 0; i < K; i++) rr -= exp(lp[ids[i]]);
        assert_true(rr > 1e-3 && rr < 0.5);
        float *scratch = malloc(3 * V * sizeof *scratch); /* compat_loss.h: scratch [3 V] */
        double l = compat_token_loss(&c, z, V, 5, 1, 1, 1, &tp, &tp, 0.5, 0.5, dz, scratch, NULL);
        free(scratch);
        /* formulas: the same teacher for M1 and M2 */
        int Kr[K];
        ref_topk(z1, V, K, Kr);
        assert_memory_equal(Kr, ids, sizeof ids);
        double lq1[V], kd;
        ref_logsoftmax(zd, V, 1.0, lq1);
        if (meth == COMPAT_ELODI) {
            double lp1[V];
            ref_logsoftmax(t, V, 1.0, lp1);
            kd = 0;
            for (int i = 0; i < K; i++) {
                double D = lq1[ids[i]] - lp1[ids[i]];
                if (fabs(D) > c.elodi_margin) kd += D * D;
            }
            kd /= K;
        } else {
            double lq[V], a = 0, qr = 0;
            ref_logsoftmax(zd, V, 2.0, lq);
            char in[V] = {0};
            for (int i = 0; i < K; i++) in[ids[i]] = 1, a += exp(lp[ids[i]]) * (lp[ids[i]] - lq[ids[i]]);
            for (int j = 0; j < V; j++) if (!in[j]) qr += exp(lq[j]);
            a += rr * log(rr / qr);
            kd = a * (meth == COMPAT_FOCAL ? (tp.argmax == 5 ? 6.0 : 1.0) : 1.0);
        }
        double want = 0.5 * -lq1[5] + 0.5 * kd;
        if (!(fabs(l - want) < TOL_VAL * fmax(1, want))) fail_msg("%s, V 200 top-8: loss %.9g, formulas %.9g", compat_method_name(c.method), l, want);
    }
}

/* A student far more confident than the teacher: the teacher keeps its top 4 of 100 with
 * a tail mass r ~ 0.2, while the student's own mass outside those 4 (q_rest, at T = 2)
 * goes down to 1e-9. The bucket's term r log(r / q_rest) and the gradient's r q_j / q_rest
 * on the tail must stay accurate: q_rest must not be taken as 1 - (a sum of rounded
 * probabilities), whose rounding (~1e-7) would swamp it. */
static void test_topk_confident_student(void **state) {
    (void)state;
    enum { V = 100, K = 4 };
    TRng r = {99};
    float z1[V];
    for (int j = 0; j < V; j++) z1[j] = trng_sym(&r, 1.0f);
    for (int i = 0; i < K; i++) z1[10 * i + 3] = 4.0f + (float)i * 0.5f; /* the teacher's top 4: 3, 13, 23, 33 */
    double gaps[] = {4, 10, 20, 30, 40, 44};
    for (size_t gi = 0; gi < sizeof gaps / sizeof *gaps; gi++) {
        static TokInst I;
        memset(&I, 0, sizeof I);
        I.cfg = cfg_of(COMPAT_NONE);
        I.V = V;
        I.k = K;
        I.y = 13;
        I.distill = 1;
        I.ce_s = 0;
        I.kd_s = 1;
        for (int j = 0; j < V; j++) I.z[j] = trng_sym(&r, 0.5f), I.z1[j] = z1[j], I.z2[j] = z1[j];
        for (int i = 0; i < K; i++) I.z[10 * i + 3] = (float)gaps[gi] + (float)i * 0.25f;
        inst_teachers(&I);
        assert_int_equal(I.t1.k, K);
        double zd[V], num[V], qr = 0, lq[V];
        for (int j = 0; j < V; j++) zd[j] = I.z[j];
        ref_logsoftmax(zd, V, 2.0, lq);
        for (int j = 0; j < V; j++) if (j % 10 != 3 || j > 33) qr += exp(lq[j]);
        float dz[V];
        double l = inst_code(&I, I.z, dz, NULL), lr = ref_token(&I, zd, NULL);
        RefCtx rc = {&I, zd};
        fd_grad(zd, V, FD_H, ref_obj, &rc, num);
        double e = rel_err_fd(dz, num, V);
        printf("# top-4 of 100, student gap %4.0f: q_rest %.2e: loss %.9g, formulas %.9g; dz rel err %.1e\n", gaps[gi], qr, l, lr, e);
        if (!(fabs(l - lr) < TOL_VAL * fmax(1, fabs(lr)))) fail_msg("gap %g (q_rest %.2e): loss %.12g, formulas %.12g", gaps[gi], qr, l, lr);
        if (!(e < TOL_FD)) fail_msg("gap %g (q_rest %.2e): dz rel err %.3e (tol %.0e)", gaps[gi], qr, e, TOL_FD);
    }
    /* beyond float range (q_rest ~ e^-100): bounded and finite, no inf or NaN */
    static TokInst I;
    memset(&I, 0, sizeof I);
    I.cfg = cfg_of(COMPAT_STUDENT_WRONG);
    I.V = V;
    I.k = K;
    I.y = 50; /* the student is wrong: a_1 */
    I.distill = I.answer = 1;
    I.ce_s = I.kd_s = 1;
    for (int j = 0; j < V; j++) I.z[j] = 0, I.z1[j] = z1[j], I.z2[j] = z1[j];
    for (int i = 0; i < K; i++) I.z[10 * i + 3] = 200.0f;
    inst_teachers(&I);
    float dz[V];
    double l = inst_code(&I, I.z, dz, NULL);
    printf("# top-4 of 100, student gap 200: loss %.6g\n", l);
    assert_true(isfinite(l) && l > 0);
    for (int j = 0; j < V; j++) assert_true(isfinite(dz[j]));
}

/* ------------------------------------------------------------------------- */
/* 4. choice level                                                            */

static const double CLL[3][4] = {{-3.0, -2.0}, {-4.0, -2.5, -3.0}, {-5.0, -6.5, -4.2, -7.0}};
static const double CLL1[3][4] = {{-1.5, -2.5}, {-3.5, -3.2, -1.0}, {-4.8, -5.0, -6.0, -5.5}};
static const double CLL2[3][4] = {{-2.2, -1.0}, {-2.0, -2.6, -4.0}, {-6.0, -4.0, -4.5, -5.0}};
static const int CN[3] = {2, 3, 4};

typedef struct { int cs, label; CompatMethod m; int with_ce, masked; double loss; } ChoiceCase;

/* hand_values.py: T = 2, focal alpha 1, beta 5, ELODI margin 0.6, p 2; ce_scale 0.4, kd_scale 0.6.
 * loss = 0.6 * kd + [with_ce] 0.4 * -ll[label]; kd = a_1 or a_2 (KL over the choices at T = 2),
 * (1 + 5 [argmax ll1 == label]) a_1, or (1/n) sum_{|D_c| > 0.6} D_c^2.
 *   n = 2: a_1 0.1224593312, a_2 0.001154664317, D = (-1, 1)
 *   n = 3: a_1 0.1692163721, a_2 0.1848098759, D = (0.572 (within), 1.772, -0.928)
 *   n = 4: a_1 0.2110298577, a_2 0.2559011812, D = (-0.315 (within), -1.615, 1.685, -1.615) */
static const ChoiceCase choice_cases[] = {
    {0, 0, COMPAT_STUDENT_WRONG, 0, 1, 0.0734755987211127},
    {0, 0, COMPAT_STUDENT_WRONG, 1, 1, 1.27347559872111},
    {0, 0, COMPAT_OLD_CORRECT, 0, 1, 0.0734755987211127},
    {0, 0, COMPAT_OLD_CORRECT, 1, 1, 1.27347559872111},
    {0, 0, COMPAT_NONE, 0, 1, 0.0734755987211127},
    {0, 0, COMPAT_NONE, 1, 1, 1.27347559872111},
    {0, 0, COMPAT_TOKEN_LIKELIHOOD, 0, 1, 0.0734755987211127},
    {0, 0, COMPAT_TOKEN_LIKELIHOOD, 1, 1, 1.27347559872111},
    {0, 0, COMPAT_SEQ_LIKELIHOOD, 0, 1, 0.0734755987211127},
    {0, 0, COMPAT_SEQ_LIKELIHOOD, 1, 1, 1.27347559872111},
    {0, 0, COMPAT_FOCAL, 0, 1, 0.440853592326676},
    {0, 0, COMPAT_FOCAL, 1, 1, 1.64085359232668},
    {0, 0, COMPAT_ELODI, 0, 0, 0.6},
    {0, 0, COMPAT_ELODI, 1, 0, 1.8},
    {0, 1, COMPAT_STUDENT_WRONG, 0, 0, 0.000692798590080308},
    {0, 1, COMPAT_STUDENT_WRONG, 1, 0, 0.80069279859008},
    {0, 1, COMPAT_OLD_CORRECT, 0, 0, 0.000692798590080308},
    {0, 1, COMPAT_OLD_CORRECT, 1, 0, 0.80069279859008},
    {0, 1, COMPAT_NONE, 0, 1, 0.0734755987211127},
    {0, 1, COMPAT_NONE, 1, 1, 0.873475598721113},
    {0, 1, COMPAT_TOKEN_LIKELIHOOD, 0, 0, 0.000692798590080308},
    {0, 1, COMPAT_TOKEN_LIKELIHOOD, 1, 0, 0.80069279859008},
    {0, 1, COMPAT_SEQ_LIKELIHOOD, 0, 0, 0.000692798590080308},
    {0, 1, COMPAT_SEQ_LIKELIHOOD, 1, 0, 0.80069279859008},
    {0, 1, COMPAT_FOCAL, 0, 0, 0.0734755987211127},
    {0, 1, COMPAT_FOCAL, 1, 0, 0.873475598721113},
    {0, 1, COMPAT_ELODI, 0, 0, 0.6},
    {0, 1, COMPAT_ELODI, 1, 0, 1.4},
    {1, 0, COMPAT_STUDENT_WRONG, 0, 1, 0.101529823246493},
    {1, 0, COMPAT_STUDENT_WRONG, 1, 1, 1.70152982324649},
    {1, 0, COMPAT_OLD_CORRECT, 0, 0, 0.110885925521954},
    {1, 0, COMPAT_OLD_CORRECT, 1, 0, 1.71088592552195},
    {1, 0, COMPAT_NONE, 0, 1, 0.101529823246493},
    {1, 0, COMPAT_NONE, 1, 1, 1.70152982324649},
    {1, 0, COMPAT_TOKEN_LIKELIHOOD, 0, 1, 0.101529823246493},
    {1, 0, COMPAT_TOKEN_LIKELIHOOD, 1, 1, 1.70152982324649},
    {1, 0, COMPAT_SEQ_LIKELIHOOD, 0, 1, 0.101529823246493},
    {1, 0, COMPAT_SEQ_LIKELIHOOD, 1, 1, 1.70152982324649},
    {1, 0, COMPAT_FOCAL, 0, 0, 0.101529823246493},
    {1, 0, COMPAT_FOCAL, 1, 0, 1.70152982324649},
    {1, 0, COMPAT_ELODI, 0, 0, 0.80031693863982},
    {1, 0, COMPAT_ELODI, 1, 0, 2.40031693863982},
    {1, 2, COMPAT_STUDENT_WRONG, 0, 1, 0.101529823246493},
    {1, 2, COMPAT_STUDENT_WRONG, 1, 1, 1.30152982324649},
    {1, 2, COMPAT_OLD_CORRECT, 0, 1, 0.101529823246493},
    {1, 2, COMPAT_OLD_CORRECT, 1, 1, 1.30152982324649},
    {1, 2, COMPAT_NONE, 0, 1, 0.101529823246493},
    {1, 2, COMPAT_NONE, 1, 1, 1.30152982324649},
    {1, 2, COMPAT_TOKEN_LIKELIHOOD, 0, 1, 0.101529823246493},
    {1, 2, COMPAT_TOKEN_LIKELIHOOD, 1, 1, 1.30152982324649},
    {1, 2, COMPAT_SEQ_LIKELIHOOD, 0, 1, 0.101529823246493},
    {1, 2, COMPAT_SEQ_LIKELIHOOD, 1, 1, 1.30152982324649},
    {1, 2, COMPAT_FOCAL, 0, 1, 0.609178939478955},
    {1, 2, COMPAT_FOCAL, 1, 1, 1.80917893947896},
    {1, 2, COMPAT_ELODI, 0, 0, 0.80031693863982},
    {1, 2, COMPAT_ELODI, 1, 0, 2.00031693863982},
    {2, 0, COMPAT_STUDENT_WRONG, 0, 1, 0.126617914610013},
    {2, 0, COMPAT_STUDENT_WRONG, 1, 1, 2.12661791461001},
    {2, 0, COMPAT_OLD_CORRECT, 0, 1, 0.126617914610013},
    {2, 0, COMPAT_OLD_CORRECT, 1, 1, 2.12661791461001},
    {2, 0, COMPAT_NONE, 0, 1, 0.126617914610013},
    {2, 0, COMPAT_NONE, 1, 1, 2.12661791461001},
    {2, 0, COMPAT_TOKEN_LIKELIHOOD, 0, 1, 0.126617914610013},
    {2, 0, COMPAT_TOKEN_LIKELIHOOD, 1, 1, 2.12661791461001},
    {2, 0, COMPAT_SEQ_LIKELIHOOD, 0, 1, 0.126617914610013},
    {2, 0, COMPAT_SEQ_LIKELIHOOD, 1, 1, 2.12661791461001},
    {2, 0, COMPAT_FOCAL, 0, 1, 0.75970748766008},
    {2, 0, COMPAT_FOCAL, 1, 1, 2.75970748766008},
    {2, 0, COMPAT_ELODI, 0, 0, 1.20818435639402},
    {2, 0, COMPAT_ELODI, 1, 0, 3.20818435639402},
    {2, 1, COMPAT_STUDENT_WRONG, 0, 1, 0.126617914610013},
    {2, 1, COMPAT_STUDENT_WRONG, 1, 1, 2.72661791461001},
    {2, 1, COMPAT_OLD_CORRECT, 0, 0, 0.153540708712833},
    {2, 1, COMPAT_OLD_CORRECT, 1, 0, 2.75354070871283},
    {2, 1, COMPAT_NONE, 0, 1, 0.126617914610013},
    {2, 1, COMPAT_NONE, 1, 1, 2.72661791461001},
    {2, 1, COMPAT_TOKEN_LIKELIHOOD, 0, 1, 0.126617914610013},
    {2, 1, COMPAT_TOKEN_LIKELIHOOD, 1, 1, 2.72661791461001},
    {2, 1, COMPAT_SEQ_LIKELIHOOD, 0, 1, 0.126617914610013},
    {2, 1, COMPAT_SEQ_LIKELIHOOD, 1, 1, 2.72661791461001},
    {2, 1, COMPAT_FOCAL, 0, 0, 0.126617914610013},
    {2, 1, COMPAT_FOCAL, 1, 0, 2.72661791461001},
    {2, 1, COMPAT_ELODI, 0, 0, 1.20818435639402},
    {2, 1, COMPAT_ELODI, 1, 0, 3.80818435639402},
};

/* everything in float64 on both sides: the constants have 15 digits */
#define TOL_CHOICE_HAND 1e-12

static void test_choice_hand_values(void **state) {
    (void)state;
    int seen[N_PAPER_METHODS][2] = {{0}};
    for (size_t i = 0; i < sizeof choice_cases / sizeof *choice_cases; i++) {
        const ChoiceCase *cc = &choice_cases[i];
        CompatConfig c = cfg_of(cc->m);
        c.level = COMPAT_LEVEL_CHOICE;
        c.elodi_margin = 0.6;
        int n = CN[cc->cs];
        double dll[4];
        CompatTokenOut o;
        double l = compat_choice_loss(&c, CLL[cc->cs], CLL1[cc->cs], reads_t2(cc->m) ? CLL2[cc->cs] : NULL, n, cc->label,
                                      cc->with_ce, 0.4, 0.6, dll, &o);
        char what[96];
        snprintf(what, sizeof what, "choice n %d label %d %s ce %d", n, cc->label, compat_method_name(cc->m), cc->with_ce);
        expect_near(what, l, cc->loss, TOL_CHOICE_HAND * fmax(1, cc->loss));
        if (o.masked != cc->masked) fail_msg("%s: masked %d, expected %d", what, o.masked, cc->masked);
        seen[cc->m][cc->masked] = 1;
        assert_int_equal(o.student_correct, ref_argmax_d(CLL[cc->cs], n) == cc->label);
        expect_near(what, o.ce, cc->with_ce ? -CLL[cc->cs][cc->label] : 0.0, 0.0);
        /* the gradient of the CE part alone is -ce_scale at the label */
        if (cc->with_ce) {
            double dll0[4];
            compat_choice_loss(&c, CLL[cc->cs], CLL1[cc->cs], CLL2[cc->cs], n, cc->label, 0, 0.4, 0.6, dll0, NULL);
            for (int j = 0; j < n; j++) expect_near(what, dll[j] - dll0[j], j == cc->label ? -0.4 : 0.0, 1e-15);
        }
    }
    /* both branches of every mask and of focal's weight were hand-checked */
    for (int m = 0; m < N_PAPER_METHODS; m++)
        if (m != COMPAT_NONE && m != COMPAT_ELODI) assert_true(seen[m][0] && seen[m][1]);
    /* gradients by hand: n = 4, label 1, student-wrong (the student picks 2: a_1), with CE:
     * dll = 0.6 (softmax(ll/2) - softmax(ll1/2)) / 2 - 0.4 e_1 */
    CompatConfig c = cfg_of(COMPAT_STUDENT_WRONG);
    c.elodi_margin = 0.6;
    double dll[4];
    const double g_sw[4] = {-0.00495258854035, -0.443418414397, 0.0821852980694, -0.0338142951321};
    compat_choice_loss(&c, CLL[2], CLL1[2], CLL2[2], 4, 1, 1, 0.4, 0.6, dll, NULL);
    for (int j = 0; j < 4; j++) expect_near("choice dll student-wrong", dll[j], g_sw[j], 1e-11);
    /* ELODI, n = 4, no CE: dll = 0.6 (g - softmax(ll) sum g), g_c = 2 D_c / 4 beyond the margin */
    c.method = COMPAT_ELODI;
    const double g_el[4] = {0.1292340954, -0.455555916056, 0.79322382821, -0.466902007555};
    compat_choice_loss(&c, CLL[2], CLL1[2], NULL, 4, 0, 0, 0.4, 0.6, dll, NULL);
    for (int j = 0; j < 4; j++) expect_near("choice dll elodi", dll[j], g_el[j], 1e-10);
    /* ELODI p = 1: (1/n) sum_{|D_c| > 0.6} |D_c|: n = 2: (1 + 1)/2; n = 3: (1.772 + 0.928)/3 = 0.9;
     * n = 4: (1.615 + 1.685 + 1.615)/4 = 1.2286599503827951 */
    c.elodi_p = 1;
    const double kd_p1[3] = {1.0, 0.9, 1.2286599503827951};
    for (int cs = 0; cs < 3; cs++)
        expect_near("choice elodi p 1", compat_choice_loss(&c, CLL[cs], CLL1[cs], NULL, CN[cs], 0, 0, 0.4, 0.6, dll, NULL),
                    0.6 * kd_p1[cs], 1e-12);
}

/* dll against central differences of the returned loss (float64 throughout: step 1e-5,
 * truncation ~1e-10, cancellation ~1e-11; tolerance 1e-7 of the largest component). */
#define TOL_CHOICE_FD 1e-7

typedef struct { CompatConfig c; double ll[8], ll1[8], ll2[8]; int n, label, with_ce; } ChoiceInst;
static double choice_obj(void *p) {
    ChoiceInst *I = p;
    double dll[8];
    return compat_choice_loss(&I->c, I->ll, I->ll1, I->ll2, I->n, I->label, I->with_ce, 0.3, 0.7, dll, NULL);
}

static double choice_slack(const ChoiceInst *I) {
    int a = ref_argmax_d(I->ll, I->n);
    double second = -INFINITY, lq1[8], lp1[8];
    for (int j = 0; j < I->n; j++) if (j != a && I->ll[j] > second) second = I->ll[j];
    double s = I->ll[a] - second;
    s = fmin(s, fabs(I->ll[I->label] - I->ll1[I->label]));
    ref_logsoftmax(I->ll, I->n, 1.0, lq1);
    ref_logsoftmax(I->ll1, I->n, 1.0, lp1);
    for (int j = 0; j < I->n; j++) s = fmin(s, fabs(fabs(lq1[j] - lp1[j]) - I->c.elodi_margin));
    return s;
}

static void choice_fd_method(CompatMethod meth, int elodi_p) {
    TRng r = {5000 + 31 * (uint64_t)meth + (uint64_t)elodi_p};
    double worst = 0;
    int masked[2] = {0, 0};
    for (int n = 2; n <= 8; n++)
        for (int i = 0; i < 12; i++) {
            ChoiceInst I;
            memset(&I, 0, sizeof I);
            I.c = cfg_of(meth);
            I.c.level = COMPAT_LEVEL_CHOICE;
            I.c.elodi_p = elodi_p;
            I.c.temperature = i % 3 == 2 ? 0.7 : 2.0;
            I.n = n;
            I.with_ce = i % 2;
            for (int tries = 0;; tries++) {
                assert_true(tries < 1000);
                for (int j = 0; j < n; j++) {
                    I.ll[j] = -6.0 + 4.0 * trng_uniform(&r);
                    I.ll1[j] = I.ll[j] + trng_sym(&r, 2.0f);
                    I.ll2[j] = I.ll[j] + trng_sym(&r, 2.0f);
                }
                I.label = i % 4 == 0 ? ref_argmax_d(I.ll, n) : i % 4 == 1 ? ref_argmax_d(I.ll1, n) : (int)(trng_uniform(&r) * n);
                if (choice_slack(&I) > 1e-3) break;
            }
            double dll[8], num[8];
            CompatTokenOut o;
            compat_choice_loss(&I.c, I.ll, I.ll1, I.ll2, n, I.label, I.with_ce, 0.3, 0.7, dll, &o);
            masked[o.masked]++;
            fd_grad(I.ll, (size_t)n, 1e-5, choice_obj, &I, num);
            double e = rel_err_dd(dll, num, (size_t)n);
            if (!(e < TOL_CHOICE_FD)) {
                for (int j = 0; j < n; j++) printf("#   dll[%d] %.12g numeric %.12g\n", j, dll[j], num[j]);
                fail_msg("choice %s n %d instance %d: dll rel err %.3e (tol %.0e)", compat_method_name(meth), n, i, e, TOL_CHOICE_FD);
            }
            if (e > worst) worst = e;
        }
    printf("# choice %-20s %-3s: dll vs central differences: worst rel err %.1e (m = 0: %d, m = 1: %d)\n",
           compat_method_name(meth), meth == COMPAT_ELODI ? (elodi_p == 1 ? "p 1" : "p 2") : "", worst, masked[0], masked[1]);
    if (meth != COMPAT_NONE && meth != COMPAT_ELODI && meth != COMPAT_MIXTURE) assert_true(masked[0] > 0 && masked[1] > 0);
}

static void test_choice_fd(void **state) {
    (void)state;
    for (int m = 0; m < COMPAT_N_METHODS; m++) choice_fd_method((CompatMethod)m, 2); /* the new methods too: their masks and weights are constants */
    choice_fd_method(COMPAT_ELODI, 1);
}

/* ------------------------------------------------------------------------- */
/* 5. settings                                                                */

static void expect_bad(CompatConfig c, const char *needle) {
    err_clear();
    assert_int_equal(compat_config_check(&c), -1);
    if (!strstr(err_msg(), needle)) fail_msg("config: message '%s' does not name '%s'", err_msg(), needle);
}

static void test_config(void **state) {
    (void)state;
    CompatConfig c;
    compat_config_default(&c);
    assert_int_equal(c.method, COMPAT_STUDENT_WRONG);
    assert_int_equal(c.level, COMPAT_LEVEL_TOKEN);
    assert_true(c.temperature == 2.0 && c.ce_weight == 0.0 && c.kd_weight == 1.0);
    assert_true(c.focal_alpha == 1.0 && c.focal_beta == 5.0 && c.elodi_margin == 0.5 && c.elodi_p == 2);
    assert_true(c.topk == 0 && c.cache_mb == 1024.0 && c.answer_only == 0);
    assert_int_equal(compat_config_check(&c), 0);
    /* the edges that are allowed */
    CompatConfig e = c;
    e.ce_weight = 1.0;
    e.elodi_p = 1;
    e.topk = 0;
    e.kd_weight = 0;
    e.elodi_margin = 0;
    e.focal_alpha = e.focal_beta = 0;
    assert_int_equal(compat_config_check(&e), 0);
    e.ce_weight = 0.0;
    e.topk = 1;
    assert_int_equal(compat_config_check(&e), 0);
    /* bad values, each named */
    CompatConfig b;
    b = c; b.temperature = 0; expect_bad(b, "temperature");
    b = c; b.temperature = -1; expect_bad(b, "temperature");
    b = c; b.temperature = NAN; expect_bad(b, "temperature");
    b = c; b.temperature = INFINITY; expect_bad(b, "temperature");
    b = c; b.ce_weight = 1.5; expect_bad(b, "ce weight");
    b = c; b.ce_weight = -0.1; expect_bad(b, "ce weight");
    b = c; b.ce_weight = NAN; expect_bad(b, "ce weight");
    b = c; b.kd_weight = -1; expect_bad(b, "distillation weight");
    b = c; b.focal_alpha = -1; expect_bad(b, "focal");
    b = c; b.focal_beta = NAN; expect_bad(b, "focal");
    b = c; b.elodi_margin = -0.5; expect_bad(b, "margin");
    b = c; b.elodi_p = 3; expect_bad(b, "elodi p 3");
    b = c; b.elodi_p = 0; expect_bad(b, "elodi p 0");
    b = c; b.topk = -1; expect_bad(b, "top-k -1");
    b = c; b.cache_mb = 0; expect_bad(b, "cache");
    b = c; b.method = COMPAT_N_METHODS; expect_bad(b, "method");
}

static void test_parse_names(void **state) {
    (void)state;
    const char *names[] = {"student-wrong", "old-correct", "none", "token-likelihood", "sequence-likelihood", "focal", "elodi",
                           "ensemble", "mixture", "weighted", "flip"};
    for (int i = 0; i < COMPAT_N_METHODS; i++) {
        CompatMethod m = COMPAT_N_METHODS;
        assert_int_equal(compat_method_parse(names[i], &m), 0);
        assert_int_equal(m, i);
        assert_string_equal(compat_method_name((CompatMethod)i), names[i]);
    }
    assert_string_equal(compat_method_name(COMPAT_N_METHODS), "?");
    const char *bad[] = {"", "Student-Wrong", "student_wrong", "elodi ", "sequence", "focal-distillation", "studentwrong"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        CompatMethod m = COMPAT_FOCAL;
        assert_int_equal(compat_method_parse(bad[i], &m), -1);
        assert_int_equal(m, COMPAT_FOCAL); /* untouched */
        char q[64];
        snprintf(q, sizeof q, "'%s'", bad[i]);
        assert_non_null(strstr(err_msg(), q));
        assert_non_null(strstr(err_msg(), "student-wrong"));
    }
    CompatLevel l = COMPAT_LEVEL_CHOICE;
    assert_int_equal(compat_level_parse("token", &l), 0);
    assert_int_equal(l, COMPAT_LEVEL_TOKEN);
    assert_int_equal(compat_level_parse("choice", &l), 0);
    assert_int_equal(l, COMPAT_LEVEL_CHOICE);
    assert_string_equal(compat_level_name(COMPAT_LEVEL_TOKEN), "token");
    assert_string_equal(compat_level_name(COMPAT_LEVEL_CHOICE), "choice");
    const char *badl[] = {"", "tokens", "Choice", "sequences"};
    for (size_t i = 0; i < sizeof badl / sizeof *badl; i++) {
        assert_int_equal(compat_level_parse(badl[i], &l), -1);
        assert_int_equal(l, COMPAT_LEVEL_CHOICE);
        assert_non_null(strstr(err_msg(), "expected token, choice or sequence"));
    }
}

static void json_expect_num(const cJSON *o, const char *key, double want) {
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!cJSON_IsNumber(it)) fail_msg("config json: '%s' missing or not a number", key);
    if (it->valuedouble != want) fail_msg("config json: '%s' = %.17g, expected %.17g", key, it->valuedouble, want);
}
static void json_expect_str(const cJSON *o, const char *key, const char *want) {
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!cJSON_IsString(it)) fail_msg("config json: '%s' missing or not a string", key);
    assert_string_equal(it->valuestring, want);
}

static void test_config_json(void **state) {
    (void)state;
    for (int m = 0; m < N_PAPER_METHODS; m++) {
        CompatConfig c = cfg_of((CompatMethod)m);
        c.level = m % 2 ? COMPAT_LEVEL_CHOICE : COMPAT_LEVEL_TOKEN;
        c.answer_only = m % 3 == 0;
        c.temperature = 0.7 + m;     /* not exact in binary: %.17g must round-trip it */
        c.ce_weight = 0.1 * m;
        c.kd_weight = 1.0 / 3.0;
        c.focal_alpha = 1e-3;
        c.focal_beta = 12345.678;
        c.elodi_margin = 0.25;
        c.elodi_p = 1 + m % 2;
        c.topk = 64 * m;
        c.cache_mb = 1.5e6;
        assert_int_equal(compat_config_check(&c), 0);
        char *s = compat_config_json(&c);
        assert_non_null(s);
        cJSON *j = cJSON_Parse(s);
        if (!j) fail_msg("config json is not JSON: %s", s);
        assert_true(cJSON_IsObject(j));
        json_expect_str(j, "method", compat_method_name(c.method));
        json_expect_str(j, "level", compat_level_name(c.level));
        json_expect_str(j, "distill_tokens", c.answer_only ? "answer" : "all");
        json_expect_num(j, "temperature", c.temperature);
        json_expect_num(j, "ce_weight", c.ce_weight);
        json_expect_num(j, "kd_weight", c.kd_weight);
        json_expect_num(j, "focal_alpha", c.focal_alpha);
        json_expect_num(j, "focal_beta", c.focal_beta);
        json_expect_num(j, "elodi_margin", c.elodi_margin);
        json_expect_num(j, "elodi_p", c.elodi_p);
        json_expect_num(j, "teacher_topk", c.topk);
        json_expect_num(j, "teacher_cache_mb", c.cache_mb);
        assert_int_equal(cJSON_GetArraySize(j), 12); /* nothing else */
        cJSON_Delete(j);
        free(s);
    }
}

/* ------------------------------------------------------------------------- */
/* 6. model_backward_logits                                                   */

enum { MB_ = 2, MT_ = 6, MN_ = MB_ * MT_ };

typedef struct {
    Model m;
    RunState s;
    LoraAdapter ad;
    int tok[MN_], tgt[MN_];
    float w[MN_];
} Tiny;

static void tiny_make(Tiny *t, int keep, uint64_t seed) {
    memset(t, 0, sizeof *t);
    ModelConfig c = tiny_config(ROPE_INTERLEAVED, 0);
    ModelLoadOptions o = {KW_F32, 1};
    assert_int_equal(model_init_random(&t->m, &c, &o, seed), 0);
    assert_int_equal(runstate_init(&t->s, &t->m, MB_, MT_, MT_, keep), 0);
    assert_int_equal(lora_init(&t->ad, &t->m.cfg, 2, 4.0f, 0, LORA_TARGETS_ALL), 0);
    TRng r = {seed + 99};
    trng_fill(&r, t->ad.data, t->ad.n_floats, 0.3f); /* B non-zero, or dA would be 0 */
    assert_int_equal(runstate_set_lora(&t->s, &t->ad), 0);
    for (int i = 0; i < MN_; i++) {
        t->tok[i] = (int)(trng_uniform(&r) * c.vocab_size);
        t->tgt[i] = (int)(trng_uniform(&r) * c.vocab_size);
        t->w[i] = (float)(0.5 + trng_uniform(&r));
    }
    t->w[0] = 0.0f; /* ignored positions */
    t->tgt[0] = -1;
    t->w[MT_ + 2] = 0.0f;
}

static void tiny_free(Tiny *t) {
    lora_free(&t->ad);
    runstate_free(&t->s);
    model_free(&t->m);
}

static float max_abs(const float *x, size_t n) {
    float m = 0;
    for (size_t i = 0; i < n; i++) m = fabsf(x[i]) > m ? fabsf(x[i]) : m;
    return m;
}

static void backward_logits_case(int keep) {
    Tiny t;
    tiny_make(&t, keep, 17);
    int V = t.m.cfg.vocab_size;
    ModelGrads gA, gB;
    LoraAdapter lA, lB;
    assert_int_equal(model_grads_init(&gA, &t.m), 0);
    assert_int_equal(model_grads_init(&gB, &t.m), 0);
    assert_int_equal(lora_init_like(&lA, &t.ad), 0);
    assert_int_equal(lora_init_like(&lB, &t.ad), 0);
    /* A: the built-in cross-entropy */
    double loss;
    assert_int_equal(model_loss(&t.s, t.tok, t.tgt, t.w, MB_, MT_, 0, &loss, NULL), 0);
    assert_int_equal(model_backward(&t.s, &gA, &lA), 0);
    /* B: the same loss computed by the caller, its gradient written over the logits */
    assert_int_equal(model_forward_train(&t.s, t.tok, MB_, MT_), 0);
    double norm = 0, lossB;
    for (int i = 0; i < MN_; i++) norm += t.w[i];
    assert_int_equal(crossentropy_forward(&lossB, NULL, t.s.logits, t.tgt, t.w, MN_, V, norm), 0);
    assert_true(lossB == loss);
    crossentropy_backward(t.s.logits, t.s.logits, t.tgt, t.w, MN_, V, norm, 1.0f);
    assert_int_equal(model_backward_logits(&t.s, &gB, &lB), 0);
    assert_true(max_abs(lA.data, lA.n_floats) > 0 && max_abs(gA.data, gA.n_floats) > 0);
    /* same inputs, same order of every reduction: the same bits */
    double el = rel_err_ff(lB.data, lA.data, lA.n_floats), eg = rel_err_ff(gB.data, gA.data, gA.n_floats);
    printf("# backward_logits vs model_backward (%s): adapter rel err %.1e, base %.1e\n",
           keep == RS_KEEP_ALL ? "keep all" : "keep inputs", el, eg);
    assert_memory_equal(lB.data, lA.data, lA.n_floats * sizeof(float));
    assert_memory_equal(gB.data, gA.data, gA.n_floats * sizeof(float));
    lora_free(&lA);
    lora_free(&lB);
    model_grads_free(&gA);
    model_grads_free(&gB);
    tiny_free(&t);
}

static void test_backward_logits_same_as_ce(void **state) {
    (void)state;
    backward_logits_case(RS_KEEP_ALL);
    backward_logits_case(RS_KEEP_INPUTS);
}

/* The compat loss through a tiny model, as compat_train.c runs it (compat_token_loss
 * writes dz over the logits in place, then model_backward_logits): the adapter's
 * gradient against central differences of the float64 model (gradcheck.h) followed
 * by the float64 formulas of the loss. */
typedef struct {
    DModel dm;
    const Tiny *t;
    TokInst pos[MN_];
    int active[MN_];
} CompatModelCtx;

static double compat_model_obj(void *p) {
    CompatModelCtx *c = p;
    int V = c->t->m.cfg.vocab_size;
    double *logits = malloc((size_t)MN_ * V * sizeof *logits);
    dmodel_loss(&c->dm, c->t->tok, c->t->tgt, NULL, MB_, MT_, logits);
    double L = 0;
    for (int q = 0; q < MN_; q++)
        if (c->active[q]) L += ref_token(&c->pos[q], logits + (size_t)q * V, NULL);
    free(logits);
    return L;
}

static void test_compat_through_model(void **state) {
    (void)state;
    Tiny t;
    tiny_make(&t, RS_KEEP_ALL, 23);
    int V = t.m.cfg.vocab_size;
    assert_true(V <= VMAX);
    for (int i = 0; i < MN_; i++) t.tgt[i] = t.tgt[i] < 0 ? 0 : t.tgt[i];
    /* the student's logits, to make teachers near it (student + noise) and to pick masks with slack */
    assert_int_equal(model_forward(&t.s, t.tok, MB_, MT_, 0), 0);
    static CompatModelCtx cx;
    memset(&cx, 0, sizeof cx);
    cx.t = &t;
    TRng r = {4242};
    int per_method[N_PAPER_METHODS] = {0};
    for (int q = 0; q < MN_; q++) {
        TokInst *I = &cx.pos[q];
        I->cfg = cfg_of((CompatMethod)(q % N_PAPER_METHODS));
        I->cfg.focal_alpha = 0.5;
        I->cfg.focal_beta = 2.0;
        I->V = V;
        I->k = q % 2 ? 6 : V; /* exact and top-6 teachers */
        I->y = t.tgt[q];
        I->answer = q % 4 != 1;
        I->distill = 1;
        I->seq_flag = q % 3 == 0;
        I->ce_s = 1.0 / MN_;
        I->kd_s = 2.0 / MN_;
        memcpy(I->z, t.s.logits + (size_t)q * V, (size_t)V * sizeof(float));
        for (int j = 0; j < V; j++) {
            I->z1[j] = I->z[j] + trng_sym(&r, 1.5f);
            I->z2[j] = I->z[j] + trng_sym(&r, 1.5f);
        }
        /* a position whose student-dependent mask is within 1e-3 of flipping distils plainly
         * (a step of 1e-5 in one adapter weight moves the logits by far less) */
        inst_teachers(I);
        if (inst_slack(I) < 1e-3) I->cfg.method = COMPAT_NONE;
        cx.active[q] = 1;
        per_method[I->cfg.method]++;
    }
    int kinds = 0;
    for (int m = 0; m < N_PAPER_METHODS; m++) kinds += per_method[m] > 0;
    printf("# compat through the model: %d of the 7 methods among %d positions\n", kinds, MN_);
    assert_true(kinds >= 5);
    /* the engine: forward, the losses written over the logits in place, backward */
    LoraAdapter lg;
    assert_int_equal(lora_init_like(&lg, &t.ad), 0);
    assert_int_equal(model_forward_train(&t.s, t.tok, MB_, MT_), 0);
    double L = 0;
    float *scratch = malloc(3 * (size_t)V * sizeof *scratch);
    for (int q = 0; q < MN_; q++) {
        TokInst *I = &cx.pos[q];
        float *z = t.s.logits + (size_t)q * V;
        assert_memory_equal(z, I->z, (size_t)V * sizeof(float)); /* the same forward pass */
        L += compat_token_loss(&I->cfg, z, V, I->y, I->answer, I->distill, I->seq_flag, &I->t1, &I->t2, I->ce_s, I->kd_s,
                               z, scratch, NULL);
    }
    free(scratch);
    assert_int_equal(model_backward_logits(&t.s, NULL, &lg), 0);
    /* the float64 model */
    ModelGrads g;
    assert_int_equal(model_grads_init(&g, &t.m), 0);
    double *P = malloc(g.n_floats * sizeof *P), *Q = dup_f64(t.ad.data, t.ad.n_floats);
    dmodel_copy_weights(&t.m, &g, P);
    dmodel_bind(&cx.dm, &g, P, &t.ad, Q, &t.s);
    double Ld = compat_model_obj(&cx);
    printf("# compat loss: engine %.9f, float64 model %.9f\n", L, Ld);
    assert_true(fabs(L - Ld) < 1e-5 * fabs(Ld));
    double *num = malloc(t.ad.n_floats * sizeof *num);
    fd_grad(Q, t.ad.n_floats, 1e-5, compat_model_obj, &cx, num);
    /* float32 model gradient against float64 differences: test_backward.c's TOL_MODEL */
    double e = rel_err_fd(lg.data, num, t.ad.n_floats);
    printf("# compat through the model: adapter gradient rel err %.2e over %zu parameters\n", e, t.ad.n_floats);
    assert_true(e < 1e-4);
    free(num);
    free(P);
    free(Q);
    model_grads_free(&g);
    lora_free(&lg);
    tiny_free(&t);
}

static void test_backward_api_errors(void **state) {
    (void)state;
    Tiny t;
    tiny_make(&t, RS_KEEP_ALL, 3);
    LoraAdapter lg;
    assert_int_equal(lora_init_like(&lg, &t.ad), 0);
    double loss;
    /* nothing to differentiate yet */
    assert_int_equal(model_backward_logits(&t.s, NULL, &lg), -1);
    assert_non_null(strstr(err_msg(), "no loss"));
    /* after model_forward_train: model_backward is refused, model_backward_logits then still works */
    assert_int_equal(model_forward_train(&t.s, t.tok, MB_, MT_), 0);
    assert_int_equal(model_backward(&t.s, NULL, &lg), -1);
    assert_non_null(strstr(err_msg(), "model_backward_logits"));
    memset(t.s.logits, 0, (size_t)MN_ * t.m.cfg.vocab_size * sizeof(float));
    assert_int_equal(model_backward_logits(&t.s, NULL, &lg), 0);
    assert_true(max_abs(lg.data, lg.n_floats) == 0.0f); /* a zero gradient back-propagates to zero */
    /* once per forward pass */
    assert_int_equal(model_backward_logits(&t.s, NULL, &lg), -1);
    assert_non_null(strstr(err_msg(), "no loss"));
    /* after model_loss: model_backward_logits is refused, model_backward then still works */
    assert_int_equal(model_loss(&t.s, t.tok, t.tgt, t.w, MB_, MT_, 0, &loss, NULL), 0);
    assert_int_equal(model_backward_logits(&t.s, NULL, &lg), -1);
    assert_non_null(strstr(err_msg(), "call model_backward"));
    assert_int_equal(model_backward(&t.s, NULL, &lg), 0);
    assert_true(max_abs(lg.data, lg.n_floats) > 0.0f);
    /* an inference forward pass after model_forward_train invalidates it */
    assert_int_equal(model_forward_train(&t.s, t.tok, MB_, MT_), 0);
    assert_int_equal(model_forward(&t.s, t.tok, 1, 2, 0), 0);
    assert_int_equal(model_backward_logits(&t.s, NULL, &lg), -1);
    /* an inference run state cannot train */
    RunState s0;
    assert_int_equal(runstate_init(&s0, &t.m, 1, 4, 4, RS_KEEP_NONE), 0);
    assert_int_equal(model_forward_train(&s0, t.tok, 1, 4), -1);
    assert_non_null(strstr(err_msg(), "RS_KEEP_ALL"));
    assert_int_equal(model_backward_logits(&s0, NULL, NULL), -1);
    runstate_free(&s0);
    lora_free(&lg);
    tiny_free(&t);
}

/* ------------------------------------------------------------------------- */
/* 7. sequence level: masks from ROUGE-1 scores, a tiny instance, gradients     */

static void test_seq_mask(void **state) {
    (void)state;
    /* labelled: {labelled, r1 (M1), r2 (M2), rs (student), student_same} */
    const struct { CompatSeqScores s; int sw, oc; } cases[] = {
        {{1, 0.50, 0.40, 0.30, 0}, 1, 1}, /* M1 better than both: student-wrong and old-correct pick it */
        {{1, 0.50, 0.40, 0.60, 0}, 0, 1}, /* the student already beats M1 */
        {{1, 0.50, 0.50, 0.50, 0}, 0, 1}, /* ties: old-correct keeps r1 >= r2, student-wrong needs rs < r1 */
        {{1, 0.40, 0.50, 0.30, 0}, 1, 0}, /* M2 better than M1: not a possible negative flip */
        {{1, 0.00, 0.00, 0.00, 0}, 0, 0}, /* M1 scored 0: nothing to keep */
        {{1, 0.25, 0.00, 0.125, 1}, 1, 1}, /* student_same is read only for transfer rows */
        {{0, 0.00, 0.00, 0.00, 0}, 1, 1}, /* transfer, the student's output differs from M1's */
        {{0, 0.00, 0.00, 0.00, 1}, 0, 1}, /* transfer, the same output */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        assert_int_equal(compat_seq_mask(COMPAT_STUDENT_WRONG, &cases[i].s), cases[i].sw);
        assert_int_equal(compat_seq_mask(COMPAT_OLD_CORRECT, &cases[i].s), cases[i].oc);
        assert_int_equal(compat_seq_mask(COMPAT_NONE, &cases[i].s), 1);
    }
    CompatMethod other[] = {COMPAT_TOKEN_LIKELIHOOD, COMPAT_SEQ_LIKELIHOOD, COMPAT_FOCAL, COMPAT_ELODI};
    for (size_t i = 0; i < 4; i++) {
        err_clear();
        assert_int_equal(compat_seq_mask(other[i], &cases[0].s), -1);
        assert_non_null(strstr(err_msg(), "has no sequence level"));
        assert_non_null(strstr(err_msg(), compat_method_name(other[i])));
    }
}

/* tests/compat/hand_values.py, "sequence level": V = 3, ce_weight 0.5, kd_weight 1. */
static void test_seq_hand_values(void **state) {
    (void)state;
    const float zr[6] = {0.5f, -1.0f, 2.0f, 1.5f, 0.25f, -0.75f};
    const float zk[9] = {0.1f, 0.2f, 0.3f, -2.0f, 1.0f, 0.0f, 0.7f, 0.7f, -0.4f};
    const int ref[3] = {0, 2, 1}, m1[4] = {0, 1, 1, 0};
    const uint8_t ref_m[3] = {0, 1, 1}, m1_m[4] = {0, 1, 1, 1};
    float dz[9];
    int right = -1;
    expect_near("CE of the reference row", compat_seq_row_loss(zr, 3, ref, ref_m, 3, 1.0, dz, &right), 1.82198390606438, 1e-6);
    assert_int_equal(right, 1); /* argmax of position 0 is 2 = the token; of position 1 is 0 != 1 */
    expect_near("CE of M1's row", compat_seq_row_loss(zk, 3, m1, m1_m, 4, 1.0, dz, NULL), 2.29805479877232, 1e-6);
    CompatConfig c = cfg_of(COMPAT_STUDENT_WRONG);
    c.level = COMPAT_LEVEL_SEQUENCE;
    c.ce_weight = 0.5;
    double ce, kd;
    compat_seq_scales(&c, 2, 3, &ce, &kd);
    expect_near("ce scale", ce, 0.25, 0);
    expect_near("kd scale", kd, 1.0 / 3.0, 1e-15);
    double l0 = compat_seq_row_loss(zr, 3, ref, ref_m, 3, ce, dz, NULL);
    double l1 = l0 + compat_seq_row_loss(zk, 3, m1, m1_m, 4, kd, dz, NULL);
    expect_near("instance loss, mask 0", l0, 0.455495976516095, 1e-6);
    expect_near("instance loss, mask 1", l1, 1.22151424277353, 1e-6);
    /* no counted position: nothing, and a zero gradient */
    const uint8_t none[3] = {0, 0, 0};
    for (int i = 0; i < 6; i++) dz[i] = 7.0f;
    expect_near("no counted position", compat_seq_row_loss(zr, 3, ref, none, 3, 1.0, dz, NULL), 0.0, 0);
    for (int i = 0; i < 6; i++) assert_true(dz[i] == 0.0f);
    compat_seq_scales(&c, 0, 0, &ce, &kd);
    assert_true(ce == 0.0 && kd == 0.0);
}

/* d loss / d z of compat_seq_row_loss against central differences of its own loss, with
 * dz aliasing z (as the training step calls it). */
static void test_seq_fd(void **state) {
    (void)state;
    enum { V = 7, L = 5 };
    const int ids[L] = {1, 4, 0, 6, 2};
    const uint8_t mask[L] = {0, 0, 1, 1, 1};
    double z[(L - 1) * V];
    uint64_t r = 12345;
    for (int i = 0; i < (L - 1) * V; i++) {
        r = r * 6364136223846793005ull + 1442695040888963407ull;
        z[i] = ((double)(r >> 11) / 9007199254740992.0 - 0.5) * 6.0;
    }
    float zf[(L - 1) * V], dz[(L - 1) * V];
    for (int i = 0; i < (L - 1) * V; i++) zf[i] = (float)z[i];
    double scale = 0.37;
    compat_seq_row_loss(zf, V, ids, mask, L, scale, dz, NULL);
    float za[(L - 1) * V];
    memcpy(za, zf, sizeof za);
    compat_seq_row_loss(za, V, ids, mask, L, scale, za, NULL); /* aliasing */
    for (int i = 0; i < (L - 1) * V; i++) assert_true(za[i] == dz[i]);
    double num[(L - 1) * V], ana[(L - 1) * V];
    const double h = 1e-2;
    for (int i = 0; i < (L - 1) * V; i++) {
        float zp[(L - 1) * V], zm[(L - 1) * V], scratch[(L - 1) * V];
        memcpy(zp, zf, sizeof zp);
        memcpy(zm, zf, sizeof zm);
        zp[i] += (float)h;
        zm[i] -= (float)h;
        double lp = compat_seq_row_loss(zp, V, ids, mask, L, scale, scratch, NULL);
        double lm = compat_seq_row_loss(zm, V, ids, mask, L, scale, scratch, NULL);
        num[i] = (lp - lm) / (2 * h);
        ana[i] = dz[i];
    }
    double e = rel_err_dd(ana, num, (L - 1) * V);
    if (!(e < 2e-3)) fail_msg("sequence-level CE gradient: relative error %.3e", e);
    for (int i = 0; i < V; i++) assert_true(dz[i] == 0.0f); /* position 0 does not count (mask[1] = 0) */
}

static void test_seq_config(void **state) {
    (void)state;
    CompatLevel l;
    assert_int_equal(compat_level_parse("sequence", &l), 0);
    assert_int_equal(l, COMPAT_LEVEL_SEQUENCE);
    assert_string_equal(compat_level_name(COMPAT_LEVEL_SEQUENCE), "sequence");
    assert_int_equal(compat_level_parse("sentence", &l), -1);
    assert_non_null(strstr(err_msg(), "token, choice or sequence"));
    CompatConfig c = cfg_of(COMPAT_OLD_CORRECT);
    c.level = COMPAT_LEVEL_SEQUENCE;
    assert_int_equal(c.gen_max_tokens, 128);
    assert_int_equal(c.gen_no_repeat_ngram, 0);
    assert_int_equal(compat_config_check(&c), 0);
    CompatConfig b = c;
    b.method = COMPAT_FOCAL;
    expect_bad(b, "focal has no sequence level");
    b = c; b.answer_only = 1; expect_bad(b, "distill-tokens answer");
    b = c; b.gen_max_tokens = 0; expect_bad(b, "max tokens 0");
    b = c; b.gen_no_repeat_ngram = -1; expect_bad(b, "no-repeat n-gram");
    c.gen_max_tokens = 24;
    c.gen_no_repeat_ngram = 2;
    char *js = compat_config_json(&c);
    assert_non_null(js);
    cJSON *j = cJSON_Parse(js);
    assert_non_null(j);
    assert_string_equal(cJSON_GetObjectItem(j, "level")->valuestring, "sequence");
    assert_int_equal(cJSON_GetObjectItem(j, "max_tokens")->valueint, 24);
    assert_int_equal(cJSON_GetObjectItem(j, "no_repeat_ngram")->valueint, 2);
    cJSON_Delete(j);
    free(js);
    c.level = COMPAT_LEVEL_TOKEN; /* other levels keep their JSON */
    js = compat_config_json(&c);
    assert_null(strstr(js, "max_tokens"));
    free(js);
}


/* ------------------------------------------------------------------------- */
/* the methods of issue 18: ensemble and mixture teachers, instance weighting, flips   */
/* (hand values: tests/compat/hand_values_methods.py)                                   */

static double tok_new(CompatMethod m, const float *z, int y, const TeacherPos *t1, const TeacherPos *t2, float *dz) {
    CompatConfig c = cfg_of(m);
    float scratch[12];
    return compat_token_loss(&c, z, 4, y, 1, 1, 0, t1, t2, 0.3, 0.7, dz, scratch, NULL);
}

static void test_new_methods_token(void **state) {
    (void)state;
    const float z[4] = {2, 1, 0, -1}, z1[4] = {0.5f, 2.5f, -0.5f, 0}, za[4] = {3, -0.5f, 1, -1}, zb[4] = {1, 0.5f, 2, -0.5f};
    double acc[4] = {0}, accm[4] = {0};
    float ze[4], zm[4], k1[4], ke[4], km[4];
    compat_teacher_acc(za, 4, 2.0, 0.5, acc);
    compat_teacher_acc(zb, 4, 2.0, 0.5, acc);
    compat_teacher_logits(acc, 4, 2.0, ze);
    compat_teacher_acc(za, 4, 2.0, 0.35, accm);
    compat_teacher_acc(zb, 4, 2.0, 0.35, accm);
    compat_teacher_acc(z1, 4, 2.0, 0.3, accm);
    compat_teacher_logits(accm, 4, 2.0, zm);
    TeacherPos t1, te, tm;
    compat_teacher_pos(z1, 4, 2.0, 0, 4, NULL, k1, &t1);
    struct { CompatMethod m; int y; const TeacherPos *t2; double loss; double dz[4]; } cases[] = {
        {COMPAT_ENSEMBLE, 0, &te, 0.194977293180948, {-0.0967835332048581, 0.114585222085724, -0.027637703035529, 0.00983601415466275}},
        {COMPAT_ENSEMBLE, 1, &te, 0.576598243008506, {0.283864395925245, -0.318750313520436, 0.0431398960977573, -0.00825397850256681}},
        {COMPAT_MIXTURE, 1, &tm, 0.45630227917591, {0.227410845534173, -0.225415438596124, -0.00640442329554309, 0.00440901635749388}},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        compat_teacher_pos(z1, 4, 2.0, cases[i].y, 4, NULL, k1, &t1);
        compat_teacher_pos(ze, 4, 2.0, cases[i].y, 4, NULL, ke, &te);
        compat_teacher_pos(zm, 4, 2.0, cases[i].y, 4, NULL, km, &tm);
        float dz[4];
        double l = tok_new(cases[i].m, z, cases[i].y, &t1, cases[i].t2, dz);
        char what[64];
        snprintf(what, sizeof what, "token %s y %d", compat_method_name(cases[i].m), cases[i].y);
        expect_near(what, l, cases[i].loss, 2e-6);
        for (int j = 0; j < 4; j++) expect_near(what, dz[j], cases[i].dz[j], 2e-6);
        /* and the gradient against central differences of the loss itself */
        for (int j = 0; j < 4; j++) {
            float zp[4], zn[4], g[4];
            memcpy(zp, z, sizeof zp);
            memcpy(zn, z, sizeof zn);
            zp[j] += 4e-3f;
            zn[j] -= 4e-3f;
            double num = (tok_new(cases[i].m, zp, cases[i].y, &t1, cases[i].t2, g) - tok_new(cases[i].m, zn, cases[i].y, &t1, cases[i].t2, g)) / 8e-3;
            expect_near(what, num, dz[j], 2e-4);
        }
    }
}

static void test_new_methods_choice(void **state) {
    (void)state;
    const double ll[3] = {-4, -2.5, -3}, l1[3] = {-3.5, -3.2, -1}, la[3] = {-2, -2.6, -4}, lb[3] = {-3, -2, -3.5};
    double acc[3] = {0}, accm[3] = {0}, le[3], lm[3];
    compat_teacher_acc_d(la, 3, 2.0, 0.5, acc);
    compat_teacher_acc_d(lb, 3, 2.0, 0.5, acc);
    compat_teacher_logits_d(acc, 3, 2.0, le);
    const double le_hand[3] = {-1.91948675273625, -1.75332341172036, -3.21050387950498};
    for (int j = 0; j < 3; j++) expect_near("ensemble logits T log mean", le[j], le_hand[j], 1e-12);
    compat_teacher_acc_d(la, 3, 2.0, 0.4, accm);
    compat_teacher_acc_d(lb, 3, 2.0, 0.4, accm);
    compat_teacher_acc_d(l1, 3, 2.0, 0.2, accm);
    compat_teacher_logits_d(accm, 3, 2.0, lm);
    struct { CompatMethod m; int label; const double *l2; double loss; int masked; double dll[3]; } cases[] = {
        {COMPAT_ENSEMBLE, 1, le, 1.05645487319227, 0, {-0.0519477995793244, -0.391586774101221, 0.0435345736805457}},
        {COMPAT_ENSEMBLE, 2, le, 1.30152982324649, 1, {0.00987265559590599, 0.0715976428826208, -0.481470298478527}},
        {COMPAT_MIXTURE, 0, lm, 1.62791678496105, 0, {-0.439583708544278, 0.0210501092955471, 0.0185335992487312}},
        {COMPAT_WEIGHTED, 2, la, 1.28511260896663, 1, {0.00827626256333093, 0.0600204155463395, -0.46829667810967}},
        {COMPAT_WEIGHTED, 1, la, 1.11088592552195, 0, {-0.0793183578447833, -0.372130462974931, 0.0514488208197146}},
        {COMPAT_FLIP, 2, la, 1.30152982324649, 1, {0.00987265559590599, 0.0715976428826208, -0.481470298478527}},
        {COMPAT_FLIP, 0, la, 1.6, 0, {-0.4, 0, 0}},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        CompatConfig c = cfg_of(cases[i].m);
        c.level = COMPAT_LEVEL_CHOICE;
        assert_int_equal(compat_config_check(&c), 0);
        double dll[3];
        CompatTokenOut o;
        double l = compat_choice_loss(&c, ll, l1, cases[i].l2, 3, cases[i].label, 1, 0.4, 0.6, dll, &o);
        char what[64];
        snprintf(what, sizeof what, "choice %s label %d", compat_method_name(cases[i].m), cases[i].label);
        expect_near(what, l, cases[i].loss, 1e-12);
        assert_int_equal(o.masked, cases[i].masked);
        for (int j = 0; j < 3; j++) expect_near(what, dll[j], cases[i].dll[j], 1e-12);
    }
}

static void test_new_methods_seq_and_levels(void **state) {
    (void)state;
    CompatSeqScores lab = {1, 0.6, 0.4, 0.2, 0}, lab2 = {1, 0.3, 0.5, 0.9, 0}, tr = {0, 0, 0, 0, 1};
    /* instance weighting: M1's ROUGE-1 F against the reference; 1 without one; mask student-wrong */
    expect_near("weighted r1", compat_seq_weight(COMPAT_WEIGHTED, &lab), 0.6, 0);
    expect_near("weighted transfer", compat_seq_weight(COMPAT_WEIGHTED, &tr), 1.0, 0);
    expect_near("student-wrong unweighted", compat_seq_weight(COMPAT_STUDENT_WRONG, &lab), 1.0, 0);
    assert_int_equal(compat_seq_mask(COMPAT_WEIGHTED, &lab), 1);  /* rs 0.2 < r1 0.6 */
    assert_int_equal(compat_seq_mask(COMPAT_WEIGHTED, &lab2), 0); /* rs 0.9 >= r1 */
    /* flips: M1's output better than M2's, labelled only */
    assert_int_equal(compat_seq_mask(COMPAT_FLIP, &lab), 1);
    assert_int_equal(compat_seq_mask(COMPAT_FLIP, &lab2), 0);
    assert_int_equal(compat_seq_mask(COMPAT_FLIP, &tr), 0);
    assert_int_equal(compat_seq_method_check(COMPAT_ENSEMBLE), 0); /* ensemble decoding (compat_mixgen.h) */
    assert_int_equal(compat_seq_method_check(COMPAT_MIXTURE), 0);
    assert_int_equal(compat_seq_method_check(COMPAT_FOCAL), -1);
    /* ensemble and mixture at the sequence level: student-wrong against their own outputs' score (r1) */
    assert_int_equal(compat_seq_mask(COMPAT_ENSEMBLE, &lab), 1);
    assert_int_equal(compat_seq_mask(COMPAT_MIXTURE, &lab2), 0);
    /* the levels each method has, refused with the list generated from the table */
    CompatConfig c = cfg_of(COMPAT_FLIP);
    expect_bad(c, "has no token level");
    c = cfg_of(COMPAT_WEIGHTED);
    expect_bad(c, "weighted has no token level");
    assert_non_null(strstr(err_msg(), "ensemble or mixture with --level token"));
    c = cfg_of(COMPAT_FOCAL);
    c.level = COMPAT_LEVEL_SEQUENCE;
    expect_bad(c, "has no sequence level");
    assert_non_null(strstr(err_msg(), "ensemble, mixture, weighted or flip"));
    c = cfg_of(COMPAT_MIXTURE);
    c.mixture_a = 1.0;
    expect_bad(c, "mixture weight 1");
    c.mixture_a = 0.3;
    assert_int_equal(compat_config_check(&c), 0);
    CompatMethod m;
    assert_int_equal(compat_method_parse("nope", &m), -1);
    assert_non_null(strstr(err_msg(), "elodi, ensemble, mixture, weighted or flip"));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_teacher_pos),
        cmocka_unit_test(test_token_hand_values),
        cmocka_unit_test(test_elodi_hand_values),
        cmocka_unit_test(test_fd_student_wrong),
        cmocka_unit_test(test_fd_old_correct),
        cmocka_unit_test(test_fd_none),
        cmocka_unit_test(test_fd_token_likelihood),
        cmocka_unit_test(test_fd_seq_likelihood),
        cmocka_unit_test(test_fd_focal),
        cmocka_unit_test(test_fd_elodi_p1),
        cmocka_unit_test(test_fd_elodi_p2),
        cmocka_unit_test(test_topk_large_vocab),
        cmocka_unit_test(test_topk_confident_student),
        cmocka_unit_test(test_choice_hand_values),
        cmocka_unit_test(test_choice_fd),
        cmocka_unit_test(test_config),
        cmocka_unit_test(test_parse_names),
        cmocka_unit_test(test_config_json),
        cmocka_unit_test(test_backward_logits_same_as_ce),
        cmocka_unit_test(test_compat_through_model),
        cmocka_unit_test(test_backward_api_errors),
        cmocka_unit_test(test_seq_mask),
        cmocka_unit_test(test_seq_hand_values),
        cmocka_unit_test(test_seq_fd),
        cmocka_unit_test(test_seq_config),
        cmocka_unit_test(test_new_methods_token),
        cmocka_unit_test(test_new_methods_choice),
        cmocka_unit_test(test_new_methods_seq_and_levels),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
