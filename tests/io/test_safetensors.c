/* tests/io/test_safetensors.c - the safetensors reader against files written by Python
 * (tools/io/make_st_fixtures.py, values converted by torch), the writer against the
 * reference implementation's own test vectors and against the Python-written bytes,
 * sharded sets, and round trips. */
#include "testutil.h"
#include "core/error.h"
#include "core/file.h"
#include "io/safetensors.h"

#include <cJSON.h>
#include <math.h>

#define FIX "tests/fixtures/io/"

/* ================================================================ helpers */

static cJSON *load_expected(const char *st_path) {
    char p[512];
    snprintf(p, sizeof p, "%s.expected.json", st_path);
    size_t n;
    char *s = file_read_all(p, &n, 0);
    if (!s) fail_msg("cannot read %s: %s", p, err_msg());
    cJSON *j = cJSON_Parse(s);
    free(s);
    assert_non_null(j);
    return j;
}

static uint8_t *read_bytes(const char *path, size_t *n) {
    char *s = file_read_all(path, n, 0);
    if (!s) fail_msg("cannot read %s: %s", path, err_msg());
    return (uint8_t *)s;
}

/* Every tensor of `f` matches the sidecar written by Python: dtype, shape and values
 * bit for bit as torch converts them to float32. */
static void check_against_expected(const StFile *f, const cJSON *exp) {
    const cJSON *tensors = cJSON_GetObjectItemCaseSensitive(exp, "tensors");
    assert_int_equal(cJSON_GetArraySize(tensors), (int)f->n_tensors);
    for (const cJSON *e = tensors->child; e; e = e->next) {
        const StTensor *t = st_tensor_find(f, e->string);
        if (!t) fail_msg("tensor '%s' not found in %s", e->string, f->name);
        assert_string_equal(t->dtype_name, cJSON_GetObjectItemCaseSensitive(e, "dtype")->valuestring);
        const cJSON *shape = cJSON_GetObjectItemCaseSensitive(e, "shape");
        assert_int_equal(t->ndim, cJSON_GetArraySize(shape));
        int k = 0;
        for (const cJSON *d = shape->child; d; d = d->next, k++) assert_int_equal(t->shape[k], (int64_t)d->valuedouble);
        const cJSON *vals = cJSON_GetObjectItemCaseSensitive(e, "values");
        assert_int_equal((uint64_t)cJSON_GetArraySize(vals), t->numel);
        float *got = malloc((t->numel + 1) * sizeof *got);
        if (t->supported) {
            assert_int_equal(st_tensor_to_f32(f, t, got), 0);
        } else {
            assert_string_equal(t->dtype_name, "U8");
            assert_int_equal(t->nbytes, t->numel);
            for (uint64_t i = 0; i < t->numel; i++) got[i] = (float)t->data[i];
            assert_int_equal(st_tensor_to_f32(f, t, got), -1);
            assert_non_null(strstr(err_msg(), "not supported"));
            for (uint64_t i = 0; i < t->numel; i++) got[i] = (float)t->data[i];
        }
        k = 0;
        for (const cJSON *v = vals->child; v; v = v->next, k++) {
            float want = (float)v->valuedouble;
            if (memcmp(&want, &got[k], 4) != 0)
                fail_msg("%s: tensor '%s' [%d]: got %.9g, want %.9g", f->name, e->string, k, got[k], want);
        }
        free(got);
    }
    const cJSON *meta = cJSON_GetObjectItemCaseSensitive(exp, "metadata");
    assert_int_equal(cJSON_GetArraySize(meta), (int)f->n_meta);
    for (const cJSON *m = meta->child; m; m = m->next) {
        const char *v = st_meta_get(f, m->string);
        assert_non_null(v);
        assert_string_equal(v, m->valuestring);
    }
}

static void check_fixture(const char *path) {
    StFile f;
    if (st_open(&f, path) != 0) fail_msg("st_open(%s): %s", path, err_msg());
    cJSON *exp = load_expected(path);
    check_against_expected(&f, exp);
    cJSON_Delete(exp);
    st_close(&f);
}

