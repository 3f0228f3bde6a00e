/* fuzz/fuzz_tokenizer_json.c - libFuzzer harness for the tokenizer.json loader.
 * Build and run: fuzz/run_tokenizer.sh SECONDS. */
#include "fuzz_tokenizer_common.h"
#include "tokenizer/tok_internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    Tokenizer *t = tok_load_json_mem(data, size, "fuzz.json", NULL);
    if (t) fuzz_exercise(t, data, size);
    tok_free(t);
    /* the auto-detecting entry point must never crash either */
    t = tok_load_mem(data, size, "fuzz");
    tok_free(t);
    return 0;
}
