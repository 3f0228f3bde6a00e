/* kernel/vmath.c - exp row reductions: dispatch and the portable path. */
#include "kernel/vmath.h"

#include "kernel/matmul.h"

#include <math.h>

float kvec_max_avx512(const float *x, int n);
double kvec_sum_exp_avx512(const float *x, float shift, int n);
void kvec_exp_scale_avx512(float *out, const float *x, float shift, float scale, int n);

float kvec_max(const float *x, int n) {
    if (kmm_level() >= KMM_AVX512) return kvec_max_avx512(x, n);
    float m = x[0];
    for (int i = 1; i < n; i++) m = x[i] > m ? x[i] : m;
    return m;
}

double kvec_sum_exp(const float *x, float shift, int n) {
    if (kmm_level() >= KMM_AVX512) return kvec_sum_exp_avx512(x, shift, n);
    double s = 0.0;
    for (int i = 0; i < n; i++) s += expf(x[i] - shift);
    return s;
}

void kvec_exp_scale(float *out, const float *x, float shift, float scale, int n) {
    if (kmm_level() >= KMM_AVX512) {
        kvec_exp_scale_avx512(out, x, shift, scale, n);
        return;
    }
    for (int i = 0; i < n; i++) out[i] = expf(x[i] - shift) * scale;
}
