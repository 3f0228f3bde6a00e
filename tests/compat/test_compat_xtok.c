/* tests/compat/test_compat_xtok.c - compatibility training across tokenizers
 * (src/compat/compat_xtok.h; issue 14):
 *  1. ULD: hand values (tests/compat/hand_values_xtok.py, float64 from the header's
 *     formula, pasted), teacher smaller and larger than the student; its gradient by
 *     central differences.
 *  2. The exact mapping: a hand map of 5 teacher pieces onto 3 student ones, its coverage
 *     and the renormalised KL and gradient against hand values; central differences.
 *  3. Identical vocabularies: the identity map, and the mapped teacher gives exactly the
 *     same-tokenizer loss and gradient (bit for bit).
 *  4. A real pair (the demo's SentencePiece tokenizer and a byte-level BPE one): every
 *     mapped pair decodes to the same bytes; BOS maps by role.
 *  5. Alignment by byte offsets: a hand case, and offsets of real text.
 *  6. Span masks: a hand case where the tokens split differently (hand values from
 *     hand_values_xtok.py; the span masks differ from the per-position ones there), a row
 *     of M1 cut short (its last span dropped), and one-token spans (identical
 *     tokenizations): compat_xtok_pos_loss is compat_token_loss bit for bit for every mask;
 *     its gradient (both mappings, both mask values) by central differences. */
#include "testutil.h"
#include "compat/compat_loss.h"
#include "compat/compat_xtok.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define T_HAND 2.0

static void near(const char *what, double got, double want, double tol) {
    if (!(fabs(got - want) <= tol)) fail_msg("%s: got %.15g, expected %.15g", what, got, want);
}

/* z with z[j] moved by +h (zp) and -h (zm), for central differences */
static void shifted(const float *z, int n, int j, float h, float *zp, float *zm) {
    memcpy(zp, z, (size_t)n * sizeof *z);
    memcpy(zm, z, (size_t)n * sizeof *z);
    zp[j] += h;
    zm[j] -= h;
}

static double uld_value(const float *pt, int kt, const float *z, int V, double T) {
    float *dz = calloc((size_t)V, sizeof *dz), *scr = malloc((size_t)3 * V * sizeof *scr);
    double l = compat_uld_loss(pt, kt, z, V, T, 1.0, dz, scr);
    free(dz);
    free(scr);
    return l;
}

static void test_uld_hand(void **st) {
    (void)st;
    const float zt[5] = {1.0f, -0.5f, 2.0f, 0.3f, -1.2f}, zs[3] = {3.5f, -1.0f, 0.0f};
    float p[5], dz[3] = {0, 0, 0}, scr[9];
    compat_uld_teacher(zt, 5, 2.0, p);
    for (int i = 1; i < 5; i++) assert_true(p[i - 1] >= p[i]);
    double l = compat_uld_loss(p, 5, zs, 3, 2.0, 1.0, dz, scr);
    near("uld 5 -> 3", l, 0.77059762401093823, 1e-6);
    const double want[3] = {0.17061412876767718, -0.064413772281361734, -0.10620035648631544};
    for (int j = 0; j < 3; j++) near("uld dz", dz[j], want[j], 1e-6);
    const float zt2[2] = {0.5f, -0.5f}, zs2[4] = {0.0f, 0.4f, -0.3f, 1.0f};
    float p2[2];
    compat_uld_teacher(zt2, 2, 2.0, p2);
    near("uld 2 -> 4", uld_value(p2, 2, zs2, 4, 2.0), 0.78663033240083235, 1e-6);
}

static void test_uld_fd(void **st) {
    (void)st;
    enum { VT = 11, VS = 7 };
    float zt[VT], z[VS], p[VT], dz[VS] = {0}, scr[3 * VS];
    unsigned s = 7;
    for (int i = 0; i < VT; i++) zt[i] = (float)((s = s * 1103515245u + 12345u) % 1000) / 250.0f - 2.0f;
    for (int i = 0; i < VS; i++) z[i] = (float)((s = s * 1103515245u + 12345u) % 1000) / 250.0f - 2.0f;
    compat_uld_teacher(zt, VT, 1.5, p);
    compat_uld_loss(p, VT, z, VS, 1.5, 0.5, dz, scr);
    for (int j = 0; j < VS; j++) {
        float zp[VS], zm[VS];
        shifted(z, VS, j, 1e-3f, zp, zm);
        double fd = 0.5 * (uld_value(p, VT, zp, VS, 1.5) - uld_value(p, VT, zm, VS, 1.5)) / 2e-3;
        near("uld d/dz by central differences", dz[j], fd, 2e-4);
    }
}

