/* kernel/matmul_dnnl.c - bf16 x bf16 -> fp32 matrix products through oneDNN's matmul
 * primitive (Debian libdnnl 2.6). oneDNN picks its implementation from the CPU at run
 * time: AMX tiles (brg:avx512_core_amx) where the CPU and the kernel allow them, else
 * AVX512-BF16 (vdpbf16ps) or an emulation. matmul.c decides when to call it (see
 * kmm_bf16_engine in matmul.h); this file only runs products and names what ran.
 *
 * Primitives are created once per shape (sizes, strides, alpha, beta) and kept in a
 * table of 128 under a mutex (an idle one is replaced when it is full); each execution
 * brings its own scratchpad (user scratchpad mode: oneDNN's shared one made concurrent
 * products from the attention's threads race), the calling thread's grown-once KSCR_DNNL
 * buffer (kscratch.c; it was allocated every call), and each thread has its own stream.
 * Frozen weights (kdnnl_xwt_bf16): the forward product's primitive is made with the
 * weights' layout left to oneDNN (format_tag::any: on AVX512-BF16 and AMX a blocked
 * VNNI layout such as BA16a64b2a); each weight is reordered into it once, on its first
 * such product, and the copy is kept in the weight's cache (KWeightCache, freed with the
 * weight). With the plain layout oneDNN's brgemm copies B into that layout on every
 * call. The layout depends on n and k, not on m (checked: 65..4096 rows give the same
 * one), so one copy serves every m; should a primitive ask for another, that call
 * reorders into a temporary copy. The backward product through the same frozen weight,
 * dx = dy W (kdnnl_xw_bf16), reads W the other way round (reduction over n, VNNI pairs
 * along n), so the forward copy cannot serve it: it gets a second cached copy in its own
 * preferred layout (KWeightCache.dnnl_t), made on its first use, i.e. only when training.
 * Numerics: the exact products of the bf16 inputs summed in fp32 (oneDNN's bf16
 * matmul accumulates in fp32), in an order oneDNN chooses; the same shape and thread
 * count run the same kernel, so the same bits. */
#include "kernel/matmul_impl.h"
#include "core/error.h"

#include <oneapi/dnnl/dnnl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    int m, n, k;
    long sam, sak, sbk, sbn, ldc;
    float alpha, beta;
    int wany; /* weights in the layout oneDNN chooses (sbk, sbn unused) */
    dnnl_primitive_t prim;
    int busy; /* executions under way */
    char impl[48];
} DnnlEntry;

#define DNNL_CACHE 128

static pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER;
static dnnl_engine_t g_engine;
static int g_state; /* 0 not tried, 1 ready, -1 failed */
static DnnlEntry g_cache[DNNL_CACHE];
static int g_ncache, g_next; /* entries used; next to evict when full (round robin) */
static _Thread_local dnnl_stream_t t_stream;

static int engine_get(void) {
    int st = __atomic_load_n(&g_state, __ATOMIC_ACQUIRE);
    if (st) return st;
    pthread_mutex_lock(&g_lock);
    if (!g_state) g_state = dnnl_engine_create(&g_engine, dnnl_cpu, 0) == dnnl_success ? 1 : -1;
    st = g_state;
    pthread_mutex_unlock(&g_lock);
    return st;
}

int kdnnl_ready(void) { return engine_get() == 1; }

const char *kdnnl_isa(void) {
    switch (dnnl_get_effective_cpu_isa()) {
    case dnnl_cpu_isa_avx512_core_amx: return "avx512_core_amx";
    case dnnl_cpu_isa_avx512_core_bf16: return "avx512_core_bf16";
    case dnnl_cpu_isa_avx512_core_vnni: return "avx512_core_vnni";
    case dnnl_cpu_isa_avx512_core: return "avx512_core";
    case dnnl_cpu_isa_avx2_vnni: return "avx2_vnni";
    case dnnl_cpu_isa_avx2: return "avx2";
    default: return "older than avx2";
    }
}

int kdnnl_has_amx(void) { return kdnnl_ready() && dnnl_get_effective_cpu_isa() == dnnl_cpu_isa_avx512_core_amx; }

