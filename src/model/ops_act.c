/* model/ops_act.c - GELU (tanh approximation), GeGLU and the embedding scale (ops.h). */
#include "ops.h"
#include "core/cpu.h"

#include <math.h>

#define GELU_K 0.7978845608028654f /* sqrt(2/pi) */
#define GELU_C 0.044715f

/* tanh(u) = 1 - 2 / (1 + e^(2u)): one expf, several times faster than glibc's tanhf (the
 * MLP's activation must not cost more than SwiGLU's silu); saturates to +-1 correctly
 * (e^(2u) = inf or 0), absolute error ~1e-7 */
static inline float tanh_fast(float u) { return 1.0f - 2.0f / (1.0f + expf(2.0f * u)); }

static inline float gelu_tanh(float x) {
    return 0.5f * x * (1.0f + tanh_fast(GELU_K * (x + GELU_C * x * x * x)));
}

/* gelu_tanh'(x), and gelu_tanh(x) in *y, from one tanh */
static inline float gelu_tanh_grad(float x, float *y) {
    float t = tanh_fast(GELU_K * (x + GELU_C * x * x * x));
    *y = 0.5f * x * (1.0f + t);
    return 0.5f * (1.0f + t) + 0.5f * x * (1.0f - t * t) * GELU_K * (1.0f + 3.0f * GELU_C * x * x);
}

void gelu_tanh_forward(float *y, const float *x, size_t n) {
#pragma omp parallel for schedule(static) if (CPU_PAR(n * 8))
    for (size_t i = 0; i < n; i++) y[i] = gelu_tanh(x[i]);
}

void gelu_tanh_backward(float *dx, const float *dy, const float *x, size_t n) {
#pragma omp parallel for schedule(static) if (CPU_PAR(n * 8))
    for (size_t i = 0; i < n; i++) {
        float y;
        dx[i] = dy[i] * gelu_tanh_grad(x[i], &y);
    }
}

void geglu_forward(float *hg, const float *h1, const float *h3, size_t n) {
#pragma omp parallel for schedule(static) if (CPU_PAR(n * 8))
    for (size_t i = 0; i < n; i++) hg[i] = gelu_tanh(h1[i]) * h3[i];
}

void geglu_backward(float *dh1, float *dh3, const float *dhg, const float *h1, const float *h3, size_t n) {
#pragma omp parallel for schedule(static) if (CPU_PAR(n * 8))
    for (size_t i = 0; i < n; i++) {
        float g = h1[i], dy = dhg[i], y;
        float dg = gelu_tanh_grad(g, &y);
        dh3[i] = dy * y;
        dh1[i] = dy * h3[i] * dg;
    }
}

float embed_scale_of(const ModelConfig *c) {
    return c->arch && c->arch->embed_scale_sqrt_d ? (float)sqrt((double)c->dim) : 1.0f;
}

void embed_scale_forward(float *x, size_t n, float scale) {
#pragma omp parallel for schedule(static) if (CPU_PAR(n))
    for (size_t i = 0; i < n; i++) x[i] *= scale;
}

void embed_scale_backward(float *dx, size_t n, float scale) { embed_scale_forward(dx, n, scale); }
