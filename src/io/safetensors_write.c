/* io/safetensors_write.c - the safetensors writer (safetensors.h): tensors and metadata
 * collected in memory, then written atomically in the reference implementation's order. */
#include "safetensors.h"

#include <cJSON.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "io_internal.h"
#include "json.h"
#include "st_internal.h"

void st_writer_init(StWriter *w) { memset(w, 0, sizeof *w); }

void st_writer_free(StWriter *w) {
    if (!w) return;
    for (size_t i = 0; i < w->n_tensors; i++) free(w->tensors[i].name);
    free(w->tensors);
    meta_free(w->meta, w->n_meta);
    memset(w, 0, sizeof *w);
}

static int writer_add(StWriter *w, const char *name, DType dtype, int ndim, const int64_t *shape, const void *data,
                      int from_f32) {
    char q[IO_QUOTE_CAP];
    const char *nm = name ? io_quote(q, name, strlen(name)) : "(null)";
    int rc = 0;
    const StDtypeInfo *info = st_dtype_by_core(dtype);
    if (!name) rc = err_set("safetensors writer: tensor name is NULL");
    else if (utf8_valid_prefix((const uint8_t *)name, strlen(name)) != strlen(name))
        rc = err_set("safetensors writer: tensor '%s': name is not valid UTF-8", nm);
    else if (strcmp(name, "__metadata__") == 0)
        rc = err_set("safetensors writer: tensor '%s': name is reserved", nm);
    else if (!info || (from_f32 && dtype != DT_F32 && dtype != DT_F16 && dtype != DT_BF16))
        rc = err_set("safetensors writer: tensor '%s': dtype %s cannot be written (expected %s)", nm,
                     dtype_name(dtype), from_f32 ? "F32, F16 or BF16" : "F32, F16, BF16, F64, I32 or I64");
    else if (ndim < 0 || ndim > ST_MAX_DIMS)
        rc = err_set("safetensors writer: tensor '%s': %d dimensions (expected 0..%d)", nm, ndim, ST_MAX_DIMS);
    StWriterTensor t = {0};
    uint64_t numel = 1;
    for (int i = 0; rc == 0 && i < ndim; i++) {
        if (shape[i] < 0 || io_mul_u64(numel, (uint64_t)shape[i], &numel))
            rc = err_set("safetensors writer: tensor '%s': bad shape (dimension %d is %lld or the product overflows)",
                         nm, i, (long long)shape[i]);
        else t.shape[i] = shape[i];
    }
    int ok = 1;
    size_t nbytes = rc == 0 ? dtype_nbytes(dtype, numel, &ok) : 0;
    if (rc == 0 && !ok) rc = err_set("safetensors writer: tensor '%s': too large", nm);
    if (rc == 0 && numel > 0 && !data) rc = err_set("safetensors writer: tensor '%s': data is NULL", nm);
    if (rc == 0 && w->n_tensors == w->cap_tensors) {
        size_t cap = w->cap_tensors ? 2 * w->cap_tensors : 16;
        StWriterTensor *p = realloc(w->tensors, cap * sizeof *p);
        if (!p) rc = err_set("safetensors writer: out of memory");
        else {
            w->tensors = p;
            w->cap_tensors = cap;
        }
    }
    if (rc == 0) {
        t.name = strdup(name);
        if (!t.name) rc = err_set("safetensors writer: out of memory");
    }
    if (rc) {
        w->failed = 1;
        return -1;
    }
    t.dtype = dtype;
    t.ndim = ndim;
    t.numel = numel;
    t.nbytes = nbytes;
    t.data = data;
    t.from_f32 = from_f32;
    w->tensors[w->n_tensors++] = t;
    return 0;
}

int st_writer_add(StWriter *w, const char *name, DType dtype, int ndim, const int64_t *shape, const void *data) {
    return writer_add(w, name, dtype, ndim, shape, data, 0);
}

int st_writer_add_f32(StWriter *w, const char *name, DType dtype, int ndim, const int64_t *shape, const float *src) {
    return writer_add(w, name, dtype, ndim, shape, src, 1);
}

int st_writer_meta_set(StWriter *w, const char *key, const char *value) {
    if (!key || !value || utf8_valid_prefix((const uint8_t *)key, strlen(key)) != strlen(key) ||
        utf8_valid_prefix((const uint8_t *)value, strlen(value)) != strlen(value)) {
        w->failed = 1;
        return err_set("safetensors writer: metadata key and value must be valid UTF-8 strings");
    }
    for (size_t i = 0; i < w->n_meta; i++) {
        if (strcmp(w->meta[i].key, key) == 0) {
            char *v = strdup(value);
            if (!v) {
                w->failed = 1;
                return err_set("safetensors writer: out of memory");
            }
            free(w->meta[i].value);
            w->meta[i].value = v;
            return 0;
        }
    }
    if (w->n_meta == w->cap_meta) {
        size_t cap = w->cap_meta ? 2 * w->cap_meta : 8;
        StMeta *p = realloc(w->meta, cap * sizeof *p);
        if (!p) {
            w->failed = 1;
            return err_set("safetensors writer: out of memory");
        }
        w->meta = p;
        w->cap_meta = cap;
    }
    StMeta m = {strdup(key), strdup(value)};
    if (!m.key || !m.value) {
        free(m.key);
        free(m.value);
        w->failed = 1;
        return err_set("safetensors writer: out of memory");
    }
    w->meta[w->n_meta++] = m;
    return 0;
}

