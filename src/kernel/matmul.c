/* kernel/matmul.c - TEMPORARY minimal version over OpenBLAS; replaced by the kernels branch. */
#include "matmul.h"
#include "core/dtype.h"
#include "core/error.h"
#include <cblas.h>
#include <stdlib.h>
#include <string.h>

int kweight_init_f32(KWeight *w, const float *data, int n, int k) {
    memset(w, 0, sizeof *w);
    w->type = KW_F32; w->n = n; w->k = k; w->f32 = data;
    return 0;
}
int kweight_init_bf16(KWeight *w, const uint16_t *data, int n, int k) {
    memset(w, 0, sizeof *w);
    w->type = KW_BF16; w->n = n; w->k = k; w->bf16 = data;
    float *f = malloc((size_t)n * k * sizeof *f);
    if (!f) return err_set("out of memory");
    for (size_t i = 0; i < (size_t)n * k; i++) f[i] = bf16_to_f32(data[i]);
    w->packed = f; w->packed_bytes = (size_t)n * k * 4;
    return 0;
}
void kweight_free(KWeight *w) { free(w->packed); memset(w, 0, sizeof *w); }
static const float *wf(const KWeight *w) { return w->type == KW_F32 ? w->f32 : (const float *)w->packed; }
void kmm_xwt(const KWeight *w, const float *x, int m, float *y, float beta) {
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, m, w->n, w->k, 1.0f, x, w->k, wf(w), w->k, beta, y, w->n);
}
void kmm_xw(const KWeight *w, const float *dy, int m, float *dx, float beta) {
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, m, w->k, w->n, 1.0f, dy, w->n, wf(w), w->k, beta, dx, w->k);
}
void kmm_dw(const float *dy, const float *x, int m, int n, int k, float *dw, float beta) {
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, n, k, m, 1.0f, dy, n, x, k, beta, dw, k);
}
void kmm_f32_nt(int m, int n, int k, const float *a, int lda, const float *b, int ldb, float *c, int ldc, float alpha, float beta) {
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}
void kmm_f32_nn(int m, int n, int k, const float *a, int lda, const float *b, int ldb, float *c, int ldc, float alpha, float beta) {
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}
void kmm_f32_tn(int m, int n, int k, const float *a, int lda, const float *b, int ldb, float *c, int ldc, float alpha, float beta) {
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}