static int md2(dnnl_memory_desc_t *md, long r, long c, long sr, long sc, dnnl_data_type_t t) {
    dnnl_dims_t dims = {r, c}, strides = {sr, sc};
    return dnnl_memory_desc_init_by_strides(md, 2, dims, t, strides) == dnnl_success ? 0 : -1;
}

/* Creates the primitive of e's shape (e->prim, e->impl). */
static int entry_make(DnnlEntry *e) {
    dnnl_memory_desc_t a, b, c;
    dnnl_dims_t bdims = {e->k, e->n};
    if (md2(&a, e->m, e->k, e->sam, e->sak, dnnl_bf16) ||
        (e->wany ? dnnl_memory_desc_init_by_tag(&b, 2, bdims, dnnl_bf16, dnnl_format_tag_any) != dnnl_success
                 : md2(&b, e->k, e->n, e->sbk, e->sbn, dnnl_bf16)) ||
        md2(&c, e->m, e->n, e->ldc, 1, dnnl_f32))
        return err_set("oneDNN: cannot describe a %d x %d x %d bf16 product", e->m, e->n, e->k);
    dnnl_matmul_desc_t d;
    if (dnnl_matmul_desc_init(&d, &a, &b, NULL, &c) != dnnl_success)
        return err_set("oneDNN: no matmul descriptor for %d x %d x %d bf16", e->m, e->n, e->k);
    dnnl_primitive_attr_t attr = NULL;
    dnnl_post_ops_t po = NULL;
    int rc = -1;
    if (dnnl_primitive_attr_create(&attr) != dnnl_success) goto out;
    /* our own scratchpad per execution: the library's shared one is not safe when two
     * threads run primitives at once (the attention runs one product per head in parallel) */
    if (dnnl_primitive_attr_set_scratchpad_mode(attr, dnnl_scratchpad_mode_user) != dnnl_success) goto out;
    if (e->alpha != 1.0f && dnnl_primitive_attr_set_output_scales(attr, 1, 0, &e->alpha) != dnnl_success) goto out;
    if (e->beta != 0.0f) {
        if (dnnl_post_ops_create(&po) != dnnl_success || dnnl_post_ops_append_sum(po, e->beta) != dnnl_success ||
            dnnl_primitive_attr_set_post_ops(attr, po) != dnnl_success)
            goto out;
    }
    dnnl_primitive_desc_t pd;
    if (dnnl_primitive_desc_create(&pd, &d, attr, g_engine, NULL) != dnnl_success) goto out;
    const char *impl = NULL;
    if (dnnl_primitive_desc_query(pd, dnnl_query_impl_info_str, 0, &impl) != dnnl_success || !impl) impl = "?";
    snprintf(e->impl, sizeof e->impl, "%s", impl);
    rc = dnnl_primitive_create(&e->prim, pd) == dnnl_success ? 0 : -1;
    dnnl_primitive_desc_destroy(pd);
out:
    if (po) dnnl_post_ops_destroy(po);
    if (attr) dnnl_primitive_attr_destroy(attr);
    if (rc) err_set("oneDNN: no bf16 matmul primitive for %d x %d x %d", e->m, e->n, e->k);
    return rc;
}

static int same(const DnnlEntry *x, const DnnlEntry *y) {
    return x->m == y->m && x->n == y->n && x->k == y->k && x->sam == y->sam && x->sak == y->sak && x->sbk == y->sbk &&
           x->sbn == y->sbn && x->ldc == y->ldc && x->alpha == y->alpha && x->beta == y->beta && x->wany == y->wany;
}

/* The cached primitive for key (made on first use), its use count raised (release
 * with unuse); copies its name to impl. When the table is full, the next idle entry
 * (round robin) is destroyed and replaced: an entry in use is never destroyed. */
