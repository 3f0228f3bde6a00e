/* tests/io/test_hostile.c - hand-made bad safetensors, index.json and GGUF files:
 * each must be refused with -1, a message naming the file and saying what is wrong,
 * and no crash or leak under AddressSanitizer/UBSan. */
#include "testutil.h"
#include "core/error.h"
#include "core/file.h"
#include "io/gguf.h"
#include "io/safetensors.h"

static const char *tmp;  /* one temp dir for the whole run */
static int counter;

/* ================================================================ helpers */

typedef struct {
    uint8_t *p;
    size_t n, cap;
} Bytes;

static void put(Bytes *b, const void *s, size_t n) {
    if (b->n + n > b->cap) {
        b->cap = (b->n + n) * 2 + 64;
        b->p = realloc(b->p, b->cap);
    }
    if (n) memcpy(b->p + b->n, s, n);
    b->n += n;
}
static void put_u32(Bytes *b, uint32_t v) { put(b, &v, 4); }
static void put_u64(Bytes *b, uint64_t v) { put(b, &v, 8); }
static void put_str(Bytes *b, const char *s) {
    put_u64(b, strlen(s));
    put(b, s, strlen(s));
}
static void put_zeros(Bytes *b, size_t n) {
    for (size_t i = 0; i < n; i++) put(b, "", 1);
}

static const char *write_tmp(const void *data, size_t n, const char *ext) {
    static char path[600];
    snprintf(path, sizeof path, "%s/f%03d.%s", tmp, counter++, ext);
    if (file_write_all_atomic(path, data, n) != 0) fail_msg("%s", err_msg());
    return path;
}

static void check_msg(const char *what, const char *path, const char *want) {
    const char *m = err_msg();
    if (!strstr(m, want)) fail_msg("%s: message '%s' lacks '%s'", what, m, want);
    if (path && !strstr(m, path)) fail_msg("%s: message '%s' lacks the path '%s'", what, m, path);
}

/* The file must be refused both from disk and from memory. */
static void st_bad(const void *data, size_t n, const char *want) {
    const char *path = write_tmp(data, n, "safetensors");
    StFile f;
    if (st_open(&f, path) != -1) fail_msg("accepted a bad file (want '%s')", want);
    check_msg("st_open", path, want);
    assert_null(f.tensors);
    st_close(&f);
    if (st_parse_buffer(&f, data, n, "mem.safetensors") != -1) fail_msg("accepted a bad buffer (want '%s')", want);
    check_msg("st_parse_buffer", "mem.safetensors", want);
    StSet s;
    assert_int_equal(st_set_open(&s, path), -1);
}

/* 8-byte length + header text + `data` zero bytes. */
static Bytes st_bytes(const char *header, size_t data) {
    Bytes b = {0};
    put_u64(&b, strlen(header));
    put(&b, header, strlen(header));
    put_zeros(&b, data);
    return b;
}

static void st_bad_header(const char *header, size_t data, const char *want) {
    Bytes b = st_bytes(header, data);
    st_bad(b.p, b.n, want);
    free(b.p);
}

static void st_good_header(const char *header, size_t data) {
    Bytes b = st_bytes(header, data);
    StFile f;
    if (st_parse_buffer(&f, b.p, b.n, "mem") != 0) fail_msg("refused a good header: %s", err_msg());
    st_close(&f);
    free(b.p);
}

static void gguf_bad(const void *data, size_t n, const char *want) {
    const char *path = write_tmp(data, n, "gguf");
    GgufFile g;
    if (gguf_open(&g, path) != -1) fail_msg("accepted a bad file (want '%s')", want);
    check_msg("gguf_open", path, want);
    assert_null(g.kvs);
    gguf_close(&g);
    if (gguf_parse_buffer(&g, data, n, "mem.gguf") != -1) fail_msg("accepted a bad buffer (want '%s')", want);
    check_msg("gguf_parse_buffer", "mem.gguf", want);
}

/* ================================================================ safetensors */

static void test_st_truncations(void **state) {
    (void)state;
    /* a valid file with metadata and three tensors, written by the C writer */
    char path[600];
    snprintf(path, sizeof path, "%s/good.safetensors", tmp);
    float v[12] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12};
    StWriter w;
    st_writer_init(&w);
    st_writer_add(&w, "a", DT_F32, 2, (int64_t[]){3, 4}, v);
    st_writer_add_f32(&w, "b", DT_BF16, 1, (int64_t[]){5}, v);
    st_writer_add_f32(&w, "c", DT_F16, 1, (int64_t[]){2}, v);
    st_writer_meta_set(&w, "format", "pt");
    assert_int_equal(st_writer_write(&w, path), 0);
    st_writer_free(&w);
    size_t n;
    uint8_t *full = (uint8_t *)file_read_all(path, &n, 0);
    uint64_t hl;
    memcpy(&hl, full, 8);
    StFile f;
    assert_int_equal(st_parse_buffer(&f, full, n, "full"), 0);
    st_close(&f);
    for (size_t len = 0; len < n; len++) {
        uint8_t *cut = malloc(len ? len : 1); /* exact size: ASan catches any overread */
        memcpy(cut, full, len);
        assert_int_equal(st_parse_buffer(&f, cut, len, "cut.safetensors"), -1);
        const char *want = len < 8 ? "too short for the 8-byte header length"
                           : len < 8 + hl ? "runs past the end of the file"
                                          : "runs past the end of the data area";
        check_msg("truncation", "cut.safetensors", want);
        free(cut);
    }
    /* a few of them from disk too */
    st_bad(full, 0, "too short");
    st_bad(full, 7, "too short");
    st_bad(full, 8 + hl - 1, "runs past the end of the file");
    st_bad(full, n - 1, "runs past the end of the data area");
    /* and one byte too many */
    uint8_t *more = malloc(n + 1);
    memcpy(more, full, n);
    more[n] = 0;
    st_bad(more, n + 1, "trailing bytes are not allowed");
    free(more);
    free(full);
}