/* ================================================================ reading Python-written files */

static void test_python_fixtures(void **state) {
    (void)state;
    check_fixture(FIX "basic.safetensors");
    check_fixture(FIX "writer_ref.safetensors");
    check_fixture(FIX "unaligned.safetensors");
    check_fixture(FIX "sharded/model-00001-of-00002.safetensors");
    check_fixture(FIX "sharded/model-00002-of-00002.safetensors");
}

static void test_basic_details(void **state) {
    (void)state;
    StFile f;
    assert_int_equal(st_open(&f, FIX "basic.safetensors"), 0);
    const StTensor *t = st_tensor_find(&f, "scalar");
    assert_non_null(t);
    assert_int_equal(t->ndim, 0);
    assert_int_equal(t->numel, 1);
    assert_int_equal(t->nbytes, 4);
    t = st_tensor_find(&f, "empty");
    assert_non_null(t);
    assert_int_equal(t->ndim, 2);
    assert_int_equal(t->numel, 0);
    assert_int_equal(t->nbytes, 0);
    t = st_tensor_find(&f, "\xc3\xa9mbed.\xc3\xbc");
    assert_non_null(t);
    assert_int_equal(t->dtype, DT_F16);
    t = st_tensor_find(&f, "layer.0.bf16");
    assert_true(t->supported);
    assert_int_equal(t->dtype, DT_BF16);
    assert_null(st_tensor_find(&f, "nope"));
    assert_null(st_tensor_find(&f, "embed.weigh"));
    assert_null(st_meta_get(&f, "nope"));
    /* tensors are listed in data order, back to back, and the reference writer's
     * layout keeps every tensor aligned to its element size */
    uint64_t off = 0;
    for (size_t i = 0; i < f.n_tensors; i++) {
        assert_int_equal(f.tensors[i].offset, off);
        off += f.tensors[i].nbytes;
        if (f.tensors[i].supported) {
            int ok;
            assert_int_equal((uintptr_t)f.tensors[i].data % dtype_nbytes(f.tensors[i].dtype, 1, &ok), 0);
        }
    }
    assert_int_equal(off, f.data_size);
    assert_int_equal(f.header_len % 8, 0);
    st_close(&f);
    st_close(&f); /* harmless twice */
}

static void test_unaligned_data(void **state) {
    (void)state;
    StFile f;
    assert_int_equal(st_open(&f, FIX "unaligned.safetensors"), 0);
    assert_int_equal(f.header_len % 2, 1); /* the fixture is meant to be misaligned */
    const StTensor *t = st_tensor_find(&f, "u.f16");
    assert_int_equal((uintptr_t)t->data % 2, 1);
    st_close(&f);
}

/* ================================================================ writer */

/* huggingface/safetensors tensor.rs, test_serialization / test_empty: exact bytes. */
static const uint8_t ref_serialization[] = {
    64, 0, 0, 0, 0, 0, 0, 0, 123, 34, 97, 116, 116, 110, 46, 48, 34, 58, 123, 34, 100, 116, 121, 112, 101, 34, 58, 34,
    70, 51, 50, 34, 44, 34, 115, 104, 97, 112, 101, 34, 58, 91, 49, 44, 50, 44, 51, 93, 44, 34, 100, 97, 116, 97, 95,
    111, 102, 102, 115, 101, 116, 115, 34, 58, 91, 48, 44, 50, 52, 93, 125, 125, 0, 0, 0, 0, 0, 0, 128, 63, 0, 0, 0,
    64, 0, 0, 64, 64, 0, 0, 128, 64, 0, 0, 160, 64};
static const uint8_t ref_empty[] = {8, 0, 0, 0, 0, 0, 0, 0, 123, 125, 32, 32, 32, 32, 32, 32};
static const uint8_t ref_empty_meta[] = {40, 0, 0, 0, 0, 0, 0, 0, 123, 34, 95, 95, 109, 101, 116, 97, 100, 97,
                                         116, 97, 95, 95, 34, 58, 123, 34, 102, 114, 97, 109, 101, 119, 111, 114,
                                         107, 34, 58, 34, 112, 116, 34, 125, 125, 32, 32, 32, 32, 32};
