/* kernel/kpanel.c - panel copies of fp32 weights and the product that reads them
 * (matmul.h, KPanel; the kernel in kpanel_avx512.c). */
#include "kernel/matmul.h"
#include "kernel/matmul_impl.h"
#include "core/cpu.h"
#include "core/error.h"

#include <omp.h>
#include <stdlib.h>
#include <string.h>

/* MUSCLE_F32_PANELS=0 keeps generation on the dot-product kernels (read once). */
static int panels_on(void) {
    static int env = -2;
    return kmm_env_switch(&env, "MUSCLE_F32_PANELS", "0: no panel copies (the dot-product kernels), 1: panel copies") != 0;
}

/* Bytes of the panel copy of an n x k weight: ceil(n / 16) panels of k x 16 floats. */
static size_t panel_bytes(int n, int k) { return (size_t)(n + 15) / 16 * (size_t)k * 16 * sizeof(float); }

size_t kpanel_bytes(const KPanel *p) { return p->p ? panel_bytes(p->n, p->k) : 0; }

int kpanel_init(KPanel *p, const KWeight *w) {
    memset(p, 0, sizeof *p);
    if (w->type != KW_F32 || kmm_level() < KMM_AVX512 || !panels_on()) return 1;
    const int n = w->n, k = w->k, np = (n + 15) / 16;
    p->n = n;
    p->k = k;
    const size_t bytes = panel_bytes(n, k);
    /* on huge pages (cpu_alloc_huge): building the copy is mostly the first touch of fresh
     * pages, 512 times fewer faults, and its stream misses the TLB far less */
    p->p = cpu_alloc_huge(bytes);
    if (!p->p) return err_set("out of memory: a panel copy of a %d x %d weight needs %zu MB", n, k, bytes >> 20);
    /* row by row: W read in order, each panel's stores within its k * 64 bytes (in cache) */
#pragma omp parallel for if (CPU_PAR((size_t)n * k))
    for (int g = 0; g < np; g++) {
        float *dst = p->p + (size_t)g * k * 16;
        int c = n - g * 16 < 16 ? n - g * 16 : 16;
        for (int j = 0; j < 16; j++) {
            const float *src = w->f32 + (size_t)(g * 16 + j) * k;
            if (j < c)
                for (int q = 0; q < k; q++) dst[(size_t)q * 16 + j] = src[q];
            else
                for (int q = 0; q < k; q++) dst[(size_t)q * 16 + j] = 0.0f;
        }
    }
    return 0;
}

void kpanel_free(KPanel *p) {
    free(p->p);
    memset(p, 0, sizeof *p);
}

void kmm_xwt_panel(const KPanel *p, const float *x, int m, float *y, float beta) {
    if (m <= 0) return;
    const int n = p->n, k = p->k, np = (n + 15) / 16, unit = kmm_panel_group(m);
#pragma omp parallel if (CPU_PAR((size_t)n * k * m))
    {
        int nt = omp_get_num_threads(), t = omp_get_thread_num(), ng = (np + unit - 1) / unit;
        int g0 = (int)((long long)ng * t / nt), g1 = (int)((long long)ng * (t + 1) / nt);
        int p0 = g0 * unit, p1 = g1 * unit < np ? g1 * unit : np;
        if (p0 < p1) kmm_panel_f32_avx512(p->p, n, k, x, m, y, (size_t)n, beta, p0, p1);
    }
}
