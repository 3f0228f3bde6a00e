/* model/generate_batch.c - batched, continuous decoding (see generate_batch.h).
 *
 * Slots 0..W-1 each hold one live sequence (or none). A loop of:
 *   join:    waiting requests take the free slots; their prompts are prefilled as rows
 *            of `chunk` tokens (the last chunk padded; the padding's keys land past
 *            the prompt and are overwritten before any query can see them), calls of at
 *            most GEN_PREFILL_TOKENS tokens; the logits of each prompt's last token pick its
 *            first new token;
 *   step:    one row per live sequence (its last token at its own position), one
 *            forward call, one pick per row;
 * until every request has ended. A sequence ends exactly where model_generate would
 * end it (gen_seq_push; the context is full when the next token's position reaches
 * min(n_prompt + max_tokens, seq_len)). */
#include "generate_batch.h"
#include "forward.h"
#include "sample.h"
#include "core/error.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>


uint64_t gen_seed(uint64_t seed, long index) {
    /* splitmix64 of (seed, index): rng_seed mixes again, streams are unrelated */
    uint64_t z = seed ^ ((uint64_t)index * 0x9e3779b97f4a7c15ull + 0x632be59bd9b4e019ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

void gen_progress_done(void *ctx, int index, const GenResult *r) {
    (void)index;
    (void)r;
    GenProgress *gp = ctx;
    progress_update(gp->pr, ++gp->done, NULL);
}

int gen_batch_width_default(const Model *m, int max_len, int n) {
    const ModelConfig *c = &m->cfg;
    size_t per_slot = (size_t)2 * c->n_layers * (size_t)(max_len > 0 ? max_len : 1) * c->n_kv_heads * c->head_dim * sizeof(float);
    size_t budget = (size_t)1 << 30;
    int w = 16;
    while (w > 1 && (size_t)w * per_slot > budget) w--;
    if (n > 0 && w > n) w = n;
    return w < 1 ? 1 : w;
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

typedef struct {
    int req;        /* request index, -1: free */
    int pos;        /* position the last token is fed at */
    int total;      /* min(n_prompt + max_tokens, seq_len) */
    double t0;
    GenSeq q;
    Sampler sp;
} Slot;

typedef struct {
    const GenHook *h;
    const Tokenizer *t;
    const GenRequest *req;
    int n;
    const GenOptions *o;
    GenDone done;
    void *ctx;
    GenResult *res;
    RunState *rs;           /* [n_models] */
    int nm, W, C, V, seq_len;
    Slot *slot;
    int *tok, *pos, *rslot; /* [W * C], [W * C], [W]: a call's rows */
    int *lrow;              /* [W] the rows of a prefill call whose logits are needed */
    float *lg;              /* [nm, W, V] logits of a prefilled prompt's last token, per model */
    float **lp;             /* [nm] the logits a pick sees */
} Batch;

/* Ends slot k's sequence: its result goes to res[req], the slot is free. */
static int slot_finish(Batch *b, int k) {
    Slot *sl = &b->slot[k];
    int i = sl->req;
    sl->req = -1;
    if (gen_seq_finish(&sl->q, NULL, NULL, now_s() - sl->t0, &b->res[i]) != 0) return -1;
    if (b->done) b->done(b->ctx, i, &b->res[i]);
    return 0;
}

/* Slot k picks its next token from b->lp (every model's logits [V] of it): 1 when the
 * sequence ended, 0 when the token is to be fed at sl->pos, -1 on error. */
static int slot_pick(Batch *b, int k) {
    Slot *sl = &b->slot[k];
    int next = b->h->pick ? b->h->pick(b->h->ctx, sl->req, b->lp, b->V, sl->q.hist, sl->q.nh)
                          : sampler_pick(&sl->sp, b->lp[0], sl->q.hist, sl->q.nh);
    if (next < 0 || next >= b->V) return next < 0 ? -1 : err_set("generate: a pick chose token %d of a vocabulary of %d", next, b->V);
    int end = gen_seq_push(&sl->q, next, NULL, NULL);
    if (end < 0) return -1;
    if (end == 0 && sl->pos >= sl->total) {
        sl->q.stopped_by = GEN_STOP_CONTEXT;
        end = 1;
    }
    if (end) return slot_finish(b, k) != 0 ? -1 : 1;
    return 0;
}

/* One forward call of rows x n tokens in every model; nl >= 0: the logits of the nl
 * rows b->lrow only, < 0: of every row. */
static int batch_forward(Batch *b, int rows, int n, int nl) {
    for (int j = 0; j < b->nm; j++) {
        b->rs[j].logit_rows = nl >= 0 ? b->lrow : NULL;
        b->rs[j].n_logit_rows = nl >= 0 ? nl : 0;
        int rc = model_forward_rows(&b->rs[j], b->tok, b->pos, b->rslot, rows, n);
        b->rs[j].logit_rows = NULL;
        const char *who = b->h->models[j].who;
        if (rc != 0) return who ? err_prefix("%s", who) : -1;
    }
    return 0;
}

/* Fills the free slots with waiting requests (*next on) and prefills their prompts. */
static int batch_join(Batch *b, int *next) {
    int W = b->W, C = b->C, V = b->V;
    int joined[W], nj = 0;
    for (int k = 0; k < W && *next < b->n; k++) {
        Slot *sl = &b->slot[k];
        if (sl->req >= 0) continue;
        int i = (*next)++;
        const GenRequest *r = &b->req[i];
        if (gen_seq_init(&sl->q, b->h->models[0].model, b->t, b->o, r->prompt, r->n_prompt) != 0) return -1;
        sl->req = i;
        rng_seed(&sl->sp.rng, r->seed);
        sl->t0 = now_s();
        sl->pos = r->n_prompt;
        sl->total = r->n_prompt + b->o->max_tokens;
        if (sl->total > b->seq_len) sl->total = b->seq_len;
        if (b->o->max_tokens == 0) { /* nothing to generate (as model_generate) */
            if (slot_finish(b, k) != 0) return -1;
            k--; /* the slot is free again */
            continue;
        }
        joined[nj++] = k;
    }
    /* rows: chunk j of joined prompt q; calls of up to R rows (at most GEN_PREFILL_TOKENS
     * tokens, one row at least) */
    int rows = 0, R = GEN_PREFILL_TOKENS / C;
    if (R < 1) R = 1;
    if (R > W) R = W;
    for (int jq = 0; jq < nj; jq++) {
        int k = joined[jq];
        const GenRequest *r = &b->req[b->slot[k].req];
        int nch = (r->n_prompt + C - 1) / C;
        for (int j = 0; j < nch; j++) {
            int p0 = j * C;
            for (int i = 0; i < C; i++) {
                int p = p0 + i;
                b->tok[rows * C + i] = p < r->n_prompt ? r->prompt[p] : r->prompt[r->n_prompt - 1];
                b->pos[rows * C + i] = p;
            }
            b->rslot[rows++] = k;
            int last = j == nch - 1;
            if (rows == R || (last && jq == nj - 1)) {
                /* logits only for the prompts whose last chunk is in this call, at their last token */
                int nl = 0, lk[R];
                for (int rr = 0; rr < rows; rr++) {
                    int kk = b->rslot[rr], lastp = b->req[b->slot[kk].req].n_prompt - 1;
                    if (b->pos[rr * C] == lastp / C * C) {
                        lk[nl] = kk;
                        b->lrow[nl++] = rr * C + lastp % C;
                    }
                }
                if (batch_forward(b, rows, C, nl) != 0) return -1;
                for (int m = 0; m < b->nm; m++)
                    for (int i = 0; i < nl; i++)
                        memcpy(b->lg + ((size_t)m * W + lk[i]) * V, b->rs[m].logits + (size_t)i * V, (size_t)V * sizeof(float));
                rows = 0;
            }
        }
    }
    for (int jq = 0; jq < nj; jq++) {
        int k = joined[jq];
        b->slot[k].t0 = now_s();
        for (int m = 0; m < b->nm; m++) b->lp[m] = b->lg + ((size_t)m * W + k) * V;
        if (slot_pick(b, k) < 0) return -1;
    }
    return 0;
}

/* One decoding step of every live sequence. */
static int batch_step(Batch *b) {
    int rows = 0, V = b->V;
    for (int k = 0; k < b->W; k++) {
        Slot *sl = &b->slot[k];
        if (sl->req < 0) continue;
        b->tok[rows] = sl->q.hist[sl->q.nh - 1];
        b->pos[rows] = sl->pos;
        b->rslot[rows++] = k;
    }
    if (!rows) return 0;
    if (batch_forward(b, rows, 1, -1) != 0) return -1;
    for (int r = 0; r < rows; r++) {
        int k = b->rslot[r];
        b->slot[k].pos++;
        for (int m = 0; m < b->nm; m++) b->lp[m] = b->rs[m].logits + (size_t)r * V;
        if (slot_pick(b, k) < 0) return -1;
    }
    return 0;
}

int model_generate_batch(const Model *m, const Tokenizer *t, const GenRequest *req, int n, const GenOptions *o, int width,
                         GenDone done, void *ctx, GenResult *res) {
    GenModel gm = {m, o->lora, NULL};
    GenHook h = {&gm, 1, NULL, NULL};
    return model_generate_batch_hook(&h, t, req, n, o, width, done, ctx, res);
}

int model_generate_hook_ctx(const GenHook *h) {
    int ctx = INT_MAX;
    for (int j = 0; j < h->n_models; j++)
        if (h->models[j].model->cfg.seq_len < ctx) ctx = h->models[j].model->cfg.seq_len;
    return ctx;
}

int model_generate_batch_hook(const GenHook *h, const Tokenizer *t, const GenRequest *req, int n, const GenOptions *o, int width,
                              GenDone done, void *ctx, GenResult *res) {
    if (n <= 0) return 0;
    memset(res, 0, (size_t)n * sizeof *res);
    if (width < 0) return err_set("generate: batch width %d: expected >= 1 (0: default)", width);
    if (h->n_models < 1) return err_set("generate: no model to decode with");
    int nm = h->n_models, seq_len = model_generate_hook_ctx(h), V = h->models[0].model->cfg.vocab_size;
    for (int j = 1; j < nm; j++) {
        const Model *mj = h->models[j].model;
        if (mj->cfg.vocab_size != V)
            return err_set("generate: %s has %d tokens in its vocabulary, %s %d: the members must share a tokenizer",
                           h->models[j].who ? h->models[j].who : "a model", mj->cfg.vocab_size, h->models[0].who ? h->models[0].who : "the first",
                           V);
    }
    int max_len = 1, max_prompt = 1;
    for (int i = 0; i < n; i++) {
        for (int j = 0; j < nm; j++)
            if (gen_check(h->models[j].model, req[i].n_prompt, o) != 0)
                return h->models[j].who ? err_prefix("prompt %d (%s)", i + 1, h->models[j].who) : err_prefix("prompt %d", i + 1);
        int tot = req[i].n_prompt + o->max_tokens;
        if (tot > seq_len) tot = seq_len;
        if (tot > max_len) max_len = tot;
        if (req[i].n_prompt > max_prompt) max_prompt = req[i].n_prompt;
    }
    Batch b;
    memset(&b, 0, sizeof b);
    b.h = h;
    b.t = t;
    b.req = req;
    b.n = n;
    b.o = o;
    b.done = done;
    b.ctx = ctx;
    b.res = res;
    b.nm = nm;
    b.V = V;
    b.seq_len = seq_len;
    b.W = width;
    if (!b.W) {
        b.W = n;
        for (int j = 0; j < nm; j++) {
            int w = gen_batch_width_default(h->models[j].model, max_len, n);
            if (w < b.W) b.W = w;
        }
    }
    if (b.W > n) b.W = n;
    b.C = GEN_PREFILL_TOKENS / b.W;
    if (b.C < 1) b.C = 1;
    if (b.C > max_prompt) b.C = max_prompt;
    /* positions up to the last padded chunk of the longest prompt */
    int S = max_len, padded = (max_prompt + b.C - 1) / b.C * b.C;
    if (padded > S) S = padded;
    int rc = 0, n_rs = 0, n_sp = 0;
    b.rs = calloc((size_t)nm, sizeof *b.rs);
    b.lp = calloc((size_t)nm, sizeof *b.lp);
    b.slot = calloc((size_t)b.W, sizeof *b.slot);
    b.tok = malloc((size_t)b.W * b.C * sizeof *b.tok);
    b.pos = malloc((size_t)b.W * b.C * sizeof *b.pos);
    b.rslot = malloc((size_t)b.W * sizeof *b.rslot);
    b.lrow = malloc((size_t)b.W * sizeof *b.lrow);
    b.lg = malloc((size_t)nm * b.W * b.V * sizeof *b.lg);
    if (!b.rs || !b.lp || !b.slot || !b.tok || !b.pos || !b.rslot || !b.lrow || !b.lg) rc = err_set("out of memory");
    for (int j = 0; rc == 0 && j < nm; j++) {
        if (runstate_init(&b.rs[j], h->models[j].model, b.W, S, b.C, RS_KEEP_NONE | (o->kv_bf16 ? RS_KV_BF16 : 0)) != 0) {
            rc = h->models[j].who ? err_prefix("%s", h->models[j].who) : -1;
            break;
        }
        n_rs++;
        b.rs[j].attn_rows = 1; /* a row's bits whatever the call (forward.h): the ids of model_generate */
        if (runstate_panels_build(&b.rs[j]) != 0 || (h->models[j].lora && runstate_set_lora(&b.rs[j], h->models[j].lora) != 0)) rc = -1;
    }
    for (int k = 0; b.slot && k < b.W; k++) b.slot[k].req = -1;
    for (int k = 0; rc == 0 && k < b.W; k++) {
        if (sampler_init(&b.slot[k].sp, b.V, o->temperature, o->top_p, o->no_repeat_ngram, 0) != 0) rc = -1;
        else n_sp++;
    }
    int next = 0;
    while (rc == 0) {
        rc = batch_join(&b, &next);
        int live = 0;
        for (int k = 0; k < b.W; k++) live += b.slot[k].req >= 0;
        if (rc != 0 || (!live && next >= n)) break;
        rc = batch_step(&b);
    }
    for (int k = 0; b.slot && k < b.W; k++)
        if (b.slot[k].req >= 0) gen_seq_free(&b.slot[k].q);
    for (int k = 0; k < n_sp; k++) sampler_free(&b.slot[k].sp);
    if (rc != 0)
        for (int i = 0; i < n; i++) gen_result_free(&res[i]);
    for (int j = 0; j < n_rs; j++) runstate_free(&b.rs[j]);
    free(b.rs);
    free(b.lp);
    free(b.slot);
    free(b.tok);
    free(b.pos);
    free(b.rslot);
    free(b.lrow);
    free(b.lg);
    return rc;
}