static void test_st_header_length(void **state) {
    (void)state;
    Bytes b = {0};
    put_u64(&b, UINT64_MAX);
    put(&b, "{}", 2);
    st_bad(b.p, b.n, "header length 18446744073709551615 is more than the limit of 100000000 bytes");
    b.n = 0;
    put_u64(&b, 100000001);
    put(&b, "{}", 2);
    st_bad(b.p, b.n, "more than the limit");
    b.n = 0;
    put_u64(&b, 3);
    put(&b, "{}", 2);
    st_bad(b.p, b.n, "header length 3 runs past the end of the file (10 bytes)");
    b.n = 0;
    put_u64(&b, 0);
    st_bad(b.p, b.n, "header length 0 is too short for a JSON object");
    b.n = 0;
    put_u64(&b, 1);
    put(&b, "{", 1);
    st_bad(b.p, b.n, "too short for a JSON object");
    free(b.p);
}

static void test_st_offsets(void **state) {
    (void)state;
    st_bad_header("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,1000]}}", 8,
                  "tensor 'a': field 'data_offsets': [0, 1000] runs past the end of the data area (8 bytes)");
    st_bad_header("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,0]}}", 8, "[8, 0] is reversed");
    st_bad_header("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,4]}}", 4,
                  "[0, 4] holds 4 bytes but its shape and dtype F32 need 8");
    st_bad_header("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                  "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}",
                  12, "tensor 'b' [4, 12] overlaps tensor 'a' [0, 8]");
    st_bad_header("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                  "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}",
                  8, "overlaps");
    st_bad_header("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
                  "\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[8,12]}}",
                  12, "tensor 'b' starts at data offset 8 but the data before it ends at 4");
    st_bad_header("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", 5,
                  "the data area is 5 bytes but the tensors cover 4");
    st_bad_header("{}", 1, "the data area is 1 bytes but the tensors cover 0");
    st_bad_header("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0]}}", 4,
                  "field 'data_offsets': expected [begin, end], got an array of another length");
    st_bad_header("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":{}}}", 4, "got an object");
    st_bad_header("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[-4,0]}}", 4,
                  "expected two integers in [0, 2^53)");
    st_bad_header("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,1e300]}}", 4, "[0, 2^53)");
    st_bad_header("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,\"4\"]}}", 4, "[0, 2^53)");
    /* an empty tensor at the end of the data is fine, inside another one is not */
    st_good_header("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
                   "\"e\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[4,4]}}",
                   4);
    st_bad_header("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                  "\"e\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[4,4]}}",
                  8, "overlaps");
}

static void test_st_shapes(void **state) {
    (void)state;
    st_bad_header("{\"a\":{\"dtype\":\"F32\",\"shape\":[-1,4],\"data_offsets\":[0,0]}}", 0,
                  "tensor 'a': field 'shape': dimension 0: expected an integer in [0, 2^53), got -1");
    st_bad_header("{\"a\":{\"dtype\":\"F32\",\"shape\":[1.5],\"data_offsets\":[0,0]}}", 0, "got 1.5");
    st_bad_header("{\"a\":{\"dtype\":\"F32\",\"shape\":[1e20],\"data_offsets\":[0,0]}}", 0, "[0, 2^53)");
    st_bad_header("{\"a\":{\"dtype\":\"F32\",\"shape\":[\"4\"],\"data_offsets\":[0,0]}}", 0,
                  "dimension 0: expected an integer, got a string");
    st_bad_header("{\"a\":{\"dtype\":\"F32\",\"shape\":[null],\"data_offsets\":[0,0]}}", 0, "got null");
    st_bad_header("{\"a\":{\"dtype\":\"F32\",\"shape\":4,\"data_offsets\":[0,0]}}", 0,
                  "field 'shape': expected an array of integers, got a number");
    st_bad_header("{\"a\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296,2],\"data_offsets\":[0,0]}}", 0,
                  "the product of the dimensions overflows 64 bits");
    st_bad_header("{\"a\":{\"dtype\":\"F32\",\"shape\":[4503599627370495,4096],\"data_offsets\":[0,0]}}", 0,
                  "overflow 64 bits of bytes");
    st_bad_header("{\"a\":{\"dtype\":\"F32\",\"shape\":[0,4],\"data_offsets\":[0,16]}}", 16,
                  "holds 16 bytes but its shape and dtype F32 need 0");
    st_bad_header("{\"a\":{\"dtype\":\"F32\",\"shape\":[1,1,1,1,1,1,1,1,1],\"data_offsets\":[0,4]}}", 4,
                  "9 dimensions, more than the limit of 8");
    st_bad_header("{\"a\":{\"dtype\":\"F4\",\"shape\":[3],\"data_offsets\":[0,2]}}", 2,
                  "3 elements of 4-bit F4 do not fill whole bytes");
    st_good_header("{\"a\":{\"dtype\":\"F4\",\"shape\":[4],\"data_offsets\":[0,2]}}", 2);
    /* zero-sized dimensions are legal (as in the reference) */
    st_good_header("{\"a\":{\"dtype\":\"F32\",\"shape\":[0,4],\"data_offsets\":[0,0]}}", 0);
}