static int wt_order_cmp(const void *a, const void *b) {
    const StWriterTensor *x = *(const StWriterTensor *const *)a, *y = *(const StWriterTensor *const *)b;
    int rx = st_dtype_by_core(x->dtype)->rank, ry = st_dtype_by_core(y->dtype)->rank;
    if (rx != ry) return rx > ry ? -1 : 1;
    return strcmp(x->name, y->name);
}

static int write_tensor_data(AtomicFile *af, const StWriterTensor *t) {
    if (!t->from_f32 || t->dtype == DT_F32) return file_atomic_write(af, t->data, t->nbytes);
    uint16_t tmp[8192];
    const float *src = t->data;
    for (uint64_t i = 0; i < t->numel; i += 8192) {
        size_t k = t->numel - i < 8192 ? (size_t)(t->numel - i) : 8192;
        dtype_from_f32(t->dtype, src + i, tmp, k);
        if (file_atomic_write(af, tmp, k * 2)) return -1;
    }
    return 0;
}

int st_writer_write(const StWriter *w, const char *path) {
    if (w->failed) return err_set("%s: not written: an earlier tensor or metadata entry was refused", path);
    const StWriterTensor **order = malloc((w->n_tensors ? w->n_tensors : 1) * sizeof *order);
    StMeta *meta = malloc((w->n_meta ? w->n_meta : 1) * sizeof *meta);
    if (!order || !meta) {
        free(order);
        free(meta);
        return err_set("%s: out of memory", path);
    }
    for (size_t i = 0; i < w->n_tensors; i++) order[i] = &w->tensors[i];
    if (w->n_tensors > 1) qsort(order, w->n_tensors, sizeof *order, wt_order_cmp);
    if (w->n_meta) memcpy(meta, w->meta, w->n_meta * sizeof *meta);
    if (w->n_meta > 1) qsort(meta, w->n_meta, sizeof *meta, meta_cmp);
    int rc = 0;
    /* names must be unique */
    if (rc == 0 && w->n_tensors > 1) {
        uint32_t *idx = malloc(w->n_tensors * sizeof *idx);
        if (!idx) rc = err_set("%s: out of memory", path);
        else {
            io_index_sort(idx, w->n_tensors, w->tensors, sizeof *w->tensors);
            for (size_t i = 1; i < w->n_tensors && rc == 0; i++) {
                const char *a = w->tensors[idx[i - 1]].name;
                if (strcmp(a, w->tensors[idx[i]].name) == 0) {
                    char q[IO_QUOTE_CAP];
                    rc = err_set("%s: tensor name '%s' was added twice", path, io_quote(q, a, strlen(a)));
                }
            }
            free(idx);
        }
    }
    StrBuf h = {0};
    if (rc == 0) {
        strbuf_put(&h, "{", 1);
        int first = 1;
        if (w->n_meta) {
            strbuf_puts(&h, "\"__metadata__\":{");
            for (size_t i = 0; i < w->n_meta; i++) {
                if (i) strbuf_put(&h, ",", 1);
                io_buf_json_str(&h, meta[i].key, strlen(meta[i].key));
                strbuf_put(&h, ":", 1);
                io_buf_json_str(&h, meta[i].value, strlen(meta[i].value));
            }
            strbuf_put(&h, "}", 1);
            first = 0;
        }
        uint64_t off = 0;
        for (size_t i = 0; i < w->n_tensors; i++) {
            const StWriterTensor *t = order[i];
            if (!first) strbuf_put(&h, ",", 1);
            first = 0;
            io_buf_json_str(&h, t->name, strlen(t->name));
            strbuf_printf(&h, ":{\"dtype\":\"%s\",\"shape\":[", st_dtype_by_core(t->dtype)->name);
            for (int d = 0; d < t->ndim; d++) strbuf_printf(&h, d ? ",%lld" : "%lld", (long long)t->shape[d]);
            strbuf_printf(&h, "],\"data_offsets\":[%llu,%llu]}", (unsigned long long)off,
                          (unsigned long long)(off + t->nbytes));
            off += t->nbytes;
        }
        strbuf_put(&h, "}", 1);
        while (h.n % 8) strbuf_put(&h, " ", 1);
        if (h.oom) rc = err_set("%s: out of memory building the header", path);
        else if (h.n > ST_MAX_HEADER)
            rc = err_set("%s: header would be %zu bytes, more than the limit of %u", path, h.n, ST_MAX_HEADER);
    }
    if (rc == 0) {
        AtomicFile af;
        if (file_atomic_open(&af, path)) {
            rc = -1;
        } else {
            uint8_t len8[8];
            io_put_le64(len8, h.n);
            file_atomic_write(&af, len8, 8);
            file_atomic_write(&af, h.p, h.n);
            for (size_t i = 0; i < w->n_tensors; i++)
                if (write_tensor_data(&af, order[i])) break;
            rc = file_atomic_commit(&af);
        }
    }
    strbuf_free(&h);
    free(order);
    free(meta);
    return rc;
}
