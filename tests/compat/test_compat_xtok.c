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
 *  5. Alignment by byte offsets: a hand case, and offsets of real text. */
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
        memcpy(zp, z, sizeof z);
        memcpy(zm, z, sizeof z);
        zp[j] += 1e-3f;
        zm[j] -= 1e-3f;
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
        memcpy(zp, zs, sizeof zp);
        memcpy(zq, zs, sizeof zq);
        zp[j] += 1e-3f;
        zq[j] -= 1e-3f;
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

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_uld_hand), cmocka_unit_test(test_uld_fd), cmocka_unit_test(test_mapped_hand),
        cmocka_unit_test(test_identity), cmocka_unit_test(test_real_pair), cmocka_unit_test(test_align),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
