/* kernel/matmul.h - matrix products of the transformer engine.
 *
 * All matrices are row-major. Weights are stored PyTorch-style W[n = out, k = in];
 * activations are X[m, k] fp32 (m = tokens). Every operation is OpenMP-parallel
 * inside, correct for any m, n, k >= 1 (m <= 0 does nothing), and deterministic:
 * the same inputs and the same thread count give the same bits (static
 * partitioning, fixed summation order).
 *
 * bf16 weights: the forward product (kmm_xwt) rounds x to bf16 (nearest-even,
 * like f32_to_bf16) and accumulates exact bf16 x bf16 products in fp32 - the
 * semantics of PyTorch bf16 matmul and of vdpbf16ps - on every code path.
 * The backward product (kmm_xw) keeps dy in fp32 (only W is bf16).
 *
 * Code paths are chosen at run time from the CPU; the environment variable
 * MUSCLE_KERNEL=portable|avx2|avx512|avx512bf16|auto (read at first use) or
 * kmm_level_set() forces a lower one. The bf16 GEMM (m > 4) runs an fp32-FMA
 * kernel that widens packed bf16 on the fly, or at level avx512bf16 on AMD a
 * vdpbf16ps kernel (on Intel vdpbf16ps issues at half the fp32 FMA rate;
 * MUSCLE_BF16_GEMM=dp|fma overrides). Out of memory inside an operation
 * aborts (the operations return void). See docs/kernels.md.
 */
#ifndef MUSCLE_KERNEL_MATMUL_H
#define MUSCLE_KERNEL_MATMUL_H

#include <stddef.h>
#include <stdint.h>

typedef enum { KW_F32, KW_BF16 } KWeightType;

/* The layouts of a frozen bf16 weight that the engine builds once, on first use
 * (matmul_impl.h): our GEMM's packed panels, oneDNN's reordered copy. */
typedef struct KWeightCache KWeightCache;

typedef struct {
    KWeightType type;
    int n, k;              /* out, in */
    const float *f32;      /* [n, k] when KW_F32 (not owned) */
    const uint16_t *bf16;  /* [n, k] when KW_BF16 (not owned) */
    KWeightCache *cache;   /* KW_BF16: owned by the handle kweight_init_bf16 filled; a
                              struct copy (a tied classifier) shares it and is not freed */
} KWeight;

/* No copy: data may be a read-only mmap and must outlive the handle. */
int kweight_init_f32(KWeight *w, const float *data, int n, int k);
/* Keeps a pointer to data (the plain layout, which the small-m kernels and the
 * backward product read). The engine's own layout of the forward GEMM (m > 64 at
 * avx512bf16, m > 4 below) is built once, on the first product that runs there, and
 * only the one that engine reads: our packed panels (32 output rows, k-pairs
 * interleaved; the same size as W) on our engine, oneDNN's reordered copy (its
 * format_tag::any choice for the weights) on oneDNN. A weight used only by small
 * products (decoding) keeps no second copy. */
int kweight_init_bf16(KWeight *w, const uint16_t *data, int n, int k);
/* Bytes of the layouts built so far (0 for fp32 weights). */
size_t kweight_cache_bytes(const KWeight *w);
/* Drops the built layouts after the bf16 values behind w changed (they are rebuilt at
 * the next product). Not concurrently with a product on w. */
void kweight_bf16_changed(KWeight *w);
void kweight_free(KWeight *w);
/* The values behind w->bf16 changed (mixed-precision training refreshes its bf16 copies
 * after every optimizer step): rebuilds the kernel-friendly copies in place, no allocation. */
void kweight_repack_bf16(KWeight *w);

/* A panel copy of an fp32 weight W [n, k] for the forward product: ceil(n/16) panels of
 * [k][16] (16 outputs contiguous per column of the reduction; zero past n). With it,
 * kmm_xwt_panel sums every output as one fma chain in k order (from +0, then + beta y),
 * so a row of x gets the same bits at every m (generation's single stream = its batches).
 * It is a COPY: built from W's values at kpanel_init and not updated when they change, so
 * only a holder that outlives no change of W may keep one (the generators' run states,
 * model/forward.h). Level avx512 only: kpanel_init returns 1 (nothing built) below it or
 * with MUSCLE_F32_PANELS=0, -1 with err_set when out of memory, 0 when built. */
