/* fuzz/fuzz_safetensors.c - libFuzzer harness: the input is a whole .safetensors file.
 * Built and run by fuzz/run_io.sh. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "io/safetensors.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    StFile f;
    if (st_parse_buffer(&f, data, size, "fuzz.safetensors") != 0) return 0;
    /* everything the parser accepted must be usable */
    for (size_t i = 0; i < f.n_tensors; i++) {
        const StTensor *t = &f.tensors[i];
        if (st_tensor_find(&f, t->name) != t) abort();
        if (t->data < f.data || t->offset + t->nbytes > f.data_size) abort();
        if (t->numel <= (1u << 16)) {
            float *out = malloc((size_t)(t->numel ? t->numel : 1) * sizeof *out);
            if (st_tensor_to_f32(&f, t, out) != 0 && t->supported) abort();
            free(out);
        }
        volatile uint8_t sink = 0; /* touch the first and last bytes: must be inside the buffer */
        if (t->nbytes) sink ^= t->data[0] ^ t->data[t->nbytes - 1];
        (void)sink;
    }
    for (size_t i = 0; i < f.n_meta; i++)
        if (st_meta_get(&f, f.meta[i].key) != f.meta[i].value) abort();
    st_close(&f);
    return 0;
}
