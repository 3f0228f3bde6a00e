/* compat/compat_mixgen.c - greedy decoding from a mixture of models (compat_mixgen.h).
 *
 * Slots 0..W-1 each hold one live sequence (or none), in every member's KV cache at the
 * same slot. A loop of:
 *   join:  waiting requests take the free slots; their prompts are prefilled in every
 *          member as rows of `chunk` tokens (calls of at most GEN_PREFILL_TOKENS tokens,
 *          the split model_generate_batch uses); the mixed distribution at each prompt's
 *          last token picks its first new token;
 *   step:  one row per live sequence, one forward call per member, one pick per row;
 * until every request has ended. The pick of several members: argmax over the tokens the
 * no-repeat n-gram rule allows of p = sum_k w_k softmax(z_k), in double (the first on a
 * tie); of one member of weight 1: the sampler on its logits (model_generate_batch's). */
#include "compat_mixgen.h"
#include "compat_loss.h"
#include "core/error.h"
#include "model/forward.h"
#include "model/sample.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct {
    int req;        /* request index, -1: free */
    int pos;        /* position the last token is fed at */
    int total;      /* min(n_prompt + max_tokens, the smallest context) */
    double t0;
    GenSeq q;
    Sampler sp;
} MixSlot;

typedef struct {
    const CompatMember *mem;
    int nm;
    const Tokenizer *t;
    const GenRequest *req;
    int n;
    const GenOptions *o;
    GenDone done;
    void *ctx;
    GenResult *res;
    RunState *rs;           /* [nm] */
    int W, C, V, seq_len;
    MixSlot *slot;
    int *tok, *pos, *rslot; /* a call's rows */
    float *lg;              /* [nm, W, V] logits of each slot's last fed token, per member */
    double *acc;            /* [V] the mixed distribution */
    float *ban;             /* [V] 0, or -inf where the n-gram rule forbids the token */
} Mix;

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int slot_finish(Mix *b, int k) {
    MixSlot *sl = &b->slot[k];
    int i = sl->req;
    sl->req = -1;
    if (gen_seq_finish(&sl->q, NULL, NULL, now_s() - sl->t0, &b->res[i]) != 0) return -1;
    if (b->done) b->done(b->ctx, i, &b->res[i]);
    return 0;
}

/* The next token of slot k from every member's logits of it (b->lg). */
static int mix_pick(Mix *b, int k) {
    MixSlot *sl = &b->slot[k];
    int V = b->V;
    if (b->nm == 1 && b->mem[0].w == 1.0) return sampler_pick(&sl->sp, b->lg + (size_t)k * V, sl->q.hist, sl->q.nh);
    memset(b->acc, 0, (size_t)V * sizeof *b->acc);
    for (int m = 0; m < b->nm; m++)
        if (b->mem[m].w > 0) compat_teacher_acc(b->lg + ((size_t)m * b->W + k) * V, V, 1.0, b->mem[m].w, b->acc);
    memset(b->ban, 0, (size_t)V * sizeof *b->ban);
    if (b->o->no_repeat_ngram > 0) ngram_block(b->ban, V, sl->q.hist, sl->q.nh, b->o->no_repeat_ngram);
    int best = -1;
    for (int j = 0; j < V; j++)
        if (b->ban[j] == 0.0f && (best < 0 || b->acc[j] > b->acc[best])) best = j;
    if (best < 0) /* every token forbidden: the most likely one */
        for (int j = 0; j < V; j++)
            if (best < 0 || b->acc[j] > b->acc[best]) best = j;
    return best;
}

/* Slot k takes its next token: 1 when the sequence ended, 0 when the token is to be fed,
 * -1 on error. */
static int slot_pick(Mix *b, int k) {
    MixSlot *sl = &b->slot[k];
    int end = gen_seq_push(&sl->q, mix_pick(b, k), NULL, NULL);
    if (end < 0) return -1;
    if (end == 0 && sl->pos >= sl->total) {
        sl->q.stopped_by = GEN_STOP_CONTEXT;
        end = 1;
    }
    if (end) return slot_finish(b, k) != 0 ? -1 : 1;
    return 0;
}

/* One forward call of rows x n tokens in every member. */
static int members_forward(Mix *b, int rows, int n) {
    for (int m = 0; m < b->nm; m++)
        if (model_forward_rows(&b->rs[m], b->tok, b->pos, b->rslot, rows, n) != 0) return err_prefix("%s", b->mem[m].who ? b->mem[m].who : "member");
    return 0;
}

