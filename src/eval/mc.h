/* eval/mc.h - multiple-choice scoring by log-likelihood, the lm-evaluation-harness way:
 * each choice's summed log-probability as a continuation of the context.
 *
 * Items are packed (model_forward_packed): one row holds the context once and every
 * choice after it in its own segment, so the context's forward pass is shared; rows of
 * several items are batched (sorted by length to limit padding). */
#ifndef MUSCLE_EVAL_MC_H
#define MUSCLE_EVAL_MC_H

#include "model/forward.h"

typedef struct {
    const int *ctx;          /* context ids (with BOS), n_ctx >= 1 */
    int n_ctx;
    int n_choices;
    const int *const *choice;/* [n_choices] continuation ids */
    const int *choice_len;   /* [n_choices], each >= 1 */
} McItem;

typedef struct {
    double *loglik;          /* [n_choices] sum of log p over the continuation */
    int *n_tokens;           /* [n_choices] continuation length in tokens */
    int *is_greedy;          /* [n_choices] every continuation token was the argmax */
} McResult;

typedef struct {
    int max_batch;           /* rows per forward call (default 8) */
    int max_row;             /* longest packed row allowed (default: the model's context) */
    const LoraAdapter *lora; /* optional adapter */
    /* progress: called after each batch with (items done, total) */
    void (*progress)(void *ctx, int done, int total);
    void *progress_ctx;
    /* sharding (eval/eval.c over MPI ranks): of the batches the n items make (the same
     * batches whatever the sharding, so the same numbers), only those with
     * index % n_shards == shard are scored; the others' results are left untouched.
     * n_shards 0 or 1: every batch. */
    int shard, n_shards;
} McOptions;

/* Scores n items; res[i] arrays must hold items[i].n_choices entries. */
int eval_mc_score(const Model *m, const McItem *items, int n, McResult *res, const McOptions *o);
/* Tokens a packed row of this item takes. */
int eval_mc_row_len(const McItem *it);

/* ---- packed rows (model_forward_packed, model_forward_train_packed), built here only ----
 * One row of L tokens: the context once (segment 0, positions 0 .. n_ctx - 1), then choice c's
 * first len[c] - drop tokens as segment c + 1 at positions n_ctx, n_ctx + 1, ... (drop 0 for
 * scoring: every token; drop 1 for training: a choice's last token is only predicted), the
 * rest padding (token 0, position 0, a segment n_choices + 1 of its own). start[c] (optional)
 * gets the offset where choice c's segment begins. Returns the used length (<= L, which must
 * be >= eval_mc_packed_len). */
int eval_mc_pack_row(const int *ctx, int n_ctx, const int *const *choice, const int *len, int n_choices, int drop, int L,
                     int *tok, int *pos, int *seg, int *start);
/* The used length of such a row. */
int eval_mc_packed_len(int n_ctx, const int *len, int n_choices, int drop);

#endif