/* the hand map: teacher 0..4 -> student {1, -, 0, 1, -} */
static const int hand_map[5] = {1, -1, 0, 1, -1};

static double mapped_loss(const float *zt, const float *z, double T, float *dz) {
    CompatVocabMap m = {5, 3, (int *)hand_map, 3};
    float zm[3], keep[3], scr[9], g[3];
    compat_vocab_map_logits(&m, zt, T, zm);
    TeacherPos tp;
    compat_teacher_pos(zm, 3, T, -1, 3, NULL, keep, &tp);
    CompatConfig c;
    compat_config_default(&c);
    c.method = COMPAT_NONE;
    c.temperature = T;
    CompatTokenOut o;
    return compat_token_loss(&c, z, 3, 0, 0, 1, 0, &tp, NULL, 0.0, 1.0, dz ? dz : g, scr, &o);
}

static void test_mapped_hand(void **st) {
    (void)st;
    const float zt[5] = {1.0f, -0.5f, 2.0f, 0.3f, -1.2f}, zs[3] = {3.5f, -1.0f, 0.0f};
    CompatVocabMap m = {5, 3, (int *)hand_map, 3};
    float zm[3], dz[3];
    near("coverage", compat_vocab_map_logits(&m, zt, T_HAND, zm), 0.92658870791861592, 1e-6);
    near("mapped KL", mapped_loss(zt, zs, 2.0, dz), 0.69698172166072214, 1e-6);
    const double want[3] = {0.1450498741686547, -0.21297419739397302, 0.06792432322531837};
    for (int j = 0; j < 3; j++) near("mapped KL dz", dz[j], want[j], 1e-6);
    for (int j = 0; j < 3; j++) {
        float zp[3], zq[3];
        shifted(zs, 3, j, 1e-3f, zp, zq);
        near("mapped KL d/dz by central differences", dz[j], (mapped_loss(zt, zp, 2.0, NULL) - mapped_loss(zt, zq, 2.0, NULL)) / 2e-3, 2e-4);
    }
}

static void test_identity(void **st) {
    (void)st;
    Tokenizer *a = tok_load("demo/models/v1/tokenizer.model"), *b = tok_load("demo/models/v1/tokenizer.model");
    assert_non_null(a);
    assert_non_null(b);
    assert_int_equal(compat_tok_same(a, b), 1);
    CompatVocabMap m;
    assert_int_equal(compat_vocab_map_init(&m, a, b), 0);
    int V = m.vt;
    assert_int_equal(m.n_mapped, V);
    float *zt = malloc((size_t)V * 4), *zm = malloc((size_t)V * 4), *z = malloc((size_t)V * 4), *k1 = malloc((size_t)V * 4),
          *k2 = malloc((size_t)V * 4), *d1 = malloc((size_t)V * 4), *d2 = malloc((size_t)V * 4), *scr = malloc((size_t)9 * V * 4);
    unsigned s = 3;
    for (int i = 0; i < V; i++) zt[i] = (float)((s = s * 1103515245u + 12345u) % 4000) / 500.0f - 4.0f;
    for (int i = 0; i < V; i++) z[i] = (float)((s = s * 1103515245u + 12345u) % 4000) / 500.0f - 4.0f;
    near("identity coverage", compat_vocab_map_logits(&m, zt, 2.0, zm), 1.0, 0.0);
    assert_memory_equal(zt, zm, (size_t)V * 4);
    TeacherPos t1, t2, t2b;
    compat_teacher_pos(zt, V, 2.0, 5, V, NULL, k1, &t1);
    compat_teacher_pos(zm, V, 2.0, 5, V, NULL, k2, &t2);
    t2b = t1;
    CompatConfig c;
    compat_config_default(&c);
    CompatTokenOut o;
    double l1 = compat_token_loss(&c, z, V, 5, 1, 1, 0, &t1, &t2b, 0.3, 0.7, d1, scr, &o);
    double l2 = compat_token_loss(&c, z, V, 5, 1, 1, 0, &t2, &t2b, 0.3, 0.7, d2, scr, &o);
    assert_memory_equal(&l1, &l2, sizeof l1);
    assert_memory_equal(d1, d2, (size_t)V * 4);
    compat_vocab_map_free(&m);
    free(zt); free(zm); free(z); free(k1); free(k2); free(d1); free(d2); free(scr);
    tok_free(a);
    tok_free(b);
}