static DnnlEntry *lookup(const DnnlEntry *key, char *impl, size_t cap) {
    DnnlEntry *hit = NULL;
    pthread_mutex_lock(&g_lock);
    for (int i = 0; i < g_ncache && !hit; i++)
        if (same(&g_cache[i], key)) hit = &g_cache[i];
    if (!hit) {
        DnnlEntry e = *key;
        e.busy = 0;
        int slot = -1;
        if (g_ncache < DNNL_CACHE) {
            slot = g_ncache;
        } else {
            for (int t = 0; t < DNNL_CACHE && slot < 0; t++, g_next = (g_next + 1) % DNNL_CACHE)
                if (!g_cache[g_next].busy) slot = g_next;
        }
        if (slot >= 0 && entry_make(&e) == 0) {
            if (slot < g_ncache) dnnl_primitive_destroy(g_cache[slot].prim);
            else g_ncache++;
            g_cache[slot] = e;
            hit = &g_cache[slot];
        } else if (slot < 0) {
            err_set("oneDNN: all %d cached primitives are in use", DNNL_CACHE);
        }
    }
    if (hit) {
        hit->busy++;
        if (impl) snprintf(impl, cap, "%s", hit->impl);
    }
    pthread_mutex_unlock(&g_lock);
    return hit;
}

static void unuse(DnnlEntry *e) {
    pthread_mutex_lock(&g_lock);
    e->busy--;
    pthread_mutex_unlock(&g_lock);
}

/* A thread's stream is destroyed when the thread exits (OpenMP ends the surplus threads
 * of a larger team when a smaller one follows: their streams leaked before). */
static pthread_once_t g_stream_once = PTHREAD_ONCE_INIT;
static pthread_key_t g_stream_key;
static int g_stream_key_ok;

static void stream_on_exit(void *p) { dnnl_stream_destroy(p); }

static void stream_key_make(void) { g_stream_key_ok = pthread_key_create(&g_stream_key, stream_on_exit) == 0; }

static int stream_get(void) {
    if (t_stream) return 0;
    if (dnnl_stream_create(&t_stream, g_engine, dnnl_stream_default_flags) != dnnl_success) {
        t_stream = NULL;
        return err_set("oneDNN: cannot create a stream");
    }
    pthread_once(&g_stream_once, stream_key_make);
    if (g_stream_key_ok) pthread_setspecific(g_stream_key, t_stream);
    return 0;
}

/* Runs e's primitive on a, b (in the layout e's weights descriptor names), c, with a
 * scratchpad of its own (this thread's KSCR_DNNL buffer); releases e. */
static int entry_run(DnnlEntry *e, const void *a, const void *b, float *c) {
    dnnl_primitive_t p = e->prim;
    dnnl_memory_t ma = NULL, mb = NULL, mc = NULL, ms = NULL;
    int rc = -1;
    kscratch_enter();
    const_dnnl_primitive_desc_t pd;
    if (dnnl_primitive_get_primitive_desc(p, &pd) != dnnl_success) goto out;
    const dnnl_memory_desc_t *da = dnnl_primitive_desc_query_md(pd, dnnl_query_src_md, 0);
    const dnnl_memory_desc_t *db = dnnl_primitive_desc_query_md(pd, dnnl_query_weights_md, 0);
    const dnnl_memory_desc_t *dc = dnnl_primitive_desc_query_md(pd, dnnl_query_dst_md, 0);
    const dnnl_memory_desc_t *dsp = dnnl_primitive_desc_query_md(pd, dnnl_query_scratchpad_md, 0);
    size_t sbytes = dsp ? dnnl_memory_desc_get_size(dsp) : 0;
    if (sbytes && dnnl_memory_create(&ms, dsp, g_engine, kscratch_get(KSCR_DNNL, sbytes)) != dnnl_success) goto out;
    if (dnnl_memory_create(&ma, da, g_engine, (void *)a) != dnnl_success ||
        dnnl_memory_create(&mb, db, g_engine, (void *)b) != dnnl_success ||
        dnnl_memory_create(&mc, dc, g_engine, c) != dnnl_success)
        goto out;
    dnnl_exec_arg_t args[4] = {{DNNL_ARG_SRC, ma}, {DNNL_ARG_WEIGHTS, mb}, {DNNL_ARG_DST, mc}, {DNNL_ARG_SCRATCHPAD, ms}};
    if (dnnl_primitive_execute(p, t_stream, ms ? 4 : 3, args) == dnnl_success && dnnl_stream_wait(t_stream) == dnnl_success)
        rc = 0;
out:
    unuse(e);
    if (ma) dnnl_memory_destroy(ma);
    if (mb) dnnl_memory_destroy(mb);
    if (mc) dnnl_memory_destroy(mc);
    if (ms) dnnl_memory_destroy(ms);
    kscratch_leave();
    if (rc) err_set("oneDNN: a %d x %d x %d bf16 product failed", e->m, e->n, e->k);
    return rc;
}

