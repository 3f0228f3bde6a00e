/* tests/model/test_forward_ref.c - the forward pass against PyTorch (float64) fixtures
 * written by tools/ref/make_fixtures.py, for every format and storage type, batched
 * with sequences of different lengths (right padding), and the greedy reference ids. */
#include "testutil.h"
#include "core/error.h"
#include "core/file.h"
#include "model/forward.h"
#include "model/generate.h"

#include <cJSON.h>
#include <math.h>

static cJSON *load_json(const char *path) {
    size_t n;
    char *s = file_read_all(path, &n, 0);
    if (!s) fail_msg("%s", err_msg());
    cJSON *j = cJSON_ParseWithLength(s, n);
    free(s);
    assert_non_null(j);
    return j;
}

/* Resolves a model path from the fixture: "../shared/..." through shared_path(). */
static const char *fixture_path(const char *p, char *buf, size_t cap) {
    if (!strncmp(p, "../shared/", 10)) return shared_path(p + 10);
    snprintf(buf, cap, "%s", p);
    return buf;
}

/* Runs all sequences of a fixture as one padded batch; returns the max abs error. */
static double check_fixture(const char *fixture, KWeightType wt, double tol) {
    cJSON *j = load_json(fixture);
    char buf[1024];
    const char *mpath = fixture_path(cJSON_GetObjectItem(j, "model")->valuestring, buf, sizeof buf);
    Model m;
    ModelLoadOptions o = {wt, 0};
    if (model_load(&m, mpath, &o) != 0) fail_msg("%s", err_msg());
    const cJSON *seqs = cJSON_GetObjectItem(j, "sequences");
    int B = cJSON_GetArraySize(seqs), T = 0;
    for (int b = 0; b < B; b++) {
        int n = cJSON_GetArraySize(cJSON_GetObjectItem(cJSON_GetArrayItem(seqs, b), "ids"));
        if (n > T) T = n;
    }
    int *tok = calloc((size_t)B * T, sizeof(int));
    for (int b = 0; b < B; b++) {
        const cJSON *ids = cJSON_GetObjectItem(cJSON_GetArrayItem(seqs, b), "ids");
        for (int t = 0; t < cJSON_GetArraySize(ids); t++) tok[b * T + t] = cJSON_GetArrayItem(ids, t)->valueint;
    }
    RunState s;
    assert_int_equal(runstate_init(&s, &m, B, T, T, 0), 0);
    assert_int_equal(model_forward(&s, tok, B, T, 0), 0);
    int V = m.cfg.vocab_size;
    logsoftmax_rows(s.logits, B * T, V);
    double worst = 0;
    for (int b = 0; b < B; b++) {
        const cJSON *sq = cJSON_GetArrayItem(seqs, b);
        const cJSON *tl = cJSON_GetObjectItem(sq, "token_logprobs");
        for (int t = 0; t < cJSON_GetArraySize(tl); t++) {
            double ref = cJSON_GetArrayItem(tl, t)->valuedouble;
            double got = s.logits[((size_t)b * T + t) * V + tok[b * T + t + 1]];
            worst = fmax(worst, fabs(ref - got));
        }
        const cJSON *pos = cJSON_GetObjectItem(sq, "rows_positions"), *rows = cJSON_GetObjectItem(sq, "logprobs_rows");
        for (int r = 0; r < cJSON_GetArraySize(pos); r++) {
            int p = cJSON_GetArrayItem(pos, r)->valueint;
            const cJSON *row = cJSON_GetArrayItem(rows, r);
            assert_int_equal(cJSON_GetArraySize(row), V);
            for (int v = 0; v < V; v++)
                worst = fmax(worst, fabs(cJSON_GetArrayItem(row, v)->valuedouble - s.logits[((size_t)b * T + p) * V + v]));
        }
    }
    print_message("# %-48s %s max |d log p| = %.2e\n", fixture, wt == KW_BF16 ? "bf16" : "fp32", worst);
    if (!(worst <= tol)) fail_msg("%s: max |d log p| %.3g > %.3g", fixture, worst, tol);
    /* the tokenizer reproduces the fixture's ids for its texts */
    const cJSON *tp = cJSON_GetObjectItem(j, "tokenizer");
    Tokenizer *tk = model_tokenizer_load(&m, (tp && cJSON_IsString(tp)) ? fixture_path(tp->valuestring, buf, sizeof buf) : NULL);
    if (!tk) fail_msg("%s", err_msg());
    for (int b = 0; b < B; b++) {
        const cJSON *sq = cJSON_GetArrayItem(seqs, b), *text = cJSON_GetObjectItem(sq, "text");
        if (!text) continue;
        int *ids, n;
        assert_int_equal(tok_encode(tk, text->valuestring, strlen(text->valuestring), 1, 0, &ids, &n), 0);
        const cJSON *want = cJSON_GetObjectItem(sq, "ids");
        assert_int_equal(n, cJSON_GetArraySize(want));
        for (int i = 0; i < n; i++) assert_int_equal(ids[i], cJSON_GetArrayItem(want, i)->valueint);
        free(ids);
    }
    /* greedy ids from BOS (real models) */
    const cJSON *g = cJSON_GetObjectItem(j, "greedy_ids_from_bos");
    if (g && wt == KW_F32) {
        GenOptions go;
        gen_options_default(&go);
        go.max_tokens = cJSON_GetArraySize(g);
        int bos = m.cfg.bos_id;
        GenResult r;
        assert_int_equal(model_generate(&m, tk, &bos, 1, &go, NULL, NULL, &r), 0);
        assert_int_equal(r.n_ids, go.max_tokens);
        for (int i = 0; i < r.n_ids; i++) assert_int_equal(r.ids[i], cJSON_GetArrayItem(g, i)->valueint);
        gen_result_free(&r);
    }
    model_tokenizer_free(&m, tk);
    runstate_free(&s);
    free(tok);
    model_free(&m);
    cJSON_Delete(j);
    return worst;
}