/* Fills the free slots with waiting requests (*next on) and prefills their prompts. */
static int mix_join(Mix *b, int *next) {
    int W = b->W, C = b->C, V = b->V;
    int joined[W], nj = 0;
    for (int k = 0; k < W && *next < b->n; k++) {
        MixSlot *sl = &b->slot[k];
        if (sl->req >= 0) continue;
        int i = (*next)++;
        const GenRequest *r = &b->req[i];
        if (gen_seq_init(&sl->q, b->mem[0].model, b->t, b->o, r->prompt, r->n_prompt) != 0) return -1;
        sl->req = i;
        sl->t0 = now_s();
        sl->pos = r->n_prompt;
        sl->total = r->n_prompt + b->o->max_tokens;
        if (sl->total > b->seq_len) sl->total = b->seq_len;
        if (b->o->max_tokens == 0) {
            if (slot_finish(b, k) != 0) return -1;
            k--;
            continue;
        }
        joined[nj++] = k;
    }
    int rows = 0, R = GEN_PREFILL_TOKENS / C;
    if (R < 1) R = 1;
    if (R > W) R = W;
    for (int jq = 0; jq < nj; jq++) {
        const GenRequest *r = &b->req[b->slot[joined[jq]].req];
        int nch = (r->n_prompt + C - 1) / C;
        for (int j = 0; j < nch; j++) {
            for (int i = 0; i < C; i++) {
                int p = j * C + i;
                b->tok[rows * C + i] = p < r->n_prompt ? r->prompt[p] : r->prompt[r->n_prompt - 1];
                b->pos[rows * C + i] = p;
            }
            b->rslot[rows++] = joined[jq];
            if (rows == R || (j == nch - 1 && jq == nj - 1)) {
                if (members_forward(b, rows, C) != 0) return -1;
                for (int rr = 0; rr < rows; rr++) { /* the prompts whose last chunk was in this call */
                    int kk = b->rslot[rr], lastp = b->req[b->slot[kk].req].n_prompt - 1;
                    if (b->pos[rr * C] != lastp / C * C) continue;
                    for (int m = 0; m < b->nm; m++)
                        memcpy(b->lg + ((size_t)m * W + kk) * V, b->rs[m].logits + ((size_t)rr * C + lastp % C) * V, (size_t)V * sizeof(float));
                }
                rows = 0;
            }
        }
    }
    for (int jq = 0; jq < nj; jq++) {
        b->slot[joined[jq]].t0 = now_s();
        if (slot_pick(b, joined[jq]) < 0) return -1;
    }
    return 0;
}

/* One decoding step of every live sequence. */
static int mix_step(Mix *b) {
    int rows = 0, V = b->V;
    for (int k = 0; k < b->W; k++) {
        MixSlot *sl = &b->slot[k];
        if (sl->req < 0) continue;
        b->tok[rows] = sl->q.hist[sl->q.nh - 1];
        b->pos[rows] = sl->pos;
        b->rslot[rows++] = k;
    }
    if (!rows) return 0;
    if (members_forward(b, rows, 1) != 0) return -1;
    for (int r = 0; r < rows; r++) {
        int k = b->rslot[r];
        for (int m = 0; m < b->nm; m++)
            memcpy(b->lg + ((size_t)m * b->W + k) * V, b->rs[m].logits + (size_t)r * V, (size_t)V * sizeof(float));
        b->slot[k].pos++;
        if (slot_pick(b, k) < 0) return -1;
    }
    return 0;
}

/* The members' checks: one vocabulary, weights >= 0 summing to more than 0. */
static int members_check(const CompatMember *mem, int nm) {
    if (nm < 1) return err_set("compat: mixture decoding: no model to decode with");
    double sum = 0.0;
    for (int m = 0; m < nm; m++) {
        if (mem[m].model->cfg.vocab_size != mem[0].model->cfg.vocab_size)
            return err_set("compat: mixture decoding: %s has %d tokens in its vocabulary, %s %d: the members must share a tokenizer",
                           mem[m].who ? mem[m].who : "a member", mem[m].model->cfg.vocab_size, mem[0].who ? mem[0].who : "the first",
                           mem[0].model->cfg.vocab_size);
        if (!(mem[m].w >= 0) || !isfinite(mem[m].w))
            return err_set("compat: mixture decoding: weight %g of %s: expected a number >= 0", mem[m].w, mem[m].who ? mem[m].who : "a member");
        sum += mem[m].w;
    }
    if (!(sum > 0)) return err_set("compat: mixture decoding: the weights sum to 0");
    return 0;
}