static void test_real_pair(void **st) {
    (void)st;
    Tokenizer *t = tok_load("demo/models/v1/tokenizer.model"), *s = tok_load("tests/tokenizer/regress/json/tiny-bytelevel.json");
    assert_non_null(t);
    assert_non_null(s);
    assert_int_equal(compat_tok_same(t, s), 0);
    CompatVocabMap m;
    assert_int_equal(compat_vocab_map_init(&m, t, s), 0);
    assert_true(m.n_mapped > 100); /* at least the single bytes */
    for (int i = 0; i < m.vt; i++) {
        if (m.s_of_t[i] < 0 || i == tok_bos_id(t) || i == tok_eos_id(t)) continue;
        char b1[8], b2[8];
        size_t n1, n2;
        const char *p1 = tok_decode_piece(t, -1, i, b1, &n1), *p2 = tok_decode_piece(s, -1, m.s_of_t[i], b2, &n2);
        if (n1 != n2 || memcmp(p1, p2, n1) != 0) fail_msg("teacher piece %d mapped to student %d with other bytes", i, m.s_of_t[i]);
    }
    if (tok_bos_id(t) >= 0) assert_int_equal(m.s_of_t[tok_bos_id(t)], tok_bos_id(s));
    compat_vocab_map_free(&m);
    tok_free(t);
    tok_free(s);
}

static void test_align(void **st) {
    (void)st;
    /* student: BOS "abc" "de" "fghi"; teacher: BOS "abcde" "fghi" */
    const int os[5] = {0, 0, 3, 5, 9}, ot[4] = {0, 0, 5, 9};
    int map[4];
    assert_int_equal(compat_xtok_align(os, 4, ot, 3, map), 2);
    assert_int_equal(map[0], 0);
    assert_int_equal(map[1], -1);
    assert_int_equal(map[2], 1);
    /* identical rows align position by position */
    assert_int_equal(compat_xtok_align(os, 4, os, 4, map), 3);
    for (int j = 0; j < 3; j++) assert_int_equal(map[j], j);
    /* real text: two tokenizers, offsets non-decreasing, ending at the text's length */
    Tokenizer *t = tok_load("demo/models/v1/tokenizer.model");
    assert_non_null(t);
    const char *text = "Loqui is a IRC/chat client";
    int *ids, n;
    assert_int_equal(tok_encode(t, text, strlen(text), 1, 0, &ids, &n), 0);
    int *off = malloc((size_t)(n + 1) * sizeof *off);
    assert_int_equal(compat_xtok_offsets(t, ids, n, off), 0);
    assert_int_equal(off[n], (int)strlen(text));
    for (int i = 1; i <= n; i++) assert_true(off[i] >= off[i - 1]);
    free(off);
    free(ids);
    tok_free(t);
}

/* M1's cache entry of a span as compat_xtok_token_cache writes it */
static TeacherPos span_teacher(const float *zt, int Vt, const int *yt, int n, int y_student) {
    CompatSpanSide sd;
    compat_xtok_span_side(zt, Vt, yt, n, &sd);
    TeacherPos tp;
    memset(&tp, 0, sizeof tp);
    tp.logp_y = (float)sd.ll;
    tp.argmax = sd.wrong ? -1 : y_student;
    return tp;
}

