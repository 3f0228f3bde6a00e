/* tests/tokenizer/test_fuzz_regress.c - replays every input kept in tests/tokenizer/regress/H/
 * (H = bin, model, json, encode, charsmap: inputs that once crashed a tokenizer fuzzer or
 * broke one of its invariants, and small interesting ones) through the very harness code
 * of fuzz/fuzz_tokenizer_H.c, under the normal and the sanitizer builds. fuzz/run_tokenizer.sh
 * seeds each harness with its folder too. The encode harness uses the real tokenizers of
 * ../shared (Llama 2 .model and .bin, tok105.model), or $FUZZ_TOK_FILES. */
#include "testutil.h"

#define LLVMFuzzerTestOneInput fuzz_tok_bin_one
#include "../../fuzz/fuzz_tokenizer_bin.c"
#undef LLVMFuzzerTestOneInput
#define LLVMFuzzerTestOneInput fuzz_tok_model_one
#include "../../fuzz/fuzz_tokenizer_model.c"
#undef LLVMFuzzerTestOneInput
#define LLVMFuzzerTestOneInput fuzz_tok_json_one
#include "../../fuzz/fuzz_tokenizer_json.c"
#undef LLVMFuzzerTestOneInput
#define LLVMFuzzerTestOneInput fuzz_tok_charsmap_one
#include "../../fuzz/fuzz_tokenizer_charsmap.c"
#undef LLVMFuzzerTestOneInput
#define LLVMFuzzerTestOneInput fuzz_tok_encode_one
#include "../../fuzz/fuzz_tokenizer_encode.c"
#undef LLVMFuzzerTestOneInput

static void test_replay_loaders(void **state) {
    (void)state;
    assert_true(replay_dir("tests/tokenizer/regress/bin", fuzz_tok_bin_one, 1) >= 1);
    assert_true(replay_dir("tests/tokenizer/regress/model", fuzz_tok_model_one, 1) >= 1);
    assert_true(replay_dir("tests/tokenizer/regress/json", fuzz_tok_json_one, 1) >= 1);
    assert_true(replay_dir("tests/tokenizer/regress/charsmap", fuzz_tok_charsmap_one, 1) >= 1);
}

static void test_replay_encode(void **state) {
    (void)state;
    shared_path("models/llama2-tokenizer/llama2_tokenizer.model");
    assert_true(replay_dir("tests/tokenizer/regress/encode", fuzz_tok_encode_one, 1) >= 1);
    for (int k = 0; k < n_toks; k++) tok_free(toks[k]);
    n_toks = 0;
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_replay_loaders),
        cmocka_unit_test(test_replay_encode),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
