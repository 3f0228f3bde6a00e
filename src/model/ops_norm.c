/* model/ops_norm.c - RMSNorm times (off + w) and LayerNorm with bias (ops.h). */
#include "ops.h"
#include "core/cpu.h"

#include <math.h>

void rmsnorm_off_forward(float *out, float *rstd, const float *x, const float *w, float off, int N, int d, float eps) {
#pragma omp parallel for schedule(static) if (CPU_PAR((size_t)N * d))
    for (int r = 0; r < N; r++) {
        const float *xr = x + (size_t)r * d;
        float *o = out + (size_t)r * d;
        float ss = 0.0f;
        for (int i = 0; i < d; i++) ss += xr[i] * xr[i];
        float s = 1.0f / sqrtf(ss / (float)d + eps);
        if (rstd) rstd[r] = s;
        for (int i = 0; i < d; i++) o[i] = (off + w[i]) * (s * xr[i]);
    }
}

void rmsnorm_off_backward(float *dx, float *dw, const float *dout, const float *x, const float *w, float off,
                          const float *rstd, int N, int d) {
#pragma omp parallel for schedule(static) if (CPU_PAR((size_t)N * d * 2))
    for (int r = 0; r < N; r++) {
        const float *g = dout + (size_t)r * d, *xr = x + (size_t)r * d;
        float *o = dx + (size_t)r * d;
        float dot = 0.0f;
        for (int i = 0; i < d; i++) dot += g[i] * (off + w[i]) * xr[i];
        float s = rstd[r];
        float c = s * s * s * dot / (float)d;
        for (int i = 0; i < d; i++) o[i] += s * (off + w[i]) * g[i] - c * xr[i];
    }
    if (!dw) return;
#pragma omp parallel for schedule(static) if (CPU_PAR((size_t)N * d))
    for (int i = 0; i < d; i++) {
        float acc = 0.0f;
        for (int r = 0; r < N; r++) acc += dout[(size_t)r * d + i] * (x[(size_t)r * d + i] * rstd[r]);
        dw[i] += acc;
    }
}

void layernorm_forward(float *out, float *mean, float *rstd, const float *x, const float *w, const float *b, int N, int d,
                       float eps) {
#pragma omp parallel for schedule(static) if (CPU_PAR((size_t)N * d * 2))
    for (int r = 0; r < N; r++) {
        const float *xr = x + (size_t)r * d;
        float *o = out + (size_t)r * d;
        float mu = 0.0f, var = 0.0f;
        for (int i = 0; i < d; i++) mu += xr[i];
        mu /= (float)d;
        for (int i = 0; i < d; i++) var += (xr[i] - mu) * (xr[i] - mu);
        float s = 1.0f / sqrtf(var / (float)d + eps);
        if (rstd) rstd[r] = s;
        if (mean) mean[r] = mu;
        for (int i = 0; i < d; i++) o[i] = (xr[i] - mu) * s * w[i] + (b ? b[i] : 0.0f);
    }
}

void layernorm_backward(float *dx, float *dw, float *db, const float *dout, const float *x, const float *w,
                        const float *mean, const float *rstd, int N, int d) {
#pragma omp parallel for schedule(static) if (CPU_PAR((size_t)N * d * 3))
    for (int r = 0; r < N; r++) {
        const float *g = dout + (size_t)r * d, *xr = x + (size_t)r * d;
        float *o = dx + (size_t)r * d;
        float mu = mean[r], s = rstd[r], mg = 0.0f, mgx = 0.0f;
        for (int i = 0; i < d; i++) {
            float gi = g[i] * w[i];
            mg += gi;
            mgx += gi * (xr[i] - mu) * s;
        }
        mg /= (float)d;
        mgx /= (float)d;
        for (int i = 0; i < d; i++) o[i] += s * (g[i] * w[i] - mg - (xr[i] - mu) * s * mgx);
    }
    if (!dw && !db) return;
    /* column sums in blocks of 64 columns, rows in order (contiguous reads, fixed order) */
    int nblk = (d + 63) / 64;
#pragma omp parallel for schedule(static) if (CPU_PAR((size_t)N * d * 2))
    for (int blk = 0; blk < nblk; blk++) {
        int i0 = blk * 64, i1 = i0 + 64 < d ? i0 + 64 : d;
        float aw[64] = {0}, ab[64] = {0};
        for (int r = 0; r < N; r++) {
            const float *g = dout + (size_t)r * d, *xr = x + (size_t)r * d;
            for (int i = i0; i < i1; i++) {
                aw[i - i0] += g[i] * ((xr[i] - mean[r]) * rstd[r]);
                ab[i - i0] += g[i];
            }
        }
        for (int i = i0; i < i1; i++) {
            if (dw) dw[i] += aw[i - i0];
            if (db) db[i] += ab[i - i0];
        }
    }
}

void norm_forward(const ModelConfig *c, float *out, float *stat, const float *x, const float *w, const float *b, int N, int d) {
    if (c->arch->norm == ARCH_NORM_LAYER) layernorm_forward(out, stat + N, stat, x, w, b, N, d, c->norm_eps);
    else rmsnorm_off_forward(out, stat, x, w, c->norm_offset, N, d, c->norm_eps);
}

void norm_backward(const ModelConfig *c, float *dx, float *dw, float *db, const float *dout, const float *x,
                   const float *w, const float *stat, int N, int d) {
    if (c->arch->norm == ARCH_NORM_LAYER) layernorm_backward(dx, dw, db, dout, x, w, stat + N, stat, N, d);
    else rmsnorm_off_backward(dx, dw, dout, x, w, c->norm_offset, stat, N, d);
}
