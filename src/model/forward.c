/* model/forward.c - the forward pass of the Llama-like families (batched, causal,
 * KV-cached), following the architecture description (model/arch.h, cfg fields).
 *
 * Per layer, for N = B*n positions (shapes as in forward.h); [..] = only when the
 * configuration has it (biases cfg.bias, per-head q/k norm cfg.qk_norm, window); "norm"
 * is the family's (ops.h: RMSNorm times (offset + w), Gemma's offset 1; Phi's LayerNorm
 * with bias):
 *   x_in = embed[tokens] [* sqrt(d), Gemma]            (first layer)
 *   xn1 = norm(x_in) with rms_att                       [N, d]
 *   q = xn1 Wq^T [+ bq], k = xn1 Wk^T [+ bk], v = xn1 Wv^T [+ bv]   [N, qd], [N, kvd]
 *   [q = rmsnorm_head(q) * q_norm, k = rmsnorm_head(k) * k_norm]   per head of hd
 *   rotary(q, k) at positions pos..pos+n-1 (frequencies: model_rope_inv_freq) on the first
 *   rope_dims of each head (Phi: partial rotary); k, v -> cache
 *   att[b,h,i,j] = softmax_j<=pos+i (q_i . k_j / sqrt(hd))  (grouped-query: head h
 *                  reads kv head h / (H / KVH)) [keys with p_i - p_j >= window hidden]
 *   att_out = att . v                                   [N, qd]
 *   x_mid = x_in + att_out Wo^T                         [N, d]
 *   xn2 = norm(x_mid) with rms_ffn     (parallel residual, Phi: no second norm, xn2 = xn1)
 *   hg = silu(xn2 W1^T) * (xn2 W3^T)                    [N, hidden]
 *        (GeGLU, Gemma: gelu_tanh(xn2 W1^T) * (xn2 W3^T); GELU, Phi: gelu_tanh(xn2 W3^T))
 *   x_out = x_mid + hg W2^T
 * then xnf = norm(x_final) with rms_final and logits = xnf Wcls^T [+ bcls] [N, V].
 * With an adapter attached (runstate_set_lora), each adapted product above becomes
 * x W^T + scaling * (x A^T) B^T, A x kept in acts[l].lora_u for the backward pass.
 * model_layer_forward is one layer of the loop; the backward pass (backward.c) calls it
 * again to recompute checkpointed layers (RS_KEEP_INPUTS).
 * Precision: a bf16 model (--bf16) computes every product of a pass of more than 4 rows
 * in mixed precision - q k^T, P v and the LoRA paths too - operands rounded to bf16, sums
 * in fp32 (ops.h model_products); norms, softmax and the residual stream stay fp32.
 */
#include "forward.h"
#include "ops.h"
#include "core/cpu.h"
#include "core/dtype.h"
#include "core/error.h"
#include "kernel/vmath.h"

#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------------- */
/* primitives                                                                 */

void rmsnorm_forward(float *out, float *rstd, const float *x, const float *w, int N, int d, float eps) {
    rmsnorm_off_forward(out, rstd, x, w, 0.0f, N, d, eps);
}

void rope_forward(float *x, int N, int n, int pos0, int nh, int hd, RopeStyle style, const float *cosT, const float *sinT) {
    rope_forward_partial(x, N, n, pos0, NULL, nh, hd, hd, style, cosT, sinT);
}

void rope_forward_at(float *x, int N, int n, int pos0, const int *positions, int nh, int hd, RopeStyle style,
                     const float *cosT, const float *sinT) {
    rope_forward_partial(x, N, n, pos0, positions, nh, hd, hd, style, cosT, sinT);
}

void rope_forward_partial(float *x, int N, int n, int pos0, const int *positions, int nh, int hd, int rd, RopeStyle style,
                          const float *cosT, const float *sinT) {
    rope_rotate_partial(x, N, n, pos0, positions, nh, hd, rd, style, cosT, sinT, 0);
}

void rope_rotate_partial(float *x, int N, int n, int pos0, const int *positions, int nh, int hd, int rd, RopeStyle style,
                         const float *cosT, const float *sinT, int inverse) {
    int half = rd / 2;
    float sg = inverse ? -1.0f : 1.0f; /* the inverse turn is the turn by -angle (exact: only the sine's sign) */
#pragma omp parallel for schedule(static) if (CPU_PAR((size_t)N * nh * hd))
    for (int r = 0; r < N; r++) {
        int pos = positions ? positions[r] : pos0 + r % n;
        const float *c = cosT + (size_t)pos * half, *s = sinT + (size_t)pos * half;
        for (int h = 0; h < nh; h++) {
            float *v = x + (size_t)r * nh * hd + (size_t)h * hd;
            if (style == ROPE_INTERLEAVED) {
                for (int i = 0; i < half; i++) {
                    float a = v[2 * i], b = v[2 * i + 1], si = sg * s[i];
                    v[2 * i] = a * c[i] - b * si;
                    v[2 * i + 1] = a * si + b * c[i];
                }
            } else {
                for (int i = 0; i < half; i++) {
                    float a = v[i], b = v[i + half], si = sg * s[i];
                    v[i] = a * c[i] - b * si;
                    v[i + half] = b * c[i] + a * si;
                }
            }
        }
    }
}