int compat_mix_generate(const CompatMember *mem, int nm, const Tokenizer *tok, const GenRequest *req, int n, const GenOptions *o,
                        int width, GenDone done, void *ctx, GenResult *res) {
    if (n <= 0) return 0;
    memset(res, 0, (size_t)n * sizeof *res);
    if (members_check(mem, nm) != 0) return -1;
    if (o->temperature != 0) return err_set("compat: mixture decoding is greedy (temperature 0), not %g", (double)o->temperature);
    if (width < 0) return err_set("compat: mixture decoding: batch width %d: expected >= 1 (0: default)", width);
    int seq_len = mem[0].model->cfg.seq_len;
    for (int m = 1; m < nm; m++)
        if (mem[m].model->cfg.seq_len < seq_len) seq_len = mem[m].model->cfg.seq_len;
    int max_len = 1, max_prompt = 1;
    for (int i = 0; i < n; i++) {
        for (int m = 0; m < nm; m++)
            if (gen_check(mem[m].model, req[i].n_prompt, o) != 0) return err_prefix("prompt %d (%s)", i + 1, mem[m].who ? mem[m].who : "member");
        int tot = req[i].n_prompt + o->max_tokens;
        if (tot > seq_len) tot = seq_len;
        if (tot > max_len) max_len = tot;
        if (req[i].n_prompt > max_prompt) max_prompt = req[i].n_prompt;
    }
    Mix b;
    memset(&b, 0, sizeof b);
    b.mem = mem;
    b.nm = nm;
    b.t = tok;
    b.req = req;
    b.n = n;
    b.o = o;
    b.done = done;
    b.ctx = ctx;
    b.res = res;
    b.V = mem[0].model->cfg.vocab_size;
    b.seq_len = seq_len;
    b.W = width;
    if (!b.W) {
        b.W = n;
        for (int m = 0; m < nm; m++) {
            int w = gen_batch_width_default(mem[m].model, max_len, n);
            if (w < b.W) b.W = w;
        }
    }
    if (b.W > n) b.W = n;
    b.C = GEN_PREFILL_TOKENS / b.W;
    if (b.C < 1) b.C = 1;
    if (b.C > max_prompt) b.C = max_prompt;
    int S = max_len, padded = (max_prompt + b.C - 1) / b.C * b.C;
    if (padded > S) S = padded;
    int rc = 0, n_rs = 0;
    b.rs = calloc((size_t)nm, sizeof *b.rs);
    b.slot = calloc((size_t)b.W, sizeof *b.slot);
    b.tok = malloc((size_t)b.W * b.C * sizeof *b.tok);
    b.pos = malloc((size_t)b.W * b.C * sizeof *b.pos);
    b.rslot = malloc((size_t)b.W * sizeof *b.rslot);
    b.lg = malloc((size_t)nm * b.W * b.V * sizeof *b.lg);
    b.acc = malloc((size_t)b.V * sizeof *b.acc);
    b.ban = malloc((size_t)b.V * sizeof *b.ban);
    if (!b.rs || !b.slot || !b.tok || !b.pos || !b.rslot || !b.lg || !b.acc || !b.ban) rc = err_set("out of memory");
    for (int k = 0; b.slot && k < b.W; k++) b.slot[k].req = -1;
    for (int m = 0; rc == 0 && m < nm; m++) {
        if (runstate_init(&b.rs[m], mem[m].model, b.W, S, b.C, RS_KEEP_NONE | (o->kv_bf16 ? RS_KV_BF16 : 0)) != 0) rc = -1;
        else {
            n_rs++;
            b.rs[m].attn_rows = 1; /* a row's bits whatever the call, as model_generate_batch (forward.h) */
        }
        if (rc == 0 && mem[m].adapter && runstate_set_lora(&b.rs[m], mem[m].adapter) != 0) rc = -1;
    }
    int n_sp = 0;
    for (int k = 0; rc == 0 && k < b.W; k++) {
        if (sampler_init(&b.slot[k].sp, b.V, 0.0f, 1.0f, o->no_repeat_ngram, 0) != 0) rc = -1;
        else n_sp++;
    }
    int next = 0;
    while (rc == 0) {
        rc = mix_join(&b, &next);
        int live = 0;
        for (int k = 0; k < b.W; k++) live += b.slot[k].req >= 0;
        if (rc != 0 || (!live && next >= n)) break;
        rc = mix_step(&b);
    }
    for (int k = 0; b.slot && k < b.W; k++)
        if (b.slot[k].req >= 0) gen_seq_free(&b.slot[k].q);
    for (int k = 0; k < n_sp; k++) sampler_free(&b.slot[k].sp);
    if (rc != 0)
        for (int i = 0; i < n; i++) gen_result_free(&res[i]);
    for (int m = 0; m < n_rs; m++) runstate_free(&b.rs[m]);
    free(b.rs);
    free(b.slot);
    free(b.tok);
    free(b.pos);
    free(b.rslot);
    free(b.lg);
    free(b.acc);
    free(b.ban);
    return rc;
}