static void test_span_hand(void **st) {
    (void)st;
    /* student: BOS "abc" "de" "fghi" (ids 0 1 2 3); M1: BOS "abcde" "fghi" (ids 0 1 2) */
    const int os[5] = {0, 0, 3, 5, 9}, ot[4] = {0, 0, 5, 9}, ids[4] = {0, 1, 2, 3}, tids[3] = {0, 1, 2};
    const float zs[3 * 4] = {0.1f, 2.0f, 0.5f, -1.0f, 0.3f, 0.2f, 1.5f, 1.7f, -0.5f, 0.0f, 0.4f, 2.2f};
    const float zt[2 * 3] = {0.0f, 1.2f, 0.9f, 0.2f, 1.0f, 0.8f};
    int tpos[3], te;
    assert_int_equal(compat_xtok_align(os, 4, ot, 3, tpos), 2);
    assert_int_equal(compat_xtok_span_end(tpos, 4, 3, 0, &te), 2);
    assert_int_equal(te, 1);
    assert_int_equal(compat_xtok_span_end(tpos, 4, 3, 2, &te), 3);
    assert_int_equal(te, 2);
    CompatSpanSide a;
    compat_xtok_span_side(zs, 4, ids + 1, 2, &a);
    assert_int_equal(a.wrong, 1);
    near("student ll of span A", a.ll, -1.3802841127392862, 1e-6);
    compat_xtok_span_side(zt, 3, tids + 1, 1, &a);
    assert_int_equal(a.wrong, 0);
    near("M1 ll of span A", a.ll, -0.71393580816366509, 1e-6);
    compat_xtok_span_side(zs + 8, 4, ids + 3, 1, &a);
    near("student ll of span B", a.ll, -0.29513490049872682, 1e-6);
    TeacherPos t1[3];
    memset(t1, 0, sizeof t1);
    t1[0] = span_teacher(zt, 3, tids + 1, 1, ids[1]);
    t1[2] = span_teacher(zt + 3, 3, tids + 2, 1, ids[3]);
    near("M1 ll of span B", t1[2].logp_y, -1.0189247158518506, 1e-6);
    /* span A: every mask 1 (per position at A they would be 0 for student-wrong and
     * token-likelihood); span B: every mask 0; the mask holds on all of a span's positions */
    const CompatMethod meth[4] = {COMPAT_STUDENT_WRONG, COMPAT_OLD_CORRECT, COMPAT_TOKEN_LIKELIHOOD, COMPAT_NONE};
    const int want[4][3] = {{1, 1, 0}, {1, 1, 0}, {1, 1, 0}, {1, 1, 1}};
    for (int k = 0; k < 4; k++) {
        int m[3];
        compat_xtok_row_masks(meth[k], tpos, 4, 3, ids, zs, 4, t1, m);
        for (int j = 0; j < 3; j++)
            if (m[j] != want[k][j]) fail_msg("%s: position %d mask %d, expected %d", compat_method_name(meth[k]), j, m[j], want[k][j]);
    }
    /* M1's row cut short (BOS "abcde" only): the last span does not end where the
     * student's does, so it is not aligned */
    const int ot2[3] = {0, 0, 5};
    assert_int_equal(compat_xtok_align(os, 4, ot2, 2, tpos), 0);
    for (int j = 0; j < 3; j++) assert_int_equal(tpos[j], -1);
}

/* identical tokenizations: every span one token; the span masks and compat_xtok_pos_loss
 * give compat_token_loss exactly, for each MUSCLE mask and both values of it */
static void test_span_identity(void **st) {
    (void)st;
    enum { V = 23, N = 6 };
    float z[N * V], zt1[N * V], zt2[N * V], k1[N * V], k2[N * V], d1[V], d2[V], scr[7 * V], zc[V];
    int ids[N + 1], off[N + 2], tpos[N];
    unsigned s = 11;
    for (int i = 0; i < N * V; i++) {
        z[i] = (float)((s = s * 1103515245u + 12345u) % 4000) / 500.0f - 4.0f;
        zt1[i] = (float)((s = s * 1103515245u + 12345u) % 4000) / 500.0f - 4.0f;
        zt2[i] = (float)((s = s * 1103515245u + 12345u) % 4000) / 500.0f - 4.0f;
    }
    for (int j = 0; j <= N; j++) ids[j] = (int)((s = s * 1103515245u + 12345u) % V);
    for (int j = 0; j < 2; j++) { /* make some positions right for the student and for M1 */
        int am = 0;
        for (int v = 1; v < V; v++) am = z[j * V + v] > z[j * V + am] ? v : am;
        ids[j + 1] = am;
    }
    for (int v = 0; v < V; v++) zt1[2 * V + v] = z[2 * V + v] - 0.5f; /* M1 below the student there */
    off[0] = 0;
    for (int j = 1; j <= N + 1; j++) off[j] = off[j - 1] + j; /* pieces of 0, 1, 2 ... bytes: distinct boundaries */
    assert_int_equal(compat_xtok_align(off, N + 1, off, N + 1, tpos), N);
    TeacherPos t1[N], t2[N];
    for (int j = 0; j < N; j++) {
        compat_teacher_pos(zt1 + j * V, V, 2.0, ids[j + 1], V, NULL, k1 + j * V, &t1[j]);
        compat_teacher_pos(zt2 + j * V, V, 2.0, ids[j + 1], V, NULL, k2 + j * V, &t2[j]);
    }
    const CompatMethod meth[4] = {COMPAT_STUDENT_WRONG, COMPAT_OLD_CORRECT, COMPAT_TOKEN_LIKELIHOOD, COMPAT_NONE};
    int seen[2] = {0, 0};
    for (int k = 0; k < 4; k++) {
        int m[N];
        compat_xtok_row_masks(meth[k], tpos, N + 1, N + 1, ids, z, V, t1, m);
        CompatConfig c;
        compat_config_default(&c);
        c.method = meth[k];
        for (int j = 0; j < N; j++) {
            CompatTokenOut o1, o2;
            memcpy(zc, z + j * V, sizeof zc);
            double l1 = compat_token_loss(&c, zc, V, ids[j + 1], j % 2, 1, 0, &t1[j], &t2[j], 0.3, 0.7, d1, scr, &o1);
            double l2 = compat_xtok_pos_loss(&c, 0, m[j], zc, V, ids[j + 1], j % 2, 1, &t1[j], &t2[j], 0.3, 0.7, d2, scr, &o2);
            if (o1.masked != m[j]) fail_msg("%s, position %d: span mask %d, per-position mask %d", compat_method_name(meth[k]), j, m[j], o1.masked);
            assert_memory_equal(&l1, &l2, sizeof l1);
            assert_memory_equal(d1, d2, sizeof d1);
            seen[m[j]]++;
        }
    }
    assert_true(seen[0] > 0 && seen[1] > 0); /* both teachers were exercised */
}

