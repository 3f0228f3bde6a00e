/* tests/export/test_export.c - muscle export, checked against the definitions:
 * the GGUF LoRA file holds exactly the adapter (keys, names, ggml shapes, values, the
 * alpha that makes llama.cpp's alpha / r the adapter's scaling), and the merged folder is
 * bit for bit lora_merge's fp32 weights (f32) or their one cast (bf16). Against a real
 * llama.cpp: tests/export/llamacpp.sh.
 * Every family (tests/fixtures/model/families/<f>, Hugging Face folders checked against
 * PyTorch by tests/model/test_families.c): the exported GGUF loads back as the same
 * model (logits within 1e-6), a random adapter gives the same logits on the GGUF base as
 * on the HF base, the GGUF LoRA's q/k B rows are in the order of the GGUF base (half-split
 * for qwen2/qwen3), and the merged folder loads as the family with the adapter's logits. */
#include "testutil.h"

#include "core/dtype.h"
#include "core/error.h"
#include "core/file.h"
#include "core/rng.h"
#include "export/export.h"
#include "io/gguf.h"
#include "model/forward.h"
#include "model/load_internal.h"
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

static void assert_gguf_string(const GgufFile *g, const char *key, const char *want) {
    const char *s;
    assert_int_equal(gguf_get_string(g, key, &s, NULL), 0);
    assert_string_equal(s, want);
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
    assert_gguf_string(&g, "general.type", "adapter");
    assert_gguf_string(&g, "adapter.type", "lora");
    assert_gguf_string(&g, "general.architecture", "llama");
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

#define FIX "tests/fixtures/model/families/"
static const char *const FAMILIES[] = {"llama3", "smollm2", "mistral", "qwen2", "qwen3", "phi", "gemma"};
#define N_FAM 7
#define T_FAM 12

static float *logits_with(const Model *m, const LoraAdapter *a, const int *ids) {
    RunState s;
    assert_int_equal(runstate_init(&s, m, 1, T_FAM, T_FAM, RS_KEEP_NONE), 0);
    if (a) assert_int_equal(runstate_set_lora(&s, a), 0);
    assert_int_equal(model_forward(&s, ids, 1, T_FAM, 0), 0);
    size_t n = (size_t)T_FAM * m->cfg.vocab_size;
    float *out = malloc(n * sizeof *out);
    memcpy(out, s.logits, n * sizeof *out);
    runstate_free(&s);
    return out;
}

static double max_diff(const float *a, const float *b, size_t n) {
    double w = 0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - (double)b[i]);
        if (!(d <= w)) w = isnan(d) ? INFINITY : d;
    }
    return w;
}

