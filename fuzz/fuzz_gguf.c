/* fuzz/fuzz_gguf.c - libFuzzer harness: the input is a whole GGUF file. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "io/gguf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    GgufFile g;
    if (gguf_parse_buffer(&g, data, size, "fuzz.gguf") != 0) return 0;
    volatile uint64_t sink = 0;
    for (size_t i = 0; i < g.n_kvs; i++) {
        const GgufKv *kv = &g.kvs[i];
        if (gguf_kv_find(&g, kv->key) != kv) abort();
        if (kv->raw < (const uint8_t *)data || kv->raw + kv->raw_len > (const uint8_t *)data + size) abort();
        uint32_t u32;
        int32_t i32;
        uint64_t u64, n;
        float f;
        int b;
        const char *s;
        size_t len;
        sink += (uint64_t)gguf_get_u32(&g, kv->key, &u32) + (uint64_t)gguf_get_i32(&g, kv->key, &i32);
        sink += (uint64_t)gguf_get_u64(&g, kv->key, &u64) + (uint64_t)gguf_get_f32(&g, kv->key, &f);
        sink += (uint64_t)gguf_get_bool(&g, kv->key, &b);
        if (gguf_get_string(&g, kv->key, &s, &len) == 0 && len) sink += (uint8_t)s[len - 1];
        const GgufStr *strs;
        if (gguf_get_str_array(&g, kv->key, &strs, &n) == 0)
            for (uint64_t k = 0; k < n; k++)
                if (strs[k].len) sink += (uint8_t)strs[k].ptr[strs[k].len - 1];
        float *fa;
        if (gguf_get_f32_array(&g, kv->key, &fa, &n) == 0) free(fa);
        int32_t *ia;
        if (gguf_get_i32_array(&g, kv->key, &ia, &n) == 0) free(ia);
    }
    for (size_t i = 0; i < g.n_tensors; i++) {
        const GgufTensor *t = &g.tensors[i];
        if (gguf_tensor_find(&g, t->name) != t) abort();
        if (t->nbytes) sink += t->data[0] ^ t->data[t->nbytes - 1];
        if (t->numel <= (1u << 16)) {
            float *out = malloc((size_t)(t->numel ? t->numel : 1) * sizeof *out);
            if (gguf_tensor_to_f32(&g, t, out) != 0 && t->supported) abort();
            free(out);
        }
    }
    (void)sink;
    gguf_close(&g);
    return 0;
}