void swiglu_forward(float *hg, const float *h1, const float *h3, size_t n) {
#pragma omp parallel if (CPU_PAR(n * 8))
    { /* a share of whole 16-lane blocks per thread: the same bits at any thread count */
        size_t nb = (n + 15) / 16, t = (size_t)omp_get_thread_num(), nt = (size_t)omp_get_num_threads();
        size_t i0 = nb * t / nt * 16, i1 = nb * (t + 1) / nt * 16;
        if (i1 > n) i1 = n;
        if (i0 < i1) kvec_silu_mul(hg + i0, h1 + i0, h3 + i0, i1 - i0);
    }
}

void bias_forward(float *y, const float *b, int N, int out) {
#pragma omp parallel for schedule(static) if (CPU_PAR((size_t)N * out))
    for (int r = 0; r < N; r++) {
        float *yr = y + (size_t)r * out;
        for (int i = 0; i < out; i++) yr[i] += b[i];
    }
}

void logsoftmax_rows(float *x, int rows, int cols) {
#pragma omp parallel for schedule(static) if (CPU_PAR((size_t)rows * cols * 4))
    for (int r = 0; r < rows; r++) {
        kvec_log_softmax(x + (size_t)r * cols, cols);
    }
}

/* ------------------------------------------------------------------------- */
/* memory plan                                                                */

typedef struct { size_t off; } Plan;
static float *take(Plan *p, char *base, size_t nfloats) {
    size_t off = p->off;
    p->off += (nfloats * sizeof(float) + 63) & ~(size_t)63;
    return base ? (float *)(base + off) : NULL;
}

static size_t plan(RunState *s, const Model *m, int B, int S, int C, int keep, char *base) {
    const ModelConfig *c = &m->cfg;
    size_t N = (size_t)B * C, d = c->dim, hid = c->hidden_dim, qd = (size_t)c->n_heads * c->head_dim;
    size_t kvd = (size_t)c->n_kv_heads * c->head_dim, L = c->n_layers;
    Plan p = {0};
    if (s->kv_threads) { /* RS_KV_BF16 */
        s->kcache16 = (uint16_t *)take(&p, base, (L * B * S * kvd + 1) / 2);
        s->vcache16 = (uint16_t *)take(&p, base, (L * B * S * kvd + 1) / 2);
        s->kvtmp = take(&p, base, (size_t)s->kv_threads * 2 * S * c->head_dim);
    } else {
        s->kcache = take(&p, base, L * B * S * kvd);
        s->vcache = take(&p, base, L * B * S * kvd);
    }
    int nsets = keep == RS_KEEP_ALL ? c->n_layers : 1;
    for (int l = 0; l < nsets; l++) {
        LayerActs *a = s->acts ? &s->acts[l] : &(LayerActs){0};
        a->x_in = take(&p, base, N * d);
        a->xn1 = take(&p, base, N * d);
        a->rstd1 = take(&p, base, 2 * N);
        a->q = take(&p, base, N * qd);
        if (c->qk_norm) {
            a->q_pre = take(&p, base, N * qd);
            a->q_rstd = take(&p, base, N * c->n_heads);
            a->k_pre = take(&p, base, N * kvd);
            a->k_rstd = take(&p, base, N * c->n_kv_heads);
        }
        a->att = take(&p, base, (size_t)B * c->n_heads * C * S);
        a->att_out = take(&p, base, N * qd);
        a->x_mid = take(&p, base, N * d);
        a->xn2 = take(&p, base, N * d);
        a->rstd2 = take(&p, base, 2 * N);
        a->h1 = take(&p, base, N * hid);
        a->h3 = take(&p, base, N * hid);
        a->hg = take(&p, base, N * hid);
    }
    if (keep == RS_KEEP_INPUTS) /* every layer's input of its own; the rest shared (acts[0]) */
        for (int l = 1; l < c->n_layers; l++) {
            float *x_in = take(&p, base, N * d);
            if (s->acts) s->acts[l].x_in = x_in;
        }
    s->x_final = take(&p, base, N * d);
    s->xnf = take(&p, base, N * d);
    s->rstdf = take(&p, base, 2 * N);
    s->logits = take(&p, base, N * (size_t)c->vocab_size);
    s->rope_cos = take(&p, base, (size_t)S * c->rope_dims / 2);
    s->rope_sin = take(&p, base, (size_t)S * c->rope_dims / 2);
    s->scratch = take(&p, base, N * (hid > d ? hid : d));
    if (keep != RS_KEEP_NONE) {
        RunGrads *g = &s->g;
        g->dx = take(&p, base, N * d);
        g->dxn = take(&p, base, N * d);
        g->datt_out = take(&p, base, N * qd);
        g->dq = take(&p, base, N * qd);
        g->dk = take(&p, base, N * kvd);
        g->dv = take(&p, base, N * kvd);
        g->datt = take(&p, base, (size_t)B * c->n_heads * C * C);
        g->dh1 = take(&p, base, N * hid);
        g->dh3 = take(&p, base, N * hid);
        if (c->qk_norm) g->dqk_pre = take(&p, base, N * qd);
        s->tokens = (int *)take(&p, base, N);
        s->targets = (int *)take(&p, base, N);
        s->weights = take(&p, base, N);
        s->train_pos = (int *)take(&p, base, N);
        s->train_seg = (int *)take(&p, base, N);
    }
    return p.off;
}

