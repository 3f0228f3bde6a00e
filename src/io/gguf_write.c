/* io/gguf_write.c - the GGUF v3 writer (gguf.h): keys and tensors collected in memory,
 * checked, then written atomically in one pass. */
#include "gguf.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "gguf_types.h"
#include "io_internal.h"

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "io/gguf_write.c assumes a little-endian host"
#endif

#define GGUF_MAX_KEY 65535u /* the spec's limit on key length */

void gguf_writer_init(GgufWriter *w) { memset(w, 0, sizeof *w); }

void gguf_writer_free(GgufWriter *w) {
    if (!w) return;
    for (size_t i = 0; i < w->n_kvs; i++) {
        free(w->kvs[i].key);
        free(w->kvs[i].val);
    }
    free(w->kvs);
    for (size_t i = 0; i < w->n_tensors; i++) free(w->tensors[i].name);
    free(w->tensors);
    memset(w, 0, sizeof *w);
}

static int writer_fail(GgufWriter *w) {
    w->failed = 1;
    return -1;
}

static int name_ok(const char *s, size_t max_len) {
    size_t n = strlen(s);
    return n > 0 && (!max_len || n <= max_len) && utf8_valid_prefix((const uint8_t *)s, n) == n;
}

/* Takes ownership of val (malloc'd) in every case. */
static int kv_set(GgufWriter *w, const char *key, GgufValueType type, uint8_t *val, size_t len) {
    char q[IO_QUOTE_CAP];
    if (!key || !name_ok(key, GGUF_MAX_KEY)) {
        free(val);
        err_set("gguf writer: key '%s': expected non-empty UTF-8 of at most %u bytes", key ? io_quote(q, key, strlen(key)) : "(null)",
                GGUF_MAX_KEY);
        return writer_fail(w);
    }
    if (!val) {
        err_set("gguf writer: key '%s': out of memory", io_quote(q, key, strlen(key)));
        return writer_fail(w);
    }
    for (size_t i = 0; i < w->n_kvs; i++) {
        if (strcmp(w->kvs[i].key, key) == 0) {
            free(w->kvs[i].val);
            w->kvs[i].type = type;
            w->kvs[i].val = val;
            w->kvs[i].len = len;
            return 0;
        }
    }
    if (w->n_kvs == w->cap_kvs) {
        size_t cap = w->cap_kvs ? 2 * w->cap_kvs : 32;
        GgufWriterKv *p = realloc(w->kvs, cap * sizeof *p);
        if (!p) {
            free(val);
            err_set("gguf writer: out of memory");
            return writer_fail(w);
        }
        w->kvs = p;
        w->cap_kvs = cap;
    }
    size_t kl = strlen(key);
    char *k = malloc(kl + 1);
    if (!k) {
        free(val);
        err_set("gguf writer: out of memory");
        return writer_fail(w);
    }
    memcpy(k, key, kl + 1);
    w->kvs[w->n_kvs++] = (GgufWriterKv){k, type, val, len};
    return 0;
}

static int kv_set_scalar(GgufWriter *w, const char *key, GgufValueType type, const void *v) {
    size_t n = value_type_size[type];
    uint8_t *b = malloc(n);
    if (b) memcpy(b, v, n);
    return kv_set(w, key, type, b, n);
}

int gguf_writer_set_u8(GgufWriter *w, const char *key, uint8_t v) { return kv_set_scalar(w, key, GGUF_TYPE_UINT8, &v); }
int gguf_writer_set_i8(GgufWriter *w, const char *key, int8_t v) { return kv_set_scalar(w, key, GGUF_TYPE_INT8, &v); }
int gguf_writer_set_u16(GgufWriter *w, const char *key, uint16_t v) { return kv_set_scalar(w, key, GGUF_TYPE_UINT16, &v); }
int gguf_writer_set_i16(GgufWriter *w, const char *key, int16_t v) { return kv_set_scalar(w, key, GGUF_TYPE_INT16, &v); }
int gguf_writer_set_u32(GgufWriter *w, const char *key, uint32_t v) { return kv_set_scalar(w, key, GGUF_TYPE_UINT32, &v); }
int gguf_writer_set_i32(GgufWriter *w, const char *key, int32_t v) { return kv_set_scalar(w, key, GGUF_TYPE_INT32, &v); }
int gguf_writer_set_f32(GgufWriter *w, const char *key, float v) { return kv_set_scalar(w, key, GGUF_TYPE_FLOAT32, &v); }
int gguf_writer_set_u64(GgufWriter *w, const char *key, uint64_t v) { return kv_set_scalar(w, key, GGUF_TYPE_UINT64, &v); }
int gguf_writer_set_i64(GgufWriter *w, const char *key, int64_t v) { return kv_set_scalar(w, key, GGUF_TYPE_INT64, &v); }
int gguf_writer_set_f64(GgufWriter *w, const char *key, double v) { return kv_set_scalar(w, key, GGUF_TYPE_FLOAT64, &v); }
int gguf_writer_set_bool(GgufWriter *w, const char *key, int v) {
    uint8_t b = v ? 1 : 0;
    return kv_set_scalar(w, key, GGUF_TYPE_BOOL, &b);
}