int kdnnl_gemm_bf16(int m, int n, int k, const uint16_t *a, long sam, long sak, const uint16_t *b, long sbk, long sbn,
                    float *c, long ldc, float alpha, float beta) {
    if (m <= 0 || n <= 0 || k <= 0) return 0;
    if (engine_get() != 1) return err_set("oneDNN: no CPU engine");
    DnnlEntry key = {.m = m, .n = n, .k = k, .sam = sam, .sak = sak, .sbk = sbk, .sbn = sbn, .ldc = ldc,
                     .alpha = alpha, .beta = beta};
    if (stream_get()) return -1;
    DnnlEntry *e = lookup(&key, NULL, 0);
    if (!e) return -1;
    return entry_run(e, a, b, c);
}

/* ---------------------------------------------------------------- frozen weights */

/* A weight's copy in the layout a primitive asked for, for one of two uses: the
 * forward product x W^T (B = W^T, [k, n]) or the backward product dy W (B = W, [n, k]). */
typedef struct {
    dnnl_memory_desc_t md; /* the layout the primitive asked for */
    void *data;
    size_t bytes;
    int trans; /* 0: B = W^T (forward), 1: B = W (dy W) */
} DnnlWeight;

static int g_pack_force = -1; /* kdnnl_pack_force */
static int g_pack_env = -2;   /* MUSCLE_DNNL_PACK: -1 unset, 0, 1 */

void kdnnl_pack_force(int v) { __atomic_store_n(&g_pack_force, v < 0 ? -1 : !!v, __ATOMIC_RELAXED); }

int kdnnl_pack_on(void) {
    int f = __atomic_load_n(&g_pack_force, __ATOMIC_RELAXED);
    if (f >= 0) return f;
    int e = kmm_env_switch(&g_pack_env, "MUSCLE_DNNL_PACK", "0: plain weights every call, 1: reordered once");
    return e != 0;
}

void kdnnl_weight_free(void *p) {
    DnnlWeight *d = p;
    if (!d) return;
    free(d->data);
    free(d);
}

/* Reorders the plain W [n, k] into dst laid out as md: as B [k, n] (strides 1, k) for
 * the forward use, as B [n, k] (strides k, 1) for dy W (trans). */
static int reorder_weight(const KWeight *w, int trans, const dnnl_memory_desc_t *md, void *dst) {
    dnnl_memory_desc_t src;
    if (trans ? md2(&src, w->n, w->k, w->k, 1, dnnl_bf16) : md2(&src, w->k, w->n, 1, w->k, dnnl_bf16))
        return err_set("oneDNN: cannot describe a [%d, %d] weight", w->n, w->k);
    dnnl_primitive_desc_t rpd = NULL;
    dnnl_primitive_t r = NULL;
    dnnl_memory_t ms = NULL, md_ = NULL;
    int rc = -1;
    if (dnnl_reorder_primitive_desc_create(&rpd, &src, g_engine, md, g_engine, NULL) != dnnl_success) goto out;
    if (dnnl_primitive_create(&r, rpd) != dnnl_success) goto out;
    if (dnnl_memory_create(&ms, &src, g_engine, (void *)w->bf16) != dnnl_success ||
        dnnl_memory_create(&md_, md, g_engine, dst) != dnnl_success)
        goto out;
    dnnl_exec_arg_t args[2] = {{DNNL_ARG_FROM, ms}, {DNNL_ARG_TO, md_}};
    if (dnnl_primitive_execute(r, t_stream, 2, args) == dnnl_success && dnnl_stream_wait(t_stream) == dnnl_success) rc = 0;
out:
    if (ms) dnnl_memory_destroy(ms);
    if (md_) dnnl_memory_destroy(md_);
    if (r) dnnl_primitive_destroy(r);
    if (rpd) dnnl_primitive_desc_destroy(rpd);
    if (rc) err_set("oneDNN: cannot reorder a [%d, %d] bf16 weight", w->n, w->k);
    return rc;
}