size_t runstate_bytes(const Model *m, int B, int S, int C, int keep) {
    RunState s = {0};
    if (keep & RS_KV_BF16) s.kv_threads = cpu_threads();
    return plan(&s, m, B, S, C, keep & ~RS_KV_BF16, NULL);
}

int runstate_init(RunState *s, const Model *m, int B, int S, int C, int keep) {
    memset(s, 0, sizeof *s);
    if (B < 1 || S < 1 || C < 1 || C > S) return err_set("run state: bad sizes (batch %d, seq %d, chunk %d)", B, S, C);
    if (keep & RS_KV_BF16) {
        keep &= ~RS_KV_BF16;
        if (keep != RS_KEEP_NONE) return err_set("run state: a bf16 KV cache is for inference (RS_KEEP_NONE)");
        s->kv_threads = cpu_threads();
    }
    if (keep < RS_KEEP_NONE || keep > RS_KEEP_INPUTS)
        return err_set("run state: keep %d: expected RS_KEEP_NONE, RS_KEEP_ALL or RS_KEEP_INPUTS", keep);
    const ModelConfig *c = &m->cfg;
    s->model = m;
    s->max_batch = B;
    s->max_seq = S;
    s->max_chunk = C;
    s->keep = keep;
    s->acts = calloc((size_t)c->n_layers, sizeof *s->acts);
    if (!s->acts) return err_set("out of memory");
    size_t bytes = plan(s, m, B, S, C, keep, NULL);
    s->mem = cpu_alloc_huge(bytes); /* the caches are walked a head's slice of a row at a time */
    if (!s->mem) {
        free(s->acts);
        s->acts = NULL;
        return err_set("out of memory: the run state needs %zu MB (batch %d, seq %d, chunk %d)", bytes >> 20, B, S, C);
    }
    s->mem_bytes = bytes;
    memset(s->mem, 0, bytes);
    plan(s, m, B, S, C, keep, s->mem);
    if (keep != RS_KEEP_ALL)
        for (int l = 1; l < c->n_layers; l++) {
            float *x_in = s->acts[l].x_in;
            s->acts[l] = s->acts[0];
            if (keep == RS_KEEP_INPUTS) s->acts[l].x_in = x_in;
        }
    /* rotary tables, computed as llama2.c and PyTorch do: in float */
    int half = c->rope_dims / 2;
    float *inv = malloc((size_t)half * sizeof *inv);
    if (!inv) {
        runstate_free(s);
        return err_set("out of memory");
    }
    model_rope_inv_freq(m, inv);
    for (int pos = 0; pos < S; pos++)
        for (int i = 0; i < half; i++) {
            float val = (float)pos * inv[i];
            s->rope_cos[(size_t)pos * half + i] = cosf(val);
            s->rope_sin[(size_t)pos * half + i] = sinf(val);
        }
    free(inv);
    return 0;
}

void runstate_free(RunState *s) {
    if (s->panels)
        for (int i = 0; i < s->model->cfg.n_layers * LORA_N_TARGETS + 1; i++) kpanel_free(&s->panels[i]);
    free(s->panels);
    free(s->mem);
    free(s->lora_mem);
    free(s->acts);
    memset(s, 0, sizeof *s);
}

int runstate_set_lora(RunState *s, const LoraAdapter *a) {
    const ModelConfig *c = &s->model->cfg;
    free(s->lora_mem);
    s->lora_mem = NULL;
    s->lora = NULL;
    s->g.lora_du = NULL;
    s->have_loss = RUN_LOSS_NONE;
    for (int l = 0; l < c->n_layers; l++)
        for (int t = 0; t < LORA_N_TARGETS; t++) s->acts[l].lora_u[t] = NULL;
    if (!a) return 0;
    if (lora_check(a, s->model) != 0) return -1;
    size_t N = (size_t)s->max_batch * s->max_chunk, r = (size_t)a->rank;
    size_t nt = 0;
    for (int t = 0; t < LORA_N_TARGETS; t++) nt += (a->targets & LORA_BIT(t)) != 0;
    int nsets = s->keep == RS_KEEP_ALL ? c->n_layers : 1;
    size_t floats = N * r * (nt * (size_t)nsets + (s->keep != RS_KEEP_NONE));
    float *mem = calloc(floats ? floats : 1, sizeof(float));
    if (!mem) return err_set("out of memory: the adapter's activations need %zu MB", (floats * sizeof(float)) >> 20);
    s->lora_mem = mem;
    s->lora = a;
    for (int l = 0; l < c->n_layers; l++)
        for (int t = 0; t < LORA_N_TARGETS; t++) {
            if (!(a->targets & LORA_BIT(t))) continue;
            if (l < nsets) {
                s->acts[l].lora_u[t] = mem;
                mem += N * r;
            } else {
                s->acts[l].lora_u[t] = s->acts[0].lora_u[t];
            }
        }
    if (s->keep != RS_KEEP_NONE) s->g.lora_du = mem;
    return 0;
}

