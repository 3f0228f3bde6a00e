/* io/io_util.c - helpers shared by the safetensors and GGUF code. */
#include "io_internal.h"
#include "json.h"
#include "core/error.h"

#include <cJSON.h>

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

char *io_quote(char buf[IO_QUOTE_CAP], const char *s, size_t len) {
    static const char hex[] = "0123456789abcdef";
    size_t o = 0;
    for (size_t i = 0; i < len; i++) {
        uint8_t c = (uint8_t)s[i];
        if (o + 8 >= IO_QUOTE_CAP || i >= 60) {
            memcpy(buf + o, "...", 3);
            o += 3;
            break;
        }
        if (c >= 0x20 && c < 0x7f && c != '\\') {
            buf[o++] = (char)c;
        } else {
            buf[o++] = '\\';
            buf[o++] = 'x';
            buf[o++] = hex[c >> 4];
            buf[o++] = hex[c & 15];
        }
    }
    buf[o] = 0;
    return buf;
}

/* ================================================================ JSON */

const char *io_json_kind(const cJSON *v) {
    if (!v) return "nothing";
    if (cJSON_IsString(v)) return "a string";
    if (cJSON_IsNumber(v)) return "a number";
    if (cJSON_IsArray(v)) return "an array";
    if (cJSON_IsObject(v)) return "an object";
    if (cJSON_IsBool(v)) return "a boolean";
    if (cJSON_IsNull(v)) return "null";
    return "an invalid value";
}

void io_buf_json_str(StrBuf *b, const char *s, size_t n) {
    static const char hex[] = "0123456789abcdef";
    strbuf_put(b, "\"", 1);
    size_t run = 0; /* start of the pending run of bytes that need no escape */
    for (size_t i = 0; i < n; i++) {
        uint8_t c = (uint8_t)s[i];
        char esc[6];
        size_t el = 0;
        switch (c) {
        case '"': esc[0] = '\\'; esc[1] = '"'; el = 2; break;
        case '\\': esc[0] = '\\'; esc[1] = '\\'; el = 2; break;
        case '\b': esc[0] = '\\'; esc[1] = 'b'; el = 2; break;
        case '\f': esc[0] = '\\'; esc[1] = 'f'; el = 2; break;
        case '\n': esc[0] = '\\'; esc[1] = 'n'; el = 2; break;
        case '\r': esc[0] = '\\'; esc[1] = 'r'; el = 2; break;
        case '\t': esc[0] = '\\'; esc[1] = 't'; el = 2; break;
        default:
            if (c < 0x20) {
                memcpy(esc, "\\u00", 4);
                esc[4] = hex[c >> 4];
                esc[5] = hex[c & 15];
                el = 6;
            }
        }
        if (el) {
            strbuf_put(b, s + run, i - run);
            strbuf_put(b, esc, el);
            run = i + 1;
        }
    }
    strbuf_put(b, s + run, n - run);
    strbuf_put(b, "\"", 1);
}

/* ================================================================ conversion */

void io_to_f32(DType t, const uint8_t *data, uint64_t numel, float *dst) {
    int ok;
    size_t esize = t == DT_Q8_0 ? 1 : dtype_nbytes(t, 1, &ok); /* Q8_0 is read byte by byte */
    if (esize <= 1 || (uintptr_t)data % esize == 0) {
        dtype_to_f32(t, data, dst, (size_t)numel);
        return;
    }
    _Alignas(8) uint8_t tmp[32768];
    size_t per = sizeof tmp / esize;
    for (uint64_t i = 0; i < numel; i += per) {
        size_t k = numel - i < per ? (size_t)(numel - i) : per;
        memcpy(tmp, data + i * esize, k * esize);
        dtype_to_f32(t, tmp, dst + i, k);
    }
}

/* ================================================================ name index */

typedef struct {
    const char *records;
    size_t stride;
} SortCtx;

static const char *rec_name(const char *records, size_t stride, uint32_t i) {
    const char *name;
    memcpy(&name, records + (size_t)i * stride, sizeof name);
    return name;
}

static int idx_cmp(const void *a, const void *b, void *ctx) {
    const SortCtx *c = ctx;
    uint32_t ia = *(const uint32_t *)a, ib = *(const uint32_t *)b;
    int r = strcmp(rec_name(c->records, c->stride, ia), rec_name(c->records, c->stride, ib));
    if (r) return r;
    return ia < ib ? -1 : ia > ib; /* stable: first occurrence first */
}

void io_index_sort(uint32_t *idx, size_t n, const void *records, size_t stride) {
    SortCtx c = {records, stride};
    for (size_t i = 0; i < n; i++) idx[i] = (uint32_t)i;
    if (n > 1) qsort_r(idx, n, sizeof *idx, idx_cmp, &c);
}

long io_index_find(const uint32_t *idx, size_t n, const void *records, size_t stride, const char *name) {
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int r = strcmp(rec_name(records, stride, idx[mid]), name);
        if (r == 0) return (long)idx[mid];
        if (r < 0) lo = mid + 1;
        else hi = mid;
    }
    return -1;
}

long io_sorted_find(const void *records, size_t n, size_t stride, const char *name) {
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int r = strcmp(rec_name(records, stride, (uint32_t)mid), name);
        if (r == 0) return (long)mid;
        if (r < 0) lo = mid + 1;
        else hi = mid;
    }
    return -1;
}

int io_json_refuse_nul(const char *text, size_t n, const char *name) {
    size_t line = 1;
    for (size_t i = 0; i < n; i++) {
        if (text[i] == '\n') line++;
        int raw = text[i] == 0;
        int esc = 0;
        if (text[i] == '\\' && i + 5 < n && !memcmp(text + i + 1, "u0000", 5)) {
            size_t k = i; /* an escape only when the backslash is not itself escaped */
            while (k > 0 && text[k - 1] == '\\') k--;
            esc = (i - k) % 2 == 0;
        }
        if (raw || esc)
            return err_set("%s:%zu: a NUL character (%s): ids, names and texts must not contain one", name, line,
                           raw ? "a 0 byte" : "\\u0000");
    }
    return 0;
}

static int has_control(const char *s, unsigned char *c) {
    for (; s && *s; s++)
        if ((unsigned char)*s < 0x20 || *s == 0x7f) {
            *c = (unsigned char)*s;
            return 1;
        }
    return 0;
}

int io_json_refuse_controls(const cJSON *root, const char *name) {
    unsigned char c = 0;
    for (const cJSON *v = root ? root->child : NULL; v; v = v->next) {
        const char *key = v->string ? v->string : "(array element)";
        if (has_control(v->string, &c) || (cJSON_IsString(v) && has_control(v->valuestring, &c)))
            return err_set("%s: field '%.40s': a control character (0x%02x): names must be printable", name,
                           has_control(key, &c) ? "(key)" : key, c);
        if ((cJSON_IsObject(v) || cJSON_IsArray(v)) && io_json_refuse_controls(v, name) != 0) return -1;
    }
    return 0;
}