static void test_families_roundtrip(void **state) {
    (void)state;
    for (int f = 0; f < N_FAM; f++) {
        char dir[256], gpath[512], lpath[512], mdir[512];
        snprintf(dir, sizeof dir, FIX "%s", FAMILIES[f]);
        snprintf(gpath, sizeof gpath, "%s/%s.gguf", test_tmpdir(), FAMILIES[f]);
        snprintf(lpath, sizeof lpath, "%s/%s-lora.gguf", test_tmpdir(), FAMILIES[f]);
        snprintf(mdir, sizeof mdir, "%s/%s-merged", test_tmpdir(), FAMILIES[f]);
        ModelLoadOptions wo = {KW_F32, 1};
        Model hf, gg, merged;
        if (model_load(&hf, dir, &wo) != 0) fail_msg("%s", err_msg());
        const ModelConfig *c = &hf.cfg;
        int V = c->vocab_size, ids[T_FAM];
        for (int i = 0; i < T_FAM; i++) ids[i] = (i * 37 + 5 + f) % V;
        if (export_model_gguf(&hf, NULL, gpath, DT_F32, FAMILIES[f]) != 0) fail_msg("%s", err_msg());
        if (model_load(&gg, gpath, NULL) != 0) fail_msg("%s", err_msg());
        assert_ptr_equal(gg.cfg.arch, arch_from_gguf(c->arch->gguf_arch));
        assert_int_equal(gg.cfg.bias, c->bias);
        assert_int_equal(gg.cfg.qk_norm, c->qk_norm);
        assert_int_equal(gg.cfg.sliding_window, c->sliding_window);
        assert_int_equal(gg.cfg.head_dim, c->head_dim);
        assert_int_equal(gg.cfg.tied, c->tied);
        size_t n = (size_t)T_FAM * V;
        float *l0 = logits_with(&hf, NULL, ids), *l1 = logits_with(&gg, NULL, ids);
        double d_base = max_diff(l0, l1, n);
        /* a random adapter on every linear: the same logits on either base */
        LoraAdapter a;
        assert_int_equal(lora_init(&a, c, 2, 4.0f, 0, LORA_TARGETS_ALL), 0);
        fill_adapter(&a, 17 + (uint64_t)f);
        for (size_t i = 0; i < a.n_floats; i++) a.data[i] *= 0.2f;
        float *la = logits_with(&hf, &a, ids), *lb = logits_with(&gg, &a, ids);
        double d_lora = max_diff(la, lb, n), moved = max_diff(l0, la, n);
        /* the GGUF LoRA: B rows of q and k in the GGUF base's order */
        if (export_lora_gguf(&a, &gg, lpath, "t") != 0) fail_msg("%s", err_msg());
        GgufFile g;
        assert_int_equal(gguf_open(&g, lpath), 0);
        const char *arch;
        assert_int_equal(gguf_get_string(&g, "general.architecture", &arch, NULL), 0);
        assert_string_equal(arch, c->arch->gguf_arch);
        for (int t = 0; t < 2; t++) {
            const LoraMat *p = lora_mat(&a, 0, (LoraTarget)t);
            char nm[96];
            snprintf(nm, sizeof nm, "blk.0.%s.weight.lora_b", c->arch->gguf_lin[t]);
            const GgufTensor *gt = gguf_tensor_find(&g, nm);
            assert_non_null(gt);
            size_t nb = (size_t)p->out * p->rank;
            float *v = malloc(nb * sizeof *v), *back = malloc(nb * sizeof *back);
            assert_int_equal(gguf_tensor_to_f32(&g, gt, v), 0);
            if (c->arch->gguf_qk_half) {
                assert_memory_not_equal(v, p->B, nb * sizeof *v); /* the permutation is not a no-op */
                model_qk_permute(back, v, p->out / c->head_dim, c->head_dim, c->rope_dims, (size_t)p->rank * sizeof *v, 0);
            } else memcpy(back, v, nb * sizeof *v);
            assert_memory_equal(back, p->B, nb * sizeof *v);
            free(v);
            free(back);
        }
        gguf_close(&g);
        /* merged: the family's folder, the adapter's logits */
        assert_int_equal(file_mkdirs(mdir), 0);
        if (export_merged_hf(&hf, &a, mdir, DT_F32) != 0) fail_msg("%s", err_msg());
        if (model_load(&merged, mdir, NULL) != 0) fail_msg("%s", err_msg());
        assert_ptr_equal(merged.cfg.arch, c->arch);
        float *lm = logits_with(&merged, NULL, ids);
        double d_merged = max_diff(la, lm, n);
        printf("# %s (gguf %s): base %.3g, adapter %.3g (adapter moves logits by %.3g), merged %.3g\n", FAMILIES[f],
               c->arch->gguf_arch, d_base, d_lora, moved, d_merged);
        assert_true(d_base <= 1e-6);
        assert_true(d_lora <= 1e-6);
        assert_true(moved > 1e-3);
        assert_true(d_merged <= 1e-4);
        free(l0); free(l1); free(la); free(lb); free(lm);
        lora_free(&a);
        model_free(&merged);
        model_free(&gg);
        model_free(&hf);
    }
}

/* a byte-level BPE vocabulary goes out as tokenizer.ggml.model "gpt2" with its merges in rank
 * order and the pre-tokenizer's llama.cpp name, and loads back encoding the same ids (the real
 * tokenizers against llama.cpp: tests/export/llamacpp_tokenizer.sh); a pre-tokenizer llama.cpp
 * has no name for is refused with one line and no file */