#define FIX(name) "tests/fixtures/model/" name ".logprobs.json"

static void test_llama2c_tiny(void **st) { (void)st; check_fixture(FIX("tiny2c"), KW_F32, 1e-4); }
static void test_hf_tied(void **st) { (void)st; check_fixture(FIX("tiny2c_hf"), KW_F32, 1e-4); }
static void test_hf_f32(void **st) { (void)st; check_fixture(FIX("tiny_hf"), KW_F32, 1e-4); }
static void test_hf_bf16(void **st) { (void)st; check_fixture(FIX("tiny_hf_bf16"), KW_F32, 1e-4); }
static void test_hf_sharded_f16(void **st) { (void)st; check_fixture(FIX("tiny_hf_sharded"), KW_F32, 1e-4); }
static void test_gguf_f32(void **st) { (void)st; check_fixture(FIX("tiny"), KW_F32, 1e-4); }
static void test_gguf_f16(void **st) { (void)st; check_fixture(FIX("tiny_f16"), KW_F32, 1e-4); }
static void test_gguf_q8_0(void **st) { (void)st; check_fixture(FIX("tiny_q8_0"), KW_F32, 1e-4); }
static void test_stories260K(void **st) { (void)st; check_fixture(FIX("stories260K"), KW_F32, 1e-4); }
static void test_babyllama105(void **st) { (void)st; check_fixture(FIX("babyllama105"), KW_F32, 1e-4); }
/* bf16 compute rounds weights and activations to bf16: a looser bound, but still one
 * that a wrong kernel (or a wrong layout) would break by orders of magnitude */
static void test_stories260K_bf16(void **st) { (void)st; check_fixture(FIX("stories260K"), KW_BF16, 0.25); }
static void test_hf_bf16_compute(void **st) { (void)st; check_fixture(FIX("tiny_hf_bf16"), KW_BF16, 0.25); }

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_llama2c_tiny),   cmocka_unit_test(test_hf_tied),
        cmocka_unit_test(test_hf_f32),         cmocka_unit_test(test_hf_bf16),
        cmocka_unit_test(test_hf_sharded_f16), cmocka_unit_test(test_gguf_f32),
        cmocka_unit_test(test_gguf_f16),       cmocka_unit_test(test_gguf_q8_0),
        cmocka_unit_test(test_stories260K),    cmocka_unit_test(test_babyllama105),
        cmocka_unit_test(test_stories260K_bf16), cmocka_unit_test(test_hf_bf16_compute),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