static void test_st_dtypes_and_fields(void **state) {
    (void)state;
    st_bad_header("{\"a\":{\"dtype\":\"F13\",\"shape\":[1],\"data_offsets\":[0,4]}}", 4,
                  "tensor 'a': field 'dtype': unknown dtype 'F13'");
    st_bad_header("{\"a\":{\"dtype\":\"f32\",\"shape\":[1],\"data_offsets\":[0,4]}}", 4, "unknown dtype 'f32'");
    st_bad_header("{\"a\":{\"dtype\":32,\"shape\":[1],\"data_offsets\":[0,4]}}", 4,
                  "field 'dtype': expected a string, got a number");
    st_bad_header("{\"a\":{\"shape\":[1],\"data_offsets\":[0,4]}}", 4, "field 'dtype': missing");
    st_bad_header("{\"a\":{\"dtype\":\"F32\",\"data_offsets\":[0,4]}}", 4, "field 'shape': missing");
    st_bad_header("{\"a\":{\"dtype\":\"F32\",\"shape\":[1]}}", 4, "field 'data_offsets': missing");
    st_bad_header("{\"a\":{\"dtype\":\"F32\",\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", 4,
                  "field 'dtype' appears twice");
    st_bad_header("{\"a\":5}", 0, "tensor 'a': expected an object {dtype, shape, data_offsets}, got a number");
    /* unknown extra fields are ignored, like the reference does */
    st_good_header("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4],\"x\":[1]}}", 4);
    /* opaque dtypes are kept, not converted */
    Bytes b = st_bytes("{\"a\":{\"dtype\":\"I8\",\"shape\":[4],\"data_offsets\":[0,4]}}", 4);
    StFile f;
    assert_int_equal(st_parse_buffer(&f, b.p, b.n, "i8.safetensors"), 0);
    const StTensor *t = st_tensor_find(&f, "a");
    assert_false(t->supported);
    assert_string_equal(t->dtype_name, "I8");
    float out[4];
    assert_int_equal(st_tensor_to_f32(&f, t, out), -1);
    check_msg("I8", "i8.safetensors", "tensor 'a': dtype I8 is not supported");
    st_close(&f);
    free(b.p);
}

