/* model/lora_combine.c - weighted sums of LoRA adapters as one adapter (lora_combine.h). */
#include "lora_combine.h"
#include "core/error.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* The input's matrices at (layer, target) when they fit `want`; NULL when absent or
 * (skip_mismatch) of another shape; *bad = 1 when they do not fit and must. */
static const LoraMat *input_mat(const LoraAdapter *a, int l, LoraTarget t, const LoraMat *want, int skip, int *bad, int *skipped) {
    if (!(a->targets & LORA_BIT(t))) return NULL;
    if (l >= a->n_layers) return NULL;
    const LoraMat *p = lora_mat(a, l, t);
    if (!p || !p->A) return NULL;
    if (p->in == want->in && p->out == want->out) return p;
    if (skip) (*skipped)++;
    else *bad = 1;
    return NULL;
}

int lora_combine(LoraAdapter *out, const ModelConfig *c, const LoraAdapter *const *in, const double *w, int n,
                 int skip_mismatch, int *n_skipped) {
    memset(out, 0, sizeof *out);
    if (n_skipped) *n_skipped = 0;
    if (n < 1) return err_set("LoRA combine: no adapter to combine");
    long rank = 0;
    unsigned targets = 0;
    for (int i = 0; i < n; i++) {
        if (in[i]->merged) return err_set("LoRA combine: adapter %d is merged into its base", i + 1);
        if (!isfinite(w[i])) return err_set("LoRA combine: weight %d is not finite", i + 1);
        if (!skip_mismatch && in[i]->n_layers != c->n_layers)
            return err_set("LoRA combine: adapter %d has %d layers, the model %d", i + 1, in[i]->n_layers, c->n_layers);
        rank += in[i]->rank;
        targets |= in[i]->targets;
    }
    if (rank > 65536) return err_set("LoRA combine: total rank %ld: more than 65536", rank);
    if (lora_init(out, c, (int)rank, (float)rank, 0, targets) != 0) return err_prefix("LoRA combine");
    int skipped = 0, bad = 0;
    for (int l = 0; l < c->n_layers && !bad; l++)
        for (int t = 0; t < LORA_N_TARGETS && !bad; t++) {
            LoraMat *o = lora_mat(out, l, (LoraTarget)t);
            if (!o || !o->A) continue;
            int r0 = 0;
            for (int i = 0; i < n && !bad; r0 += in[i]->rank, i++) {
                const LoraMat *p = input_mat(in[i], l, (LoraTarget)t, o, skip_mismatch, &bad, &skipped);
                if (bad) {
                    const LoraMat *q = lora_mat(in[i], l, (LoraTarget)t);
                    err_set("LoRA combine: adapter %d, layer %d, %s: [%d x %d], the model's weight is [%d x %d]", i + 1, l,
                            lora_target_name((LoraTarget)t), q->out, q->in, o->out, o->in);
                    break;
                }
                if (!p) continue; /* its rows of A' and columns of B' stay zero */
                /* A' rows r0 .. r0 + r_i = A_i: [r_i, in] */
                memcpy(o->A + (size_t)r0 * o->in, p->A, (size_t)p->rank * p->in * sizeof(float));
                /* B' [out, r'] columns r0 .. r0 + r_i = (w_i s_i / s') B_i, s' = 1 */
                float f = (float)(w[i] * (double)in[i]->scaling / (double)out->scaling);
                for (int row = 0; row < o->out; row++) {
                    float *dst = o->B + (size_t)row * o->rank + r0;
                    const float *src = p->B + (size_t)row * p->rank;
                    for (int j = 0; j < p->rank; j++) dst[j] = f * src[j];
                }
            }
        }
    if (bad) {
        lora_free(out);
        return -1;
    }
    if (n_skipped) *n_skipped = skipped;
    return 0;
}
