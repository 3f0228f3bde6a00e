/* tests/io/test_gguf.c - the GGUF reader on the real tiny Llama 2 file of ../shared
 * (expected values computed by an independent Python/numpy parser), the writer (the
 * real file rewritten through it is byte-identical; round trips of every value type;
 * Q8_0 bytes as computed by numpy following ggml's reference quantizer), typed getters. */
#include "testutil.h"
#include "core/error.h"
#include "core/file.h"
#include "io/gguf.h"

#include <math.h>

#define REAL "models/tiny-random-gguf/llama-2-tiny-random.gguf"

/* ================================================================ the real file */

typedef struct {
    const char *name;
    int ndim;
    uint64_t ne0, ne1;
    uint32_t type;
    uint64_t offset;
    double sum;      /* numpy: sum of all values in float64 */
    float first[3];
    float last;
} RealTensor;

/* From an independent Python parser (struct + numpy) of the same file. */
static const RealTensor real_tensors[] = {
    {"token_embd.weight", 2, 8, 32000, 1, 0, -6.3946982026100159, {0, 0, 0}, 0.00333404541015625f},
    {"blk.0.attn_q.weight", 2, 8, 8, 1, 512000, -0.1371760368347168, {0.024261474609375f, 0.0196990966796875f, -0.0509033203125f}, 0.03265380859375f},
    {"blk.0.attn_k.weight", 2, 8, 8, 1, 512128, 0.23456192016601562, {0.0224609375f, 0.003936767578125f, 0.01407623291015625f}, -0.0034580230712890625f},
    {"blk.0.attn_v.weight", 2, 8, 8, 1, 512256, -0.06465601921081543, {-0.031768798828125f, -0.0250091552734375f, -0.005771636962890625f}, -0.01068115234375f},
    {"blk.0.attn_output.weight", 2, 8, 8, 1, 512384, 0.14907622337341309, {0.0025463104248046875f, -0.0273284912109375f, -0.005916595458984375f}, 0.0030517578125f},
    {"blk.0.ffn_gate.weight", 2, 8, 32, 1, 512512, 0.062626779079437256, {0.011993408203125f, -0.0116729736328125f, -0.0203094482421875f}, -0.016754150390625f},
    {"blk.0.ffn_up.weight", 2, 8, 32, 1, 513024, 0.25213170051574707, {0.0291900634765625f, 0.00970458984375f, -0.0115203857421875f}, 0.00811004638671875f},
    {"blk.0.ffn_down.weight", 2, 32, 8, 1, 513536, 0.18627119064331055, {0.0207366943359375f, -0.007080078125f, 0.0157623291015625f}, -0.0231170654296875f},
    {"blk.0.attn_norm.weight", 1, 8, 1, 0, 514048, 8, {1, 1, 1}, 1},
    {"blk.0.ffn_norm.weight", 1, 8, 1, 0, 514080, 8, {1, 1, 1}, 1},
    {"output_norm.weight", 1, 8, 1, 0, 514112, 8, {1, 1, 1}, 1},
    {"output.weight", 2, 8, 32000, 1, 514144, -0.91951268911361694, {0.0132598876953125f, 0.03363037109375f, -0.01611328125f}, 0.00713348388671875f},
};

