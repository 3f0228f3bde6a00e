/* tests/model/test_fuzz_regress.c - replays the seed corpora of fuzz/corpus/{hf_config,
 * adapter_config}/ and every input kept in tests/model/regress/{hf_config,adapter_config}/
 * (inputs that once crashed a fuzzer or broke one of its invariants) through the very
 * harness code of fuzz/fuzz_hf_config.c and fuzz/fuzz_adapter_config.c, under the normal
 * and the sanitizer builds. A harness aborts on any broken invariant. */
#include "testutil.h"

#define LLVMFuzzerTestOneInput fuzz_hf_config_one
#include "../../fuzz/fuzz_hf_config.c"
#undef LLVMFuzzerTestOneInput
#define LLVMFuzzerTestOneInput fuzz_adapter_config_one
#include "../../fuzz/fuzz_adapter_config.c"
#undef LLVMFuzzerTestOneInput

static void test_replay_hf_config(void **state) {
    (void)state;
    assert_true(replay_dir("fuzz/corpus/hf_config", fuzz_hf_config_one, 1) >= 5);
    replay_dir("tests/model/regress/hf_config", fuzz_hf_config_one, 1);
}

static void test_replay_adapter_config(void **state) {
    (void)state;
    assert_true(replay_dir("fuzz/corpus/adapter_config", fuzz_adapter_config_one, 1) >= 5);
    replay_dir("tests/model/regress/adapter_config", fuzz_adapter_config_one, 1);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_replay_hf_config),
        cmocka_unit_test(test_replay_adapter_config),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
