/* io/gguf.c - GGUF v2/v3 reader (the writer: gguf_write.c). */
#include "gguf.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "io_internal.h"

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "io/gguf.c assumes a little-endian host"
#endif

#define GGUF_MAX_KEY 65535u /* the spec's limit on key length */

#include "gguf_types.h"

const char *gguf_value_type_name(uint32_t t) { return t < GGUF_TYPE_COUNT ? value_type_names[t] : "?"; }
const char *gguf_ggml_type_name(uint32_t t) { return t < GGML_N_TYPES ? ggml_types[t].name : "?"; }


/* ================================================================ reader: cursor */

typedef struct {
    const uint8_t *p;
    size_t size, pos;
    const char *name;
} Cur;

static int cur_need(Cur *c, uint64_t n, const char *what) {
    if (n > c->size - c->pos)
        return err_set("%s: truncated: %s needs %llu bytes at offset %zu but the file is %zu bytes", c->name, what,
                       (unsigned long long)n, c->pos, c->size);
    return 0;
}

static int cur_u32(Cur *c, uint32_t *v, const char *what) {
    if (cur_need(c, 4, what)) return -1;
    *v = io_le32(c->p + c->pos);
    c->pos += 4;
    return 0;
}

static int cur_u64(Cur *c, uint64_t *v, const char *what) {
    if (cur_need(c, 8, what)) return -1;
    *v = io_le64(c->p + c->pos);
    c->pos += 8;
    return 0;
}

static int cur_str(Cur *c, GgufStr *s, const char *what) {
    uint64_t n;
    if (cur_u64(c, &n, what)) return -1;
    if (n > c->size - c->pos)
        return err_set("%s: %s: string length %llu at offset %zu runs past the end of the file (%zu bytes)", c->name,
                       what, (unsigned long long)n, c->pos - 8, c->size);
    s->ptr = (const char *)c->p + c->pos;
    s->len = n;
    c->pos += (size_t)n;
    return 0;
}

/* A key or tensor name: non-empty UTF-8 without NUL; returns a malloc'd copy. */
static char *name_copy(Cur *c, const GgufStr *s, const char *what, size_t max_len) {
    char q[IO_QUOTE_CAP];
    if (s->len == 0) {
        err_set("%s: %s is empty", c->name, what);
        return NULL;
    }
    if (max_len && s->len > max_len) {
        err_set("%s: %s '%s' is %llu bytes, more than the limit of %zu", c->name, what, io_quote(q, s->ptr, 60),
                (unsigned long long)s->len, max_len);
        return NULL;
    }
    if (memchr(s->ptr, 0, (size_t)s->len)) {
        err_set("%s: %s '%s' contains a NUL byte", c->name, what, io_quote(q, s->ptr, (size_t)s->len));
        return NULL;
    }
    size_t bad = utf8_valid_prefix((const uint8_t *)s->ptr, (size_t)s->len);
    if (bad != s->len) {
        err_set("%s: %s '%s' is not valid UTF-8 (byte %zu)", c->name, what, io_quote(q, s->ptr, (size_t)s->len), bad);
        return NULL;
    }
    char *r = malloc((size_t)s->len + 1);
    if (!r) {
        err_set("%s: out of memory", c->name);
        return NULL;
    }
    memcpy(r, s->ptr, (size_t)s->len);
    r[s->len] = 0;
    return r;
}

/* ================================================================ reader */

void gguf_close(GgufFile *g) {
    if (!g) return;
    for (size_t i = 0; i < g->n_kvs; i++) {
        free(g->kvs[i].key);
        free(g->kvs[i].cstr);
        free(g->kvs[i].arr_strs);
    }
    free(g->kvs);
    for (size_t i = 0; i < g->n_tensors; i++) free(g->tensors[i].name);
    free(g->tensors);
    free(g->kv_by_name);
    free(g->tensor_by_name);
    free(g->name);
    if (g->map.path || g->map.data) file_unmap(&g->map);
    memset(g, 0, sizeof *g);
}