static void test_bytelevel(void **state) {
    (void)state;
    ModelConfig c = small_cfg();
    c.vocab_size = 34; /* two more than the tokenizer: padded with [PADi] */
    Model m, back;
    assert_int_equal(model_init_random(&m, &c, NULL, 3), 0);
    const char *pieces[32];
    int32_t types[32];
    char buf[29][2];
    for (int i = 0; i < 29; i++) {
        buf[i][0] = (char)('A' + i);
        buf[i][1] = 0;
        pieces[i] = buf[i];
        types[i] = TOK_NORMAL;
    }
    pieces[29] = "AB", pieces[30] = "ABC", pieces[31] = "<|end|>";
    types[29] = types[30] = TOK_NORMAL;
    types[31] = TOK_CONTROL;
    const char *merges[] = {"A B", "AB C"};
    Tokenizer *t = tok_init_bpe_from_vocab(32, pieces, NULL, types, 2, merges, NULL, "qwen2.5", -1, 31);
    if (!t) fail_msg("%s", err_msg());
    char path[512], pre[64];
    snprintf(path, sizeof path, "%s/bl.gguf", test_tmpdir());
    assert_int_equal(tok_gguf_pre(t, pre, sizeof pre), 0);
    assert_string_equal(pre, "qwen2"); /* the converter's name of the same regexes */
    if (export_model_gguf(&m, t, path, DT_F32, NULL) != 0) fail_msg("%s", err_msg());
    GgufFile g;
    assert_int_equal(gguf_open(&g, path), 0);
    assert_gguf_string(&g, "tokenizer.ggml.model", "gpt2");
    assert_gguf_string(&g, "tokenizer.ggml.pre", "qwen2");
    const GgufStr *ms, *ts;
    uint64_t nm, nt;
    assert_int_equal(gguf_get_str_array(&g, "tokenizer.ggml.merges", &ms, &nm), 0);
    assert_int_equal((int)nm, 2);
    assert_true(ms[0].len == 3 && !memcmp(ms[0].ptr, "A B", 3) && ms[1].len == 4 && !memcmp(ms[1].ptr, "AB C", 4));
    assert_int_equal(gguf_get_str_array(&g, "tokenizer.ggml.tokens", &ts, &nt), 0);
    assert_int_equal((int)nt, 34);
    assert_true(ts[33].len == 7 && !memcmp(ts[33].ptr, "[PAD33]", 7));
    gguf_close(&g);
    if (model_load(&back, path, NULL) != 0) fail_msg("%s", err_msg());
    assert_non_null(back.tokenizer);
    assert_true(tok_is_byte_level(back.tokenizer));
    assert_int_equal(tok_eos_id(back.tokenizer), 31);
    int *i1, *i2, n1, n2;
    const char *text = "ABCAB<|end|>CBA";
    assert_int_equal(tok_encode(t, text, strlen(text), 0, 0, &i1, &n1), 0);
    assert_int_equal(tok_encode(back.tokenizer, text, strlen(text), 0, 0, &i2, &n2), 0);
    assert_int_equal(n1, 6); /* ABC AB <|end|> C B A */
    assert_int_equal(n1, n2);
    assert_memory_equal(i1, i2, (size_t)n1 * sizeof *i1);
    free(i1);
    free(i2);
    model_free(&back);
    tok_free(t);
    /* a Split regex llama.cpp knows under no name */
    static const char json[] =
        "{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0, \"b\": 1, \"ab\": 2}, \"merges\": [\"a b\"]},"
        " \"pre_tokenizer\": {\"type\": \"Sequence\", \"pretokenizers\": [{\"type\": \"Split\", \"pattern\": {\"Regex\": \"[a-z]+\"},"
        " \"behavior\": \"Isolated\", \"invert\": false}, {\"type\": \"ByteLevel\", \"add_prefix_space\": false, \"use_regex\": false}]},"
        " \"decoder\": {\"type\": \"ByteLevel\"}}";
    Tokenizer *odd = tok_load_mem(json, sizeof json - 1, "odd.json");
    if (!odd) fail_msg("%s", err_msg());
    ModelConfig c3 = small_cfg();
    c3.vocab_size = 3;
    Model m3;
    assert_int_equal(model_init_random(&m3, &c3, NULL, 3), 0);
    snprintf(path, sizeof path, "%s/odd.gguf", test_tmpdir());
    assert_int_equal(export_model_gguf(&m3, odd, path, DT_F32, NULL), -1);
    assert_non_null(strstr(err_msg(), "pre-tokenizer"));
    assert_false(file_exists(path));
    tok_free(odd);
    model_free(&m3);
    model_free(&m);
}

int main(void) {
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_gguf_lora), cmocka_unit_test(test_merged_bits),
                                       cmocka_unit_test(test_families_roundtrip),
                                       cmocka_unit_test(test_bytelevel)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