/* ------------------------------------------------------------------------- */
/* attention                                                                  */

/* Hides, in row i of the scores [Tk] of sequence b, the keys a query may not see beyond
 * the causal limit: other segments of packed rows, keys window or more positions back. */
static void attention_mask_row(const RunState *s, float *row, int b, int n, int pos, int i, int len) {
    const int *seg = s->seg_ids ? s->seg_ids + (size_t)b * n : NULL;
    if (seg) /* packed: a key is visible when it is shared (segment 0) or in the query's segment */
        for (int j = 0; j < len; j++)
            if (seg[j] != 0 && seg[j] != seg[i]) row[j] = -INFINITY;
    int W = s->model->cfg.sliding_window;
    if (W > 0) {
        /* packed: the keys are this call's tokens at their rotary positions; plain rows and
         * rows calls (s->row_slot): key j is cache position j, the query pos + i */
        const int *ps = s->pos_ids && !s->row_slot ? s->pos_ids + (size_t)b * n : NULL;
        int pi = ps ? ps[i] : pos + i;
        for (int j = 0; j < len; j++)
            if (pi - (ps ? ps[j] : j) >= W) row[j] = -INFINITY;
    }
}

/* row[0..len) = softmax(row[0..len)), row[len..Tk) = 0 (the keys a causal query cannot see). */
static void softmax_causal_row(float *row, int len, int Tk) {
    float mx = row[0];
    for (int j = 1; j < len; j++) mx = row[j] > mx ? row[j] : mx;
    float sum = 0.0f;
    for (int j = 0; j < len; j++) {
        row[j] = expf(row[j] - mx);
        sum += row[j];
    }
    float inv = 1.0f / sum;
    for (int j = 0; j < len; j++) row[j] *= inv;
    for (int j = len; j < Tk; j++) row[j] = 0.0f;
}

/* Prefetches cnt elements of the key and value caches from offset off: a slot's rows for
 * the heads to come, requested at its first head (the rows of one head are 64-float
 * pieces a whole row apart, a pattern the hardware prefetchers follow slowly; measured
 * at width 16 on the 110M shape: attention 1.72-1.77 against 1.91-2.09 ms a step). Only
 * while both fit in half a megabyte (a core's L2 holds them until the last head; longer
 * contexts are long strided streams the hardware follows). */
static void cache_prefetch(const RunState *s, size_t off, size_t cnt) {
    const size_t bytes = cnt * (s->kcache16 ? sizeof(uint16_t) : sizeof(float));
    if (2 * bytes > ((size_t)512 << 10)) return;
    const char *k = s->kcache16 ? (const char *)(s->kcache16 + off) : (const char *)(s->kcache + off);
    const char *v = s->kcache16 ? (const char *)(s->vcache16 + off) : (const char *)(s->vcache + off);
    for (size_t o = 0; o < bytes; o += 64) { /* a cache line at a time */
        __builtin_prefetch(k + o, 0, 3);
        __builtin_prefetch(v + o, 0, 3);
    }
}

/* For each (b, h): scores = q k^T / sqrt(hd) over cached positions 0..pos+i,
 * causal softmax (attention_mask_row), att_out = P v. One query row at a time in fp32
 * (kmm_row_nt / kmm_row_nn; on bf16 caches their _bf16 twins read the rows in place, the
 * same bits) when decoding (n = 1) or with s->attn_rows (generation:
 * a row's bits then do not depend on how the prompt was cut into calls); else two
 * products per (b, h) over the call's rows, in the pass's precision. */