static int parse_value(Cur *c, GgufKv *kv, const char *key) {
    char what[160], q[IO_QUOTE_CAP];
    snprintf(what, sizeof what, "key '%s'", io_quote(q, key, strlen(key)));
    size_t start = c->pos;
    kv->raw = c->p + c->pos;
    if (kv->type == GGUF_TYPE_STRING) {
        if (cur_str(c, &kv->str, what)) return -1;
        kv->cstr = malloc((size_t)kv->str.len + 1);
        if (!kv->cstr) return err_set("%s: out of memory", c->name);
        memcpy(kv->cstr, kv->str.ptr, (size_t)kv->str.len);
        kv->cstr[kv->str.len] = 0;
    } else if (kv->type == GGUF_TYPE_ARRAY) {
        uint32_t et;
        uint64_t n;
        if (cur_u32(c, &et, what) || cur_u64(c, &n, what)) return -1;
        if (et >= GGUF_TYPE_COUNT)
            return err_set("%s: %s: unknown array element type %u (expected 0..12)", c->name, what, et);
        if (et == GGUF_TYPE_ARRAY) return err_set("%s: %s: nested arrays are not supported", c->name, what);
        kv->arr_type = (GgufValueType)et;
        kv->arr_count = n;
        kv->arr_data = c->p + c->pos;
        size_t left = c->size - c->pos;
        if (et == GGUF_TYPE_STRING) {
            if (n > left / 8)
                return err_set("%s: %s: array of %llu strings cannot fit in the %zu bytes left", c->name, what,
                               (unsigned long long)n, left);
            kv->arr_strs = malloc((n ? (size_t)n : 1) * sizeof *kv->arr_strs);
            if (!kv->arr_strs) return err_set("%s: out of memory", c->name);
            for (uint64_t i = 0; i < n; i++)
                if (cur_str(c, &kv->arr_strs[i], what)) return -1;
        } else {
            uint64_t bytes;
            if (io_mul_u64(n, value_type_size[et], &bytes) || bytes > left)
                return err_set("%s: %s: array of %llu %s elements runs past the end of the file (%zu bytes left)",
                               c->name, what, (unsigned long long)n, value_type_names[et], left);
            c->pos += (size_t)bytes;
        }
    } else if (kv->type < GGUF_TYPE_COUNT) {
        if (cur_need(c, value_type_size[kv->type], what)) return -1;
        c->pos += value_type_size[kv->type];
    } else {
        return err_set("%s: %s: unknown value type %u (expected 0..12)", c->name, what, (unsigned)kv->type);
    }
    kv->raw_len = c->pos - start;
    return 0;
}

static int tensor_offset_cmp(const void *a, const void *b, void *ctx) {
    const GgufTensor *t = ctx;
    const GgufTensor *x = &t[*(const uint32_t *)a], *y = &t[*(const uint32_t *)b];
    if (x->offset != y->offset) return x->offset < y->offset ? -1 : 1;
    if (x->nbytes != y->nbytes) return x->nbytes < y->nbytes ? -1 : 1;
    return 0;
}