typedef struct {
    int n, k;
    float *p; /* [ceil(n/16)][k][16], 64-byte aligned (owned) */
} KPanel;
int kpanel_init(KPanel *p, const KWeight *w);
void kpanel_free(KPanel *p);
/* Bytes of the copy. */
size_t kpanel_bytes(const KPanel *p);
/* y[m,n] = x[m,k] . W^T + beta*y from the panel copy (beta == 0 never reads y). */
void kmm_xwt_panel(const KPanel *p, const float *x, int m, float *y, float beta);

/* y[m,n] = x[m,k] . W^T + beta*y   (forward; beta == 0 never reads y) */
void kmm_xwt(const KWeight *w, const float *x, int m, float *y, float beta);
/* dx[m,k] = dy[m,n] . W + beta*dx   (backward through the weight) */
void kmm_xw(const KWeight *w, const float *dy, int m, float *dx, float beta);
/* dw[n,k] = dy[m,n]^T . x[m,k] + beta*dw   (fp32 weight gradient) */
void kmm_dw(const float *dy, const float *x, int m, int n, int k, float *dw, float beta);

/* fp32 products (row-major), so nothing else calls cblas: sgemm, or our
 * AVX-512 GEMM when OpenBLAS runs without its AVX-512 kernels:
 *   nt: C[m,n] = alpha A[m,k] . B[n,k]^T + beta C
 *   nn: C[m,n] = alpha A[m,k] . B[k,n]   + beta C
 *   tn: C[m,n] = alpha A[k,m]^T . B[k,n] + beta C */
void kmm_f32_nt(int m, int n, int k, const float *a, int lda, const float *b, int ldb,
                float *c, int ldc, float alpha, float beta);
void kmm_f32_nn(int m, int n, int k, const float *a, int lda, const float *b, int ldb,
                float *c, int ldc, float alpha, float beta);
void kmm_f32_tn(int m, int n, int k, const float *a, int lda, const float *b, int ldb,
                float *c, int ldc, float alpha, float beta);

/* One-row products for decoding attention (one query row against a sequence's cache):
 *   kmm_row_nt: c[j] = alpha a[0..k) . b[j*ldb ..+k)   for j < n   (scores)
 *   kmm_row_nn: c[p] = sum_{j<k} a[j] b[j*ldb + p]      for p < n   (output)
 * Each sum runs in an order fixed by k alone (AVX-512: chunks of 16 and one lane tree;
 * portable: plain loops), so a query row gets the same bits whatever else is in the call;
 * single-threaded (the caller splits heads and rows). */
void kmm_row_nt(int n, int k, const float *a, const float *b, size_t ldb, float *c, float alpha);
void kmm_row_nn(int n, int k, const float *a, const float *b, size_t ldb, float *c);
/* The same reading b in bf16 in place (a bf16 KV cache): the bits of widening b to fp32
 * first and calling kmm_row_nt / kmm_row_nn (the widening is exact), at every level. */
void kmm_row_nt_bf16(int n, int k, const float *a, const uint16_t *b, size_t ldb, float *c, float alpha);
void kmm_row_nn_bf16(int n, int k, const float *a, const uint16_t *b, size_t ldb, float *c);

/* Mixed precision (matmul_bf16.c): both operands rounded to bf16 (nearest-even), the
 * exact products summed in fp32 - what PyTorch autocast does for a bf16 matmul. Same
 * argument conventions as the fp32 products above; kmm_xw_bf16 is kmm_xw with dy
 * rounded to bf16 too (W must be a bf16 weight, or fp32 values that are bf16). They
 * run on the bf16 engine (kmm_bf16_engine), or round copies of the operands and run
 * the fp32 products (exact products of bf16 values are exact in fp32). */
typedef void KmmGemm(int m, int n, int k, const float *a, int lda, const float *b, int ldb, float *c, int ldc,
                     float alpha, float beta);
KmmGemm kmm_bf16_nt, kmm_bf16_nn, kmm_bf16_tn;
void kmm_xw_bf16(const KWeight *w, const float *dy, int m, float *dx, float beta);