static void attention_forward(RunState *s, LayerActs *a, int l, int B, int n, int pos) {
    const ModelConfig *c = &s->model->cfg;
    int H = c->n_heads, hd = c->head_dim, qd = H * hd, kvd = c->n_kv_heads * hd, grp = H / c->n_kv_heads;
    int Tmax = pos + n; /* rows call: each row its own pos (cache_row_start) */
    if (s->row_slot) Tmax = s->max_seq;
    float scale = 1.0f / sqrtf((float)hd);
    size_t lstride = (size_t)s->max_batch * s->max_seq * kvd;
    const KmmProducts *pp = model_products(s->model, n); /* --bf16: bf16 operands (P too), fp32 sums */
#pragma omp parallel for collapse(2) schedule(static) if (CPU_PAR((size_t)B * H * n * Tmax * hd * 2))
    for (int b = 0; b < B; b++)
        for (int h = 0; h < H; h++) {
            int slot = s->row_slot ? s->row_slot[b] : b;
            int p0 = s->row_slot ? s->pos_ids[(size_t)b * n] : pos, Tk = p0 + n;
            size_t coff = l * lstride + (size_t)slot * s->max_seq * kvd + (size_t)(h / grp) * hd;
            const int by_row = n == 1 || s->attn_rows;
            const float *kc = NULL, *vc = NULL;
            const uint16_t *kc16 = NULL, *vc16 = NULL; /* by_row with bf16 caches: read in place */
            int ldkv = kvd;
            float *tmp = NULL;
            if (s->kcache16 && by_row) {
                kc16 = s->kcache16 + coff;
                vc16 = s->vcache16 + coff;
            } else if (s->kcache16) { /* this head's keys and values widened to fp32, rows of hd */
                int tid = omp_get_thread_num();
                tmp = tid < s->kv_threads ? s->kvtmp + (size_t)tid * 2 * s->max_seq * hd : malloc((size_t)2 * Tk * hd * sizeof(float));
                if (!tmp) abort();
                for (int j = 0; j < Tk; j++) {
                    dtype_to_f32(DT_BF16, s->kcache16 + coff + (size_t)j * kvd, tmp + (size_t)j * hd, (size_t)hd);
                    dtype_to_f32(DT_BF16, s->vcache16 + coff + (size_t)j * kvd, tmp + (size_t)(Tk + j) * hd, (size_t)hd);
                }
                kc = tmp;
                vc = tmp + (size_t)Tk * hd;
                ldkv = hd;
            } else {
                kc = s->kcache + coff;
                vc = s->vcache + coff;
            }
            const float *q = a->q + (size_t)b * n * qd + (size_t)h * hd;
            float *P = a->att + ((size_t)b * H + h) * n * Tmax;
            float *out = a->att_out + (size_t)b * n * qd + (size_t)h * hd;
            const int masked = s->seg_ids || c->sliding_window > 0;
            if (by_row) { /* one query row at a time, over its own keys only */
                if (h == 0) cache_prefetch(s, l * lstride + (size_t)slot * s->max_seq * kvd, (size_t)Tk * kvd);
                for (int i = 0; i < n; i++) {
                    float *row = P + (size_t)i * Tk;
                    const int len = p0 + i + 1;
                    if (kc16)
                        kmm_row_nt_bf16(len, hd, q + (size_t)i * qd, kc16, (size_t)ldkv, row, scale);
                    else
                        kmm_row_nt(len, hd, q + (size_t)i * qd, kc, (size_t)ldkv, row, scale);
                    if (masked) attention_mask_row(s, row, b, n, p0, i, len);
                    softmax_causal_row(row, len, Tk);
                    if (vc16)
                        kmm_row_nn_bf16(hd, len, row, vc16, (size_t)ldkv, out + (size_t)i * qd);
                    else
                        kmm_row_nn(hd, len, row, vc, (size_t)ldkv, out + (size_t)i * qd);
                }
            } else {
                pp->nt(n, Tk, hd, q, qd, kc, ldkv, P, Tk, scale, 0.0f);
                for (int i = 0; i < n; i++) {
                    float *row = P + (size_t)i * Tk;
                    if (masked) attention_mask_row(s, row, b, n, p0, i, p0 + i + 1);
                    softmax_causal_row(row, p0 + i + 1, Tk);
                }
                pp->nn(n, hd, Tk, P, Tk, vc, ldkv, out, qd, 1.0f, 0.0f);
            }
            if (tmp && omp_get_thread_num() >= s->kv_threads) free(tmp);
        }
}

/* ------------------------------------------------------------------------- */
/* the whole model                                                            */

static void embed(const Model *m, const int *tokens, size_t N, float *x) {
    int d = m->cfg.dim;
#pragma omp parallel for schedule(static) if (CPU_PAR(N * d))
    for (size_t r = 0; r < N; r++) {
        int t = tokens[r];
        if (m->tok_emb.type == KW_F32)
            memcpy(x + r * d, m->tok_emb.f32 + (size_t)t * d, (size_t)d * sizeof(float));
        else
            dtype_to_f32(DT_BF16, m->tok_emb.bf16 + (size_t)t * d, x + r * d, (size_t)d);
    }
}

/* The panel copy of weight w in slot i of the run state's table (forward.h), built on
 * first use; NULL where there is none (not a generation run state, a bf16 weight, below
 * level avx512, MUSCLE_F32_PANELS=0, or out of memory: then none for this run state, and
 * err_set). */
static const KPanel *panel_get(RunState *s, int i, const KWeight *w) {
    if (!s->attn_rows || s->keep != RS_KEEP_NONE || w->type != KW_F32 || s->panels_off) return NULL;
    if (!s->panels && !(s->panels = calloc((size_t)s->model->cfg.n_layers * LORA_N_TARGETS + 1, sizeof *s->panels))) {
        s->panels_off = 2;
        err_set("out of memory: the panel copies' table");
        return NULL;
    }
    int rc = s->panels[i].p ? 0 : kpanel_init(&s->panels[i], w);
    if (rc != 0) s->panels_off = rc < 0 ? 2 : 1;
    return s->panels_off ? NULL : &s->panels[i];
}