static int parse_tensor_info(Cur *c, GgufFile *g, GgufTensor *t, size_t i) {
    char what[64], q[IO_QUOTE_CAP];
    snprintf(what, sizeof what, "tensor info %zu", i);
    GgufStr s;
    if (cur_str(c, &s, what)) return -1;
    t->name = name_copy(c, &s, "tensor name", 0);
    if (!t->name) return -1;
    const char *nm = io_quote(q, t->name, strlen(t->name));
    snprintf(what, sizeof what, "tensor '%.40s'", nm);
    uint32_t nd;
    if (cur_u32(c, &nd, what)) return -1;
    if (nd > GGUF_MAX_DIMS)
        return err_set("%s: tensor '%s': n_dims %u is more than %d", c->name, nm, nd, GGUF_MAX_DIMS);
    t->ndim = (int)nd;
    uint64_t numel = 1;
    for (int d = 0; d < GGUF_MAX_DIMS; d++) t->ne[d] = 1;
    for (uint32_t d = 0; d < nd; d++) {
        if (cur_u64(c, &t->ne[d], what)) return -1;
        if (t->ne[d] > (uint64_t)INT64_MAX)
            return err_set("%s: tensor '%s': ne[%u] = %llu is negative as a signed 64-bit count", c->name, nm, d,
                           (unsigned long long)t->ne[d]);
        if (io_mul_u64(numel, t->ne[d], &numel) || numel > (uint64_t)INT64_MAX)
            return err_set("%s: tensor '%s': the product of ne[] overflows 63 bits", c->name, nm);
    }
    t->numel = numel;
    if (cur_u32(c, &t->ggml_type, what)) return -1;
    if (t->ggml_type >= GGML_N_TYPES)
        return err_set("%s: tensor '%s': unknown ggml type %u", c->name, nm, t->ggml_type);
    const GgmlTypeInfo *ti = &ggml_types[t->ggml_type];
    t->type_name = ti->name;
    if (ti->blck == 0)
        return err_set("%s: tensor '%s': ggml type %s (%u) was removed from GGUF and is not supported", c->name, nm,
                       ti->name, t->ggml_type);
    t->supported = ti->supported;
    t->dtype = ti->dt;
    if (t->ne[0] % ti->blck)
        return err_set("%s: tensor '%s': ne[0] = %llu is not a multiple of the block size %u of %s", c->name, nm,
                       (unsigned long long)t->ne[0], ti->blck, ti->name);
    uint64_t nbytes;
    if (io_mul_u64(numel / ti->blck, ti->size, &nbytes) || nbytes > SIZE_MAX)
        return err_set("%s: tensor '%s': its size overflows", c->name, nm);
    t->nbytes = (size_t)nbytes;
    if (cur_u64(c, &t->offset, what)) return -1;
    if (t->offset % g->alignment)
        return err_set("%s: tensor '%s': offset %llu is not a multiple of the alignment %u", c->name, nm,
                       (unsigned long long)t->offset, g->alignment);
    return 0;
}