/* test_serialization_forced_alignement: name "attn0", shape [1,1,2,3] */
static const uint8_t ref_forced_align[] = {
    72, 0, 0, 0, 0, 0, 0, 0, 123, 34, 97, 116, 116, 110, 48, 34, 58, 123, 34, 100, 116, 121, 112, 101, 34, 58, 34, 70,
    51, 50, 34, 44, 34, 115, 104, 97, 112, 101, 34, 58, 91, 49, 44, 49, 44, 50, 44, 51, 93, 44, 34, 100, 97, 116, 97,
    95, 111, 102, 102, 115, 101, 116, 115, 34, 58, 91, 48, 44, 50, 52, 93, 125, 125, 32, 32, 32, 32, 32, 32, 32, 0, 0,
    0, 0, 0, 0, 128, 63, 0, 0, 0, 64, 0, 0, 64, 64, 0, 0, 128, 64, 0, 0, 160, 64};

static void expect_file_bytes(const char *path, const uint8_t *want, size_t n) {
    size_t got_n;
    uint8_t *got = read_bytes(path, &got_n);
    assert_int_equal(got_n, n);
    for (size_t i = 0; i < n; i++)
        if (got[i] != want[i]) fail_msg("%s: byte %zu is %u, want %u", path, i, got[i], want[i]);
    free(got);
}

static void test_writer_reference_vectors(void **state) {
    (void)state;
    const char *dir = test_tmpdir();
    char path[512];
    float v[6] = {0, 1, 2, 3, 4, 5};
    StWriter w;

    snprintf(path, sizeof path, "%s/a.safetensors", dir);
    st_writer_init(&w);
    assert_int_equal(st_writer_add(&w, "attn.0", DT_F32, 3, (int64_t[]){1, 2, 3}, v), 0);
    assert_int_equal(st_writer_write(&w, path), 0);
    st_writer_free(&w);
    expect_file_bytes(path, ref_serialization, sizeof ref_serialization);

    snprintf(path, sizeof path, "%s/b.safetensors", dir);
    st_writer_init(&w);
    assert_int_equal(st_writer_add_f32(&w, "attn0", DT_F32, 4, (int64_t[]){1, 1, 2, 3}, v), 0);
    assert_int_equal(st_writer_write(&w, path), 0);
    st_writer_free(&w);
    expect_file_bytes(path, ref_forced_align, sizeof ref_forced_align);

    snprintf(path, sizeof path, "%s/c.safetensors", dir);
    st_writer_init(&w);
    assert_int_equal(st_writer_write(&w, path), 0);
    expect_file_bytes(path, ref_empty, sizeof ref_empty);
    assert_int_equal(st_writer_meta_set(&w, "framework", "tf"), 0);
    assert_int_equal(st_writer_meta_set(&w, "framework", "pt"), 0); /* replaces */
    assert_int_equal(st_writer_write(&w, path), 0);
    st_writer_free(&w);
    expect_file_bytes(path, ref_empty_meta, sizeof ref_empty_meta);

    /* and the reader accepts the reference's bytes */
    StFile f;
    assert_int_equal(st_parse_buffer(&f, ref_serialization, sizeof ref_serialization, "ref"), 0);
    float out[6];
    assert_int_equal(st_tensor_to_f32(&f, st_tensor_find(&f, "attn.0"), out), 0);
    assert_memory_equal(out, v, sizeof v);
    st_close(&f);
    assert_int_equal(st_parse_buffer(&f, ref_empty_meta, sizeof ref_empty_meta, "ref"), 0);
    assert_string_equal(st_meta_get(&f, "framework"), "pt");
    assert_int_equal(f.n_tensors, 0);
    st_close(&f);
}

