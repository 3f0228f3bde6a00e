/* core/cpu.c - processor features and floating-point mode. */
#include "cpu.h"

#include <omp.h>
#include <stdlib.h>
#include <sys/mman.h>
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

void *cpu_alloc_huge(size_t bytes) {
    const size_t huge = (size_t)2 << 20;
    void *mem = NULL;
    if (posix_memalign(&mem, bytes >= huge ? huge : 64, bytes ? bytes : 1) != 0) return NULL;
    /* only 2 MB ranges wholly inside the buffer become huge pages: nothing past it is touched */
    if (bytes >= huge) madvise(mem, bytes, MADV_HUGEPAGE);
    return mem;
}

#include <string.h>
#include <unistd.h>

char *openblas_get_corename(void);

const char *cpu_blas_core(void) { return openblas_get_corename(); }

/* The OpenBLAS kernels this CPU should use, or NULL when OpenBLAS chose well. */
static const char *blas_core_wanted(void) {
    const char *core = openblas_get_corename();
    if (!core || (strcmp(core, "Prescott") != 0 && strcmp(core, "Core2") != 0 && strcmp(core, "Nehalem") != 0 &&
                  strcmp(core, "Sandybridge") != 0))
        return NULL;
    __builtin_cpu_init();
    const char *want = NULL;
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl") &&
        __builtin_cpu_supports("avx512dq"))
        want = "SkylakeX";
    else if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
        want = "Haswell";
    return want && strcmp(core, want) != 0 ? want : NULL;
}

void cpu_blas_fixup(char **argv) {
    if (getenv("MUSCLE_NO_BLAS_FIXUP")) return;
    int again = 0;
    if (!getenv("OPENBLAS_CORETYPE")) {
        const char *want = blas_core_wanted();
        if (want) {
            setenv("OPENBLAS_CORETYPE", want, 1);
            again = 1;
        }
    }
    /* libgomp spins 300000 times at a barrier before it sleeps: on a machine with other
     * work (more runnable threads than cores) a waiting thread then burns the time slice
     * its partner needs; a training step of a small model measured 127 s instead of 3.4 s
     * under load 7 on 2 cores (docs/kernels.md). A short spin keeps the fast hand-off. */
    if (!getenv("GOMP_SPINCOUNT") && !getenv("OMP_WAIT_POLICY")) {
        setenv("GOMP_SPINCOUNT", "1000", 1);
        again = 1;
    }
    if (again) execv("/proc/self/exe", argv);
    /* exec failed: carry on as we are */
}
