/* kernel/matmul.h - TEMPORARY minimal version; replaced by the kernels branch. */
#ifndef MUSCLE_KERNEL_MATMUL_H
#define MUSCLE_KERNEL_MATMUL_H
#include <stddef.h>
#include <stdint.h>
typedef enum { KW_F32, KW_BF16 } KWeightType;
typedef struct { KWeightType type; int n, k; const float *f32; const uint16_t *bf16; void *packed; size_t packed_bytes; } KWeight;
int kweight_init_f32(KWeight *w, const float *data, int n, int k);
int kweight_init_bf16(KWeight *w, const uint16_t *data, int n, int k);
void kweight_free(KWeight *w);
void kmm_xwt(const KWeight *w, const float *x, int m, float *y, float beta);
void kmm_xw(const KWeight *w, const float *dy, int m, float *dx, float beta);
void kmm_dw(const float *dy, const float *x, int m, int n, int k, float *dw, float beta);
void kmm_f32_nt(int m, int n, int k, const float *a, int lda, const float *b, int ldb, float *c, int ldc, float alpha, float beta);
void kmm_f32_nn(int m, int n, int k, const float *a, int lda, const float *b, int ldb, float *c, int ldc, float alpha, float beta);
void kmm_f32_tn(int m, int n, int k, const float *a, int lda, const float *b, int ldb, float *c, int ldc, float alpha, float beta);
#endif
