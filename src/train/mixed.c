/* train/mixed.c - the bf16 view of an fp32 master model (see mixed.h). */
#include "mixed.h"
#include "core/cpu.h"
#include "core/dtype.h"
#include "core/error.h"

#include <stdlib.h>
#include <string.h>

/* The matrices of a model, in a fixed order: per layer wq wk wv wo w1 w3 w2 (those it
 * has), then the classifier. out NULL: the count. */
static int model_mats(const Model *m, const KWeight **out) {
    int k = 0;
    for (int l = 0; l < m->cfg.n_layers; l++) {
        const LayerWeights *w = &m->layers[l];
        const KWeight *const mats[] = {&w->wq, &w->wk, &w->wv, &w->wo, &w->w1, &w->w3, &w->w2};
        for (size_t i = 0; i < sizeof mats / sizeof mats[0]; i++) {
            if (mats[i]->n < 1) continue; /* w1 without a gate */
            if (out) out[k] = mats[i];
            k++;
        }
    }
    if (out) out[k] = &m->wcls;
    return k + 1;
}

int mixed_init(MixedModel *mx, const Model *master) {
    memset(mx, 0, sizeof *mx);
    if (master->wtype != KW_F32 || !master->writable)
        return err_set("mixed precision: the master model must hold writable fp32 weights (full training)");
    mx->master = master;
    Model *v = &mx->view;
    *v = *master;
    /* the view owns nothing of the master's */
    v->maps = NULL, v->n_maps = 0;
    v->owned = NULL, v->n_owned = v->cap_owned = 0;
    v->tokenizer = NULL, v->format_ctx = NULL, v->format_free = NULL, v->path = NULL, v->dir = NULL;
    v->wtype = KW_BF16;
    v->writable = 0;
    v->layers = malloc((size_t)master->cfg.n_layers * sizeof *v->layers);
    if (!v->layers) return err_set("out of memory");
    memcpy(v->layers, master->layers, (size_t)master->cfg.n_layers * sizeof *v->layers);
    /* the pairs: the view's handles still hold the master's (copied above) */
    mx->n_mats = model_mats(v, NULL);
    mx->src = calloc((size_t)mx->n_mats, sizeof *mx->src);
    mx->dst = calloc((size_t)mx->n_mats, sizeof *mx->dst);
    if (!mx->src || !mx->dst) {
        mixed_free(mx);
        return err_set("out of memory");
    }
    model_mats(master, mx->src);
    model_mats(v, (const KWeight **)mx->dst); /* the view's own handles (not const) */
    for (int i = 0; i < mx->n_mats; i++) mx->n += (size_t)mx->src[i]->n * mx->src[i]->k;
    mx->data = aligned_alloc(64, (mx->n * sizeof(uint16_t) + 63) & ~(size_t)63);
    if (!mx->data) {
        size_t mb = (mx->n * sizeof(uint16_t)) >> 20;
        mixed_free(mx);
        return err_set("out of memory: the bf16 copies of the weights need %zu MB", mb);
    }
    size_t off = 0;
    for (int i = 0; i < mx->n_mats; i++) {
        const KWeight *s = mx->src[i];
        memset(mx->dst[i], 0, sizeof *mx->dst[i]);
        if (kweight_init_bf16(mx->dst[i], mx->data + off, s->n, s->k) != 0) {
            mixed_free(mx);
            return -1;
        }
        off += (size_t)s->n * s->k;
    }
    mixed_refresh(mx);
    return 0;
}

void mixed_refresh(MixedModel *mx) {
    for (int i = 0; i < mx->n_mats; i++) {
        const KWeight *s = mx->src[i];
        KWeight *d = mx->dst[i];
        const float *f = s->f32;
        uint16_t *h = (uint16_t *)d->bf16;
        size_t cnt = (size_t)s->n * s->k;
#pragma omp parallel for schedule(static) if (CPU_PAR(cnt))
        for (size_t j = 0; j < cnt; j++) h[j] = f32_to_bf16(f[j]);
        kweight_repack_bf16(d);
    }
}

void mixed_free(MixedModel *mx) {
    for (int i = 0; mx->dst && i < mx->n_mats; i++)
        if (mx->dst[i]->type == KW_BF16) kweight_free(mx->dst[i]);
    free(mx->view.layers);
    free(mx->src);
    free(mx->dst);
    free(mx->data);
    memset(mx, 0, sizeof *mx);
}
