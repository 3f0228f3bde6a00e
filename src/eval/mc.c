/* eval/mc.c - packed multiple-choice scoring. */
#include "mc.h"
#include "core/error.h"
#include "kernel/vmath.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

int eval_mc_packed_len(int n_ctx, const int *len, int n_choices, int drop) {
    int n = n_ctx;
    for (int c = 0; c < n_choices; c++) n += len[c] > drop ? len[c] - drop : 0;
    return n;
}

int eval_mc_row_len(const McItem *it) { return eval_mc_packed_len(it->n_ctx, it->choice_len, it->n_choices, 0); }

int eval_mc_pack_row(const int *ctx, int n_ctx, const int *const *choice, const int *len, int n_choices, int drop, int L,
                     int *tok, int *pos, int *seg, int *start) {
    int k = 0;
    for (int i = 0; i < n_ctx; i++, k++) { tok[k] = ctx[i]; pos[k] = i; seg[k] = 0; }
    for (int c = 0; c < n_choices; c++) {
        if (start) start[c] = k;
        for (int j = 0; j + drop < len[c]; j++, k++) { tok[k] = choice[c][j]; pos[k] = n_ctx + j; seg[k] = c + 1; }
    }
    int used = k;
    for (; k < L; k++) { tok[k] = 0; pos[k] = 0; seg[k] = n_choices + 1; } /* padding: a segment of its own */
    return used;
}

typedef struct { int len, idx; } LenIdx;
static int by_len_desc(const void *a, const void *b) {
    const LenIdx *x = a, *y = b;
    if (x->len != y->len) return y->len - x->len;
    return x->idx - y->idx;
}

int eval_mc_score(const Model *m, const McItem *items, int n, McResult *res, const McOptions *opt) {
    McOptions def = {0};
    if (!opt) opt = &def;
    int maxB = opt->max_batch > 0 ? opt->max_batch : 8;
    /* a packed row may be longer than the model's context: its positions are not */
    int limit = opt->max_row > 0 ? opt->max_row : 1 << 20;
    if (n <= 0) return 0;
    LenIdx *order = malloc((size_t)n * sizeof *order);
    if (!order) return err_set("out of memory");
    int longest = 1;
    for (int i = 0; i < n; i++) {
        const McItem *it = &items[i];
        if (it->n_ctx < 1 || it->n_choices < 1) { free(order); return err_set("item %d: needs a context and at least one choice", i); }
        for (int c = 0; c < it->n_choices; c++)
            if (it->choice_len[c] < 1) { free(order); return err_set("item %d: choice %d has no tokens", i, c); }
        order[i].len = eval_mc_row_len(it);
        order[i].idx = i;
        int maxpos = it->n_ctx;
        for (int c = 0; c < it->n_choices; c++) maxpos = it->n_ctx + it->choice_len[c] > maxpos ? it->n_ctx + it->choice_len[c] : maxpos;
        if (maxpos > m->cfg.seq_len) {
            free(order);
            return err_set("item %d: context and choice take %d positions, more than the model's context of %d", i, maxpos, m->cfg.seq_len);
        }
        if (order[i].len > limit) {
            int len = order[i].len;
            free(order);
            return err_set("item %d: its packed row (context + all choices) takes %d tokens, more than the limit of %d", i, len, limit);
        }
        if (order[i].len > longest) longest = order[i].len;
    }
    qsort(order, (size_t)n, sizeof *order, by_len_desc);
    RunState s;
    int B = n < maxB ? n : maxB;
    if (runstate_init(&s, m, B, longest, longest, 0) != 0) { free(order); return -1; }
    if (opt->lora && runstate_set_lora(&s, opt->lora) != 0) { runstate_free(&s); free(order); return -1; }
    size_t cap = (size_t)B * longest;
    int *tok = malloc(cap * sizeof *tok), *pos = malloc(cap * sizeof *pos), *seg = malloc(cap * sizeof *seg);
    int rc = (tok && pos && seg) ? 0 : err_set("out of memory");
    int V = m->cfg.vocab_size;
    int shards = opt->n_shards > 1 ? opt->n_shards : 1;
    for (int start = 0; rc == 0 && start < n; start += B) {
        if ((start / B) % shards != (shards > 1 ? opt->shard : 0)) continue; /* another shard's batch */
        int nb = n - start < B ? n - start : B;
        int L = order[start].len; /* sorted: the first is the longest */
        for (int b = 0; b < nb; b++) {
            const McItem *it = &items[order[start + b].idx];
            size_t at = (size_t)b * L;
            eval_mc_pack_row(it->ctx, it->n_ctx, it->choice, it->choice_len, it->n_choices, 0, L, tok + at, pos + at,
                             seg + at, NULL);
        }
        if (model_forward_packed(&s, tok, pos, seg, nb, L) != 0) { rc = -1; break; }
        for (int b = 0; b < nb; b++) {
            const McItem *it = &items[order[start + b].idx];
            McResult *r = &res[order[start + b].idx];
            int k = it->n_ctx;
            for (int c = 0; c < it->n_choices; c++) {
                double sum = 0;
                int greedy = 1;
                for (int j = 0; j < it->choice_len[c]; j++) {
                    int row = j == 0 ? it->n_ctx - 1 : k + j - 1;
                    const float *z = s.logits + ((size_t)b * L + row) * V;
                    float mx = kvec_max(z, V);
                    int target = it->choice[c][j];
                    sum += (double)z[target] - kvec_lse(z, mx, 1.0, V); /* log-softmax at the target */
                    if (kvec_argmax(z, V) != target) greedy = 0;
                }
                r->loglik[c] = sum;
                r->n_tokens[c] = it->choice_len[c];
                if (r->is_greedy) r->is_greedy[c] = greedy;
                k += it->choice_len[c];
            }
        }
        if (opt->progress) opt->progress(opt->progress_ctx, start + nb, n);
    }
    free(tok);
    free(pos);
    free(seg);
    runstate_free(&s);
    free(order);
    return rc;
}