static void test_real_file(void **state) {
    (void)state;
    const char *path = shared_path(REAL);
    GgufFile g;
    if (gguf_open(&g, path) != 0) fail_msg("gguf_open: %s", err_msg());
    assert_int_equal(g.version, 3);
    assert_int_equal(g.alignment, 32);
    assert_int_equal(g.data_offset, 724416);
    assert_int_equal(g.n_kvs, 18);

    const char *s;
    size_t len;
    assert_int_equal(gguf_get_string(&g, "general.architecture", &s, &len), 0);
    assert_string_equal(s, "llama");
    assert_int_equal(len, 5);
    assert_int_equal(gguf_get_string(&g, "general.name", &s, NULL), 0);
    assert_string_equal(s, "LLaMA v2");
    uint32_t u;
    assert_int_equal(gguf_get_u32(&g, "llama.context_length", &u), 0);
    assert_int_equal(u, 4096);
    assert_int_equal(gguf_get_u32(&g, "llama.embedding_length", &u), 0);
    assert_int_equal(u, 8);
    assert_int_equal(gguf_get_u32(&g, "llama.feed_forward_length", &u), 0);
    assert_int_equal(u, 32);
    assert_int_equal(gguf_get_u32(&g, "llama.attention.head_count_kv", &u), 0);
    assert_int_equal(u, 2);
    assert_int_equal(gguf_get_u32(&g, "tokenizer.ggml.eos_token_id", &u), 0);
    assert_int_equal(u, 2);
    float eps;
    assert_int_equal(gguf_get_f32(&g, "llama.attention.layer_norm_rms_epsilon", &eps), 0);
    assert_float_equal(eps, 9.999999747378752e-06f, 0);

    /* the vocabulary */
    const GgufStr *toks;
    uint64_t n;
    assert_int_equal(gguf_get_str_array(&g, "tokenizer.ggml.tokens", &toks, &n), 0);
    assert_int_equal(n, 32000);
    assert_int_equal(toks[0].len, 5);
    assert_memory_equal(toks[0].ptr, "<unk>", 5);
    assert_memory_equal(toks[1].ptr, "<s>", 3);
    assert_memory_equal(toks[3].ptr, "<0x00>", 6);
    assert_int_equal(toks[1000].len, 3);
    assert_memory_equal(toks[1000].ptr, "ied", 3);
    assert_int_equal(toks[31999].len, 3);
    assert_memory_equal(toks[31999].ptr, "\xe7\xbb\x99", 3);
    assert_int_equal(toks[30143].len, 3); /* U+FEFF, which a JavaScript parser drops */
    assert_memory_equal(toks[30143].ptr, "\xef\xbb\xbf", 3);
    uint64_t h = 0, bytes = 0;
    for (uint64_t i = 0; i < n; i++) {
        uint64_t e = 0;
        for (uint64_t j = 0; j < toks[i].len; j++) e = (e * 31 + (uint8_t)toks[i].ptr[j]) % 1000000007ull;
        h = (h * 31 + e) % 1000000007ull;
        bytes += toks[i].len;
    }
    assert_int_equal(h, 479022257);  /* same hash from Python */
    assert_int_equal(bytes, 210919);
    float *scores;
    assert_int_equal(gguf_get_f32_array(&g, "tokenizer.ggml.scores", &scores, &n), 0);
    assert_int_equal(n, 32000);
    assert_float_equal(scores[1000], -741.0f, 0);
    assert_float_equal(scores[0], 0.0f, 0);
    free(scores);
    int32_t *types;
    assert_int_equal(gguf_get_i32_array(&g, "tokenizer.ggml.token_type", &types, &n), 0);
    assert_int_equal(n, 32000);
    assert_int_equal(types[0], 2);
    assert_int_equal(types[1], 3);
    assert_int_equal(types[3], 6);
    assert_int_equal(types[1000], 1);
    free(types);
    GgufValueType et;
    const void *raw;
    assert_int_equal(gguf_get_array(&g, "tokenizer.ggml.token_type", &et, &n, &raw), 0);
    assert_int_equal(et, GGUF_TYPE_INT32);
    assert_non_null(raw);

    /* the tensors, in file order */
    assert_int_equal(g.n_tensors, 12);
    for (size_t i = 0; i < 12; i++) {
        const RealTensor *r = &real_tensors[i];
        const GgufTensor *t = &g.tensors[i];
        assert_string_equal(t->name, r->name);
        assert_ptr_equal(gguf_tensor_find(&g, r->name), t);
        assert_int_equal(t->ndim, r->ndim);
        assert_int_equal(t->ne[0], r->ne0);
        assert_int_equal(t->ne[1], r->ne1);
        assert_int_equal(t->ne[2], 1);
        assert_int_equal(t->ggml_type, r->type);
        assert_true(t->supported);
        assert_int_equal(t->dtype, r->type == 1 ? DT_F16 : DT_F32);
        assert_string_equal(t->type_name, r->type == 1 ? "F16" : "F32");
        assert_int_equal(t->offset, r->offset);
        assert_int_equal(t->numel, r->ne0 * r->ne1);
        assert_int_equal(t->nbytes, t->numel * (r->type == 1 ? 2 : 4));
        assert_ptr_equal(t->data, g.base + g.data_offset + r->offset);
        float *v = malloc(t->numel * sizeof *v);
        assert_int_equal(gguf_tensor_to_f32(&g, t, v), 0);
        double sum = 0;
        for (uint64_t k = 0; k < t->numel; k++) sum += v[k];
        assert_true(fabs(sum - r->sum) <= 1e-9 * (1 + fabs(r->sum)));
        for (int k = 0; k < 3; k++) assert_float_equal(v[k], r->first[k], 0);
        assert_float_equal(v[t->numel - 1], r->last, 0);
        free(v);
    }
    assert_null(gguf_tensor_find(&g, "blk.1.attn_q.weight"));
    assert_null(gguf_kv_find(&g, "general.alignment"));
    gguf_close(&g);
}