int runstate_panels_build(RunState *s) {
    const Model *m = s->model;
    const int L = m->cfg.n_layers;
    for (int l = 0; l < L; l++)
        for (int t = 0; t < LORA_N_TARGETS; t++) {
            const KWeight *w = lora_base_weight(m, l, (LoraTarget)t);
            if (w && w->f32) panel_get(s, l * LORA_N_TARGETS + t, w);
        }
    panel_get(s, L * LORA_N_TARGETS, &m->wcls);
    if (!s->panels_off) return 0;
    for (int i = 0; s->panels && i < L * LORA_N_TARGETS + 1; i++) kpanel_free(&s->panels[i]);
    return s->panels_off == 2 ? -1 : 0; /* declined: the dot-product kernels, no error */
}

/* y[N, out] = x W^T + beta y for weight w in slot i: on its panel copy in generation, else
 * kmm_xwt (the dot-product kernels). */
static void weight_product(RunState *s, int i, const KWeight *w, const float *x, int N, float *y, float beta) {
    const KPanel *p = panel_get(s, i, w);
    if (p) kmm_xwt_panel(p, x, N, y, beta);
    else kmm_xwt(w, x, N, y, beta);
}

/* y[N, out] = x W^T (+ beta y) (+ its bias), plus the adapter's low-rank term when (l, t)
 * is adapted */
static void linear(RunState *s, LayerActs *a, int l, LoraTarget t, const KWeight *w, const float *x, int N, float *y, float beta) {
    weight_product(s, l * LORA_N_TARGETS + (int)t, w, x, N, y, beta);
    const float *bias = s->model->layers[l].bias[t];
    if (bias) bias_forward(y, bias, N, w->n);
    const LoraAdapter *ad = s->lora;
    if (ad && !ad->merged) {
        const LoraMat *p = lora_mat(ad, l, t);
        if (p) lora_linear_forward_with(model_products(s->model, s->attn_rows ? 1 : N), p, ad->scaling, x, N, a->lora_u[t], y);
    }
}

/* q or k [N, heads*hd] of layer l from xn1: the linear, then (cfg.qk_norm) the per-head
 * RMSNorm, its input and 1/rms kept in q_pre/k_pre and q_rstd/k_rstd. */
static void qk_linear(RunState *s, LayerActs *a, int l, LoraTarget t, const float *xn1, float *out) {
    const ModelConfig *c = &s->model->cfg;
    const LayerWeights *w = &s->model->layers[l];
    int N = s->batch * s->n, isq = t == LORA_Q, heads = isq ? c->n_heads : c->n_kv_heads;
    const KWeight *W = isq ? &w->wq : &w->wk;
    if (!c->qk_norm) {
        linear(s, a, l, t, W, xn1, N, out, 0.0f);
        return;
    }
    float *pre = isq ? a->q_pre : a->k_pre;
    linear(s, a, l, t, W, xn1, N, pre, 0.0f);
    rmsnorm_forward(out, isq ? a->q_rstd : a->k_rstd, pre, isq ? w->q_norm : w->k_norm, N * heads, c->head_dim, c->norm_eps);
}

/* Offset of row b's first key in a layer's cache: slot b at s->pos, or in a rows call
 * its slot at its own position. */
static size_t cache_row(const RunState *s, int b, int n, int kvd) {
    if (s->row_slot) return ((size_t)s->row_slot[b] * s->max_seq + s->pos_ids[(size_t)b * n]) * kvd;
    return ((size_t)b * s->max_seq + s->pos) * kvd;
}

/* Layer l's keys (v = 0) or values (v = 1) of the call, src [B*n, kvd], into the cache
 * (rounded to bf16 with RS_KV_BF16). */
static void cache_put(RunState *s, int l, int v, const float *src) {
    const ModelConfig *c = &s->model->cfg;
    int B = s->batch, n = s->n, kvd = c->n_kv_heads * c->head_dim;
    size_t lstride = (size_t)s->max_batch * s->max_seq * kvd, cnt = (size_t)n * kvd;
    for (int b = 0; b < B; b++) {
        size_t off = l * lstride + cache_row(s, b, n, kvd);
        if (s->kcache16)
            dtype_from_f32(DT_BF16, src + (size_t)b * cnt, (v ? s->vcache16 : s->kcache16) + off, cnt);
        else
            memcpy((v ? s->vcache : s->kcache) + off, src + (size_t)b * cnt, cnt * sizeof(float));
    }
}

