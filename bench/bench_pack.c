/* bench/bench_pack.c - frozen bf16 weights on oneDNN (issue 20): the forward product
 * x[M,K] . W[N,K]^T with W reordered once into oneDNN's layout against the plain layout
 * oneDNN re-packs every call (MUSCLE_DNNL_PACK=0), run alternately, best of REPS pairs.
 *   bench_pack [M] [REPS] [xw]  (bench/pack.sh runs it under the benchmark lock)
 * xw: the backward product dx[M,K] = dy[M,N] . W through the same weights (kmm_xw_bf16:
 * its own cached copy, KWeightCache.dnnl_t) instead of the forward one.
 * BENCH_CPUTIME=1 times process CPU time / threads (robust to time-slicing on a busy
 * machine; use OMP_WAIT_POLICY=passive so that idle threads do not spin). */
#include "core/dtype.h"
#include "kernel/matmul.h"
#include "kernel/matmul_impl.h"

#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now(int cpu) {
    if (!cpu) return omp_get_wtime();
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (ts.tv_sec + ts.tv_nsec * 1e-9) / omp_get_max_threads();
}

int main(int argc, char **argv) {
    static const int sh[][2] = {{768, 768}, {2048, 768}, {768, 2048}, {32000, 768}};
    const int m = argc > 1 ? atoi(argv[1]) : 1024, reps = argc > 2 ? atoi(argv[2]) : 3;
    const int cpu = getenv("BENCH_CPUTIME") && atoi(getenv("BENCH_CPUTIME"));
    const int xw = argc > 3 && !strcmp(argv[3], "xw");
    if (m < 65 || reps < 1) {
        fprintf(stderr, "usage: bench_pack [M > 64] [REPS >= 1]\n");
        return 2;
    }
    kmm_bf16_engine_set(1);
    char impl[64] = "?", lay[32] = "?";
    kdnnl_impl(m, 768, 768, impl, sizeof impl);
    kdnnl_weights_layout(m, 768, 768, lay, sizeof lay);
    printf("# oneDNN %s, weights layout %s, %d threads, %s time, %s\n", impl, lay, omp_get_max_threads(), cpu ? "CPU" : "wall",
           xw ? "backward dx = dy . W (kmm_xw_bf16)" : "forward y = x . W^T (kmm_xwt)");
    printf("| M x N x K | plain, re-packed per call GFLOP/s | reordered once GFLOP/s | ratio |\n|---|---:|---:|---:|\n");
    unsigned seed = 1;
    for (size_t s = 0; s < sizeof sh / sizeof sh[0]; s++) {
        const int n = sh[s][0], k = sh[s][1];
        uint16_t *w = malloc((size_t)n * k * 2);
        float *x = malloc((size_t)m * k * 4), *y = malloc((size_t)m * n * 4); /* xw: dx = x, dy = y */
        if (!w || !x || !y) return 1;
        for (size_t i = 0; i < (size_t)n * k; i++) w[i] = f32_to_bf16(((float)rand_r(&seed) / RAND_MAX - 0.5f) * 0.04f);
        for (size_t i = 0; i < (size_t)m * k; i++) x[i] = (float)rand_r(&seed) / RAND_MAX - 0.5f;
        for (size_t i = 0; i < (size_t)m * n; i++) y[i] = (float)rand_r(&seed) / RAND_MAX - 0.5f;
        KWeight kw;
        if (kweight_init_bf16(&kw, w, n, k)) return 1;
        double best[2] = {1e30, 1e30};
        for (int r = 0; r < reps; r++)
            for (int p = 0; p < 2; p++) {
                kdnnl_pack_force(p);
                if (xw) kmm_xw_bf16(&kw, y, m, x, 0.0f); /* warm-up (and the reorder, the first time) */
                else kmm_xwt(&kw, x, m, y, 0.0f);
                double t = now(cpu);
                if (xw) kmm_xw_bf16(&kw, y, m, x, 0.0f);
                else kmm_xwt(&kw, x, m, y, 0.0f);
                t = now(cpu) - t;
                if (t < best[p]) best[p] = t;
            }
        double f = 2.0 * m * n * k / 1e9;
        printf("| %d x %d x %d | %.0f | %.0f | %.2fx |\n", m, n, k, f / best[0], f / best[1], best[0] / best[1]);
        fflush(stdout);
        kweight_free(&kw);
        free(w), free(x), free(y);
    }
    kdnnl_pack_force(-1);
    kmm_bf16_engine_set(-1);
    return 0;
}