int kdnnl_weight_refresh(const KWeight *w, void *p) {
    DnnlWeight *d = p;
    if (!d || engine_get() != 1 || stream_get()) return -1;
    return reorder_weight(w, d->trans, &d->md, d->data);
}

/* w's copy for the use trans in layout md: the cached one (made now if there is none),
 * or NULL when the cached copy has another layout (the caller reorders into a temporary). */
static const DnnlWeight *weight_get(const KWeight *w, int trans, const dnnl_memory_desc_t *md, int *failed) {
    KWeightCache *c = w->cache;
    void **slot = trans ? &c->dnnl_t : &c->dnnl;
    DnnlWeight *d = __atomic_load_n((DnnlWeight **)slot, __ATOMIC_ACQUIRE);
    if (!d) {
        pthread_mutex_lock(&c->lock);
        d = *slot;
        if (!d) {
            size_t bytes = dnnl_memory_desc_get_size(md);
            d = calloc(1, sizeof *d);
            void *data = d ? aligned_alloc(64, (bytes + 63) & ~(size_t)63) : NULL;
            if (!data || reorder_weight(w, trans, md, data)) {
                if (!data) err_set("oneDNN: out of memory (%zu bytes) for a reordered [%d, %d] weight", bytes, w->n, w->k);
                free(data);
                free(d);
                d = NULL;
                *failed = 1;
            } else {
                d->md = *md;
                d->data = data;
                d->bytes = bytes;
                d->trans = trans;
                if (trans) c->dnnl_t_bytes = bytes;
                else c->dnnl_bytes = bytes;
                __atomic_store_n((DnnlWeight **)slot, d, __ATOMIC_RELEASE);
            }
        }
        pthread_mutex_unlock(&c->lock);
        if (!d) return NULL;
    }
    return dnnl_memory_desc_equal(&d->md, md) ? d : NULL;
}

/* Runs key's primitive (weights format_tag::any) on a and w's copy for the use trans
 * (cached, or reordered for this call into this thread's KSCR_WEIGHT buffer). */
static int run_cached(const DnnlEntry *key, const KWeight *w, int trans, const uint16_t *a, float *c) {
    if (stream_get()) return -1;
    DnnlEntry *e = lookup(key, NULL, 0);
    if (!e) return -1;
    const_dnnl_primitive_desc_t pd;
    if (dnnl_primitive_get_primitive_desc(e->prim, &pd) != dnnl_success) {
        unuse(e);
        return err_set("oneDNN: no primitive descriptor");
    }
    const dnnl_memory_desc_t *wmd = dnnl_primitive_desc_query_md(pd, dnnl_query_weights_md, 0);
    int failed = 0;
    const DnnlWeight *d = weight_get(w, trans, wmd, &failed);
    if (d) return entry_run(e, a, d->data, c);
    if (failed) {
        unuse(e);
        return -1;
    }
    kscratch_enter();
    void *tmp = kscratch_get(KSCR_WEIGHT, dnnl_memory_desc_get_size(wmd));
    int rc = reorder_weight(w, trans, wmd, tmp);
    if (rc) unuse(e);
    else rc = entry_run(e, a, tmp, c);
    kscratch_leave();
    return rc;
}