static void test_st_names_and_json(void **state) {
    (void)state;
    st_bad_header("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
                  "\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}",
                  8, "tensor name 'a' appears twice");
    st_bad_header("{\"__metadata__\":{},\"__metadata__\":{}}", 0, "field '__metadata__' appears twice");
    st_bad_header("{\"__metadata__\":{\"k\":\"v\",\"k\":\"w\"}}", 0, "field '__metadata__': key 'k' appears twice");
    st_bad_header("{\"__metadata__\":{\"k\":1}}", 0, "field '__metadata__': key 'k': expected a string value, got a number");
    st_bad_header("{\"__metadata__\":[]}", 0, "expected an object of strings, got an array");
    st_good_header("{\"__metadata__\":null}", 0);
    /* non-UTF-8 anywhere in the header: bad byte, overlong form, surrogate, truncated sequence */
    st_bad_header("{\"\xff\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", 4,
                  "header: not valid UTF-8 (byte 2)");
    st_bad_header("{\"\xc0\xaf\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", 4, "not valid UTF-8");
    st_bad_header("{\"\xed\xa0\x80\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", 4, "not valid UTF-8");
    st_bad_header("{\"\xe2\x82\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", 4, "not valid UTF-8");
    st_bad_header("{\"\\ud800\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", 4, "not valid JSON");
    st_bad_header("{\"a\\u0000b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", 4,
                  "escaped NUL (\\u0000)");
    /* an escaped backslash followed by u0000 is an ordinary name */
    st_good_header("{\"a\\\\u0000b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", 4);
    /* JSON shape */
    st_bad_header("[1,2]", 0, "header: expected a JSON object, got an array");
    st_bad_header("{\"a\": }", 0, "header: not valid JSON (near byte");
    st_bad_header("{}xx", 0, "unexpected bytes after the JSON object (byte 2)");
    st_good_header("{}\n\t\r ", 0); /* any JSON whitespace may pad */
    Bytes b = st_bytes("{}  ", 0);
    b.p[11] = 0; /* NUL instead of space padding */
    st_bad(b.p, b.n, "unexpected bytes after the JSON object (byte 3)");
    free(b.p);
    /* nesting */
    char deep[200];
    size_t k = 0;
    k += (size_t)sprintf(deep, "{\"__metadata__\":");
    for (int i = 0; i < 40; i++) deep[k++] = '[';
    for (int i = 0; i < 40; i++) deep[k++] = ']';
    deep[k++] = '}';
    deep[k] = 0;
    st_bad_header(deep, 0, "JSON nested deeper than 32 levels");
    size_t big = 1000000;
    char *huge = malloc(big + 1);
    memset(huge, '[', big);
    huge[big] = 0;
    st_bad_header(huge, 0, "nested deeper than 32");
    memset(huge, '{', big);
    st_bad_header(huge, 0, "nested deeper than 32");
    free(huge);
    /* long hostile names are cut in messages, which keep the path */
    char longname[3000];
    memset(longname, 'n', 2000);
    sprintf(longname + 2000, "\":{\"dtype\":\"X\",\"shape\":[1],\"data_offsets\":[0,4]}}");
    char hdr[3100];
    sprintf(hdr, "{\"%s", longname);
    st_bad_header(hdr, 4, "unknown dtype 'X'");
}

/* ================================================================ index.json */

static void index_bad(const char *json, const char *want) {
    StIndex ix;
    if (st_index_parse_buffer(&ix, json, strlen(json), "model.safetensors.index.json") != -1)
        fail_msg("accepted a bad index (want '%s')", want);
    check_msg("index", "model.safetensors.index.json", want);
    assert_null(ix.entries);
    st_index_free(&ix);
}

static void test_index(void **state) {
    (void)state;
    index_bad("{}", "field 'weight_map': missing");
    index_bad("{\"weight_map\": {}}", "field 'weight_map': empty");
    index_bad("{\"weight_map\": []}", "field 'weight_map': expected an object {tensor: file}, got an array");
    index_bad("{\"weight_map\": {\"a\": 1}}", "tensor 'a': expected a file name, got a number");
    index_bad("{\"weight_map\": {\"a\": \"../x.safetensors\"}}", "not a plain file name");
    index_bad("{\"weight_map\": {\"a\": \"/etc/passwd\"}}", "not a plain file name");
    index_bad("{\"weight_map\": {\"a\": \"..\"}}", "not a plain file name");
    index_bad("{\"weight_map\": {\"a\": \"\"}}", "not a plain file name");
    index_bad("{\"weight_map\": {\"a\": \"x\", \"a\": \"y\"}}", "tensor 'a' appears twice");
    index_bad("{\"weight_map\": {\"a\": \"x\"}, \"weight_map\": {\"b\": \"x\"}}", "'weight_map' appears twice");
    index_bad("{\"metadata\": 5, \"weight_map\": {\"a\": \"x\"}}", "field 'metadata': expected an object");
    index_bad("{\"metadata\": {\"k\": 1, \"k\": 2}, \"weight_map\": {\"a\": \"x\"}}", "key 'k' appears twice");
    index_bad("{\"weight_map\": {\"a\": \"x\"", "not valid JSON");
    index_bad("{\"weight_map\": {\"\xff\": \"x\"}}", "not valid UTF-8");
    index_bad("[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[", "nested deeper");
    StIndex ix;
    const char *ok = "{\"metadata\": {\"total_size\": 12, \"f\": 0.5, \"b\": true, \"s\": \"x\", \"n\": {\"x\": 1}},"
                     " \"weight_map\": {\"b\": \"2.st\", \"a\": \"1.st\", \"c\": \"1.st\"}, \"other\": 1}";
    assert_int_equal(st_index_parse_buffer(&ix, ok, strlen(ok), "ix"), 0);
    assert_int_equal(ix.n_entries, 3);
    assert_string_equal(ix.entries[0].tensor, "a");
    assert_string_equal(ix.entries[2].file, "1.st");
    assert_int_equal(ix.n_files, 2);
    assert_string_equal(ix.files[0], "1.st");
    assert_int_equal(ix.n_meta, 4); /* nested values are dropped */
    assert_string_equal(ix.meta[0].key, "b");
    assert_string_equal(ix.meta[0].value, "true");
    assert_string_equal(ix.meta[1].value, "0.5");
    assert_string_equal(ix.meta[3].key, "total_size");
    assert_string_equal(ix.meta[3].value, "12");
    st_index_free(&ix);
}

/* ================================================================ GGUF */

