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