static int gguf_parse(GgufFile *g, Cur *c) {
    char q[IO_QUOTE_CAP], q2[IO_QUOTE_CAP];
    if (c->size < 4 || memcmp(c->p, "GGUF", 4) != 0)
        return err_set("%s: bad magic: expected 'GGUF', got '%s'", g->name,
                       io_quote(q, (const char *)c->p, c->size < 4 ? c->size : 4));
    c->pos = 4;
    if (cur_u32(c, &g->version, "the version")) return -1;
    if (g->version != 2 && g->version != 3) {
        uint32_t sw = __builtin_bswap32(g->version);
        if (sw == 2 || sw == 3)
            return err_set("%s: version field reads %u: a big-endian GGUF file, not supported (expected version 2 "
                           "or 3, little-endian)",
                           g->name, g->version);
        return err_set("%s: unsupported GGUF version %u (expected 2 or 3)", g->name, g->version);
    }
    uint64_t n_tensors, n_kvs;
    if (cur_u64(c, &n_tensors, "tensor_count") || cur_u64(c, &n_kvs, "kv_count")) return -1;
    size_t left = c->size - c->pos;
    /* the smallest kv is 8 (key length) + 1 (key) + 4 (type) + 1 (UINT8) bytes, the
     * smallest tensor info 8 + 1 + 4 (n_dims = 0) + 4 (type) + 8 (offset) */
    if (n_kvs > left / 14)
        return err_set("%s: kv_count %llu cannot fit in the %zu bytes left", g->name, (unsigned long long)n_kvs, left);
    if (n_tensors > left / 25)
        return err_set("%s: tensor_count %llu cannot fit in the %zu bytes left", g->name, (unsigned long long)n_tensors,
                       left);
    g->kvs = calloc(n_kvs ? (size_t)n_kvs : 1, sizeof *g->kvs);
    g->tensors = calloc(n_tensors ? (size_t)n_tensors : 1, sizeof *g->tensors);
    g->kv_by_name = malloc((n_kvs ? (size_t)n_kvs : 1) * sizeof *g->kv_by_name);
    g->tensor_by_name = malloc((n_tensors ? (size_t)n_tensors : 1) * sizeof *g->tensor_by_name);
    if (!g->kvs || !g->tensors || !g->kv_by_name || !g->tensor_by_name) return err_set("%s: out of memory", g->name);

    /* ---- key/values */
    for (size_t i = 0; i < n_kvs; i++) {
        GgufKv *kv = &g->kvs[i];
        char what[64];
        snprintf(what, sizeof what, "kv %zu", i);
        GgufStr ks;
        if (cur_str(c, &ks, what)) return -1;
        kv->key = name_copy(c, &ks, "key", GGUF_MAX_KEY);
        g->n_kvs++;
        if (!kv->key) return -1;
        uint32_t type;
        snprintf(what, sizeof what, "key '%.40s'", io_quote(q, kv->key, strlen(kv->key)));
        if (cur_u32(c, &type, what)) return -1;
        kv->type = (GgufValueType)type;
        if (type >= GGUF_TYPE_COUNT)
            return err_set("%s: key '%s': unknown value type %u (expected 0..12)", g->name,
                           io_quote(q, kv->key, strlen(kv->key)), type);
        if (parse_value(c, kv, kv->key)) return -1;
    }
    io_index_sort(g->kv_by_name, g->n_kvs, g->kvs, sizeof *g->kvs);
    for (size_t i = 1; i < g->n_kvs; i++) {
        const char *a = g->kvs[g->kv_by_name[i - 1]].key;
        if (strcmp(a, g->kvs[g->kv_by_name[i]].key) == 0)
            return err_set("%s: key '%s' appears twice", g->name, io_quote(q, a, strlen(a)));
    }
    g->alignment = GGUF_DEFAULT_ALIGNMENT;
    const GgufKv *al = gguf_kv_find(g, "general.alignment");
    if (al) {
        if (al->type != GGUF_TYPE_UINT32)
            return err_set("%s: key 'general.alignment': expected UINT32, got %s", g->name,
                           gguf_value_type_name(al->type));
        uint32_t a = io_le32(al->raw);
        if (a == 0 || (a & (a - 1)))
            return err_set("%s: key 'general.alignment': %u is not a power of two", g->name, a);
        g->alignment = a;
    }

    /* ---- tensor infos */
    for (size_t i = 0; i < n_tensors; i++) {
        int rc = parse_tensor_info(c, g, &g->tensors[i], i);
        g->n_tensors++;
        if (rc) return -1;
    }
    io_index_sort(g->tensor_by_name, g->n_tensors, g->tensors, sizeof *g->tensors);
    for (size_t i = 1; i < g->n_tensors; i++) {
        const char *a = g->tensors[g->tensor_by_name[i - 1]].name;
        if (strcmp(a, g->tensors[g->tensor_by_name[i]].name) == 0)
            return err_set("%s: tensor name '%s' appears twice", g->name, io_quote(q, a, strlen(a)));
    }

    /* ---- data section */
    uint64_t data_off;
    if (io_align_up(c->pos, g->alignment, &data_off))
        return err_set("%s: the data section offset overflows", g->name);
    g->data_offset = (size_t)data_off;
    if (g->n_tensors && data_off > c->size)
        return err_set("%s: the data section starts at offset %llu (aligned to %u), past the end of the file (%zu "
                       "bytes)",
                       g->name, (unsigned long long)data_off, g->alignment, c->size);
    for (size_t i = 0; i < g->n_tensors; i++) {
        GgufTensor *t = &g->tensors[i];
        uint64_t begin, end;
        if (io_add_u64(data_off, t->offset, &begin) || io_add_u64(begin, t->nbytes, &end) || end > c->size)
            return err_set("%s: tensor '%s': data at offset %llu + %zu bytes runs past the end of the file (%zu "
                           "bytes, data section at %llu)",
                           g->name, io_quote(q, t->name, strlen(t->name)), (unsigned long long)t->offset, t->nbytes,
                           c->size, (unsigned long long)data_off);
        t->data = c->p + begin;
    }
    /* no overlaps */
    if (g->n_tensors > 1) {
        uint32_t *ord = malloc(g->n_tensors * sizeof *ord);
        if (!ord) return err_set("%s: out of memory", g->name);
        for (size_t i = 0; i < g->n_tensors; i++) ord[i] = (uint32_t)i;
        qsort_r(ord, g->n_tensors, sizeof *ord, tensor_offset_cmp, g->tensors);
        for (size_t i = 1; i < g->n_tensors; i++) {
            const GgufTensor *a = &g->tensors[ord[i - 1]], *b = &g->tensors[ord[i]];
            if (b->offset < a->offset + a->nbytes) {
                err_set("%s: tensor '%s' [%llu, +%zu) overlaps tensor '%s' [%llu, +%zu)", g->name,
                        io_quote(q, b->name, strlen(b->name)), (unsigned long long)b->offset, b->nbytes,
                        io_quote(q2, a->name, strlen(a->name)), (unsigned long long)a->offset, a->nbytes);
                free(ord);
                return -1;
            }
        }
        free(ord);
    }
    return 0;
}