/* Header + one kv + one F32 tensor of 8 values, alignment 32. */
static Bytes gguf_small(void) {
    Bytes b = {0};
    put(&b, "GGUF", 4);
    put_u32(&b, 3);
    put_u64(&b, 1);
    put_u64(&b, 1);
    put_str(&b, "general.architecture");
    put_u32(&b, GGUF_TYPE_STRING);
    put_str(&b, "llama");
    put_str(&b, "w");
    put_u32(&b, 1);
    put_u64(&b, 8);
    put_u32(&b, GGML_TYPE_F32);
    put_u64(&b, 0);
    while (b.n % 32) put(&b, "", 1);
    float v[8] = {1, 2, 3, 4, 5, 6, 7, 8};
    put(&b, v, sizeof v);
    return b;
}

/* A GGUF prefix with the given counts; the caller appends kvs and tensor infos. */
static Bytes gguf_head(uint32_t version, uint64_t n_tensors, uint64_t n_kvs) {
    Bytes b = {0};
    put(&b, "GGUF", 4);
    put_u32(&b, version);
    put_u64(&b, n_tensors);
    put_u64(&b, n_kvs);
    return b;
}

static void tensor_info(Bytes *b, const char *name, uint32_t nd, const uint64_t *ne, uint32_t type, uint64_t off) {
    put_str(b, name);
    put_u32(b, nd);
    for (uint32_t i = 0; i < nd; i++) put_u64(b, ne[i]);
    put_u32(b, type);
    put_u64(b, off);
}

static void pad_data(Bytes *b, size_t data) {
    while (b->n % 32) put(b, "", 1);
    put_zeros(b, data);
}

static void gguf_bad_bytes(Bytes *b, const char *want) {
    gguf_bad(b->p, b->n, want);
    free(b->p);
    memset(b, 0, sizeof *b);
}

static void test_gguf_truncations(void **state) {
    (void)state;
    /* a C-written file holding every kind of value and four tensors */
    char path[600];
    snprintf(path, sizeof path, "%s/good.gguf", tmp);
    GgufWriter w;
    gguf_writer_init(&w);
    gguf_writer_set_string(&w, "general.architecture", "llama");
    gguf_writer_set_u32(&w, "u32", 7);
    gguf_writer_set_f64(&w, "f64", 0.25);
    gguf_writer_set_bool(&w, "b", 1);
    const char *toks[3] = {"<s>", "a", "bc"};
    gguf_writer_set_str_array(&w, "toks", toks, NULL, 3);
    float f[64] = {0};
    for (int i = 0; i < 64; i++) f[i] = (float)i;
    gguf_writer_set_array(&w, "scores", GGUF_TYPE_FLOAT32, f, 3);
    gguf_writer_add_tensor_f32(&w, "t.f32", GGML_TYPE_F32, 2, (uint64_t[]){4, 2}, f);
    gguf_writer_add_tensor_f32(&w, "t.f16", GGML_TYPE_F16, 1, (uint64_t[]){5}, f);
    gguf_writer_add_tensor_f32(&w, "t.q8", GGML_TYPE_Q8_0, 2, (uint64_t[]){32, 2}, f);
    gguf_writer_add_tensor_f32(&w, "t.bf16", GGML_TYPE_BF16, 1, (uint64_t[]){3}, f);
    assert_int_equal(gguf_writer_write(&w, path), 0);
    gguf_writer_free(&w);
    size_t n;
    uint8_t *full = (uint8_t *)file_read_all(path, &n, 0);
    GgufFile g;
    assert_int_equal(gguf_parse_buffer(&g, full, n, "full"), 0);
    size_t need = (size_t)(g.data_offset + g.tensors[3].offset + g.tensors[3].nbytes); /* the rest is padding */
    size_t data_off = g.data_offset;
    gguf_close(&g);
    size_t refused = 0;
    for (size_t len = 0; len < n; len++) {
        uint8_t *cut = malloc(len ? len : 1);
        memcpy(cut, full, len);
        int rc = gguf_parse_buffer(&g, cut, len, "cut.gguf");
        if (len < need) {
            if (rc != -1) fail_msg("a file cut at %zu of %zu was accepted", len, n);
            const char *want = len < 4 ? "bad magic" : len < data_off ? NULL : "runs past the end of the file";
            if (!want) /* a fixed-size field cut short, or a string/array length that no longer fits */
                want = strstr(err_msg(), "truncated")    ? "truncated"
                       : strstr(err_msg(), "cannot fit") ? "cannot fit"
                                                         : "past the end";
            check_msg("truncation", "cut.gguf", want);
            refused++;
        } else {
            assert_int_equal(rc, 0);
            gguf_close(&g);
        }
        free(cut);
    }
    assert_int_equal(refused, need);
    gguf_bad(full, 3, "bad magic");
    gguf_bad(full, 30, "kv_count 6 cannot fit in the 6 bytes left");
    gguf_bad(full, 150, "truncated");
    gguf_bad(full, need - 1, "tensor 't.bf16': data at offset");
    free(full);
}