/* Copying every kv and tensor through the writer gives back the exact file. */
static void test_real_file_rewrite_identical(void **state) {
    (void)state;
    const char *path = shared_path(REAL);
    char src[4096];
    snprintf(src, sizeof src, "%s", path);
    GgufFile g;
    assert_int_equal(gguf_open(&g, src), 0);
    GgufWriter w;
    gguf_writer_init(&w);
    for (size_t i = 0; i < g.n_kvs; i++) assert_int_equal(gguf_writer_copy_kv(&w, &g.kvs[i]), 0);
    for (size_t i = 0; i < g.n_tensors; i++) {
        const GgufTensor *t = &g.tensors[i];
        assert_int_equal(gguf_writer_add_tensor(&w, t->name, t->ggml_type, t->ndim, t->ne, t->data), 0);
    }
    const char *dir = test_tmpdir();
    char out[512];
    snprintf(out, sizeof out, "%s/copy.gguf", dir);
    assert_int_equal(gguf_writer_write(&w, out), 0);
    gguf_writer_free(&w);
    size_t na, nb;
    char *a = file_read_all(src, &na, 0), *b = file_read_all(out, &nb, 0);
    assert_int_equal(na, nb);
    assert_memory_equal(a, b, na);
    free(a);
    free(b);
    gguf_close(&g);
}

/* ================================================================ writer round trips */

static const float q8_in[64] = {
    0.f, 1.9326531f, 2.9563491f, 2.589628f, 1.0049645f, -1.0523497f, -2.6147273f, -2.947358f, -1.8937999f,
    0.0504417f, 1.9709598f, 2.9645047f, 2.5637968f, 0.95729506f, -1.0994374f, -2.6390872f, -2.9375331f,
    -1.8544114f, 0.10086914f, 2.0087092f, 2.971822f, 2.5372405f, 0.90935504f, -1.1462142f, -2.6627011f,
    -2.926878f, -1.8144984f, 0.15126806f, 2.0458908f, 2.9782991f, 2.5099669f, 0.86115795f, -0.001192667f,
    -0.0026855622f, -0.0029153954f, -0.0017740728f, 2.0162422e-04f, 0.002082494f, 0.0029839345f, 0.0024819837f,
    0.f, -0.0012387827f, -0.002707664f, -0.0029030885f, -0.0017331452f, 2.5192337e-04f, 0.0021185083f,
    0.0029887261f, 0.002453299f, 7.640471e-04f, -0.0012845481f, -0.0027290003f, -0.002889961f, -0.0016917277f,
    3.021513e-04f, 0.002153924f, 0.0029926724f, 0.0024239202f, 7.151606e-04f, -0.0013299503f, -0.0027495648f,
    -0.002876016f, -0.001649832f, 3.522938e-04f};