int gguf_parse_buffer(GgufFile *g, const void *buf, size_t size, const char *display_name) {
    memset(g, 0, sizeof *g);
    const char *dn = display_name ? display_name : "(buffer)";
    g->name = malloc(strlen(dn) + 1);
    if (!g->name) return err_set("out of memory");
    strcpy(g->name, dn);
    g->base = buf;
    g->size = size;
    Cur c = {buf, size, 0, g->name};
    if (gguf_parse(g, &c)) {
        gguf_close(g);
        return -1;
    }
    return 0;
}

int gguf_open(GgufFile *g, const char *path) {
    MappedFile m;
    if (file_map(&m, path)) {
        memset(g, 0, sizeof *g);
        return -1;
    }
    static const uint8_t empty[1];
    if (gguf_parse_buffer(g, m.data ? m.data : empty, m.size, path)) {
        file_unmap(&m);
        return -1;
    }
    g->map = m;
    return 0;
}

/* ================================================================ lookups */

const GgufKv *gguf_kv_find(const GgufFile *g, const char *key) {
    long i = io_index_find(g->kv_by_name, g->n_kvs, g->kvs, sizeof *g->kvs, key);
    return i < 0 ? NULL : &g->kvs[i];
}

const GgufTensor *gguf_tensor_find(const GgufFile *g, const char *name) {
    long i = io_index_find(g->tensor_by_name, g->n_tensors, g->tensors, sizeof *g->tensors, name);
    return i < 0 ? NULL : &g->tensors[i];
}

static const GgufKv *kv_need(const GgufFile *g, const char *key) {
    const GgufKv *kv = gguf_kv_find(g, key);
    if (!kv) {
        char q[IO_QUOTE_CAP];
        err_set("%s: key '%s' not found", g->name, io_quote(q, key, strlen(key)));
    }
    return kv;
}

/* Reads an integer element of type t at p: *neg = 1 and *mag = -value for negatives. */
static int int_read(GgufValueType t, const uint8_t *p, int *neg, uint64_t *mag) {
    int64_t s;
    *neg = 0;
    switch (t) {
    case GGUF_TYPE_UINT8: *mag = p[0]; return 0;
    case GGUF_TYPE_UINT16: *mag = (uint64_t)(p[0] | p[1] << 8); return 0;
    case GGUF_TYPE_UINT32: *mag = io_le32(p); return 0;
    case GGUF_TYPE_UINT64: *mag = io_le64(p); return 0;
    case GGUF_TYPE_INT8: s = (int8_t)p[0]; break;
    case GGUF_TYPE_INT16: s = (int16_t)(uint16_t)(p[0] | p[1] << 8); break;
    case GGUF_TYPE_INT32: s = (int32_t)io_le32(p); break;
    case GGUF_TYPE_INT64: s = (int64_t)io_le64(p); break;
    default: return -1;
    }
    if (s < 0) {
        *neg = 1;
        *mag = (uint64_t)0 - (uint64_t)s;
    } else {
        *mag = (uint64_t)s;
    }
    return 0;
}

static int is_int_type(GgufValueType t) {
    return t == GGUF_TYPE_UINT8 || t == GGUF_TYPE_INT8 || t == GGUF_TYPE_UINT16 || t == GGUF_TYPE_INT16 ||
           t == GGUF_TYPE_UINT32 || t == GGUF_TYPE_INT32 || t == GGUF_TYPE_UINT64 || t == GGUF_TYPE_INT64;
}