int gguf_writer_set_string(GgufWriter *w, const char *key, const char *s) {
    if (!s) {
        err_set("gguf writer: key '%s': string is NULL", key ? key : "(null)");
        return writer_fail(w);
    }
    size_t n = strlen(s);
    uint8_t *b = malloc(8 + n);
    if (b) {
        io_put_le64(b, n);
        memcpy(b + 8, s, n);
    }
    return kv_set(w, key, GGUF_TYPE_STRING, b, 8 + n);
}

int gguf_writer_set_array(GgufWriter *w, const char *key, GgufValueType elem_type, const void *data, uint64_t count) {
    if ((unsigned)elem_type >= GGUF_TYPE_COUNT || elem_type == GGUF_TYPE_STRING || elem_type == GGUF_TYPE_ARRAY) {
        err_set("gguf writer: key '%s': array element type %s is not numeric (use gguf_writer_set_str_array for "
                "strings)",
                key ? key : "(null)", gguf_value_type_name(elem_type));
        return writer_fail(w);
    }
    uint64_t bytes;
    if (io_mul_u64(count, value_type_size[elem_type], &bytes) || bytes > SIZE_MAX - 12 || (count && !data)) {
        err_set("gguf writer: key '%s': bad array (%llu elements)", key ? key : "(null)", (unsigned long long)count);
        return writer_fail(w);
    }
    uint8_t *b = malloc(12 + (size_t)bytes);
    if (b) {
        io_put_le32(b, elem_type);
        io_put_le64(b + 4, count);
        if (bytes) memcpy(b + 12, data, (size_t)bytes);
    }
    return kv_set(w, key, GGUF_TYPE_ARRAY, b, 12 + (size_t)bytes);
}

int gguf_writer_set_str_array(GgufWriter *w, const char *key, const char *const *strs, const uint64_t *lens,
                              uint64_t count) {
    StrBuf b = {0};
    uint8_t hdr[12];
    io_put_le32(hdr, GGUF_TYPE_STRING);
    io_put_le64(hdr + 4, count);
    strbuf_put(&b, hdr, 12);
    for (uint64_t i = 0; i < count && !b.oom; i++) {
        if (!strs || !strs[i]) {
            strbuf_free(&b);
            err_set("gguf writer: key '%s': string %llu is NULL", key ? key : "(null)", (unsigned long long)i);
            return writer_fail(w);
        }
        uint64_t n = lens ? lens[i] : strlen(strs[i]);
        uint8_t l8[8];
        io_put_le64(l8, n);
        strbuf_put(&b, l8, 8);
        strbuf_put(&b, strs[i], (size_t)n);
    }
    if (b.oom) {
        strbuf_free(&b);
        b.p = NULL;
    }
    return kv_set(w, key, GGUF_TYPE_ARRAY, (uint8_t *)b.p, b.n);
}

int gguf_writer_copy_kv(GgufWriter *w, const GgufKv *kv) {
    uint8_t *b = malloc(kv->raw_len ? kv->raw_len : 1);
    if (b) memcpy(b, kv->raw, kv->raw_len);
    return kv_set(w, kv->key, kv->type, b, kv->raw_len);
}