/* numpy, following ggml's quantize_row_q8_0_ref */
static const uint8_t q8_want[68] = {
    0x01, 0x26, 0x00, 0x52, 0x7e, 0x6e, 0x2b, 0xd3, 0x91, 0x82, 0xaf, 0x02, 0x54, 0x7e, 0x6d, 0x29, 0xd1,
    0x8f, 0x83, 0xb1, 0x04, 0x56, 0x7f, 0x6c, 0x27, 0xcf, 0x8e, 0x83, 0xb3, 0x06, 0x57, 0x7f, 0x6b, 0x25,
    0x8b, 0x01, 0xcd, 0x8e, 0x84, 0xb5, 0x09, 0x58, 0x7f, 0x69, 0x00, 0xcb, 0x8d, 0x85, 0xb6, 0x0b, 0x5a,
    0x7f, 0x68, 0x20, 0xc9, 0x8c, 0x85, 0xb8, 0x0d, 0x5b, 0x7f, 0x67, 0x1e, 0xc8, 0x8b, 0x86, 0xba, 0x0f};

static void test_writer_roundtrip(void **state) {
    (void)state;
    const char *dir = test_tmpdir();
    char path[512];
    snprintf(path, sizeof path, "%s/rt.gguf", dir);
    GgufWriter w;
    gguf_writer_init(&w);
    assert_int_equal(gguf_writer_set_u32(&w, "general.alignment", 64), 0);
    assert_int_equal(gguf_writer_set_string(&w, "general.architecture", "llama"), 0);
    assert_int_equal(gguf_writer_set_u8(&w, "t.u8", 200), 0);
    assert_int_equal(gguf_writer_set_i8(&w, "t.i8", -100), 0);
    assert_int_equal(gguf_writer_set_u16(&w, "t.u16", 60000), 0);
    assert_int_equal(gguf_writer_set_i16(&w, "t.i16", -30000), 0);
    assert_int_equal(gguf_writer_set_u32(&w, "t.u32", 4000000000u), 0);
    assert_int_equal(gguf_writer_set_i32(&w, "t.i32", -2000000000), 0);
    assert_int_equal(gguf_writer_set_f32(&w, "t.f32", 0.1f), 0);
    assert_int_equal(gguf_writer_set_bool(&w, "t.bool", 1), 0);
    assert_int_equal(gguf_writer_set_u64(&w, "t.u64", UINT64_MAX), 0);
    assert_int_equal(gguf_writer_set_i64(&w, "t.i64", INT64_MIN), 0);
    assert_int_equal(gguf_writer_set_f64(&w, "t.f64", 0.1), 0);
    assert_int_equal(gguf_writer_set_string(&w, "t.str", "first"), 0);
    assert_int_equal(gguf_writer_set_string(&w, "t.str", "h\xc3\xa9llo"), 0); /* replaces, keeps position */
    int16_t i16s[3] = {-1, 0, 32767};
    double f64s[2] = {1e300, -0.5};
    uint8_t bools[2] = {1, 0};
    float f32s[3] = {1.5f, -2.0f, 1e-30f};
    assert_int_equal(gguf_writer_set_array(&w, "a.i16", GGUF_TYPE_INT16, i16s, 3), 0);
    assert_int_equal(gguf_writer_set_array(&w, "a.f64", GGUF_TYPE_FLOAT64, f64s, 2), 0);
    assert_int_equal(gguf_writer_set_array(&w, "a.bool", GGUF_TYPE_BOOL, bools, 2), 0);
    assert_int_equal(gguf_writer_set_array(&w, "a.f32", GGUF_TYPE_FLOAT32, f32s, 3), 0);
    assert_int_equal(gguf_writer_set_array(&w, "a.empty", GGUF_TYPE_UINT64, NULL, 0), 0);
    const char *strs[3] = {"a", "", "with\0nul"};
    uint64_t lens[3] = {1, 0, 8};
    assert_int_equal(gguf_writer_set_str_array(&w, "a.str", strs, lens, 3), 0);
    const char *strs2[2] = {"x", "yz"};
    assert_int_equal(gguf_writer_set_str_array(&w, "a.str2", strs2, NULL, 2), 0);

    enum { N = 64 * 3 };
    float src[N];
    for (int i = 0; i < N; i++) src[i] = (float)cos(i * 0.3) * (float)(i % 7);
    uint16_t raw16[N];
    dtype_from_f32(DT_BF16, src, raw16, N);
    int64_t i64s[2] = {INT64_MIN, 42};
    assert_int_equal(gguf_writer_add_tensor_f32(&w, "f32", GGML_TYPE_F32, 2, (uint64_t[]){64, 3}, src), 0);
    assert_int_equal(gguf_writer_add_tensor_f32(&w, "f16", GGML_TYPE_F16, 3, (uint64_t[]){3, 8, 8}, src), 0);
    assert_int_equal(gguf_writer_add_tensor_f32(&w, "bf16", GGML_TYPE_BF16, 1, (uint64_t[]){N}, src), 0);
    assert_int_equal(gguf_writer_add_tensor(&w, "bf16.raw", GGML_TYPE_BF16, 4, (uint64_t[]){2, 2, 3, 16}, raw16), 0);
    assert_int_equal(gguf_writer_add_tensor_f32(&w, "q8", GGML_TYPE_Q8_0, 2, (uint64_t[]){32, 2}, q8_in), 0);
    assert_int_equal(gguf_writer_add_tensor(&w, "i64", GGML_TYPE_I64, 1, (uint64_t[]){2}, i64s), 0);
    assert_int_equal(gguf_writer_add_tensor(&w, "scalar", GGML_TYPE_F32, 0, NULL, src + 1), 0);
    assert_int_equal(gguf_writer_write(&w, path), 0);
    gguf_writer_free(&w);

    GgufFile g;
    if (gguf_open(&g, path)) fail_msg("%s", err_msg());
    assert_int_equal(g.alignment, 64);
    assert_int_equal(g.data_offset % 64, 0);
    assert_int_equal(g.n_kvs, 21);
    assert_string_equal(g.kvs[1].key, "general.architecture");
    assert_string_equal(g.kvs[13].key, "t.str");
    const char *s;
    size_t len;
    assert_int_equal(gguf_get_string(&g, "t.str", &s, &len), 0);
    assert_string_equal(s, "h\xc3\xa9llo");
    uint32_t u32;
    int32_t i32;
    uint64_t u64;
    float f;
    int b;
    assert_int_equal(gguf_get_u32(&g, "t.u8", &u32), 0);
    assert_int_equal(u32, 200);
    assert_int_equal(gguf_get_i32(&g, "t.i8", &i32), 0);
    assert_int_equal(i32, -100);
    assert_int_equal(gguf_get_u32(&g, "t.u16", &u32), 0);
    assert_int_equal(u32, 60000);
    assert_int_equal(gguf_get_i32(&g, "t.i16", &i32), 0);
    assert_int_equal(i32, -30000);
    assert_int_equal(gguf_get_u32(&g, "t.u32", &u32), 0);
    assert_int_equal(u32, 4000000000u);
    assert_int_equal(gguf_get_i32(&g, "t.i32", &i32), 0);
    assert_int_equal(i32, -2000000000);
    assert_int_equal(gguf_get_f32(&g, "t.f32", &f), 0);
    assert_float_equal(f, 0.1f, 0);
    assert_int_equal(gguf_get_f32(&g, "t.f64", &f), 0);
    assert_float_equal(f, 0.1f, 0);
    assert_int_equal(gguf_get_bool(&g, "t.bool", &b), 0);
    assert_int_equal(b, 1);
    assert_int_equal(gguf_get_u64(&g, "t.u64", &u64), 0);
    assert_true(u64 == UINT64_MAX);
    int64_t i64;
    memcpy(&i64, gguf_kv_find(&g, "t.i64")->raw, 8);
    assert_true(i64 == INT64_MIN);
    double d;
    memcpy(&d, gguf_kv_find(&g, "t.f64")->raw, 8);
    assert_true(d == 0.1);

    /* conversions that do not fit are refused, naming the file, key and types */
    assert_int_equal(gguf_get_u32(&g, "t.i8", &u32), -1);
    assert_non_null(strstr(err_msg(), path));
    assert_non_null(strstr(err_msg(), "key 't.i8': expected an unsigned 32-bit integer, got INT8 -100"));
    assert_int_equal(gguf_get_i32(&g, "t.u32", &i32), -1);
    assert_non_null(strstr(err_msg(), "out of range"));
    assert_int_equal(gguf_get_u32(&g, "t.u64", &u32), -1);
    assert_int_equal(gguf_get_u64(&g, "t.i64", &u64), -1);
    assert_int_equal(gguf_get_i32(&g, "t.f32", &i32), -1);
    assert_non_null(strstr(err_msg(), "got FLOAT32"));
    assert_int_equal(gguf_get_f32(&g, "t.u32", &f), -1);
    assert_int_equal(gguf_get_bool(&g, "t.u8", &b), -1);
    assert_int_equal(gguf_get_string(&g, "t.u8", &s, NULL), -1);
    assert_non_null(strstr(err_msg(), "expected STRING, got UINT8"));
    assert_int_equal(gguf_get_u32(&g, "no.such.key", &u32), -1);
    assert_non_null(strstr(err_msg(), "key 'no.such.key' not found"));
    assert_int_equal(gguf_get_array(&g, "t.u8", NULL, NULL, NULL), -1);
    assert_non_null(strstr(err_msg(), "expected ARRAY, got UINT8"));

    /* arrays */
    GgufValueType et;
    uint64_t n;
    const void *data;
    assert_int_equal(gguf_get_array(&g, "a.i16", &et, &n, &data), 0);
    assert_int_equal(et, GGUF_TYPE_INT16);
    assert_int_equal(n, 3);
    assert_memory_equal(data, i16s, sizeof i16s);
    int32_t *iv;
    assert_int_equal(gguf_get_i32_array(&g, "a.i16", &iv, &n), 0);
    assert_int_equal(iv[0], -1);
    assert_int_equal(iv[2], 32767);
    free(iv);
    float *fv;
    assert_int_equal(gguf_get_f32_array(&g, "a.f64", &fv, &n), 0);
    assert_true(isinf(fv[0]));
    assert_float_equal(fv[1], -0.5f, 0);
    free(fv);
    assert_int_equal(gguf_get_f32_array(&g, "a.f32", &fv, &n), 0);
    assert_memory_equal(fv, f32s, sizeof f32s);
    free(fv);
    assert_int_equal(gguf_get_f32_array(&g, "a.i16", &fv, &n), -1);
    assert_int_equal(gguf_get_i32_array(&g, "a.f32", &iv, &n), -1);
    assert_int_equal(gguf_get_i32_array(&g, "a.bool", &iv, &n), -1);
    assert_int_equal(gguf_get_array(&g, "a.bool", &et, &n, &data), 0);
    assert_int_equal(et, GGUF_TYPE_BOOL);
    assert_memory_equal(data, bools, 2);
    assert_int_equal(gguf_get_array(&g, "a.empty", &et, &n, &data), 0);
    assert_int_equal(n, 0);
    assert_int_equal(gguf_get_i32_array(&g, "a.empty", &iv, &n), 0);
    free(iv);
    const GgufStr *sv;
    assert_int_equal(gguf_get_str_array(&g, "a.str", &sv, &n), 0);
    assert_int_equal(n, 3);
    assert_int_equal(sv[0].len, 1);
    assert_int_equal(sv[1].len, 0);
    assert_int_equal(sv[2].len, 8);
    assert_memory_equal(sv[2].ptr, "with\0nul", 8);
    assert_int_equal(gguf_get_str_array(&g, "a.str2", &sv, &n), 0);
    assert_memory_equal(sv[1].ptr, "yz", 2);
    assert_int_equal(gguf_get_str_array(&g, "a.i16", &sv, &n), -1);
    assert_non_null(strstr(err_msg(), "ARRAY of INT16"));
    assert_int_equal(gguf_get_array(&g, "a.str", &et, &n, &data), 0);
    assert_int_equal(et, GGUF_TYPE_STRING);
    assert_null(data);

    /* tensors */
    assert_int_equal(g.n_tensors, 7);
    float got[N];
    const GgufTensor *t = gguf_tensor_find(&g, "f32");
    assert_int_equal(t->ndim, 2);
    assert_int_equal(t->ne[0], 64);
    assert_int_equal(t->ne[1], 3);
    assert_int_equal(gguf_tensor_to_f32(&g, t, got), 0);
    assert_memory_equal(got, src, sizeof src);
    t = gguf_tensor_find(&g, "f16");
    assert_int_equal(t->ndim, 3);
    assert_int_equal(t->ne[2], 8);
    assert_int_equal(gguf_tensor_to_f32(&g, t, got), 0);
    for (int i = 0; i < N; i++) assert_float_equal(got[i], f16_to_f32(f32_to_f16(src[i])), 0);
    t = gguf_tensor_find(&g, "bf16");
    assert_int_equal(gguf_tensor_to_f32(&g, t, got), 0);
    for (int i = 0; i < N; i++) assert_float_equal(got[i], bf16_to_f32(raw16[i]), 0);
    t = gguf_tensor_find(&g, "bf16.raw");
    assert_int_equal(t->ndim, 4);
    assert_int_equal(t->ne[3], 16);
    assert_memory_equal(t->data, raw16, sizeof raw16);
    t = gguf_tensor_find(&g, "q8");
    assert_int_equal(t->dtype, DT_Q8_0);
    assert_int_equal(t->nbytes, 68);
    assert_memory_equal(t->data, q8_want, 68);
    assert_int_equal(gguf_tensor_to_f32(&g, t, got), 0);
    for (int blk = 0; blk < 2; blk++) {
        float amax = 0;
        for (int j = 0; j < 32; j++) amax = fmaxf(amax, fabsf(q8_in[blk * 32 + j]));
        for (int j = 0; j < 32; j++) /* half a step, plus the f16 rounding of the scale */
            assert_true(fabsf(got[blk * 32 + j] - q8_in[blk * 32 + j]) <= amax / 127 * 0.5f + amax * 1e-3f);
    }
    t = gguf_tensor_find(&g, "i64");
    assert_int_equal(t->dtype, DT_I64);
    assert_memory_equal(t->data, i64s, sizeof i64s);
    t = gguf_tensor_find(&g, "scalar");
    assert_int_equal(t->ndim, 0);
    assert_int_equal(t->numel, 1);
    assert_memory_equal(t->data, src + 1, 4);
    for (size_t i = 0; i < g.n_tensors; i++) assert_int_equal(g.tensors[i].offset % 64, 0);
    gguf_close(&g);
}

