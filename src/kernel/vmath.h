/* kernel/vmath.h - row reductions with exp for softmax and cross-entropy.
 *
 * The softmax rows of the output head (32000 wide) cost as much as a layer's matrix
 * products when done with scalar expf; these run 16 lanes at a time on AVX-512 CPUs
 * (a Cephes-style polynomial, relative error below 2e-7 against expf) and fall back to
 * expf elsewhere. The path follows kmm_level() (MUSCLE_KERNEL), so the same level gives
 * the same bits; different levels agree to float rounding, not bit for bit. */
#ifndef MUSCLE_KERNEL_VMATH_H
#define MUSCLE_KERNEL_VMATH_H

/* max_i x[i] (n >= 1; NaN anywhere: the result is unspecified, not a crash). */
float kvec_max(const float *x, int n);
/* sum_i exp(x[i] - shift), summed in float lanes, then combined in double. */
double kvec_sum_exp(const float *x, float shift, int n);
/* out[i] = exp(x[i] - shift) * scale (out may be x). */
void kvec_exp_scale(float *out, const float *x, float shift, float scale, int n);

#endif