static int get_int(const GgufFile *g, const char *key, int allow_neg, uint64_t max_pos, uint64_t max_neg,
                   const char *want, int *neg, uint64_t *mag) {
    const GgufKv *kv = kv_need(g, key);
    if (!kv) return -1;
    char q[IO_QUOTE_CAP];
    if (int_read(kv->type, kv->raw, neg, mag))
        return err_set("%s: key '%s': expected %s, got %s", g->name, io_quote(q, key, strlen(key)), want,
                       gguf_value_type_name(kv->type));
    if ((*neg && (!allow_neg || *mag > max_neg)) || (!*neg && *mag > max_pos))
        return err_set("%s: key '%s': expected %s, got %s %s%llu (out of range)", g->name,
                       io_quote(q, key, strlen(key)), want, gguf_value_type_name(kv->type), *neg ? "-" : "",
                       (unsigned long long)*mag);
    return 0;
}

int gguf_get_u32(const GgufFile *g, const char *key, uint32_t *out) {
    int neg = 0;
    uint64_t m = 0;
    if (get_int(g, key, 0, UINT32_MAX, 0, "an unsigned 32-bit integer", &neg, &m)) return -1;
    *out = (uint32_t)m;
    return 0;
}

int gguf_get_i32(const GgufFile *g, const char *key, int32_t *out) {
    int neg = 0;
    uint64_t m = 0;
    if (get_int(g, key, 1, INT32_MAX, (uint64_t)INT32_MAX + 1, "a signed 32-bit integer", &neg, &m)) return -1;
    *out = neg ? (int32_t)(-(int64_t)m) : (int32_t)m;
    return 0;
}

int gguf_get_u64(const GgufFile *g, const char *key, uint64_t *out) {
    int neg = 0;
    uint64_t m = 0;
    if (get_int(g, key, 0, UINT64_MAX, 0, "an unsigned 64-bit integer", &neg, &m)) return -1;
    *out = m;
    return 0;
}

int gguf_get_f32(const GgufFile *g, const char *key, float *out) {
    const GgufKv *kv = kv_need(g, key);
    if (!kv) return -1;
    if (kv->type == GGUF_TYPE_FLOAT32) {
        memcpy(out, kv->raw, 4);
        return 0;
    }
    if (kv->type == GGUF_TYPE_FLOAT64) {
        double d;
        memcpy(&d, kv->raw, 8);
        *out = (float)d;
        return 0;
    }
    char q[IO_QUOTE_CAP];
    return err_set("%s: key '%s': expected FLOAT32 or FLOAT64, got %s", g->name, io_quote(q, key, strlen(key)),
                   gguf_value_type_name(kv->type));
}

int gguf_get_bool(const GgufFile *g, const char *key, int *out) {
    const GgufKv *kv = kv_need(g, key);
    if (!kv) return -1;
    if (kv->type != GGUF_TYPE_BOOL) {
        char q[IO_QUOTE_CAP];
        return err_set("%s: key '%s': expected BOOL, got %s", g->name, io_quote(q, key, strlen(key)),
                       gguf_value_type_name(kv->type));
    }
    *out = kv->raw[0] != 0;
    return 0;
}

int gguf_get_string(const GgufFile *g, const char *key, const char **s, size_t *len) {
    const GgufKv *kv = kv_need(g, key);
    if (!kv) return -1;
    if (kv->type != GGUF_TYPE_STRING) {
        char q[IO_QUOTE_CAP];
        return err_set("%s: key '%s': expected STRING, got %s", g->name, io_quote(q, key, strlen(key)),
                       gguf_value_type_name(kv->type));
    }
    *s = kv->cstr;
    if (len) *len = (size_t)kv->str.len;
    return 0;
}

static const GgufKv *array_need(const GgufFile *g, const char *key) {
    const GgufKv *kv = kv_need(g, key);
    if (kv && kv->type != GGUF_TYPE_ARRAY) {
        char q[IO_QUOTE_CAP];
        err_set("%s: key '%s': expected ARRAY, got %s", g->name, io_quote(q, key, strlen(key)),
                gguf_value_type_name(kv->type));
        return NULL;
    }
    return kv;
}