/* The products of the transformer's activations, by precision: exact fp32 (kmm_f32_*,
 * kmm_xw) or mixed (kmm_bf16_*, kmm_xw_bf16). The model picks one table per pass. */
typedef struct {
    KmmGemm *nt, *nn, *tn;
    void (*xw)(const KWeight *w, const float *dy, int m, float *dx, float beta);
} KmmProducts;
extern const KmmProducts kmm_products_f32, kmm_products_bf16;

/* Which implementation runs the bf16 GEMMs (m > 4; the small-m gemv paths are ours):
 * KMM_ENGINE_OWN, this file's AVX-512 GEMM (or portable), or KMM_ENGINE_DNNL, oneDNN's
 * matmul primitive (matmul_dnnl.c; AMX tiles when the CPU has them). Default, when the
 * level is not capped below avx512bf16: oneDNN when it runs AMX, or vdpbf16ps on a CPU
 * that issues it at full rate (AMD, the same test as MUSCLE_BF16_GEMM's); else ours (on
 * Intel without AMX our fp32-FMA GEMM is faster: docs/kernels.md). The
 * environment variable MUSCLE_DNNL=0 forces ours, MUSCLE_DNNL=1 oneDNN (read at
 * first use); kmm_bf16_engine_set(-1 auto, 0, 1) overrides (tests, benchmarks). */
typedef enum { KMM_ENGINE_OWN = 0, KMM_ENGINE_DNNL = 1 } KmmEngine;
KmmEngine kmm_bf16_engine(void);
void kmm_bf16_engine_set(int v);
/* The products' working memory (the bf16 copies of their operands, oneDNN's scratchpad)
 * is kept per thread, grown once to the largest product (kernel/kscratch.c), instead of
 * allocated every call. kmm_scratch_release frees it (the buffers of threads inside a
 * product are left for the next release); the trainer calls it in trainer_free.
 * kmm_scratch_bytes: what is held now, every thread. */
void kmm_scratch_release(void);
size_t kmm_scratch_bytes(void);
/* Diagnostics (bench/bench_train.c): with MUSCLE_KMM_TIMES=1 the bf16 products add their
 * wall time by kind: the forward product through frozen weights on oneDNN (kmm_xwt's
 * matrix-engine path, its rounding of x included), dy.W (kmm_xw_bf16), the mixed
 * products (kmm_bf16_*) outside parallel regions by layout (tn: weight gradients, LoRA's
 * too; nt/nn: LoRA's products, ...) and inside them (the attention, one head a thread:
 * thread-seconds), and the rounding to bf16 within all of them. Seconds since start. */
typedef enum { KMM_TIME_XWT, KMM_TIME_XW, KMM_TIME_DW, KMM_TIME_MIXED, KMM_TIME_ATTN, KMM_TIME_ROUND, KMM_TIME_COUNT } KmmTimeKind;
void kmm_times_get(double secs[KMM_TIME_COUNT]);
const char *kmm_time_name(KmmTimeKind kind);
/* Writes a report of which implementation each product kind uses on this CPU (one
 * "kind: implementation" line each, oneDNN's own implementation name included) into
 * buf (NUL-terminated, cut at cap). Returns the length it wanted. */
size_t kmm_dispatch_report(char *buf, size_t cap);

/* Code paths, lowest to highest. */
typedef enum { KMM_PORTABLE = 0, KMM_AVX2, KMM_AVX512, KMM_AVX512BF16 } KmmLevel;

/* Highest level this CPU supports. */
KmmLevel kmm_level_cpu(void);
/* Level in use (MUSCLE_KERNEL or automatic at first use, or kmm_level_set). */
KmmLevel kmm_level(void);
/* Forces a level; -1 (err_set) if the CPU lacks it. Not thread-safe against
 * concurrent products. */
int kmm_level_set(KmmLevel l);
/* Parses "portable", "avx2", "avx512", "avx512bf16" or "auto"; -1 if unknown. */
int kmm_level_parse(const char *s, KmmLevel *out);
const char *kmm_level_name(KmmLevel l);

#endif