static void test_writer_refusals(void **state) {
    (void)state;
    const char *dir = test_tmpdir();
    char path[512];
    snprintf(path, sizeof path, "%s/bad.gguf", dir);
    float v[64] = {0};
    GgufWriter w;

    gguf_writer_init(&w);
    assert_int_equal(gguf_writer_add_tensor(&w, "a", GGML_TYPE_F32, 1, (uint64_t[]){4}, v), 0);
    assert_int_equal(gguf_writer_add_tensor(&w, "a", GGML_TYPE_F16, 1, (uint64_t[]){4}, v), 0);
    assert_int_equal(gguf_writer_write(&w, path), -1);
    assert_non_null(strstr(err_msg(), "'a' was added twice"));
    assert_false(file_exists(path));
    gguf_writer_free(&w);

    gguf_writer_init(&w);
    assert_int_equal(gguf_writer_set_u32(&w, "general.alignment", 48), 0);
    assert_int_equal(gguf_writer_write(&w, path), -1);
    assert_non_null(strstr(err_msg(), "not a power of two"));
    gguf_writer_free(&w);

    gguf_writer_init(&w);
    assert_int_equal(gguf_writer_set_i32(&w, "general.alignment", 32), 0);
    assert_int_equal(gguf_writer_write(&w, path), -1);
    assert_non_null(strstr(err_msg(), "must be UINT32"));
    gguf_writer_free(&w);

    gguf_writer_init(&w);
    assert_int_equal(gguf_writer_add_tensor_f32(&w, "q", GGML_TYPE_Q8_0, 1, (uint64_t[]){33}, v), -1);
    assert_non_null(strstr(err_msg(), "not a multiple of the block size 32 of Q8_0"));
    assert_int_equal(gguf_writer_add_tensor(&w, "q4", 12, 1, (uint64_t[]){256}, v), -1);
    assert_non_null(strstr(err_msg(), "Q4_K"));
    assert_int_equal(gguf_writer_add_tensor_f32(&w, "i", GGML_TYPE_I32, 1, (uint64_t[]){1}, v), -1);
    assert_int_equal(gguf_writer_add_tensor(&w, "", GGML_TYPE_F32, 1, (uint64_t[]){1}, v), -1);
    assert_int_equal(gguf_writer_add_tensor(&w, "d5", GGML_TYPE_F32, 5, (uint64_t[]){1, 1, 1, 1, 1}, v), -1);
    assert_int_equal(gguf_writer_add_tensor(&w, "big", GGML_TYPE_F32, 2, (uint64_t[]){1ull << 62, 4}, v), -1);
    assert_int_equal(gguf_writer_set_u32(&w, "", 1), -1);
    assert_int_equal(gguf_writer_set_u32(&w, "\xc0\x80", 1), -1);
    assert_int_equal(gguf_writer_set_array(&w, "s", GGUF_TYPE_STRING, v, 1), -1);
    assert_int_equal(gguf_writer_write(&w, path), -1);
    assert_non_null(strstr(err_msg(), "refused"));
    gguf_writer_free(&w);

    /* quantizing non-finite values stays defined */
    float bad[32];
    for (int i = 0; i < 32; i++) bad[i] = (float)i;
    bad[3] = NAN;
    bad[4] = INFINITY;
    gguf_writer_init(&w);
    assert_int_equal(gguf_writer_add_tensor_f32(&w, "q", GGML_TYPE_Q8_0, 1, (uint64_t[]){32}, bad), 0);
    assert_int_equal(gguf_writer_write(&w, path), 0);
    gguf_writer_free(&w);
    GgufFile g;
    assert_int_equal(gguf_open(&g, path), 0);
    assert_int_equal(g.n_tensors, 1);
    gguf_close(&g);
}

/* A file with no tensors (e.g. just metadata) may end right after the kvs. */
static void test_no_tensors(void **state) {
    (void)state;
    uint8_t buf[64] = "GGUF";
    buf[4] = 2; /* version 2 */
    GgufFile g;
    assert_int_equal(gguf_parse_buffer(&g, buf, 24, "mem"), 0);
    assert_int_equal(g.version, 2);
    assert_int_equal(g.n_kvs, 0);
    assert_int_equal(g.n_tensors, 0);
    gguf_close(&g);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_real_file),
        cmocka_unit_test(test_real_file_rewrite_identical),
        cmocka_unit_test(test_writer_roundtrip),
        cmocka_unit_test(test_writer_refusals),
        cmocka_unit_test(test_no_tensors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
