/* kernel/matmul_impl.h - internals shared by the matmul files (not public). */
#ifndef MUSCLE_KERNEL_MATMUL_IMPL_H
#define MUSCLE_KERNEL_MATMUL_IMPL_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include "kernel/matmul.h"

/* The layouts of a bf16 weight built on first use (matmul.h, kweight_init_bf16).
 * Readers load the pointers with acquire; a builder takes lock, checks again, builds,
 * and stores with release, so a layout is built once however many threads ask. */
struct KWeightCache {
    pthread_mutex_t lock;
    uint32_t *packed;    /* our GEMM's panels (layout below), or NULL */
    size_t packed_bytes;
    void *dnnl;          /* oneDNN's reordered copy (matmul_dnnl.c), or NULL */
    size_t dnnl_bytes;
    void *dnnl_t;        /* oneDNN's copy for the backward product dy.W (kdnnl_xw_bf16), or NULL */
    size_t dnnl_t_bytes;
};

/* GEMM blocking for bf16 weights (AVX-512 micro-kernels). */
#define KMM_MR 12  /* rows of x per micro-tile */
#define KMM_NR 32  /* output columns per micro-tile = one packed panel */
#define KMM_KC 256 /* reduction block (even) */
#define KMM_MC 384 /* rows of x per packed A block (multiple of MR) */

/* Micro-kernel store modes. */
enum { KMM_STORE = 0, KMM_BETA = 1, KMM_ACC = 2 };

/* Packed bf16 panel layout: for panel p (outputs 32p..32p+31) and k-pair q,
 * one uint32 per output c: low half = element k = 2q, high half = 2q+1;
 * panels of kq = (k+1)/2 pairs follow each other; padding is zero. */

/* c[r*ldc + j] (r < mr, j < nr) op= alpha sum_q a(r, q) . b(q, j) (op: =,
 * = beta c +, += per mode). ap: the A tile
 * row-major with a fixed row stride (so the kernel addresses its 12 rows by
 * constant offsets): f32 [MR][KC] (f32, fma) or bf16 pairs [MR][KC/2] (dp),
 * zero-padded; bp: [kq][32] pairs, or f32 [kc][32] for the f32 kernel. */
void kmm_ukr_f32_avx512(int kc, const float *ap, const float *bp, float *c, size_t ldc, int mr,
                        int nr, int mode, float beta, float alpha);
void kmm_ukr_fma_avx512(int kq, const float *ap, const uint32_t *bp, float *c, size_t ldc,
                        int mr, int nr, int mode, float beta, float alpha);
void kmm_ukr_dp_avx512bf16(int kq, const uint32_t *ap, const uint32_t *bp, float *c, size_t ldc,
                           int mr, int nr, int mode, float beta, float alpha);

/* Row-range gemv for small m: y[i*ldy + r] = dot(x_i, W[r]) + beta*y for
 * r in [r0, r1), i < m. x rows have stride k, except for
 * kmm_gemv_bf16_avx512: x rounded to bf16, rows of kp = k rounded up to 32,
 * each 32-chunk split into its 16 even then 16 odd elements (zero-padded).
 * The avx2 bf16 variant takes x rounded to bf16. (At avx512 and up, fp32 weights and,
 * with avx512bf16, bf16 weights go to the small-m kernels below.) */
void kmm_gemv_bf16_avx512(const uint16_t *w, int k, const float *x, int m, float *y,
                          size_t ldy, float beta, int r0, int r1);
void kmm_gemv_f32_avx2(const float *w, int k, const float *x, int m, float *y, size_t ldy,
                       float beta, int r0, int r1);
void kmm_gemv_bf16_avx2(const uint16_t *w, int k, const float *x, int m, float *y, size_t ldy,
                        float beta, int r0, int r1);

/* Small-m products (batched decoding, m <= 64): the same contract as the gemv above
 * (rows [r0, r1) of W, all m rows of x, row stride k), x in fp32 (f32) or rounded to
 * bf16 (bf16, vdpbf16ps). Every y[i][r] sums in an order fixed by k alone: the same
 * bits for a row of x whatever m is (see matmul_avx512.c). r0 a multiple of 16. */
void kmm_small_f32_avx512(const float *w, int k, const float *x, int m, float *y, size_t ldy,
                          float beta, int r0, int r1);
void kmm_small_bf16_avx512bf16(const uint16_t *w, int k, const uint16_t *xb, int m, float *y,
                               size_t ldy, float beta, int r0, int r1);

/* kpanel_avx512.c: y (ldy) = x[m, k] . W^T + beta y for the outputs of panels [p0, p1) of a
 * KPanel's copy pw (n outputs in all), each a single fma chain in k order (matmul.h);
 * kmm_panel_group: its panels per group at m rows (the threads split whole groups). */
int kmm_panel_group(int m);
void kmm_panel_f32_avx512(const float *pw, int n, int k, const float *x, int m, float *y, size_t ldy, float beta,
                          int p0, int p1);
/* One-row products (kmm_row_nt / kmm_row_nn in matmul.h) on AVX-512. */
void kmm_row_nt_avx512(int n, int k, const float *a, const float *b, size_t ldb, float *c, float alpha);
void kmm_row_nn_avx512(int n, int k, const float *a, const float *b, size_t ldb, float *c);
/* The same with b in bf16 (the same bits as on b widened to fp32). */
void kmm_row_nt_bf16_avx512(int n, int k, const float *a, const uint16_t *b, size_t ldb, float *c, float alpha);
void kmm_row_nn_bf16_avx512(int n, int k, const float *a, const uint16_t *b, size_t ldb, float *c);