/* Rewriting the Python-written file tensor by tensor gives the same bytes. */
static void test_writer_matches_python(void **state) {
    (void)state;
    StFile f;
    assert_int_equal(st_open(&f, FIX "writer_ref.safetensors"), 0);
    const char *dir = test_tmpdir();
    char raw_path[512], conv_path[512];
    snprintf(raw_path, sizeof raw_path, "%s/raw.safetensors", dir);
    snprintf(conv_path, sizeof conv_path, "%s/conv.safetensors", dir);
    StWriter raw, conv;
    st_writer_init(&raw);
    st_writer_init(&conv);
    float *bufs[16] = {0};
    /* add in reverse file order: the writer must sort by itself */
    for (size_t k = f.n_tensors; k-- > 0;) {
        const StTensor *t = &f.tensors[k];
        assert_int_equal(st_writer_add(&raw, t->name, t->dtype, t->ndim, t->shape, t->data), 0);
        if (t->dtype == DT_F32 || t->dtype == DT_F16 || t->dtype == DT_BF16) {
            bufs[k] = malloc(t->numel * sizeof(float));
            assert_int_equal(st_tensor_to_f32(&f, t, bufs[k]), 0);
            assert_int_equal(st_writer_add_f32(&conv, t->name, t->dtype, t->ndim, t->shape, bufs[k]), 0);
        } else {
            assert_int_equal(st_writer_add(&conv, t->name, t->dtype, t->ndim, t->shape, t->data), 0);
        }
    }
    for (size_t i = 0; i < f.n_meta; i++) {
        assert_int_equal(st_writer_meta_set(&raw, f.meta[i].key, f.meta[i].value), 0);
        assert_int_equal(st_writer_meta_set(&conv, f.meta[i].key, f.meta[i].value), 0);
    }
    assert_int_equal(st_writer_write(&raw, raw_path), 0);
    assert_int_equal(st_writer_write(&conv, conv_path), 0);
    size_t n;
    uint8_t *want = read_bytes(FIX "writer_ref.safetensors", &n);
    expect_file_bytes(raw_path, want, n);
    expect_file_bytes(conv_path, want, n);
    free(want);
    for (int i = 0; i < 16; i++) free(bufs[i]);
    st_writer_free(&raw);
    st_writer_free(&conv);
    st_close(&f);
}

