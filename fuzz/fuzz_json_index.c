/* fuzz/fuzz_json_index.c - libFuzzer harness: the input is a model.safetensors.index.json. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "io/safetensors.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    StIndex ix;
    if (st_index_parse_buffer(&ix, (const char *)data, size, "fuzz.index.json") != 0) return 0;
    if (ix.n_entries == 0 || ix.n_files == 0 || ix.n_files > ix.n_entries) abort();
    for (size_t i = 1; i < ix.n_entries; i++)
        if (strcmp(ix.entries[i - 1].tensor, ix.entries[i].tensor) >= 0) abort();
    for (size_t i = 0; i < ix.n_entries; i++)
        if (strchr(ix.entries[i].file, '/') || strcmp(ix.entries[i].file, "..") == 0) abort();
    st_index_free(&ix);
    return 0;
}
