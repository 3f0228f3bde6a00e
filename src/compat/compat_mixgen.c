/* compat/compat_mixgen.c - greedy decoding from a mixture of models (compat_mixgen.h).
 *
 * The decoding loop (joins, prefills, steps, continuous batching, one KV cache per member)
 * is model_generate_batch's, through its hook (model/generate_batch.h: every member a
 * GenModel); this file supplies the pick. The pick of several members: argmax over the
 * tokens the no-repeat n-gram rule allows of p = sum_k w_k softmax(z_k), in double (the
 * first on a tie); of one member of weight 1: no pick, the sampler on its logits
 * (model_generate_batch's). */
#include "compat_mixgen.h"
#include "compat_loss.h"
#include "core/error.h"
#include "model/sample.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* GenPick: the next token from every member's logits. */
static int mix_pick(void *ctx, int index, float *const *logits, int V, const int *hist, int nh) {
    (void)index;
    CompatMixHook *mp = ctx;
    memset(mp->acc, 0, (size_t)V * sizeof *mp->acc);
    for (int m = 0; m < mp->nm; m++) compat_teacher_acc(logits[m], V, 1.0, mp->mem[m].w, mp->acc);
    memset(mp->ban, 0, (size_t)V * sizeof *mp->ban);
    if (mp->no_repeat_ngram > 0) ngram_block(mp->ban, V, hist, nh, mp->no_repeat_ngram);
    int best = -1;
    for (int j = 0; j < V; j++)
        if (mp->ban[j] == 0.0f && (best < 0 || mp->acc[j] > mp->acc[best])) best = j;
    if (best < 0) /* every token forbidden: the most likely one */
        for (int j = 0; j < V; j++)
            if (best < 0 || mp->acc[j] > mp->acc[best]) best = j;
    return best;
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

void compat_mix_hook_free(CompatMixHook *h) {
    free(h->models);
    free(h->mem);
    free(h->acc);
    free(h->ban);
    memset(h, 0, sizeof *h);
}

int compat_mix_hook_init(CompatMixHook *h, const CompatMember *mem, int nm, int no_repeat_ngram) {
    memset(h, 0, sizeof *h);
    if (members_check(mem, nm) != 0) return -1;
    int V = mem[0].model->cfg.vocab_size;
    h->models = calloc((size_t)nm, sizeof *h->models);
    h->mem = calloc((size_t)nm, sizeof *h->mem);
    h->acc = malloc((size_t)V * sizeof *h->acc);
    h->ban = malloc((size_t)V * sizeof *h->ban);
    if (!h->models || !h->mem || !h->acc || !h->ban) {
        compat_mix_hook_free(h);
        return err_set("out of memory");
    }
    for (int m = 0; m < nm; m++) {
        if (mem[m].w == 0) continue;
        h->mem[h->nm] = mem[m];
        h->models[h->nm++] = (GenModel){mem[m].model, mem[m].adapter, mem[m].who ? mem[m].who : "member"};
    }
    h->no_repeat_ngram = no_repeat_ngram;
    int one = h->nm == 1 && h->mem[0].w == 1.0; /* one model: its own sampler (greedy) */
    h->hook = (GenHook){h->models, h->nm, one ? NULL : mix_pick, h};
    return 0;
}

int compat_mix_generate(const CompatMember *mem, int nm, const Tokenizer *tok, const GenRequest *req, int n, const GenOptions *o,
                        int width, GenDone done, void *ctx, GenResult *res) {
    if (n <= 0) return 0;
    memset(res, 0, (size_t)n * sizeof *res);
    if (members_check(mem, nm) != 0) return -1;
    if (o->temperature != 0)
        return err_set("compat: mixture decoding is greedy (temperature 0), not %g", (double)o->temperature);
    if (width < 0) return err_set("compat: mixture decoding: batch width %d: expected >= 1 (0: default)", width);
    CompatMixHook h;
    if (compat_mix_hook_init(&h, mem, nm, o->no_repeat_ngram) != 0) return -1;
    int rc = model_generate_batch_hook(&h.hook, tok, req, n, o, width, done, ctx, res);
    compat_mix_hook_free(&h);
    return rc;
}
