/* kernel/vmath.h - row reductions with exp for softmax and cross-entropy.
 *
 * The softmax rows of the output head (32000 wide) cost as much as a layer's matrix
 * products when done with scalar expf; these run 16 lanes at a time on AVX-512 CPUs
 * (a Cephes-style polynomial, relative error below 2e-7 against expf) and fall back to
 * expf elsewhere. The path follows kmm_level() (MUSCLE_KERNEL), so the same level gives
 * the same bits; different levels agree to float rounding, not bit for bit. */
#ifndef MUSCLE_KERNEL_VMATH_H
#define MUSCLE_KERNEL_VMATH_H

#include <stddef.h>

/* max_i x[i] (n >= 1; NaN anywhere: the result is unspecified, not a crash). */
float kvec_max(const float *x, int n);
/* sum_i exp(x[i] - shift), summed in float lanes, then combined in double. */
double kvec_sum_exp(const float *x, float shift, int n);
/* sum_i exp((x[i] - shift) * xscale), the same way ((float)xscale; xscale 1: kvec_sum_exp). */
double kvec_sum_exp_scaled(const float *x, float shift, double xscale, int n);
/* out[i] = exp(x[i] - shift) * scale (out may be x). */
void kvec_exp_scale(float *out, const float *x, float shift, float scale, int n);
/* out[i] = exp((x[i] - shift) * xscale) * scale (out may be x; xscale 1: kvec_exp_scale). */
void kvec_exp_affine(float *out, const float *x, float shift, float xscale, float scale, int n);
/* out[i] = g[i] / (1 + exp(-g[i])) * u[i]: SwiGLU's gate (out may be g or u). */
void kvec_silu_mul(float *out, const float *g, const float *u, size_t n);
/* The index of the first maximum of x (n >= 1; 0 when x holds NaN and no maximum is found). */
int kvec_argmax(const float *x, int n);

/* ---- the row log-sum-exp / log-softmax of the tree: one precision policy ---------------
 *
 *   lse(x) = m + log sum_i exp(x[i] - m),  m = max_i x[i]  (kvec_max: exact)
 *
 * - max-subtracted: every term is in (0, 1], nothing overflows, a row of -inf but one gives
 *   exactly that one;
 * - x[i] - m and exp in float (the AVX-512 polynomial of vmath_avx512.c, relative error
 *   < 2e-7, or expf on the portable level), the terms summed in float lanes and the lanes
 *   combined in double (kvec_sum_exp);
 * - m + log(sum) in double; the result is a double (callers round where they store).
 * Against a float64 reference the result is within ~1e-6 relative of the sum (|error| of
 * lse < 1e-6 for rows up to 32000 wide; tests/kernel/test_logsumexp.c). This is the path
 * training's cross-entropy has always used, so evaluation, compatibility training and
 * training score a token the same way: the same level gives the same bits everywhere.
 * Edge rows: all -inf -> -inf; +inf anywhere -> +inf; NaN anywhere -> NaN. */

/* log sum_i exp(x[i] * scale), scale > 0 (1/T for a temperature T), given m = kvec_max(x, n)
 * (pass it when the caller has it). Equals scale * m + log kvec_sum_exp_scaled(x, m, scale). */
double kvec_lse(const float *x, float m, double scale, int n);
/* log sum_i exp(x[i]): kvec_lse(x, kvec_max(x, n), 1, n). */
double kvec_logsumexp(const float *x, int n);
/* x[i] -= (float)logsumexp(x), in place: the row's log-softmax. */
void kvec_log_softmax(float *x, int n);

#endif