static void test_writer_roundtrip(void **state) {
    (void)state;
    const char *dir = test_tmpdir();
    char path[512];
    snprintf(path, sizeof path, "%s/rt.safetensors", dir);
    enum { N = 1000 };
    float *src = malloc(N * sizeof *src);
    for (int i = 0; i < N; i++) src[i] = (float)sin(i * 0.37) * (float)(1 << (i % 20)) * 1e-3f;
    src[0] = 1.00390625f;  /* bf16 tie: rounds down to even */
    src[1] = 1.01171875f;  /* bf16 tie: rounds up to even */
    src[2] = 65520.0f;     /* f16: rounds up to infinity */
    src[3] = -0.0f;
    int32_t ints[3] = {INT32_MIN, 0, INT32_MAX};
    StWriter w;
    st_writer_init(&w);
    assert_int_equal(st_writer_add_f32(&w, "f32", DT_F32, 2, (int64_t[]){10, 100}, src), 0);
    assert_int_equal(st_writer_add_f32(&w, "f16", DT_F16, 1, (int64_t[]){N}, src), 0);
    assert_int_equal(st_writer_add_f32(&w, "bf16", DT_BF16, 3, (int64_t[]){2, 5, 100}, src), 0);
    assert_int_equal(st_writer_add(&w, "ints", DT_I32, 1, (int64_t[]){3}, ints), 0);
    assert_int_equal(st_writer_add(&w, "scalar", DT_F32, 0, NULL, src + 5), 0);
    assert_int_equal(st_writer_add(&w, "empty", DT_BF16, 2, (int64_t[]){0, 7}, NULL), 0);
    assert_int_equal(st_writer_add_f32(&w, "sp\"ec\\ial\n\x01 \xc3\xa9", DT_F32, 1, (int64_t[]){1}, src), 0);
    assert_int_equal(st_writer_meta_set(&w, "k\"\\\t", "v\x1f\xe2\x82\xac"), 0);
    assert_int_equal(st_writer_write(&w, path), 0);
    st_writer_free(&w);

    StFile f;
    assert_int_equal(st_open(&f, path), 0);
    assert_int_equal(f.n_tensors, 7);
    float *got = malloc(N * sizeof *got);
    const StTensor *t = st_tensor_find(&f, "f32");
    assert_int_equal(t->ndim, 2);
    assert_int_equal(t->shape[0], 10);
    assert_int_equal(t->shape[1], 100);
    assert_int_equal(st_tensor_to_f32(&f, t, got), 0);
    assert_memory_equal(got, src, N * sizeof *got);
    t = st_tensor_find(&f, "f16");
    assert_int_equal(st_tensor_to_f32(&f, t, got), 0);
    for (int i = 0; i < N; i++) {
        float want = f16_to_f32(f32_to_f16(src[i]));
        assert_memory_equal(&got[i], &want, 4);
    }
    assert_true(isinf(got[2]));
    t = st_tensor_find(&f, "bf16");
    assert_int_equal(t->ndim, 3);
    assert_int_equal(st_tensor_to_f32(&f, t, got), 0);
    for (int i = 0; i < N; i++) {
        float want = bf16_to_f32(f32_to_bf16(src[i]));
        assert_memory_equal(&got[i], &want, 4);
    }
    assert_float_equal(got[0], 1.0f, 0);
    assert_float_equal(got[1], 1.015625f, 0);
    t = st_tensor_find(&f, "ints");
    assert_memory_equal(t->data, ints, sizeof ints);
    t = st_tensor_find(&f, "scalar");
    assert_int_equal(t->ndim, 0);
    assert_memory_equal(t->data, src + 5, 4);
    t = st_tensor_find(&f, "empty");
    assert_int_equal(t->numel, 0);
    assert_non_null(st_tensor_find(&f, "sp\"ec\\ial\n\x01 \xc3\xa9"));
    assert_string_equal(st_meta_get(&f, "k\"\\\t"), "v\x1f\xe2\x82\xac");
    /* dtype order, then names: F32 tensors first (sorted), then I32, then BF16, then F16 */
    const char *order[] = {"f32", "scalar", "sp\"ec\\ial\n\x01 \xc3\xa9", "ints", "bf16", "empty", "f16"};
    for (int i = 0; i < 7; i++) assert_string_equal(f.tensors[i].name, order[i]);
    st_close(&f);
    free(got);
    free(src);
}