static void test_gguf_header(void **state) {
    (void)state;
    Bytes b = gguf_small();
    memcpy(b.p, "GGUX", 4);
    gguf_bad_bytes(&b, "bad magic: expected 'GGUF', got 'GGUX'");
    b = gguf_small();
    memcpy(b.p, "\x00\xff\x01\x02", 4);
    gguf_bad_bytes(&b, "got '\\x00\\xff\\x01\\x02'");
    b = gguf_small();
    b.p[4] = 1;
    gguf_bad_bytes(&b, "unsupported GGUF version 1 (expected 2 or 3)");
    b = gguf_small();
    b.p[4] = 4;
    gguf_bad_bytes(&b, "unsupported GGUF version 4");
    b = gguf_small();
    b.p[4] = 0;
    b.p[7] = 3;
    gguf_bad_bytes(&b, "a big-endian GGUF file, not supported");
    b = gguf_head(3, 0, UINT64_MAX);
    gguf_bad_bytes(&b, "kv_count 18446744073709551615 cannot fit in the 0 bytes left");
    b = gguf_head(3, 1ull << 60, 0);
    gguf_bad_bytes(&b, "tensor_count 1152921504606846976 cannot fit");
    b = gguf_head(2, 0, 0);
    GgufFile g;
    assert_int_equal(gguf_parse_buffer(&g, b.p, b.n, "v2"), 0);
    gguf_close(&g);
    free(b.p);
}

static void test_gguf_kvs(void **state) {
    (void)state;
    Bytes b = gguf_head(3, 0, 1);
    put_u64(&b, 1ull << 63); /* key length */
    put_zeros(&b, 16);
    gguf_bad_bytes(&b, "kv 0: string length 9223372036854775808 at offset 24 runs past the end of the file");
    b = gguf_head(3, 0, 1);
    put_str(&b, "k");
    put_u32(&b, GGUF_TYPE_STRING);
    put_u64(&b, 100);
    put(&b, "short", 5);
    gguf_bad_bytes(&b, "key 'k': string length 100");
    b = gguf_head(3, 0, 1);
    put_str(&b, "k");
    put_u32(&b, 13);
    put_u64(&b, 0);
    gguf_bad_bytes(&b, "key 'k': unknown value type 13 (expected 0..12)");
    b = gguf_head(3, 0, 1);
    put_str(&b, "k");
    put_u32(&b, GGUF_TYPE_UINT64);
    put_u32(&b, 0);
    gguf_bad_bytes(&b, "truncated: key 'k' needs 8 bytes");
    /* arrays */
    b = gguf_head(3, 0, 1);
    put_str(&b, "k");
    put_u32(&b, GGUF_TYPE_ARRAY);
    put_u32(&b, GGUF_TYPE_UINT32);
    put_u64(&b, 1ull << 62); /* count * 4 overflows */
    put_zeros(&b, 16);
    gguf_bad_bytes(&b, "key 'k': array of 4611686018427387904 UINT32 elements runs past the end of the file");
    b = gguf_head(3, 0, 1);
    put_str(&b, "k");
    put_u32(&b, GGUF_TYPE_ARRAY);
    put_u32(&b, GGUF_TYPE_FLOAT64);
    put_u64(&b, 3);
    put_zeros(&b, 23);
    gguf_bad_bytes(&b, "array of 3 FLOAT64 elements runs past the end of the file (23 bytes left)");
    b = gguf_head(3, 0, 1);
    put_str(&b, "k");
    put_u32(&b, GGUF_TYPE_ARRAY);
    put_u32(&b, GGUF_TYPE_STRING);
    put_u64(&b, UINT64_MAX);
    put_zeros(&b, 64);
    gguf_bad_bytes(&b, "array of 18446744073709551615 strings cannot fit in the 64 bytes left");
    b = gguf_head(3, 0, 1);
    put_str(&b, "k");
    put_u32(&b, GGUF_TYPE_ARRAY);
    put_u32(&b, GGUF_TYPE_STRING);
    put_u64(&b, 2);
    put_str(&b, "ok");
    put_u64(&b, 1000);
    gguf_bad_bytes(&b, "key 'k': string length 1000");
    b = gguf_head(3, 0, 1);
    put_str(&b, "k");
    put_u32(&b, GGUF_TYPE_ARRAY);
    put_u32(&b, GGUF_TYPE_ARRAY);
    put_u64(&b, 1);
    put_zeros(&b, 16);
    gguf_bad_bytes(&b, "key 'k': nested arrays are not supported");
    b = gguf_head(3, 0, 1);
    put_str(&b, "k");
    put_u32(&b, GGUF_TYPE_ARRAY);
    put_u32(&b, 99);
    put_u64(&b, 1);
    put_zeros(&b, 16);
    gguf_bad_bytes(&b, "unknown array element type 99");
    /* keys */
    b = gguf_head(3, 0, 2);
    put_str(&b, "k");
    put_u32(&b, GGUF_TYPE_UINT8);
    put(&b, "\x01", 1);
    put_str(&b, "k");
    put_u32(&b, GGUF_TYPE_UINT8);
    put(&b, "\x02", 1);
    gguf_bad_bytes(&b, "key 'k' appears twice");
    b = gguf_head(3, 0, 1);
    put_str(&b, "");
    put_u32(&b, GGUF_TYPE_UINT8);
    put(&b, "\x01", 1);
    put_zeros(&b, 8);
    gguf_bad_bytes(&b, "key is empty");
    b = gguf_head(3, 0, 1);
    put_u64(&b, 3);
    put(&b, "a\0b", 3);
    put_u32(&b, GGUF_TYPE_UINT8);
    put(&b, "\x01", 1);
    gguf_bad_bytes(&b, "key 'a\\x00b' contains a NUL byte");
    b = gguf_head(3, 0, 1);
    put_str(&b, "k\xc3");
    put_u32(&b, GGUF_TYPE_UINT8);
    put(&b, "\x01", 1);
    gguf_bad_bytes(&b, "key 'k\\xc3' is not valid UTF-8");
    /* alignment */
    b = gguf_head(3, 0, 1);
    put_str(&b, "general.alignment");
    put_u32(&b, GGUF_TYPE_UINT32);
    put_u32(&b, 48);
    gguf_bad_bytes(&b, "key 'general.alignment': 48 is not a power of two");
    b = gguf_head(3, 0, 1);
    put_str(&b, "general.alignment");
    put_u32(&b, GGUF_TYPE_UINT32);
    put_u32(&b, 0);
    gguf_bad_bytes(&b, "0 is not a power of two");
    b = gguf_head(3, 0, 1);
    put_str(&b, "general.alignment");
    put_u32(&b, GGUF_TYPE_INT32);
    put_u32(&b, 32);
    gguf_bad_bytes(&b, "key 'general.alignment': expected UINT32, got INT32");
}