static int writer_add_tensor(GgufWriter *w, const char *name, uint32_t type, int ndim, const uint64_t *ne,
                             const void *data, int from_f32) {
    char q[IO_QUOTE_CAP];
    const char *nm = name ? io_quote(q, name, strlen(name)) : "(null)";
    int ok_type = type == GGML_TYPE_F32 || type == GGML_TYPE_F16 || type == GGML_TYPE_BF16 || type == GGML_TYPE_Q8_0;
    if (!from_f32) ok_type |= type == GGML_TYPE_F64 || type == GGML_TYPE_I32 || type == GGML_TYPE_I64;
    if (!name || !name_ok(name, 0)) {
        err_set("gguf writer: tensor '%s': name must be non-empty UTF-8", nm);
        return writer_fail(w);
    }
    if (!ok_type) {
        err_set("gguf writer: tensor '%s': ggml type %s (%u) cannot be written (expected %s)", nm,
                gguf_ggml_type_name(type), type, from_f32 ? "F32, F16, BF16 or Q8_0" : "F32, F16, BF16, Q8_0, F64, I32 or I64");
        return writer_fail(w);
    }
    if (ndim < 0 || ndim > GGUF_MAX_DIMS) {
        err_set("gguf writer: tensor '%s': %d dimensions (expected 0..%d)", nm, ndim, GGUF_MAX_DIMS);
        return writer_fail(w);
    }
    GgufWriterTensor t = {0};
    t.numel = 1;
    for (int d = 0; d < GGUF_MAX_DIMS; d++) t.ne[d] = 1;
    for (int d = 0; d < ndim; d++) {
        t.ne[d] = ne[d];
        if (ne[d] > (uint64_t)INT64_MAX || io_mul_u64(t.numel, ne[d], &t.numel) || t.numel > (uint64_t)INT64_MAX) {
            err_set("gguf writer: tensor '%s': ne[] too large", nm);
            return writer_fail(w);
        }
    }
    const GgmlTypeInfo *ti = &ggml_types[type];
    if (t.ne[0] % ti->blck) {
        err_set("gguf writer: tensor '%s': ne[0] = %llu is not a multiple of the block size %u of %s", nm,
                (unsigned long long)t.ne[0], ti->blck, ti->name);
        return writer_fail(w);
    }
    uint64_t nbytes;
    if (io_mul_u64(t.numel / ti->blck, ti->size, &nbytes) || nbytes > SIZE_MAX) {
        err_set("gguf writer: tensor '%s': too large", nm);
        return writer_fail(w);
    }
    if (t.numel && !data) {
        err_set("gguf writer: tensor '%s': data is NULL", nm);
        return writer_fail(w);
    }
    if (w->n_tensors == w->cap_tensors) {
        size_t cap = w->cap_tensors ? 2 * w->cap_tensors : 32;
        GgufWriterTensor *p = realloc(w->tensors, cap * sizeof *p);
        if (!p) {
            err_set("gguf writer: out of memory");
            return writer_fail(w);
        }
        w->tensors = p;
        w->cap_tensors = cap;
    }
    size_t nl = strlen(name);
    t.name = malloc(nl + 1);
    if (!t.name) {
        err_set("gguf writer: out of memory");
        return writer_fail(w);
    }
    memcpy(t.name, name, nl + 1);
    t.ggml_type = type;
    t.ndim = ndim;
    t.nbytes = (size_t)nbytes;
    t.data = data;
    t.from_f32 = from_f32;
    w->tensors[w->n_tensors++] = t;
    return 0;
}

int gguf_writer_add_tensor(GgufWriter *w, const char *name, uint32_t type, int ndim, const uint64_t *ne,
                           const void *data) {
    return writer_add_tensor(w, name, type, ndim, ne, data, 0);
}

int gguf_writer_add_tensor_f32(GgufWriter *w, const char *name, uint32_t type, int ndim, const uint64_t *ne,
                               const float *src) {
    return writer_add_tensor(w, name, type, ndim, ne, src, 1);
}

/* ggml's quantize_row_q8_0_ref. */
static void quantize_q8_0(const float *x, uint8_t *out, size_t nblocks) {
    for (size_t b = 0; b < nblocks; b++, x += Q8_0_BLOCK, out += Q8_0_BYTES) {
        float amax = 0;
        for (int j = 0; j < Q8_0_BLOCK; j++) amax = fmaxf(amax, fabsf(x[j]));
        float d = amax / 127.0f;
        float id = d != 0.0f ? 1.0f / d : 0.0f;
        uint16_t dh = f32_to_f16(d);
        out[0] = (uint8_t)(dh & 0xff);
        out[1] = (uint8_t)(dh >> 8);
        for (int j = 0; j < Q8_0_BLOCK; j++) {
            float v = roundf(x[j] * id); /* NaN/inf inputs must not reach the int cast */
            v = v != v ? 0.0f : v > 127.0f ? 127.0f : v < -128.0f ? -128.0f : v;
            out[2 + j] = (uint8_t)(int8_t)v;
        }
    }
}

static int write_tensor_data(AtomicFile *af, const GgufWriterTensor *t) {
    if (!t->from_f32 || t->ggml_type == GGML_TYPE_F32) return file_atomic_write(af, t->data, t->nbytes);
    const float *src = t->data;
    _Alignas(8) uint8_t tmp[16384]; /* 8192 F16/BF16 values or 256 Q8_0 blocks */
    for (uint64_t i = 0; i < t->numel; i += 8192) {
        size_t k = t->numel - i < 8192 ? (size_t)(t->numel - i) : 8192;
        size_t n;
        if (t->ggml_type == GGML_TYPE_Q8_0) {
            quantize_q8_0(src + i, tmp, k / Q8_0_BLOCK);
            n = k / Q8_0_BLOCK * Q8_0_BYTES;
        } else {
            dtype_from_f32(t->ggml_type == GGML_TYPE_F16 ? DT_F16 : DT_BF16, src + i, tmp, k);
            n = k * 2;
        }
        if (file_atomic_write(af, tmp, n)) return -1;
    }
    return 0;
}