void model_layer_forward(RunState *s, int l, float *x_out) {
    const Model *m = s->model;
    const ModelConfig *c = &m->cfg;
    int B = s->batch, n = s->n, pos = s->pos, N = B * n;
    int d = c->dim, hd = c->head_dim, kvd = c->n_kv_heads * hd, hid = c->hidden_dim;
    LayerActs *a = &s->acts[l];
    const LayerWeights *w = &m->layers[l];
    int rd = c->rope_dims;
    norm_forward(c, a->xn1, a->rstd1, a->x_in, w->rms_att, w->norm_att_b, N, d);
    qk_linear(s, a, l, LORA_Q, a->xn1, a->q);
    rope_forward_partial(a->q, N, n, pos, s->pos_ids, c->n_heads, hd, rd, c->rope, s->rope_cos, s->rope_sin);
    /* k and v straight into the cache: rows of sequence b go to cache[l][b][pos..] */
    float *kbuf = s->scratch, *vbuf = s->scratch + (size_t)N * kvd;
    if ((size_t)kvd * 2 > (size_t)(hid > d ? hid : d)) {
        /* scratch row is too narrow for k and v side by side: do them one after the other */
        qk_linear(s, a, l, LORA_K, a->xn1, kbuf);
        rope_forward_partial(kbuf, N, n, pos, s->pos_ids, c->n_kv_heads, hd, rd, c->rope, s->rope_cos, s->rope_sin);
        cache_put(s, l, 0, kbuf);
        linear(s, a, l, LORA_V, &w->wv, a->xn1, N, kbuf, 0.0f);
        cache_put(s, l, 1, kbuf);
    } else {
        qk_linear(s, a, l, LORA_K, a->xn1, kbuf);
        linear(s, a, l, LORA_V, &w->wv, a->xn1, N, vbuf, 0.0f);
        rope_forward_partial(kbuf, N, n, pos, s->pos_ids, c->n_kv_heads, hd, rd, c->rope, s->rope_cos, s->rope_sin);
        cache_put(s, l, 0, kbuf);
        cache_put(s, l, 1, vbuf);
    }
    attention_forward(s, a, l, B, n, pos);
    memcpy(a->x_mid, a->x_in, (size_t)N * d * sizeof(float));
    linear(s, a, l, LORA_O, &w->wo, a->att_out, N, a->x_mid, 1.0f);
    /* the MLP's input: the same normed input with a parallel residual (Phi), else its own norm */
    const float *xm = a->xn1;
    if (model_has_ffn_norm(c)) {
        norm_forward(c, a->xn2, a->rstd2, a->x_mid, w->rms_ffn, w->norm_ffn_b, N, d);
        xm = a->xn2;
    }
    size_t nh = (size_t)N * hid;
    switch (c->arch->mlp) {
    case ARCH_MLP_GELU: /* fc2(gelu(fc1 x)) */
        linear(s, a, l, LORA_UP, &w->w3, xm, N, a->h3, 0.0f);
        gelu_tanh_forward(a->hg, a->h3, nh);
        break;
    case ARCH_MLP_GEGLU:
        linear(s, a, l, LORA_GATE, &w->w1, xm, N, a->h1, 0.0f);
        linear(s, a, l, LORA_UP, &w->w3, xm, N, a->h3, 0.0f);
        geglu_forward(a->hg, a->h1, a->h3, nh);
        break;
    default:
        linear(s, a, l, LORA_GATE, &w->w1, xm, N, a->h1, 0.0f);
        linear(s, a, l, LORA_UP, &w->w3, xm, N, a->h3, 0.0f);
        swiglu_forward(a->hg, a->h1, a->h3, nh);
    }
    memcpy(x_out, a->x_mid, (size_t)N * d * sizeof(float));
    linear(s, a, l, LORA_DOWN, &w->w2, a->hg, N, x_out, 1.0f);
}

int packed_check(const RunState *s, const int *pos_ids, const int *seg_ids, int B, int n) {
    size_t N = (size_t)B * n;
    if (B < 1 || n < 1 || B > s->max_batch || n > s->max_chunk)
        return err_set("forward: packed batch %d x %d does not fit the run state (batch %d, chunk %d)", B, n, s->max_batch, s->max_chunk);
    if (!pos_ids || !seg_ids) return err_set("forward: a packed call needs positions and segments");
    for (size_t i = 0; i < N; i++) {
        if (pos_ids[i] < 0 || pos_ids[i] >= s->max_seq)
            return err_set("forward: position %d at index %zu is outside 0..%d", pos_ids[i], i, s->max_seq - 1);
        if (seg_ids[i] < 0) return err_set("forward: segment %d at index %zu is negative", seg_ids[i], i);
    }
    return 0;
}

int model_forward_packed(RunState *s, const int *tokens, const int *pos_ids, const int *seg_ids, int B, int n) {
    s->pos_ids = NULL;
    s->seg_ids = NULL;
    s->have_loss = RUN_LOSS_NONE;
    if (packed_check(s, pos_ids, seg_ids, B, n) != 0) return -1;
    s->row_slot = NULL;
    s->pos_ids = pos_ids;
    s->seg_ids = seg_ids;
    int rc = model_forward_run(s, tokens, B, n, 0);
    s->pos_ids = NULL;
    s->seg_ids = NULL;
    s->have_loss = RUN_LOSS_NONE;
    return rc;
}

