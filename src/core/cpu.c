/* core/cpu.c - processor features and floating-point mode. */
#include "cpu.h"

#include <omp.h>
#include <xmmintrin.h>
#include <pmmintrin.h>

static void set_ftz_daz(void) {
    _MM_SET_FLUSH_ZERO_MODE(_MM_FLUSH_ZERO_ON);
    _MM_SET_DENORMALS_ZERO_MODE(_MM_DENORMALS_ZERO_ON);
}

void cpu_flush_denormals(void) {
    set_ftz_daz();
#pragma omp parallel
    set_ftz_daz();
}

int cpu_threads(void) { return omp_get_max_threads(); }

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

char *openblas_get_corename(void);

const char *cpu_blas_core(void) { return openblas_get_corename(); }

void cpu_blas_fixup(char **argv) {
    if (getenv("OPENBLAS_CORETYPE") || getenv("MUSCLE_NO_BLAS_FIXUP")) return;
    const char *core = openblas_get_corename();
    if (!core || (strcmp(core, "Prescott") != 0 && strcmp(core, "Core2") != 0 && strcmp(core, "Nehalem") != 0 &&
                  strcmp(core, "Sandybridge") != 0))
        return;
    __builtin_cpu_init();
    const char *want = NULL;
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl") &&
        __builtin_cpu_supports("avx512dq"))
        want = "SkylakeX";
    else if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
        want = "Haswell";
    if (!want || !strcmp(core, want)) return;
    setenv("OPENBLAS_CORETYPE", want, 1);
    execv("/proc/self/exe", argv);
    /* exec failed: carry on with the slow kernels */
}
