/* io/safetensors.c - the safetensors reader (sharded sets: safetensors_set.c; the writer:
 * safetensors_write.c). */
#include "safetensors.h"

#include <cJSON.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "io_internal.h"
#include "st_internal.h"
#include "json.h"

/* Most JSON values a header may hold (each costs cJSON ~64 bytes of memory): a
 * guard against headers made of millions of tiny values. ~8 a tensor. */
#define ST_MAX_JSON_VALUES 4000000u

/* ================================================================ dtypes */


/* Every dtype the reference implementation knows. Only the first six map onto
 * core DType; the others are accepted as opaque bytes (supported = 0). */
static const StDtypeInfo st_dtypes[] = {
    {"F32", 32, 15, 1, DT_F32},
    {"F16", 16, 11, 1, DT_F16},
    {"BF16", 16, 12, 1, DT_BF16},
    {"F64", 64, 17, 1, DT_F64},
    {"I32", 32, 13, 1, DT_I32},
    {"I64", 64, 18, 1, DT_I64},
    {"BOOL", 8, 0, 0, DT_F32},
    {"F4", 4, 1, 0, DT_F32},
    {"F6_E2M3", 6, 2, 0, DT_F32},
    {"F6_E3M2", 6, 3, 0, DT_F32},
    {"U8", 8, 4, 0, DT_F32},
    {"I8", 8, 5, 0, DT_F32},
    {"F8_E5M2", 8, 6, 0, DT_F32},
    {"F8_E4M3", 8, 7, 0, DT_F32},
    {"F8_E8M0", 8, 8, 0, DT_F32},
    {"F8_E4M3FNUZ", 8, 7, 0, DT_F32},
    {"F8_E5M2FNUZ", 8, 6, 0, DT_F32},
    {"I16", 16, 9, 0, DT_F32},
    {"U16", 16, 10, 0, DT_F32},
    {"U32", 32, 14, 0, DT_F32},
    {"C64", 64, 16, 0, DT_F32},
    {"U64", 64, 19, 0, DT_F32},
};
#define ST_N_DTYPES (sizeof st_dtypes / sizeof st_dtypes[0])

static const StDtypeInfo *st_dtype_by_name(const char *s) {
    for (size_t i = 0; i < ST_N_DTYPES; i++)
        if (strcmp(st_dtypes[i].name, s) == 0) return &st_dtypes[i];
    return NULL;
}

const StDtypeInfo *st_dtype_by_core(DType t) {
    for (size_t i = 0; i < 6; i++)
        if (st_dtypes[i].dt == t) return &st_dtypes[i];
    return NULL;
}

/* ================================================================ JSON helpers */

/* Checks what cJSON does not: nesting depth, escaped NULs (cJSON would cut the
 * string there), and the number of values. Strings are skipped properly. `pfx` starts
 * every message ("file: what"). */
static int json_prescan(const uint8_t *s, size_t n, const char *pfx) {
    int depth = 0, in_str = 0;
    size_t values = 0;
    for (size_t i = 0; i < n; i++) {
        uint8_t c = s[i];
        if (in_str) {
            if (c == '\\') {
                if (i + 5 < n && s[i + 1] == 'u' && memcmp(s + i + 2, "0000", 4) == 0)
                    return err_set("%s: a string holds an escaped NUL (\\u0000) at byte %zu: not allowed", pfx, i);
                i++;
            } else if (c == '"') {
                in_str = 0;
            }
            continue;
        }
        switch (c) {
        case '"': in_str = 1; break;
        case '{': case '[':
            if (++depth > ST_MAX_DEPTH)
                return err_set("%s: JSON nested deeper than %d levels at byte %zu", pfx, ST_MAX_DEPTH, i);
            values++;
            break;
        case '}': case ']': depth--; break;
        case ',': case ':': values++; break;
        default: break;
        }
        if (values > ST_MAX_JSON_VALUES)
            return err_set("%s: more than %u JSON values: refusing", pfx, ST_MAX_JSON_VALUES);
    }
    return 0;
}