int kdnnl_xwt_bf16(const KWeight *w, const uint16_t *xb, int m, float *y, float beta) {
    const int n = w->n, k = w->k;
    if (m <= 0) return 0;
    if (w->type != KW_BF16) return err_set("kdnnl_xwt_bf16: a bf16 weight is expected");
    if (engine_get() != 1) return err_set("oneDNN: no CPU engine");
    if (!w->cache || !kdnnl_pack_on()) return kdnnl_gemm_bf16(m, n, k, xb, k, 1, w->bf16, 1, k, y, n, 1.0f, beta);
    DnnlEntry key = {.m = m, .n = n, .k = k, .sam = k, .sak = 1, .ldc = n, .alpha = 1.0f, .beta = beta, .wany = 1};
    return run_cached(&key, w, 0, xb, y);
}

int kdnnl_xw_bf16(const KWeight *w, const uint16_t *db, int m, float *dx, float beta) {
    const int n = w->n, k = w->k;
    if (m <= 0) return 0;
    if (w->type != KW_BF16) return err_set("kdnnl_xw_bf16: a bf16 weight is expected");
    if (engine_get() != 1) return err_set("oneDNN: no CPU engine");
    if (!w->cache || !kdnnl_pack_on()) return kdnnl_gemm_bf16(m, k, n, db, n, 1, w->bf16, k, 1, dx, k, 1.0f, beta);
    /* the product dx[m, k] = db[m, n] . W[n, k]: reduction over n, outputs k */
    DnnlEntry key = {.m = m, .n = k, .k = n, .sam = n, .sak = 1, .ldc = k, .alpha = 1.0f, .beta = beta, .wany = 1};
    return run_cached(&key, w, 1, db, dx);
}

/* "BA16a64b2a"-style name of a blocked 2-D layout: outer dimensions by decreasing
 * stride (capitals when blocked), then the inner blocks. */
static void layout_name(const dnnl_memory_desc_t *md, char *buf, size_t cap) {
    if (md->format_kind != dnnl_blocked || md->ndims != 2) {
        snprintf(buf, cap, "%s", md->format_kind == dnnl_format_kind_any ? "any" : "opaque");
        return;
    }
    const dnnl_blocking_desc_t *b = &md->format_desc.blocking;
    int blocked[2] = {0, 0};
    for (int i = 0; i < b->inner_nblks; i++) blocked[b->inner_idxs[i]] = 1;
    int first = b->strides[0] >= b->strides[1] ? 0 : 1;
    size_t len = 0;
    for (int j = 0; j < 2; j++) {
        int d = j ? 1 - first : first;
        if (len + 1 < cap) buf[len++] = (char)((blocked[d] ? 'A' : 'a') + d);
    }
    for (int i = 0; i < b->inner_nblks && len < cap; i++) {
        int w = snprintf(buf + len, cap - len, "%ld%c", (long)b->inner_blks[i], (char)('a' + b->inner_idxs[i]));
        if (w < 0) break;
        len += (size_t)w;
    }
    if (len >= cap) len = cap ? cap - 1 : 0;
    if (cap) buf[len] = 0;
}

const char *kdnnl_weights_layout(int m, int n, int k, char *buf, size_t cap) {
    if (engine_get() != 1) return NULL;
    DnnlEntry key = {.m = m, .n = n, .k = k, .sam = k, .sak = 1, .ldc = n, .alpha = 1.0f, .wany = 1};
    DnnlEntry *e = lookup(&key, NULL, 0);
    if (!e) return NULL;
    const_dnnl_primitive_desc_t pd;
    const char *r = NULL;
    if (dnnl_primitive_get_primitive_desc(e->prim, &pd) == dnnl_success) {
        layout_name(dnnl_primitive_desc_query_md(pd, dnnl_query_weights_md, 0), buf, cap);
        r = buf;
    }
    unuse(e);
    return r;
}

const char *kdnnl_impl(int m, int n, int k, char *buf, size_t cap) {
    if (engine_get() != 1) return NULL;
    /* the layout of the forward product x W^T: x [m, k] rows, W [n, k] rows */
    DnnlEntry key = {.m = m, .n = n, .k = k, .sam = k, .sak = 1, .sbk = 1, .sbn = k, .ldc = n, .alpha = 1.0f,
                     .wany = kdnnl_pack_on()};
    DnnlEntry *e = lookup(&key, buf, cap);
    if (!e) return NULL;
    unuse(e);
    return buf;
}
