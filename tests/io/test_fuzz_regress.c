/* tests/io/test_fuzz_regress.c - replays every input kept in tests/fixtures/io/fuzz/
 * (inputs that once crashed a fuzzer, and small interesting ones) through the very
 * harness code of fuzz/, under the normal and the sanitizer builds; plus the minimal
 * hand-made form of each crash found. */
#include "testutil.h"
#include "core/error.h"
#include "core/file.h"
#include "io/gguf.h"
#include "io/safetensors.h"

#include <dirent.h>

#define LLVMFuzzerTestOneInput fuzz_safetensors_one
#include "../../fuzz/fuzz_safetensors.c"
#undef LLVMFuzzerTestOneInput
#define LLVMFuzzerTestOneInput fuzz_gguf_one
#include "../../fuzz/fuzz_gguf.c"
#undef LLVMFuzzerTestOneInput
#define LLVMFuzzerTestOneInput fuzz_json_index_one
#include "../../fuzz/fuzz_json_index.c"
#undef LLVMFuzzerTestOneInput

/* Runs fn on every file of dir, each in a buffer of its exact size (so ASan sees any
 * read past the end); returns how many. */
static int replay(const char *dir, int (*fn)(const uint8_t *, size_t)) {
    DIR *d = opendir(dir);
    if (!d) fail_msg("cannot open %s", dir);
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.') continue;
        char *p = file_join(dir, e->d_name);
        if (file_is_dir(p)) {
            free(p);
            continue;
        }
        size_t len;
        char *s = file_read_all(p, &len, 0);
        if (!s) fail_msg("%s", err_msg());
        uint8_t *exact = malloc(len ? len : 1);
        memcpy(exact, s, len);
        free(s);
        fn(exact, len);
        free(exact);
        free(p);
        n++;
    }
    closedir(d);
    return n;
}

static void test_replay(void **state) {
    (void)state;
    assert_true(replay("tests/fixtures/io/fuzz/gguf", fuzz_gguf_one) >= 1);
    replay("tests/fixtures/io/fuzz/safetensors", fuzz_safetensors_one);
    replay("tests/fixtures/io/fuzz/json_index", fuzz_json_index_one);
    /* the regular fixtures too */
    assert_true(replay("tests/fixtures/io", fuzz_safetensors_one) >= 6);
    assert_true(replay("tests/fixtures/io/sharded", fuzz_safetensors_one) >= 3);
}

/* fuzz_gguf found it: gguf_get_i32_array read the first element of an empty integer
 * array to check its type; at the end of the file that is past the buffer. */
static void test_empty_int_array_at_end(void **state) {
    (void)state;
    static const uint8_t head[] = {'G', 'G', 'U', 'F', 3, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0,
                                   1, 0, 0, 0, 0, 0, 0, 0, 'k', 9, 0, 0, 0, 11, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0};
    uint8_t *buf = malloc(sizeof head);
    memcpy(buf, head, sizeof head);
    GgufFile g;
    assert_int_equal(gguf_parse_buffer(&g, buf, sizeof head, "mem"), 0);
    int32_t *iv = NULL;
    uint64_t n = 99;
    assert_int_equal(gguf_get_i32_array(&g, "k", &iv, &n), 0);
    assert_int_equal(n, 0);
    free(iv);
    float *fv;
    assert_int_equal(gguf_get_f32_array(&g, "k", &fv, &n), -1);
    assert_non_null(strstr(err_msg(), "ARRAY of INT64"));
    GgufValueType et;
    const void *data;
    assert_int_equal(gguf_get_array(&g, "k", &et, &n, &data), 0);
    assert_int_equal(et, GGUF_TYPE_INT64);
    gguf_close(&g);
    free(buf);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_replay),
        cmocka_unit_test(test_empty_int_array_at_end),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