/* dst[j*ldd + i] = src[i*lds + j] for i < rows, j < cols (AVX-512). */
void kmm_transpose_avx512(const float *src, size_t lds, int rows, int cols, float *dst, size_t ldd);

/* dst[c] = lo[c] | hi[c] << 16 for c < nc (hi NULL: 0), zero for nc <= c < 32. */
void kmm_pack_pairs_avx512(const uint16_t *lo, const uint16_t *hi, int nc, uint32_t *dst);

/* Tests: at level avx512bf16, force the bf16 GEMM to vdpbf16ps (1) or to the
 * fp32-FMA kernel (0); -1 restores the automatic choice (by CPU vendor). */
void kmm_bf16_gemm_dp_force(int v);

/* Tests: force fp32 products through our AVX-512 GEMM (1) or sgemm (0) at
 * level avx512 and up; -1 restores the automatic choice (by OpenBLAS core). */
void kmm_f32_own_gemm_force(int v);

/* oneDNN (matmul_dnnl.c). kdnnl_ready: its CPU engine exists. kdnnl_isa: the ISA it
 * runs ("avx512_core_amx", "avx512_core_bf16", ...). kdnnl_gemm_bf16:
 * C[m,n] = alpha A . B + beta C with A(i,p) = a[i*sam + p*sak], B(p,j) = b[p*sbk +
 * j*sbn] in bf16, C fp32 with row stride ldc (beta 0: C not read); -1 with err_set
 * when oneDNN has no primitive for it. kdnnl_impl: the implementation name oneDNN
 * chooses for a forward product x[m,k] W[n,k]^T, written to buf; NULL without one. */
int kdnnl_ready(void);
const char *kdnnl_isa(void);
int kdnnl_has_amx(void);
int kdnnl_gemm_bf16(int m, int n, int k, const uint16_t *a, long sam, long sak, const uint16_t *b, long sbk, long sbn,
                    float *c, long ldc, float alpha, float beta);
const char *kdnnl_impl(int m, int n, int k, char *buf, size_t cap);

/* For the report: whether the bf16 GEMM of our own (level avx512bf16) uses vdpbf16ps,
 * whether fp32 products run our GEMM (else OpenBLAS). */
int kmm_bf16_gemm_uses_dp(void);
int kmm_f32_uses_own(void);

/* y[m, n] = xb[m, k] . W^T + beta y on oneDNN with W reordered once into the layout
 * the primitive asks for (format_tag::any), cached in w->cache (built on first use;
 * MUSCLE_DNNL_PACK=0 or kdnnl_pack_force(0) runs the plain layout instead, which
 * oneDNN re-packs every call). xb: x rounded to bf16. -1 with err_set on failure. */
int kdnnl_xwt_bf16(const KWeight *w, const uint16_t *xb, int m, float *y, float beta);
/* Frees a reordered copy (kweight_free, kweight_bf16_changed). */
/* Our GEMM's panels of a bf16 weight (KMM_NR output rows a panel, k-pairs interleaved),
 * built on the first call (kweight.c). */
const uint32_t *kweight_packed(const KWeight *w);
void kdnnl_weight_free(void *p);
/* Reorders w's current values into the copy p in place (kweight_repack_bf16); -1 if it
 * cannot (the caller then drops the copy). */
int kdnnl_weight_refresh(const KWeight *w, void *p);
/* Tests and benchmarks: 1 reorder once (the default), 0 the plain layout every call,
 * -1 back to MUSCLE_DNNL_PACK / the default. */
void kdnnl_pack_force(int v);
int kdnnl_pack_on(void);
/* The weights layout oneDNN chooses for the forward product x[m,k] W[n,k]^T (its
 * format string, e.g. "BA16a64b2a"), written to buf; NULL without one. */
const char *kdnnl_weights_layout(int m, int n, int k, char *buf, size_t cap);

/* The products' working memory (kscratch.c): per thread, one grown-once buffer per
 * slot. A product brackets its use with kscratch_enter / kscratch_leave (they nest);
 * kscratch_get returns this thread's buffer of the slot with at least bytes (64-byte
 * aligned, contents undefined), valid until the next kscratch_get of that slot on this
 * thread or the outermost kscratch_leave. Out of memory aborts, as in any product. */
typedef enum {
    KSCR_A,       /* the first operand's bf16 (or rounded fp32) copy */
    KSCR_B,       /* the second operand's copy */
    KSCR_DNNL,    /* oneDNN's scratchpad (user scratchpad mode) */
    KSCR_WEIGHT,  /* a weight reordered for one call (a layout the cached copy does not have) */
    KSCR_COUNT
} KScratchSlot;
void kscratch_enter(void);
void kscratch_leave(void);
void *kscratch_get(KScratchSlot slot, size_t bytes);

/* dx[m, k] = db[m, n] . W + beta dx on oneDNN with W reordered once into the layout the
 * primitive asks for this use (format_tag::any over W as [n, k]: not the forward's
 * layout, whose pairs run along k), cached in w->cache->dnnl_t and refreshed by
 * kweight_repack_bf16 like the forward copy; MUSCLE_DNNL_PACK=0 runs the plain layout.
 * db: dy rounded to bf16. -1 with err_set on failure. */
int kdnnl_xw_bf16(const KWeight *w, const uint16_t *db, int m, float *dx, float beta);

/* A 0/1 switch from the environment variable name, read once into *cache (which starts
 * at -2): -1 unset, 0 or 1; another value is ignored with a warning naming meaning. */
int kmm_env_switch(int *cache, const char *name, const char *meaning);

/* matmul_bf16.c: y = bf16(x) . W^T + beta y on oneDNN (w bf16); -1 if it failed (the
 * caller falls back). */
int kmm_dnnl_xwt(const KWeight *w, const float *x, int m, float *y, float beta);

#endif