static void put_zeros(AtomicFile *af, size_t n) {
    static const uint8_t zeros[256];
    while (n) {
        size_t k = n < sizeof zeros ? n : sizeof zeros;
        file_atomic_write(af, zeros, k);
        n -= k;
    }
}

int gguf_writer_write(const GgufWriter *w, const char *path) {
    char q[IO_QUOTE_CAP];
    if (w->failed) return err_set("%s: not written: an earlier key or tensor was refused", path);
    uint32_t align = GGUF_DEFAULT_ALIGNMENT;
    for (size_t i = 0; i < w->n_kvs; i++) {
        if (strcmp(w->kvs[i].key, "general.alignment") != 0) continue;
        if (w->kvs[i].type != GGUF_TYPE_UINT32) return err_set("%s: key 'general.alignment' must be UINT32", path);
        align = io_le32(w->kvs[i].val);
        if (align == 0 || (align & (align - 1)))
            return err_set("%s: key 'general.alignment': %u is not a power of two", path, align);
    }
    if (w->n_tensors > 1) {
        uint32_t *idx = malloc(w->n_tensors * sizeof *idx);
        if (!idx) return err_set("%s: out of memory", path);
        io_index_sort(idx, w->n_tensors, w->tensors, sizeof *w->tensors);
        for (size_t i = 1; i < w->n_tensors; i++) {
            const char *a = w->tensors[idx[i - 1]].name;
            if (strcmp(a, w->tensors[idx[i]].name) == 0) {
                free(idx);
                return err_set("%s: tensor name '%s' was added twice", path, io_quote(q, a, strlen(a)));
            }
        }
        free(idx);
    }
    StrBuf h = {0};
    uint8_t b8[8];
    strbuf_put(&h, "GGUF", 4);
    io_put_le32(b8, 3);
    strbuf_put(&h, b8, 4);
    io_put_le64(b8, w->n_tensors);
    strbuf_put(&h, b8, 8);
    io_put_le64(b8, w->n_kvs);
    strbuf_put(&h, b8, 8);
    for (size_t i = 0; i < w->n_kvs; i++) {
        const GgufWriterKv *kv = &w->kvs[i];
        size_t kl = strlen(kv->key);
        io_put_le64(b8, kl);
        strbuf_put(&h, b8, 8);
        strbuf_put(&h, kv->key, kl);
        io_put_le32(b8, kv->type);
        strbuf_put(&h, b8, 4);
        strbuf_put(&h, kv->val, kv->len);
    }
    uint64_t off = 0;
    int rc = 0;
    for (size_t i = 0; i < w->n_tensors; i++) {
        const GgufWriterTensor *t = &w->tensors[i];
        size_t nl = strlen(t->name);
        io_put_le64(b8, nl);
        strbuf_put(&h, b8, 8);
        strbuf_put(&h, t->name, nl);
        io_put_le32(b8, (uint32_t)t->ndim);
        strbuf_put(&h, b8, 4);
        for (int d = 0; d < t->ndim; d++) {
            io_put_le64(b8, t->ne[d]);
            strbuf_put(&h, b8, 8);
        }
        io_put_le32(b8, t->ggml_type);
        strbuf_put(&h, b8, 4);
        io_put_le64(b8, off);
        strbuf_put(&h, b8, 8);
        if (io_add_u64(off, t->nbytes, &off) || io_align_up(off, align, &off)) rc = err_set("%s: too large", path);
    }
    if (rc == 0 && h.oom) rc = err_set("%s: out of memory building the header", path);
    if (rc) {
        strbuf_free(&h);
        return -1;
    }
    AtomicFile af;
    if (file_atomic_open(&af, path)) {
        strbuf_free(&h);
        return -1;
    }
    file_atomic_write(&af, h.p, h.n);
    uint64_t pos = h.n;
    io_align_up(h.n, align, &pos);
    put_zeros(&af, (size_t)(pos - h.n));
    strbuf_free(&h);
    for (size_t i = 0; i < w->n_tensors; i++) {
        const GgufWriterTensor *t = &w->tensors[i];
        if (write_tensor_data(&af, t)) break;
        uint64_t end = t->nbytes;
        io_align_up(t->nbytes, align, &end);
        put_zeros(&af, (size_t)(end - t->nbytes));
    }
    return file_atomic_commit(&af);
}