static void test_writer_refusals(void **state) {
    (void)state;
    const char *dir = test_tmpdir();
    char path[512];
    snprintf(path, sizeof path, "%s/x.safetensors", dir);
    float v[4] = {0};
    StWriter w;
    st_writer_init(&w);
    assert_int_equal(st_writer_add(&w, "a", DT_F32, 1, (int64_t[]){4}, v), 0);
    assert_int_equal(st_writer_add(&w, "a", DT_F32, 1, (int64_t[]){4}, v), 0);
    assert_int_equal(st_writer_write(&w, path), -1);
    assert_non_null(strstr(err_msg(), "'a' was added twice"));
    assert_false(file_exists(path));
    st_writer_free(&w);

    st_writer_init(&w);
    assert_int_equal(st_writer_add(&w, "a", DT_F32, 1, (int64_t[]){2}, v), 0);
    assert_int_equal(st_writer_add(&w, "a", DT_BF16, 1, (int64_t[]){2}, v), 0); /* not adjacent once sorted */
    assert_int_equal(st_writer_write(&w, path), -1);
    assert_non_null(strstr(err_msg(), "added twice"));
    st_writer_free(&w);

    st_writer_init(&w);
    assert_int_equal(st_writer_add(&w, "q", DT_Q8_0, 1, (int64_t[]){32}, v), -1);
    assert_non_null(strstr(err_msg(), "cannot be written"));
    assert_int_equal(st_writer_add_f32(&w, "i", DT_I32, 1, (int64_t[]){1}, v), -1);
    assert_int_equal(st_writer_add(&w, "\xff", DT_F32, 1, (int64_t[]){1}, v), -1);
    assert_non_null(strstr(err_msg(), "UTF-8"));
    assert_int_equal(st_writer_add(&w, "__metadata__", DT_F32, 1, (int64_t[]){1}, v), -1);
    assert_int_equal(st_writer_add(&w, "neg", DT_F32, 1, (int64_t[]){-1}, v), -1);
    assert_int_equal(st_writer_add(&w, "big", DT_F32, 9, (int64_t[]){1, 1, 1, 1, 1, 1, 1, 1, 1}, v), -1);
    assert_int_equal(st_writer_add(&w, "ovf", DT_F32, 2, (int64_t[]){INT64_MAX, 4}, v), -1);
    assert_int_equal(st_writer_write(&w, path), -1);
    assert_non_null(strstr(err_msg(), path));
    st_writer_free(&w);

    /* a failed write leaves the previous file intact */
    st_writer_init(&w);
    assert_int_equal(st_writer_add(&w, "ok", DT_F32, 1, (int64_t[]){4}, v), 0);
    assert_int_equal(st_writer_write(&w, path), 0);
    st_writer_free(&w);
    st_writer_init(&w);
    assert_int_equal(st_writer_add(&w, "x", DT_F32, 1, (int64_t[]){1}, v), 0);
    assert_int_equal(st_writer_add(&w, "x", DT_F32, 1, (int64_t[]){1}, v), 0);
    assert_int_equal(st_writer_write(&w, path), -1);
    st_writer_free(&w);
    StFile f;
    assert_int_equal(st_open(&f, path), 0);
    assert_non_null(st_tensor_find(&f, "ok"));
    st_close(&f);
}

/* ================================================================ sharded sets */

static void check_set(const char *path, size_t n_shards) {
    StSet s;
    if (st_set_open(&s, path) != 0) fail_msg("st_set_open(%s): %s", path, err_msg());
    assert_int_equal(s.n_shards, n_shards);
    assert_int_equal(s.n_entries, 5);
    const char *names[] = {"model.embed_tokens.weight", "model.layers.0.self_attn.q_proj.weight",
                           "model.layers.0.mlp.down_proj.weight", "model.norm.weight", "lm_head.weight"};
    for (int i = 0; i < 5; i++) {
        const StFile *shard = NULL;
        const StTensor *t = st_set_tensor_find(&s, names[i], &shard);
        assert_non_null(t);
        assert_non_null(shard);
        assert_string_equal(t->name, names[i]);
        assert_ptr_equal(st_tensor_find(shard, names[i]), t);
        assert_non_null(strstr(shard->name, i < 2 ? "model-00001-of-00002" : "model-00002-of-00002"));
    }
    assert_null(st_set_tensor_find(&s, "model.missing", NULL));
    assert_string_equal(s.index.meta[0].key, "total_size");
    assert_string_equal(s.index.meta[0].value, "304");
    /* values through the set agree with the Python sidecars */
    for (size_t i = 0; i < s.n_shards; i++) {
        cJSON *exp = load_expected(s.shards[i].name);
        check_against_expected(&s.shards[i], exp);
        cJSON_Delete(exp);
    }
    st_set_close(&s);
}