static cJSON *json_parse_object_pfx(const uint8_t *text, size_t n, const char *pfx) {
    size_t bad = utf8_valid_prefix(text, n);
    if (bad != n) {
        err_set("%s: not valid UTF-8 (byte %zu)", pfx, bad);
        return NULL;
    }
    if (json_prescan(text, n, pfx)) return NULL;
    char *copy = malloc(n + 1); /* cJSON wants a terminated buffer to be safe */
    if (!copy) {
        err_set("%s: out of memory (%zu bytes)", pfx, n);
        return NULL;
    }
    memcpy(copy, text, n);
    copy[n] = 0;
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(copy, n, &end, 0);
    if (!root) {
        size_t at = end && end >= copy && end <= copy + n ? (size_t)(end - copy) : 0;
        err_set("%s: not valid JSON (near byte %zu)", pfx, at);
        free(copy);
        return NULL;
    }
    size_t at = (size_t)(end - copy);
    for (size_t i = at; i < n; i++) {
        char c = copy[i];
        if (c != ' ' && c != '\t' && c != '\n' && c != '\r') {
            err_set("%s: unexpected bytes after the JSON object (byte %zu)", pfx, i);
            cJSON_Delete(root);
            free(copy);
            return NULL;
        }
    }
    free(copy);
    if (!cJSON_IsObject(root)) {
        err_set("%s: expected a JSON object, got %s", pfx, io_json_kind(root));
        cJSON_Delete(root);
        return NULL;
    }
    return root;
}