static void test_gguf_tensors(void **state) {
    (void)state;
    Bytes b = gguf_head(3, 1, 0);
    tensor_info(&b, "t", 5, (uint64_t[]){1, 1, 1, 1, 1}, 0, 0);
    pad_data(&b, 4);
    gguf_bad_bytes(&b, "tensor 't': n_dims 5 is more than 4");
    b = gguf_head(3, 1, 0);
    tensor_info(&b, "t", 2, (uint64_t[]){4, 1ull << 63}, 0, 0);
    pad_data(&b, 16);
    gguf_bad_bytes(&b, "tensor 't': ne[1] = 9223372036854775808 is negative");
    b = gguf_head(3, 1, 0);
    tensor_info(&b, "t", 2, (uint64_t[]){1ull << 32, 1ull << 32}, 0, 0);
    pad_data(&b, 16);
    gguf_bad_bytes(&b, "tensor 't': the product of ne[] overflows 63 bits");
    b = gguf_head(3, 1, 0);
    tensor_info(&b, "t", 2, (uint64_t[]){1ull << 31, 1ull << 31}, 0, 0);
    pad_data(&b, 16);
    gguf_bad_bytes(&b, "tensor 't': its size overflows");
    b = gguf_head(3, 1, 0);
    tensor_info(&b, "t", 2, (uint64_t[]){1ull << 30, 1ull << 30}, 0, 0);
    pad_data(&b, 16);
    gguf_bad_bytes(&b, "tensor 't': data at offset 0 + 4611686018427387904 bytes runs past the end of the file");
    b = gguf_head(3, 1, 0);
    tensor_info(&b, "t", 1, (uint64_t[]){4}, 99, 0);
    pad_data(&b, 16);
    gguf_bad_bytes(&b, "tensor 't': unknown ggml type 99");
    b = gguf_head(3, 1, 0);
    tensor_info(&b, "t", 1, (uint64_t[]){32}, 31, 0);
    pad_data(&b, 18);
    gguf_bad_bytes(&b, "ggml type Q4_0_4_4 (31) was removed from GGUF");
    b = gguf_head(3, 1, 0);
    tensor_info(&b, "t", 1, (uint64_t[]){33}, GGML_TYPE_Q8_0, 0);
    pad_data(&b, 68);
    gguf_bad_bytes(&b, "tensor 't': ne[0] = 33 is not a multiple of the block size 32 of Q8_0");
    b = gguf_head(3, 1, 0);
    tensor_info(&b, "t", 1, (uint64_t[]){4}, 0, 16);
    pad_data(&b, 64);
    gguf_bad_bytes(&b, "tensor 't': offset 16 is not a multiple of the alignment 32");
    b = gguf_head(3, 1, 0);
    tensor_info(&b, "t", 1, (uint64_t[]){4}, 0, 32);
    pad_data(&b, 40);
    gguf_bad_bytes(&b, "tensor 't': data at offset 32 + 16 bytes runs past the end of the file");
    b = gguf_head(3, 1, 0);
    tensor_info(&b, "t", 1, (uint64_t[]){4}, 0, 1ull << 63);
    pad_data(&b, 16);
    gguf_bad_bytes(&b, "runs past the end of the file");
    b = gguf_head(3, 1, 0);
    tensor_info(&b, "t", 1, (uint64_t[]){4}, 0, UINT64_MAX - 31);
    pad_data(&b, 16);
    gguf_bad_bytes(&b, "runs past the end of the file");
    b = gguf_head(3, 2, 0);
    tensor_info(&b, "a", 1, (uint64_t[]){16}, 0, 0);
    tensor_info(&b, "b", 1, (uint64_t[]){8}, 0, 32);
    pad_data(&b, 64);
    gguf_bad_bytes(&b, "tensor 'b' [32, +32) overlaps tensor 'a' [0, +64)");
    b = gguf_head(3, 2, 0);
    tensor_info(&b, "a", 1, (uint64_t[]){4}, 0, 0);
    tensor_info(&b, "a", 1, (uint64_t[]){4}, 0, 32);
    pad_data(&b, 64);
    gguf_bad_bytes(&b, "tensor name 'a' appears twice");
    b = gguf_head(3, 1, 0);
    tensor_info(&b, "\xfe", 1, (uint64_t[]){4}, 0, 0);
    pad_data(&b, 16);
    gguf_bad_bytes(&b, "tensor name '\\xfe' is not valid UTF-8");
    b = gguf_head(3, 1, 0);
    tensor_info(&b, "", 1, (uint64_t[]){4}, 0, 0);
    pad_data(&b, 16);
    gguf_bad_bytes(&b, "tensor name is empty");
    /* the data section itself past the end: infos end at 49, aligned to 64 */
    b = gguf_head(3, 1, 0);
    tensor_info(&b, "t", 0, NULL, 0, 0);
    put_zeros(&b, 2);
    gguf_bad_bytes(&b, "the data section starts at offset 64 (aligned to 32), past the end of the file (51 bytes)");
    /* a known but unsupported type parses, and is refused by name on use */
    b = gguf_head(3, 1, 0);
    tensor_info(&b, "q", 1, (uint64_t[]){256}, 12, 0);
    pad_data(&b, 144);
    GgufFile g;
    assert_int_equal(gguf_parse_buffer(&g, b.p, b.n, "q4k.gguf"), 0);
    const GgufTensor *t = gguf_tensor_find(&g, "q");
    assert_false(t->supported);
    assert_string_equal(t->type_name, "Q4_K");
    assert_int_equal(t->nbytes, 144);
    float out[256];
    assert_int_equal(gguf_tensor_to_f32(&g, t, out), -1);
    check_msg("Q4_K", "q4k.gguf", "tensor 'q': ggml type Q4_K is not supported");
    gguf_close(&g);
    free(b.p);
    /* empty tensors and n_dims = 0 are fine */
    b = gguf_head(3, 2, 0);
    tensor_info(&b, "e", 2, (uint64_t[]){0, 5}, 0, 0);
    tensor_info(&b, "s", 0, NULL, 0, 0);
    pad_data(&b, 4);
    assert_int_equal(gguf_parse_buffer(&g, b.p, b.n, "ok"), 0);
    assert_int_equal(gguf_tensor_find(&g, "e")->nbytes, 0);
    assert_int_equal(gguf_tensor_find(&g, "s")->numel, 1);
    gguf_close(&g);
    free(b.p);
}