int model_forward_rows(RunState *s, const int *tokens, const int *pos_ids, const int *row_slot, int B, int n) {
    s->pos_ids = NULL;
    s->seg_ids = NULL;
    s->row_slot = NULL;
    s->have_loss = RUN_LOSS_NONE;
    if (s->keep != RS_KEEP_NONE) return err_set("forward: a rows call is for inference (a run state planned with RS_KEEP_NONE)");
    if (B < 1 || n < 1 || B > s->max_batch || n > s->max_chunk)
        return err_set("forward: rows %d x %d do not fit the run state (batch %d, chunk %d)", B, n, s->max_batch, s->max_chunk);
    for (int r = 0; r < B; r++) {
        if (row_slot[r] < 0 || row_slot[r] >= s->max_batch)
            return err_set("forward: row %d: cache slot %d is outside 0..%d", r, row_slot[r], s->max_batch - 1);
        int p0 = pos_ids[(size_t)r * n];
        if (p0 < 0 || p0 + n > s->max_seq)
            return err_set("forward: row %d: positions %d..%d are outside 0..%d", r, p0, p0 + n - 1, s->max_seq - 1);
        for (int i = 1; i < n; i++)
            if (pos_ids[(size_t)r * n + i] != p0 + i) return err_set("forward: row %d: positions are not consecutive", r);
    }
    s->pos_ids = pos_ids;
    s->row_slot = row_slot;
    int rc = model_forward_run(s, tokens, B, n, 0);
    s->pos_ids = NULL;
    s->row_slot = NULL;
    return rc;
}

int model_forward(RunState *s, const int *tokens, int B, int n, int pos) {
    s->pos_ids = NULL;
    s->seg_ids = NULL;
    s->row_slot = NULL;
    return model_forward_run(s, tokens, B, n, pos);
}

int model_forward_run(RunState *s, const int *tokens, int B, int n, int pos) {
    const Model *m = s->model;
    const ModelConfig *c = &m->cfg;
    s->have_loss = RUN_LOSS_NONE;
    if (B < 1 || B > s->max_batch || n < 1 || n > s->max_chunk || pos < 0 || pos + n > s->max_seq)
        return err_set("forward: batch %d x %d tokens at position %d does not fit the run state (batch %d, chunk %d, length %d)",
                       B, n, pos, s->max_batch, s->max_chunk, s->max_seq);
    size_t N = (size_t)B * n;
    for (size_t i = 0; i < N; i++)
        if (tokens[i] < 0 || tokens[i] >= c->vocab_size)
            return err_set("forward: token id %d at index %zu is outside the vocabulary (0..%d)", tokens[i], i, c->vocab_size - 1);
    for (int i = 0; s->logit_rows && i < s->n_logit_rows; i++)
        if (s->logit_rows[i] < (i ? s->logit_rows[i - 1] + 1 : 0) || (size_t)s->logit_rows[i] >= N)
            return err_set("forward: logit row %d at index %d: expected ascending rows in 0..%zu", s->logit_rows[i], i, N - 1);
    s->pos = pos;
    s->n = n;
    s->batch = B;
    if (s->tokens) memcpy(s->tokens, tokens, N * sizeof(int));
    int d = c->dim;

    float *x = s->acts[0].x_in;
    embed(m, tokens, N, x);
    if (c->arch->embed_scale_sqrt_d) embed_scale_forward(x, N * d, embed_scale_of(c));
    for (int l = 0; l < c->n_layers; l++) {
        LayerActs *a = &s->acts[l];
        if (a->x_in != x) memcpy(a->x_in, x, N * d * sizeof(float));
        float *next = (l + 1 < c->n_layers) ? s->acts[l + 1].x_in : s->x_final;
        if (next == a->x_in) next = s->x_final; /* shared buffers: ping-pong through x_final */
        model_layer_forward(s, l, next);
        x = next;
    }
    if (x != s->x_final) memcpy(s->x_final, x, N * d * sizeof(float));
    if (s->logit_rows && s->keep == RS_KEEP_NONE) { /* only the rows asked for, gathered in front */
        for (int i = 0; i < s->n_logit_rows; i++)
            if ((size_t)s->logit_rows[i] != (size_t)i)
                memmove(s->x_final + (size_t)i * d, s->x_final + (size_t)s->logit_rows[i] * d, (size_t)d * sizeof(float));
        N = (size_t)s->n_logit_rows;
        if (!N) return 0;
    }
    norm_forward(c, s->xnf, s->rstdf, s->x_final, m->rms_final, m->norm_final_b, (int)N, d);
    weight_product(s, c->n_layers * LORA_N_TARGETS, &m->wcls, s->xnf, (int)N, s->logits, 0.0f);
    if (m->cls_b) bias_forward(s->logits, m->cls_b, (int)N, c->vocab_size);
    return 0;
}
