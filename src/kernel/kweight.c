/* kernel/kweight.c - weight handles (KWeight): fp32 and bf16 views of a [n, k] matrix and
 * the layouts built from a bf16 one on first use (our GEMM's panels, oneDNN's reordered
 * copy), refreshed in place when the values change (mixed-precision training). The
 * products are in matmul.c; design in docs/kernels.md ("Frozen weights laid out once"). */
#include "kernel/matmul.h"
#include "kernel/matmul_impl.h"
#include "core/error.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---------------------------------------------------------------- weights */

static int check_dims(const char *what, const void *data, int n, int k) {
    if (!data) return err_set("%s: NULL data", what);
    if (n < 1 || k < 1) return err_set("%s: shape [%d, %d]: both sides must be >= 1", what, n, k);
    return 0;
}

int kweight_init_f32(KWeight *w, const float *data, int n, int k) {
    memset(w, 0, sizeof *w);
    if (check_dims("kweight_init_f32", data, n, k)) return -1;
    w->type = KW_F32;
    w->n = n;
    w->k = k;
    w->f32 = data;
    return 0;
}

int kweight_init_bf16(KWeight *w, const uint16_t *data, int n, int k) {
    memset(w, 0, sizeof *w);
    if (check_dims("kweight_init_bf16", data, n, k)) return -1;
    KWeightCache *c = calloc(1, sizeof *c);
    if (!c) return err_set("kweight_init_bf16: [%d, %d]: out of memory", n, k);
    pthread_mutex_init(&c->lock, NULL);
    w->type = KW_BF16;
    w->n = n;
    w->k = k;
    w->bf16 = data;
    w->cache = c;
    return 0;
}

/* Fills p with our GEMM's panels of w (matmul_impl.h: KMM_NR output rows a panel, k-pairs
 * interleaved) from w->bf16. */
static void pack_bf16(const KWeight *w, uint32_t *p) {
    const int n = w->n, k = w->k;
    const uint16_t *data = w->bf16;
    size_t kq = (size_t)(k + 1) / 2, npan = (size_t)(n + KMM_NR - 1) / KMM_NR;
#pragma omp parallel for schedule(static)
    for (long long pan = 0; pan < (long long)npan; pan++) {
        uint32_t *dst = p + (size_t)pan * kq * KMM_NR;
        for (int col = 0; col < KMM_NR; col++) {
            size_t row = (size_t)pan * KMM_NR + col;
            const uint16_t *src = row < (size_t)n ? data + row * k : NULL;
            for (size_t q = 0; q < kq; q++) {
                uint32_t lo = 0, hi = 0;
                if (src) {
                    lo = src[2 * q];
                    if (2 * q + 1 < (size_t)k) hi = src[2 * q + 1];
                }
                dst[q * KMM_NR + col] = lo | hi << 16;
            }
        }
    }
}

/* Our GEMM's panels of w, built on the first call (out of memory aborts, as in any
 * product). */
const uint32_t *kweight_packed(const KWeight *w) {
    KWeightCache *c = w->cache;
    uint32_t *p = __atomic_load_n(&c->packed, __ATOMIC_ACQUIRE);
    if (p) return p;
    pthread_mutex_lock(&c->lock);
    p = c->packed;
    if (!p) {
        size_t kq = (size_t)(w->k + 1) / 2, npan = (size_t)(w->n + KMM_NR - 1) / KMM_NR;
        size_t bytes = npan * kq * KMM_NR * sizeof(uint32_t);
        p = aligned_alloc(64, (bytes + 63) & ~(size_t)63);
        if (!p) {
            fprintf(stderr, "muscle: fatal: out of memory (%zu bytes) packing a [%d, %d] bf16 weight\n", bytes, w->n, w->k);
            abort();
        }
        pack_bf16(w, p);
        c->packed_bytes = bytes;
        __atomic_store_n(&c->packed, p, __ATOMIC_RELEASE);
    }
    pthread_mutex_unlock(&c->lock);
    return p;
}

size_t kweight_cache_bytes(const KWeight *w) {
    if (!w || !w->cache) return 0;
    KWeightCache *c = w->cache;
    pthread_mutex_lock(&c->lock);
    size_t b = (c->packed ? c->packed_bytes : 0) + (c->dnnl ? c->dnnl_bytes : 0) + (c->dnnl_t ? c->dnnl_t_bytes : 0);
    pthread_mutex_unlock(&c->lock);
    return b;
}

static void cache_drop(KWeightCache *c) {
    free(c->packed);
    kdnnl_weight_free(c->dnnl);
    kdnnl_weight_free(c->dnnl_t);
    c->packed = NULL;
    c->dnnl = c->dnnl_t = NULL;
    c->packed_bytes = c->dnnl_bytes = c->dnnl_t_bytes = 0;
}

void kweight_bf16_changed(KWeight *w) {
    if (!w || !w->cache) return;
    pthread_mutex_lock(&w->cache->lock);
    cache_drop(w->cache);
    pthread_mutex_unlock(&w->cache->lock);
}

/* Refreshes w's oneDNN copy *slot in place from w->bf16; one that cannot be refreshed is
 * dropped (rebuilt at the next product). Under the cache's lock. */
static void dnnl_refresh(const KWeight *w, void **slot, size_t *bytes) {
    if (*slot && kdnnl_weight_refresh(w, *slot) != 0) {
        kdnnl_weight_free(*slot);
        *slot = NULL;
        *bytes = 0;
    }
}

void kweight_repack_bf16(KWeight *w) {
    if (!w || w->type != KW_BF16 || !w->cache) return;
    KWeightCache *c = w->cache;
    pthread_mutex_lock(&c->lock);
    if (c->packed) pack_bf16(w, c->packed);
    dnnl_refresh(w, &c->dnnl, &c->dnnl_bytes);     /* x W^T's copy */
    dnnl_refresh(w, &c->dnnl_t, &c->dnnl_t_bytes); /* dy W's copy: the same rule */
    pthread_mutex_unlock(&c->lock);
}

void kweight_free(KWeight *w) {
    if (!w) return;
    if (w->cache) {
        cache_drop(w->cache);
        pthread_mutex_destroy(&w->cache->lock);
        free(w->cache);
    }
    memset(w, 0, sizeof *w);
}