static void test_missing_files(void **state) {
    (void)state;
    char p[700];
    snprintf(p, sizeof p, "%s/does-not-exist.gguf", tmp);
    GgufFile g;
    assert_int_equal(gguf_open(&g, p), -1);
    check_msg("missing", p, "cannot open");
    gguf_close(&g);
    StFile f;
    assert_int_equal(st_open(&f, tmp), -1); /* a folder */
    check_msg("folder", tmp, "not a regular file");
    StSet s;
    snprintf(p, sizeof p, "%s/none.index.json", tmp);
    assert_int_equal(st_set_open(&s, p), -1);
    check_msg("index", p, "cannot open");
    const char *empty = write_tmp("", 0, "gguf");
    assert_int_equal(gguf_open(&g, empty), -1);
    check_msg("empty", empty, "bad magic");
}

static int setup(void **state) {
    (void)state;
    tmp = strdup(test_tmpdir());
    return 0;
}

static int teardown(void **state) {
    (void)state;
    free((char *)tmp);
    return 0;
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_st_truncations),
        cmocka_unit_test(test_st_header_length),
        cmocka_unit_test(test_st_offsets),
        cmocka_unit_test(test_st_shapes),
        cmocka_unit_test(test_st_dtypes_and_fields),
        cmocka_unit_test(test_st_names_and_json),
        cmocka_unit_test(test_index),
        cmocka_unit_test(test_gguf_truncations),
        cmocka_unit_test(test_gguf_header),
        cmocka_unit_test(test_gguf_kvs),
        cmocka_unit_test(test_gguf_tensors),
        cmocka_unit_test(test_missing_files),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
