/* fuzz/fuzz_tokenizer_bin.c - libFuzzer harness for the llama2.c tokenizer.bin loader.
 * Build and run: fuzz/run_tokenizer.sh SECONDS. */
#include "fuzz_tokenizer_common.h"
#include "tokenizer/tok_internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    Tokenizer *t = tok_load_bin_mem(data + 1, size - 1, "fuzz.bin", data[0] < 16 ? data[0] : 0);
    if (t) fuzz_exercise(t, data, size);
    tok_free(t);
    /* the auto-detecting entry point must never crash either */
    t = tok_load_mem(data, size, "fuzz");
    tok_free(t);
    return 0;
}