/* compat_xtok_pos_loss (CE + the span-masked term: ULD or the mapped KL for M1, the KL for
 * M2) against central differences, for both mappings and both mask values */
static double pos_loss(int uld, int m, const float *z, const TeacherPos *t1, const TeacherPos *t2, float *dz) {
    enum { V = 7 };
    float g[V], scr[7 * V], zc[V];
    memcpy(zc, z, sizeof zc);
    CompatConfig c;
    compat_config_default(&c);
    c.method = COMPAT_STUDENT_WRONG;
    CompatTokenOut o;
    double l = compat_xtok_pos_loss(&c, uld, m, zc, V, 3, 1, 1, t1, t2, 0.4, 0.6, dz ? dz : g, scr, &o);
    assert_int_equal(o.masked, m);
    return l;
}

static void test_pos_loss_fd(void **st) {
    (void)st;
    enum { V = 7, VT = 9 };
    float z[V], zt[VT], z2[V], p[VT], k1[V], k2[V];
    unsigned s = 5;
    for (int i = 0; i < V; i++) z[i] = (float)((s = s * 1103515245u + 12345u) % 1000) / 250.0f - 2.0f;
    for (int i = 0; i < V; i++) z2[i] = (float)((s = s * 1103515245u + 12345u) % 1000) / 250.0f - 2.0f;
    for (int i = 0; i < VT; i++) zt[i] = (float)((s = s * 1103515245u + 12345u) % 1000) / 250.0f - 2.0f;
    TeacherPos tu = {VT, NULL, p, 0.0f, 0.0f, 0.0f, -1}, tk, t2;
    compat_uld_teacher(zt, VT, 2.0, p);
    compat_teacher_pos(zt, V, 2.0, 3, V, NULL, k1, &tk); /* the mapped teacher: its first V logits */
    compat_teacher_pos(z2, V, 2.0, 3, V, NULL, k2, &t2);
    for (int uld = 0; uld < 2; uld++)
        for (int m = 0; m < 2; m++) {
            float dz[V];
            pos_loss(uld, m, z, uld ? &tu : &tk, &t2, dz);
            for (int j = 0; j < V; j++) {
                float zp[V], zq[V];
                shifted(z, V, j, 1e-3f, zp, zq);
                double fd = (pos_loss(uld, m, zp, uld ? &tu : &tk, &t2, NULL) - pos_loss(uld, m, zq, uld ? &tu : &tk, &t2, NULL)) / 2e-3;
                near(uld ? "ULD position loss d/dz by central differences" : "mapped position loss d/dz by central differences", dz[j], fd, 3e-4);
            }
        }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_uld_hand), cmocka_unit_test(test_uld_fd), cmocka_unit_test(test_mapped_hand),
        cmocka_unit_test(test_identity), cmocka_unit_test(test_real_pair), cmocka_unit_test(test_align),
        cmocka_unit_test(test_span_hand), cmocka_unit_test(test_span_identity), cmocka_unit_test(test_pos_loss_fd),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
