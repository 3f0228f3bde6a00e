/* tests/core/test_dtype.c - element type conversions against known bit patterns. */
#include "testutil.h"
#include "core/dtype.h"
#include "core/error.h"
#include "core/file.h"
#include <math.h>

static void test_bf16_round_to_nearest_even(void **state) {
    (void)state;
    assert_int_equal(f32_to_bf16(1.0f), 0x3f80);
    /* 1 + 2^-8 is exactly half-way between two bf16 values: ties to even (down). */
    assert_int_equal(f32_to_bf16(1.00390625f), 0x3f80);
    /* 1 + 3*2^-8 is half-way: ties to even (up). */
    assert_int_equal(f32_to_bf16(1.01171875f), 0x3f82);
    assert_float_equal(bf16_to_f32(0xc040), -3.0f, 0);
    assert_true(isnan(bf16_to_f32(f32_to_bf16(NAN))));
}

static void test_f16_known_values(void **state) {
    (void)state;
    assert_int_equal(f32_to_f16(1.0f), 0x3c00);
    assert_int_equal(f32_to_f16(-2.0f), 0xc000);
    assert_int_equal(f32_to_f16(65504.0f), 0x7bff);
    assert_int_equal(f32_to_f16(1e6f), 0x7c00);          /* overflow -> inf */
    assert_int_equal(f32_to_f16(5.960464477539063e-08f), 0x0001); /* smallest subnormal */
    assert_float_equal(f16_to_f32(0x0001), 5.960464477539063e-08f, 0);
    assert_float_equal(f16_to_f32(0x3555), 0.333251953125f, 0);
    /* every finite f16 round-trips exactly */
    for (uint32_t h = 0; h < 0x10000; h++) {
        if ((h & 0x7c00) == 0x7c00) continue;
        assert_int_equal(f32_to_f16(f16_to_f32((uint16_t)h)), h);
    }
}

static void test_q8_0_dequant(void **state) {
    (void)state;
    uint8_t blk[Q8_0_BYTES];
    uint16_t d = f32_to_f16(0.5f);
    blk[0] = d & 0xff;
    blk[1] = d >> 8;
    for (int i = 0; i < 32; i++) blk[2 + i] = (uint8_t)(int8_t)(i - 16);
    float out[32];
    dtype_to_f32(DT_Q8_0, blk, out, 32);
    for (int i = 0; i < 32; i++) assert_float_equal(out[i], 0.5f * (float)(i - 16), 0);
    int ok;
    assert_int_equal(dtype_nbytes(DT_Q8_0, 64, &ok), 68);
    assert_true(ok);
    dtype_nbytes(DT_Q8_0, 33, &ok);
    assert_false(ok);
    dtype_nbytes(DT_F32, UINT64_MAX / 2, &ok);
    assert_false(ok);
}

static void test_atomic_write_keeps_old_file_on_error(void **state) {
    (void)state;
    const char *dir = test_tmpdir();
    char path[512];
    snprintf(path, sizeof path, "%s/out.txt", dir);
    assert_int_equal(file_write_all_atomic(path, "old", 3), 0);
    AtomicFile af;
    assert_int_equal(file_atomic_open(&af, path), 0);
    file_atomic_write(&af, "new-but-abandoned", 17);
    file_atomic_abort(&af);
    size_t n;
    char *s = file_read_all(path, &n, 0);
    assert_non_null(s);
    assert_string_equal(s, "old");
    free(s);
    char bad[600];
    snprintf(bad, sizeof bad, "%s/no/such/dir/x", dir);
    assert_int_equal(file_write_all_atomic(bad, "x", 1), -1);
    assert_non_null(strstr(err_msg(), bad));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bf16_round_to_nearest_even),
        cmocka_unit_test(test_f16_known_values),
        cmocka_unit_test(test_q8_0_dequant),
        cmocka_unit_test(test_atomic_write_keeps_old_file_on_error),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
