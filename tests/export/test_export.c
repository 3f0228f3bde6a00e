/* tests/export/test_export.c - muscle export, checked against the definitions:
 * the GGUF LoRA file holds exactly the adapter (keys, names, ggml shapes, values, the
 * alpha that makes llama.cpp's alpha / r the adapter's scaling), and the merged folder is
 * bit for bit lora_merge's fp32 weights (f32) or their one cast (bf16). Against a real
 * llama.cpp: tests/export/llamacpp.sh. */
#include "testutil.h"

#include "core/dtype.h"
#include "core/file.h"
#include "core/rng.h"
#include "export/export.h"
#include "io/gguf.h"
#include "model/lora.h"
#include "model/model.h"

#include <math.h>

static ModelConfig small_cfg(void) {
    ModelConfig c;
    memset(&c, 0, sizeof c);
    c.dim = 16; c.hidden_dim = 40; c.n_layers = 2; c.n_heads = 4; c.n_kv_heads = 2; c.vocab_size = 32;
    c.seq_len = 32; c.rope_theta = 10000; c.norm_eps = 1e-5f; c.tied = 0; c.bos_id = 1; c.eos_id = 2;
    return c;
}

static void fill_adapter(LoraAdapter *a, uint64_t seed) {
    for (size_t i = 0; i < a->n_floats; i++) a->data[i] = (float)((double)((seed * 2654435761u + i * 40503u) % 1000) / 1000.0 - 0.5);
}

static void test_gguf_lora(void **state) {
    (void)state;
    ModelConfig c = small_cfg();
    Model m;
    assert_int_equal(model_init_random(&m, &c, NULL, 7), 0);
    LoraAdapter a;
    assert_int_equal(lora_init(&a, &m.cfg, 3, 6.0f, 1, LORA_BIT(LORA_Q) | LORA_BIT(LORA_K) | LORA_BIT(LORA_DOWN)), 0);
    fill_adapter(&a, 3);
    char path[512];
    snprintf(path, sizeof path, "%s/a.gguf", test_tmpdir());
    assert_int_equal(export_lora_gguf(&a, &m, path, "test"), 0);
    GgufFile g;
    assert_int_equal(gguf_open(&g, path), 0);
    const char *s;
    assert_int_equal(gguf_get_string(&g, "general.type", &s, NULL), 0);
    assert_string_equal(s, "adapter");
    assert_int_equal(gguf_get_string(&g, "adapter.type", &s, NULL), 0);
    assert_string_equal(s, "lora");
    assert_int_equal(gguf_get_string(&g, "general.architecture", &s, NULL), 0);
    assert_string_equal(s, "llama");
    float alpha;
    assert_int_equal(gguf_get_f32(&g, "adapter.lora.alpha", &alpha), 0);
    /* rsLoRA: scaling = 6 / sqrt(3); llama.cpp applies alpha / r */
    assert_true(fabsf(alpha / 3.0f - 6.0f / sqrtf(3.0f)) < 1e-6f);
    static const char *names[] = {"attn_q", "attn_k", "ffn_down"};
    static const LoraTarget tg[] = {LORA_Q, LORA_K, LORA_DOWN};
    int count = 0;
    for (int l = 0; l < c.n_layers; l++)
        for (int k = 0; k < 3; k++) {
            const LoraMat *p = lora_mat(&a, l, tg[k]);
            char nm[64];
            for (int ab = 0; ab < 2; ab++) {
                snprintf(nm, sizeof nm, "blk.%d.%s.weight.lora_%c", l, names[k], ab ? 'b' : 'a');
                const GgufTensor *t = gguf_tensor_find(&g, nm);
                assert_non_null(t);
                count++;
                /* ggml order: lora_a ne = {in, r}, lora_b ne = {r, out} */
                assert_int_equal(t->ne[0], ab ? (uint64_t)p->rank : (uint64_t)p->in);
                assert_int_equal(t->ne[1], ab ? (uint64_t)p->out : (uint64_t)p->rank);
                size_t n = (size_t)t->ne[0] * t->ne[1];
                float *v = malloc(n * sizeof *v);
                assert_int_equal(gguf_tensor_to_f32(&g, t, v), 0);
                assert_memory_equal(v, ab ? p->B : p->A, n * sizeof *v);
                free(v);
            }
        }
    assert_int_equal((int)g.n_tensors, count);
    gguf_close(&g);
    lora_free(&a);
    model_free(&m);
}

static void test_merged_bits(void **state) {
    (void)state;
    ModelConfig c = small_cfg();
    ModelLoadOptions wo = {KW_F32, 1};
    Model m, ref;
    assert_int_equal(model_init_random(&m, &c, &wo, 11), 0);
    assert_int_equal(model_init_random(&ref, &c, &wo, 11), 0);
    LoraAdapter a, b;
    assert_int_equal(lora_init(&a, &m.cfg, 4, 8.0f, 0, LORA_TARGETS_ALL), 0);
    assert_int_equal(lora_init(&b, &m.cfg, 4, 8.0f, 0, LORA_TARGETS_ALL), 0);
    fill_adapter(&a, 5);
    fill_adapter(&b, 5);
    const char *tmp = test_tmpdir();
    char d32[512], d16[512];
    snprintf(d32, sizeof d32, "%s/f32", tmp);
    snprintf(d16, sizeof d16, "%s/bf16", tmp);
    assert_int_equal(file_mkdirs(d32), 0);
    assert_int_equal(file_mkdirs(d16), 0);
    assert_int_equal(export_merged_hf(&m, &a, d32, DT_F32), 0);
    assert_int_equal(model_save_hf(&m, d16, DT_BF16), 0); /* the same merged weights, one cast */
    assert_int_equal(lora_merge(&b, &ref), 0);            /* the reference: muscle's own fold at fp32 */
    Model l32, l16;
    assert_int_equal(model_load(&l32, d32, NULL), 0);
    assert_int_equal(model_load(&l16, d16, NULL), 0);
    for (int l = 0; l < c.n_layers; l++)
        for (int t = 0; t < LORA_N_TARGETS; t++) {
            const KWeight *r = lora_base_weight(&ref, l, (LoraTarget)t), *x = lora_base_weight(&l32, l, (LoraTarget)t),
                          *y = lora_base_weight(&l16, l, (LoraTarget)t);
            size_t n = (size_t)r->n * r->k;
            assert_memory_equal(x->f32, r->f32, n * sizeof(float));
            uint16_t *h = malloc(n * sizeof *h);
            float *back = malloc(n * sizeof *back);
            dtype_from_f32(DT_BF16, r->f32, h, n);
            for (size_t i = 0; i < n; i++) {
                uint32_t u = (uint32_t)h[i] << 16;
                memcpy(&back[i], &u, 4);
            }
            assert_memory_equal(y->f32, back, n * sizeof(float));
            free(h);
            free(back);
        }
    model_free(&l32);
    model_free(&l16);
    lora_free(&a);
    lora_free(&b);
    model_free(&m);
    model_free(&ref);
}

int main(void) {
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_gguf_lora), cmocka_unit_test(test_merged_bits)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