int gguf_get_array(const GgufFile *g, const char *key, GgufValueType *elem_type, uint64_t *count, const void **data) {
    const GgufKv *kv = array_need(g, key);
    if (!kv) return -1;
    if (elem_type) *elem_type = kv->arr_type;
    if (count) *count = kv->arr_count;
    if (data) *data = kv->arr_type == GGUF_TYPE_STRING ? NULL : kv->arr_data;
    return 0;
}

int gguf_get_str_array(const GgufFile *g, const char *key, const GgufStr **strs, uint64_t *count) {
    const GgufKv *kv = array_need(g, key);
    if (!kv) return -1;
    if (kv->arr_type != GGUF_TYPE_STRING) {
        char q[IO_QUOTE_CAP];
        return err_set("%s: key '%s': expected an ARRAY of STRING, got an ARRAY of %s", g->name,
                       io_quote(q, key, strlen(key)), gguf_value_type_name(kv->arr_type));
    }
    *strs = kv->arr_strs;
    *count = kv->arr_count;
    return 0;
}

int gguf_get_f32_array(const GgufFile *g, const char *key, float **out, uint64_t *count) {
    const GgufKv *kv = array_need(g, key);
    if (!kv) return -1;
    char q[IO_QUOTE_CAP];
    if (kv->arr_type != GGUF_TYPE_FLOAT32 && kv->arr_type != GGUF_TYPE_FLOAT64)
        return err_set("%s: key '%s': expected an ARRAY of FLOAT32 or FLOAT64, got an ARRAY of %s", g->name,
                       io_quote(q, key, strlen(key)), gguf_value_type_name(kv->arr_type));
    float *r = malloc((kv->arr_count ? (size_t)kv->arr_count : 1) * sizeof *r);
    if (!r) return err_set("%s: key '%s': out of memory", g->name, io_quote(q, key, strlen(key)));
    for (uint64_t i = 0; i < kv->arr_count; i++) {
        if (kv->arr_type == GGUF_TYPE_FLOAT32) {
            memcpy(&r[i], kv->arr_data + 4 * i, 4);
        } else {
            double d;
            memcpy(&d, kv->arr_data + 8 * i, 8);
            r[i] = (float)d;
        }
    }
    *out = r;
    *count = kv->arr_count;
    return 0;
}

int gguf_get_i32_array(const GgufFile *g, const char *key, int32_t **out, uint64_t *count) {
    const GgufKv *kv = array_need(g, key);
    if (!kv) return -1;
    char q[IO_QUOTE_CAP];
    int neg = 0;
    uint64_t m = 0;
    /* decide on the type alone: an empty array's data may be the end of the file */
    if (!is_int_type(kv->arr_type))
        return err_set("%s: key '%s': expected an ARRAY of integers, got an ARRAY of %s", g->name,
                       io_quote(q, key, strlen(key)), gguf_value_type_name(kv->arr_type));
    int32_t *r = malloc((kv->arr_count ? (size_t)kv->arr_count : 1) * sizeof *r);
    if (!r) return err_set("%s: key '%s': out of memory", g->name, io_quote(q, key, strlen(key)));
    size_t es = value_type_size[kv->arr_type];
    for (uint64_t i = 0; i < kv->arr_count; i++) {
        int_read(kv->arr_type, kv->arr_data + es * i, &neg, &m);
        if ((neg && m > (uint64_t)INT32_MAX + 1) || (!neg && m > INT32_MAX)) {
            free(r);
            return err_set("%s: key '%s': element %llu (%s%llu) does not fit in 32 bits", g->name,
                           io_quote(q, key, strlen(key)), (unsigned long long)i, neg ? "-" : "",
                           (unsigned long long)m);
        }
        r[i] = neg ? (int32_t)(-(int64_t)m) : (int32_t)m;
    }
    *out = r;
    *count = kv->arr_count;
    return 0;
}

int gguf_tensor_to_f32(const GgufFile *g, const GgufTensor *t, float *dst) {
    if (!t->supported) {
        char q[IO_QUOTE_CAP];
        return err_set("%s: tensor '%s': ggml type %s is not supported (expected F32, F16, BF16, Q8_0, F64, I32 or "
                       "I64)",
                       g ? g->name : "?", io_quote(q, t->name, strlen(t->name)), t->type_name);
    }
    io_to_f32(t->dtype, t->data, t->numel, dst);
    return 0;
}