static int cmp_key(const void *a, const void *b) {
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

int io_json_unique_keys(const cJSON *obj, const char *name) {
    size_t n = 0;
    const cJSON *e;
    cJSON_ArrayForEach(e, obj) n++;
    if (n < 2) return 0;
    const char **keys = malloc(n * sizeof *keys);
    if (!keys) return err_set("%s: out of memory", name);
    n = 0;
    cJSON_ArrayForEach(e, obj) keys[n++] = e->string ? e->string : "";
    qsort(keys, n, sizeof *keys, cmp_key);
    int rc = 0;
    for (size_t i = 1; i < n && !rc; i++)
        if (!strcmp(keys[i - 1], keys[i]))
            rc = err_set("%s: key '%.64s%s' appears twice (readers disagree on which one counts)", name, keys[i],
                         strlen(keys[i]) > 64 ? "..." : "");
    free(keys);
    return rc;
}

cJSON *io_json_parse_object(const uint8_t *text, size_t n, const char *name, const char *what) {
    size_t len = strlen(name) + (what ? strlen(what) + 2 : 0) + 1;
    char *pfx = malloc(len);
    if (!pfx) {
        err_set("%s: out of memory", name);
        return NULL;
    }
    if (what) snprintf(pfx, len, "%s: %s", name, what);
    else snprintf(pfx, len, "%s", name);
    cJSON *root = json_parse_object_pfx(text, n, pfx);
    free(pfx);
    return root;
}

/* A non-negative integer below 2^53 (exact in a double). */
static int json_get_uint(const cJSON *v, uint64_t *out) {
    if (!cJSON_IsNumber(v)) return -1;
    double d = v->valuedouble;
    if (!(d >= 0.0) || d >= 9007199254740992.0 || d != floor(d)) return -1;
    *out = (uint64_t)d;
    return 0;
}

/* ================================================================ metadata */

int meta_cmp(const void *a, const void *b) {
    return strcmp(((const StMeta *)a)->key, ((const StMeta *)b)->key);
}

void meta_free(StMeta *m, size_t n) {
    for (size_t i = 0; i < n; i++) {
        free(m[i].key);
        free(m[i].value);
    }
    free(m);
}

/* Sorts and rejects duplicate keys. */
int meta_finish(StMeta *m, size_t n, const char *name, const char *field) {
    if (n > 1) qsort(m, n, sizeof *m, meta_cmp);
    for (size_t i = 1; i < n; i++) {
        if (strcmp(m[i - 1].key, m[i].key) == 0) {
            char q[IO_QUOTE_CAP];
            return err_set("%s: field '%s': key '%s' appears twice", name, field,
                           io_quote(q, m[i].key, strlen(m[i].key)));
        }
    }
    return 0;
}

/* ================================================================ reader */

void st_close(StFile *f) {
    if (!f) return;
    for (size_t i = 0; i < f->n_tensors; i++) free(f->tensors[i].name);
    free(f->tensors);
    meta_free(f->meta, f->n_meta);
    free(f->by_name);
    free(f->name);
    if (f->map.path || f->map.data) file_unmap(&f->map);
    memset(f, 0, sizeof *f);
}

static int tensor_offset_cmp(const void *a, const void *b) {
    const StTensor *x = a, *y = b;
    if (x->offset != y->offset) return x->offset < y->offset ? -1 : 1;
    if (x->nbytes != y->nbytes) return x->nbytes < y->nbytes ? -1 : 1;
    return strcmp(x->name, y->name);
}

static int parse_metadata(StFile *f, const cJSON *obj) {
    if (cJSON_IsNull(obj)) return 0;
    if (f->meta) return err_set("%s: field '__metadata__' appears twice", f->name);
    if (!cJSON_IsObject(obj))
        return err_set("%s: field '__metadata__': expected an object of strings, got %s", f->name, io_json_kind(obj));
    size_t n = (size_t)cJSON_GetArraySize(obj);
    f->meta = calloc(n ? n : 1, sizeof *f->meta);
    if (!f->meta) return err_set("%s: out of memory", f->name);
    for (const cJSON *kv = obj->child; kv; kv = kv->next) {
        char q[IO_QUOTE_CAP];
        if (!cJSON_IsString(kv))
            return err_set("%s: field '__metadata__': key '%s': expected a string value, got %s", f->name,
                           io_quote(q, kv->string, strlen(kv->string)), io_json_kind(kv));
        StMeta *m = &f->meta[f->n_meta];
        m->key = strdup(kv->string);
        m->value = strdup(kv->valuestring);
        f->n_meta++;
        if (!m->key || !m->value) return err_set("%s: out of memory", f->name);
    }
    return meta_finish(f->meta, f->n_meta, f->name, "__metadata__");
}

static int parse_tensor(StFile *f, const cJSON *obj, StTensor *t) {
    char q[IO_QUOTE_CAP];
    const char *nm = io_quote(q, obj->string, strlen(obj->string));
    t->name = strdup(obj->string);
    if (!t->name) return err_set("%s: out of memory", f->name);
    if (!cJSON_IsObject(obj))
        return err_set("%s: tensor '%s': expected an object {dtype, shape, data_offsets}, got %s", f->name, nm,
                       io_json_kind(obj));
    const cJSON *dt = NULL, *shape = NULL, *offs = NULL;
    for (const cJSON *c = obj->child; c; c = c->next) {
        const cJSON **slot = strcmp(c->string, "dtype") == 0          ? &dt
                             : strcmp(c->string, "shape") == 0        ? &shape
                             : strcmp(c->string, "data_offsets") == 0 ? &offs
                                                                      : NULL;
        if (!slot) continue; /* unknown fields are ignored, as the reference does */
        if (*slot) return err_set("%s: tensor '%s': field '%s' appears twice", f->name, nm, c->string);
        *slot = c;
    }
    /* dtype */
    if (!dt) return err_set("%s: tensor '%s': field 'dtype': missing", f->name, nm);
    if (!cJSON_IsString(dt))
        return err_set("%s: tensor '%s': field 'dtype': expected a string, got %s", f->name, nm, io_json_kind(dt));
    const StDtypeInfo *info = st_dtype_by_name(dt->valuestring);
    if (!info) {
        char q2[IO_QUOTE_CAP];
        return err_set("%s: tensor '%s': field 'dtype': unknown dtype '%s' (expected F32, F16, BF16, F64, I32, I64, "
                       "I8, U8, I16, U16, U32, U64, BOOL, F8_*, F6_*, F4 or C64)",
                       f->name, nm, io_quote(q2, dt->valuestring, strlen(dt->valuestring)));
    }
    t->dtype_name = info->name;
    t->supported = info->supported;
    t->dtype = info->dt;
    /* shape */
    if (!shape) return err_set("%s: tensor '%s': field 'shape': missing", f->name, nm);
    if (!cJSON_IsArray(shape))
        return err_set("%s: tensor '%s': field 'shape': expected an array of integers, got %s", f->name, nm,
                       io_json_kind(shape));
    int nd = cJSON_GetArraySize(shape);
    if (nd > ST_MAX_DIMS)
        return err_set("%s: tensor '%s': field 'shape': %d dimensions, more than the limit of %d", f->name, nm, nd,
                       ST_MAX_DIMS);
    t->ndim = nd;
    uint64_t numel = 1;
    int k = 0;
    for (const cJSON *d = shape->child; d; d = d->next, k++) {
        uint64_t v;
        if (json_get_uint(d, &v)) {
            if (cJSON_IsNumber(d))
                return err_set("%s: tensor '%s': field 'shape': dimension %d: expected an integer in [0, 2^53), got %g",
                               f->name, nm, k, d->valuedouble);
            return err_set("%s: tensor '%s': field 'shape': dimension %d: expected an integer, got %s", f->name, nm, k,
                           io_json_kind(d));
        }
        t->shape[k] = (int64_t)v;
        if (io_mul_u64(numel, v, &numel))
            return err_set("%s: tensor '%s': field 'shape': the product of the dimensions overflows 64 bits", f->name,
                           nm);
    }
    t->numel = numel;
    uint64_t bits;
    if (io_mul_u64(numel, info->bits, &bits))
        return err_set("%s: tensor '%s': field 'shape': %llu elements of %s overflow 64 bits of bytes", f->name, nm,
                       (unsigned long long)numel, info->name);
    if (bits % 8)
        return err_set("%s: tensor '%s': field 'shape': %llu elements of %u-bit %s do not fill whole bytes", f->name,
                       nm, (unsigned long long)numel, info->bits, info->name);
    uint64_t need = bits / 8;
    /* data_offsets */
    if (!offs) return err_set("%s: tensor '%s': field 'data_offsets': missing", f->name, nm);
    if (!cJSON_IsArray(offs) || cJSON_GetArraySize(offs) != 2)
        return err_set("%s: tensor '%s': field 'data_offsets': expected [begin, end], got %s", f->name, nm,
                       cJSON_IsArray(offs) ? "an array of another length" : io_json_kind(offs));
    uint64_t b, e;
    if (json_get_uint(offs->child, &b) || json_get_uint(offs->child->next, &e))
        return err_set("%s: tensor '%s': field 'data_offsets': expected two integers in [0, 2^53)", f->name, nm);
    if (e < b)
        return err_set("%s: tensor '%s': field 'data_offsets': [%llu, %llu] is reversed", f->name, nm,
                       (unsigned long long)b, (unsigned long long)e);
    if (e > f->data_size)
        return err_set("%s: tensor '%s': field 'data_offsets': [%llu, %llu] runs past the end of the data area "
                       "(%zu bytes)",
                       f->name, nm, (unsigned long long)b, (unsigned long long)e, f->data_size);
    if (e - b != need)
        return err_set("%s: tensor '%s': field 'data_offsets': [%llu, %llu] holds %llu bytes but its shape and dtype "
                       "%s need %llu",
                       f->name, nm, (unsigned long long)b, (unsigned long long)e, (unsigned long long)(e - b),
                       info->name, (unsigned long long)need);
    t->offset = b;
    t->nbytes = (size_t)need;
    t->data = f->data + b;
    return 0;
}

static int st_parse_header(StFile *f, const uint8_t *hdr, size_t n) {
    cJSON *root = io_json_parse_object(hdr, n, f->name, "header");
    if (!root) return -1;
    size_t count = (size_t)cJSON_GetArraySize(root);
    f->tensors = calloc(count ? count : 1, sizeof *f->tensors);
    if (!f->tensors) {
        cJSON_Delete(root);
        return err_set("%s: out of memory", f->name);
    }
    int rc = 0;
    for (const cJSON *c = root->child; c && rc == 0; c = c->next) {
        if (strcmp(c->string, "__metadata__") == 0) {
            rc = parse_metadata(f, c);
        } else {
            rc = parse_tensor(f, c, &f->tensors[f->n_tensors]);
            f->n_tensors++; /* counted even on error, so st_close frees the name */
        }
    }
    cJSON_Delete(root);
    return rc;
}

/* Names unique; data laid out back to back and covering the whole data area, as
 * the reference implementation requires (so no two tensors overlap). */
static int st_check_layout(StFile *f) {
    char q1[IO_QUOTE_CAP], q2[IO_QUOTE_CAP];
    f->by_name = malloc((f->n_tensors ? f->n_tensors : 1) * sizeof *f->by_name);
    if (!f->by_name) return err_set("%s: out of memory", f->name);
    if (f->n_tensors > 1) qsort(f->tensors, f->n_tensors, sizeof *f->tensors, tensor_offset_cmp);
    io_index_sort(f->by_name, f->n_tensors, f->tensors, sizeof *f->tensors);
    for (size_t i = 1; i < f->n_tensors; i++) {
        const char *a = f->tensors[f->by_name[i - 1]].name, *b = f->tensors[f->by_name[i]].name;
        if (strcmp(a, b) == 0) return err_set("%s: tensor name '%s' appears twice", f->name, io_quote(q1, a, strlen(a)));
    }
    uint64_t end = 0;
    const StTensor *prev = NULL;
    for (size_t i = 0; i < f->n_tensors; i++) {
        const StTensor *t = &f->tensors[i];
        if (t->offset < end)
            return err_set("%s: tensor '%s' [%llu, %llu] overlaps tensor '%s' [%llu, %llu]", f->name,
                           io_quote(q1, t->name, strlen(t->name)), (unsigned long long)t->offset,
                           (unsigned long long)(t->offset + t->nbytes), io_quote(q2, prev->name, strlen(prev->name)),
                           (unsigned long long)prev->offset, (unsigned long long)(prev->offset + prev->nbytes));
        if (t->offset > end)
            return err_set("%s: tensor '%s' starts at data offset %llu but the data before it ends at %llu: "
                           "holes in the data area are not allowed",
                           f->name, io_quote(q1, t->name, strlen(t->name)), (unsigned long long)t->offset,
                           (unsigned long long)end);
        end = t->offset + t->nbytes;
        prev = t;
    }
    if (end != f->data_size)
        return err_set("%s: the data area is %zu bytes but the tensors cover %llu: trailing bytes are not allowed",
                       f->name, f->data_size, (unsigned long long)end);
    return 0;
}

int st_parse_buffer(StFile *f, const void *buf, size_t size, const char *display_name) {
    memset(f, 0, sizeof *f);
    f->name = strdup(display_name ? display_name : "(buffer)");
    if (!f->name) return err_set("out of memory");
    const uint8_t *p = buf;
    int rc = 0;
    if (size < 8) {
        rc = err_set("%s: file is %zu bytes, too short for the 8-byte header length", f->name, size);
    } else {
        uint64_t n = io_le64(p);
        if (n > ST_MAX_HEADER)
            rc = err_set("%s: header length %llu is more than the limit of %u bytes", f->name, (unsigned long long)n,
                         ST_MAX_HEADER);
        else if (n > size - 8)
            rc = err_set("%s: header length %llu runs past the end of the file (%zu bytes)", f->name,
                         (unsigned long long)n, size);
        else if (n < 2)
            rc = err_set("%s: header length %llu is too short for a JSON object", f->name, (unsigned long long)n);
        if (rc == 0) {
            f->header_len = (size_t)n;
            f->data = p + 8 + n;
            f->data_size = size - 8 - (size_t)n;
            rc = st_parse_header(f, p + 8, (size_t)n);
        }
        if (rc == 0) rc = st_check_layout(f);
    }
    if (rc) {
        st_close(f);
        return -1;
    }
    return 0;
}

int st_open(StFile *f, const char *path) {
    MappedFile m;
    if (file_map(&m, path)) {
        memset(f, 0, sizeof *f);
        return -1;
    }
    if (st_parse_buffer(f, m.data, m.size, path)) {
        file_unmap(&m);
        memset(f, 0, sizeof *f);
        return -1;
    }
    f->map = m;
    return 0;
}

const StTensor *st_tensor_find(const StFile *f, const char *name) {
    long i = io_index_find(f->by_name, f->n_tensors, f->tensors, sizeof *f->tensors, name);
    return i < 0 ? NULL : &f->tensors[i];
}

const char *st_meta_get(const StFile *f, const char *key) {
    long i = io_sorted_find(f->meta, f->n_meta, sizeof *f->meta, key);
    return i < 0 ? NULL : f->meta[i].value;
}

int st_tensor_to_f32(const StFile *f, const StTensor *t, float *dst) {
    char q[IO_QUOTE_CAP];
    if (!t->supported)
        return err_set("%s: tensor '%s': dtype %s is not supported (expected F32, F16, BF16, F64, I32 or I64)",
                       f ? f->name : "?", io_quote(q, t->name, strlen(t->name)), t->dtype_name);
    io_to_f32(t->dtype, t->data, t->numel, dst);
    return 0;
}
