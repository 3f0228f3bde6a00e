/* tools/io/gguf_dump.c - prints a GGUF file as tools/io/gguf_dump.mjs does (for diffing
 * against the independent @huggingface/gguf parser). Not part of the build:
 *   gcc -std=c11 -D_GNU_SOURCE -Isrc -I/usr/include/cjson tools/io/gguf_dump.c build/libmuscle.a -lcjson -lm -o /tmp/gguf_dump
 * With -w it rewrites FILE to OUT through the GGUF writer (kvs copied, tensors raw). */
#include <stdio.h>
#include <string.h>

#include "core/error.h"
#include "io/gguf.h"

#define M 1000000007ull

static uint64_t str_hash(const char *s, uint64_t n) {
    uint64_t h = 0;
    for (uint64_t i = 0; i < n; i++) h = (h * 31 + (uint8_t)s[i]) % M;
    return h;
}

static uint64_t elem_bits(GgufValueType t, const uint8_t *p) {
    uint64_t v = 0;
    switch (t) {
    case GGUF_TYPE_INT8: return (uint64_t)(int64_t)(int8_t)p[0];
    case GGUF_TYPE_INT16: { int16_t x; memcpy(&x, p, 2); return (uint64_t)(int64_t)x; }
    case GGUF_TYPE_INT32: { int32_t x; memcpy(&x, p, 4); return (uint64_t)(int64_t)x; }
    case GGUF_TYPE_BOOL: return p[0] != 0;
    default: break;
    }
    int sizes[] = {1, 1, 2, 2, 4, 4, 4, 1, 0, 0, 8, 8, 8};
    memcpy(&v, p, (size_t)sizes[t]);
    return v;
}

int main(int argc, char **argv) {
    if (argc == 4 && strcmp(argv[1], "-w") == 0) {
        GgufFile g;
        if (gguf_open(&g, argv[2])) return fprintf(stderr, "%s\n", err_msg()), 1;
        GgufWriter w;
        gguf_writer_init(&w);
        for (size_t i = 0; i < g.n_kvs; i++) gguf_writer_copy_kv(&w, &g.kvs[i]);
        for (size_t i = 0; i < g.n_tensors; i++) {
            const GgufTensor *t = &g.tensors[i];
            gguf_writer_add_tensor(&w, t->name, t->ggml_type, t->ndim, t->ne, t->data);
        }
        int rc = gguf_writer_write(&w, argv[3]);
        if (rc) fprintf(stderr, "%s\n", err_msg());
        gguf_writer_free(&w);
        gguf_close(&g);
        return rc ? 1 : 0;
    }
    if (argc != 2) return fprintf(stderr, "usage: gguf_dump FILE | gguf_dump -w FILE OUT\n"), 2;
    GgufFile g;
    if (gguf_open(&g, argv[1])) return fprintf(stderr, "%s\n", err_msg()), 1;
    printf("data_offset %zu\nversion %u\ntensor_count %zu\nkv_count %zu\n", g.data_offset, g.version, g.n_tensors,
           g.n_kvs);
    for (size_t i = 0; i < g.n_kvs; i++) {
        const GgufKv *kv = &g.kvs[i];
        if (kv->type == GGUF_TYPE_ARRAY) {
            uint64_t h = 0;
            for (uint64_t j = 0; j < kv->arr_count; j++) {
                uint64_t e;
                if (kv->arr_type == GGUF_TYPE_STRING) e = str_hash(kv->arr_strs[j].ptr, kv->arr_strs[j].len);
                else {
                    int sizes[] = {1, 1, 2, 2, 4, 4, 4, 1, 0, 0, 8, 8, 8};
                    e = elem_bits(kv->arr_type, kv->arr_data + j * (uint64_t)sizes[kv->arr_type]) % M;
                }
                h = (h * 31 + e) % M;
            }
            printf("kv %s %d array %d n=%llu hash=%llu\n", kv->key, kv->type, kv->arr_type,
                   (unsigned long long)kv->arr_count, (unsigned long long)h);
        } else if (kv->type == GGUF_TYPE_STRING) {
            printf("kv %s %d str len=%llu hash=%llu\n", kv->key, kv->type, (unsigned long long)kv->str.len,
                   (unsigned long long)str_hash(kv->str.ptr, kv->str.len));
        } else {
            printf("kv %s %d bits=%llu\n", kv->key, kv->type, (unsigned long long)elem_bits(kv->type, kv->raw));
        }
    }
    for (size_t i = 0; i < g.n_tensors; i++) {
        const GgufTensor *t = &g.tensors[i];
        printf("tensor %s ne=", t->name);
        for (int d = 0; d < t->ndim; d++) printf(d ? ",%llu" : "%llu", (unsigned long long)t->ne[d]);
        printf(" type=%u offset=%llu\n", t->ggml_type, (unsigned long long)t->offset);
    }
    gguf_close(&g);
    return 0;
}
