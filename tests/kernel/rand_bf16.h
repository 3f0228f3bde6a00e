/* tests/kernel/rand_bf16.h - the random operands of the bf16 engine's tests
 * (test_matmul_dnnl.c, test_matmul_dnnl_pack.c) and of test_matmul_xt.c, test_kpanel.c: a fixed-seed LCG,
 * uniform in [-1, 1). */
#ifndef MUSCLE_TESTS_RAND_BF16_H
#define MUSCLE_TESTS_RAND_BF16_H

#include <stdint.h>
#include <stdlib.h>

static uint64_t rng_state = 0x243f6a8885a308d3ull;
static uint32_t urand(void) {
    rng_state = rng_state * 6364136223846793005ull + 1442695040888963407ull;
    return (uint32_t)(rng_state >> 33);
}
static float frand(void) { return (float)((double)(urand() >> 8) / (double)(1u << 23) - 1.0); }
static float *rand_f32(size_t cnt) {
    float *p = malloc((cnt ? cnt : 1) * sizeof *p);
    assert_non_null(p);
    for (size_t i = 0; i < cnt; i++) p[i] = frand();
    return p;
}

#endif
