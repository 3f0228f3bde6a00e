/* tests/task/test_fuzz_regress.c - replays the seed corpus fuzz/corpus/task/ and every input
 * kept in tests/task/regress/task/ (inputs that once crashed the fuzzer or broke one of its
 * invariants) through the very harness code of fuzz/fuzz_task.c, under the normal and the
 * sanitizer builds (first byte: the mode, see the harness). */
#include "testutil.h"

#define LLVMFuzzerInitialize fuzz_task_init
#define LLVMFuzzerTestOneInput fuzz_task_one
#include "../../fuzz/fuzz_task.c"
#undef LLVMFuzzerTestOneInput
#undef LLVMFuzzerInitialize

static void test_replay(void **state) {
    (void)state;
    shared_path("models/llama2-tokenizer/llama2_tokenizer.model"); /* the harness tokenizes with it */
    fuzz_task_init(NULL, NULL);
    assert_non_null(g_tok);
    assert_true(replay_dir("fuzz/corpus/task", fuzz_task_one, 1) >= 10);
    replay_dir("tests/task/regress/task", fuzz_task_one, 1);
    tok_free(g_tok);
    g_tok = NULL;
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_replay),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
