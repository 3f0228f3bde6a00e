/* kernel/vmath.c - exp row reductions: dispatch and the portable path. */
#include "kernel/vmath.h"

#include "kernel/matmul.h"

#include <math.h>

float kvec_max_avx512(const float *x, int n);
double kvec_sum_exp_avx512(const float *x, float shift, float xscale, int n);
void kvec_exp_scale_avx512(float *out, const float *x, float shift, float xscale, float scale, int n);
void kvec_silu_mul_avx512(float *out, const float *g, const float *u, size_t n);

float kvec_max(const float *x, int n) {
    if (kmm_level() >= KMM_AVX512) return kvec_max_avx512(x, n);
    float m = x[0];
    for (int i = 1; i < n; i++) m = x[i] > m ? x[i] : m;
    return m;
}

double kvec_sum_exp_scaled(const float *x, float shift, double xscale, int n) {
    float c = (float)xscale;
    if (kmm_level() >= KMM_AVX512) return kvec_sum_exp_avx512(x, shift, c, n);
    double s = 0.0;
    for (int i = 0; i < n; i++) s += expf((x[i] - shift) * c);
    return s;
}

double kvec_sum_exp(const float *x, float shift, int n) { return kvec_sum_exp_scaled(x, shift, 1.0, n); }

void kvec_exp_affine(float *out, const float *x, float shift, float xscale, float scale, int n) {
    if (kmm_level() >= KMM_AVX512) {
        kvec_exp_scale_avx512(out, x, shift, xscale, scale, n);
        return;
    }
    for (int i = 0; i < n; i++) out[i] = expf((x[i] - shift) * xscale) * scale;
}

void kvec_silu_mul(float *out, const float *g, const float *u, size_t n) {
    if (kmm_level() >= KMM_AVX512) {
        kvec_silu_mul_avx512(out, g, u, n);
        return;
    }
    for (size_t i = 0; i < n; i++) out[i] = g[i] / (1.0f + expf(-g[i])) * u[i];
}

void kvec_exp_scale(float *out, const float *x, float shift, float scale, int n) {
    kvec_exp_affine(out, x, shift, 1.0f, scale, n);
}

int kvec_argmax(const float *x, int n) {
    float m = kvec_max(x, n);
    for (int i = 0; i < n; i++)
        if (x[i] == m) return i;
    return 0;
}

double kvec_lse(const float *x, float m, double scale, int n) {
    if (m == -INFINITY || m == INFINITY) return m; /* every term 0 / an infinite term */
    return (double)m * scale + log(kvec_sum_exp_scaled(x, m, scale, n));
}

double kvec_logsumexp(const float *x, int n) { return kvec_lse(x, kvec_max(x, n), 1.0, n); }

void kvec_log_softmax(float *x, int n) {
    float lse = (float)kvec_logsumexp(x, n);
    for (int i = 0; i < n; i++) x[i] -= lse;
}