static void test_sharded_set(void **state) {
    (void)state;
    check_set(FIX "sharded", 2);
    check_set(FIX "sharded/", 2);
    check_set(FIX "sharded/model.safetensors.index.json", 2);
    StSet s;
    assert_int_equal(st_set_open(&s, FIX "basic.safetensors"), 0);
    assert_int_equal(s.n_shards, 1);
    assert_int_equal(s.n_entries, 10);
    for (size_t i = 1; i < s.n_entries; i++) assert_true(strcmp(s.entries[i - 1].name, s.entries[i].name) < 0);
    assert_non_null(st_set_tensor_find(&s, "mask", NULL));
    st_set_close(&s);
    assert_int_equal(st_set_open(&s, FIX), -1);
    assert_non_null(strstr(err_msg(), "no model.safetensors.index.json nor model.safetensors"));
    /* a folder holding a single model.safetensors */
    const char *dir = test_tmpdir();
    char path[512];
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    float v[3] = {1, 2, 3};
    StWriter w;
    st_writer_init(&w);
    assert_int_equal(st_writer_add(&w, "w", DT_F32, 1, (int64_t[]){3}, v), 0);
    assert_int_equal(st_writer_write(&w, path), 0);
    st_writer_free(&w);
    assert_int_equal(st_set_open(&s, dir), 0);
    assert_int_equal(s.n_shards, 1);
    assert_int_equal(s.n_entries, 1);
    assert_non_null(st_set_tensor_find(&s, "w", NULL));
    assert_int_equal(s.index.n_entries, 0);
    st_set_close(&s);
}

static void test_set_index_errors(void **state) {
    (void)state;
    const char *dir = test_tmpdir();
    char path[512], shard[512];
    snprintf(shard, sizeof shard, "%s/s1.safetensors", dir);
    snprintf(path, sizeof path, "%s/model.safetensors.index.json", dir);
    float v[2] = {1, 2};
    StWriter w;
    st_writer_init(&w);
    assert_int_equal(st_writer_add(&w, "a", DT_F32, 1, (int64_t[]){2}, v), 0);
    assert_int_equal(st_writer_write(&w, shard), 0);
    st_writer_free(&w);
    StSet s;
    const char *j1 = "{\"weight_map\": {\"a\": \"s1.safetensors\", \"b\": \"s1.safetensors\"}}";
    assert_int_equal(file_write_all_atomic(path, j1, strlen(j1)), 0);
    assert_int_equal(st_set_open(&s, dir), -1);
    assert_non_null(strstr(err_msg(), "tensor 'b' is mapped to 's1.safetensors', which has no such tensor"));
    assert_non_null(strstr(err_msg(), path));
    const char *j2 = "{\"weight_map\": {\"a\": \"s2.safetensors\"}}";
    assert_int_equal(file_write_all_atomic(path, j2, strlen(j2)), 0);
    assert_int_equal(st_set_open(&s, dir), -1);
    assert_non_null(strstr(err_msg(), "s2.safetensors"));
    assert_non_null(strstr(err_msg(), "cannot open"));
    const char *j3 = "{\"weight_map\": {\"a\": \"../s1.safetensors\"}}";
    assert_int_equal(file_write_all_atomic(path, j3, strlen(j3)), 0);
    assert_int_equal(st_set_open(&s, dir), -1);
    assert_non_null(strstr(err_msg(), "not a plain file name"));
    const char *j4 = "{\"metadata\": {\"total_size\": 8}, \"weight_map\": {\"a\": \"s1.safetensors\"}}";
    assert_int_equal(file_write_all_atomic(path, j4, strlen(j4)), 0);
    assert_int_equal(st_set_open(&s, dir), 0);
    float out[2];
    const StFile *sh;
    const StTensor *t = st_set_tensor_find(&s, "a", &sh);
    assert_int_equal(st_tensor_to_f32(sh, t, out), 0);
    assert_memory_equal(out, v, sizeof v);
    st_set_close(&s);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_python_fixtures),
        cmocka_unit_test(test_basic_details),
        cmocka_unit_test(test_unaligned_data),
        cmocka_unit_test(test_writer_reference_vectors),
        cmocka_unit_test(test_writer_matches_python),
        cmocka_unit_test(test_writer_roundtrip),
        cmocka_unit_test(test_writer_refusals),
        cmocka_unit_test(test_sharded_set),
        cmocka_unit_test(test_set_index_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
