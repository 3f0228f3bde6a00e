/* train/adamw.c - AdamW, gradient clipping, learning-rate schedule. */
#include "adamw.h"
#include "core/error.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

AdamWConfig adamw_config_default(void) {
    AdamWConfig c = {0.9, 0.999, 1e-8, 0.01};
    return c;
}

int adamw_init(AdamW *o, const AdamWConfig *c, size_t n) {
    memset(o, 0, sizeof *o);
    if (!(c->beta1 >= 0 && c->beta1 < 1) || !(c->beta2 >= 0 && c->beta2 < 1))
        return err_set("AdamW: betas (%g, %g): expected each in [0, 1)", c->beta1, c->beta2);
    if (!(c->eps >= 0) || !(c->weight_decay >= 0))
        return err_set("AdamW: eps %g and weight decay %g must be >= 0", c->eps, c->weight_decay);
    o->cfg = *c;
    o->n = n;
    o->m = calloc(n ? n : 1, sizeof(float));
    o->v = calloc(n ? n : 1, sizeof(float));
    if (!o->m || !o->v) {
        adamw_free(o);
        return err_set("out of memory: the AdamW state of %zu parameters needs %zu MB", n, (n * 8) >> 20);
    }
    return 0;
}

void adamw_free(AdamW *o) {
    free(o->m);
    free(o->v);
    memset(o, 0, sizeof *o);
}

size_t train_spans_total(const ParamSpan *spans, int n_spans) {
    size_t n = 0;
    for (int i = 0; i < n_spans; i++) n += spans[i].n;
    return n;
}

int adamw_step(AdamW *o, const ParamSpan *spans, int n_spans, double lr) {
    size_t total = train_spans_total(spans, n_spans);
    if (total != o->n) return err_set("AdamW: the spans hold %zu parameters, the optimizer state %zu", total, o->n);
    if (!(lr >= 0) || !isfinite(lr)) return err_set("AdamW: learning rate %g: expected a finite value >= 0", lr);
    o->step++;
    const AdamWConfig *c = &o->cfg;
    /* scalars as PyTorch forms them: Python doubles, then float for float tensors */
    double bc1 = 1.0 - pow(c->beta1, (double)o->step), bc2 = 1.0 - pow(c->beta2, (double)o->step);
    const float decay = (float)(1.0 - lr * c->weight_decay);
    const float b1 = (float)c->beta1, b2 = (float)c->beta2;
    const float omb1 = (float)(1.0 - c->beta1), omb2 = (float)(1.0 - c->beta2);
    const float neg_step = (float)(-(lr / bc1));
    const float bc2s = (float)sqrt(bc2), eps = (float)c->eps;
    size_t off = 0;
    for (int s = 0; s < n_spans; s++) {
        const ParamSpan *sp = &spans[s];
        float *p = sp->param, *m = o->m + off, *v = o->v + off;
        const float *g = sp->grad;
        const int wd = !sp->no_decay && c->weight_decay != 0.0;
#pragma omp parallel for schedule(static) if (sp->n > 16384)
        for (size_t i = 0; i < sp->n; i++) {
            float pi = p[i], gi = g[i];
            if (wd) pi = pi * decay;
            float mi = m[i] * b1;
            mi = mi + omb1 * gi;
            float vi = v[i] * b2;
            vi = vi + omb2 * gi * gi;
            float denom = sqrtf(vi) / bc2s + eps;
            p[i] = pi + neg_step * mi / denom;
            m[i] = mi;
            v[i] = vi;
        }
        off += sp->n;
    }
    return 0;
}

/* ------------------------------------------------------------------------- */
/* gradients                                                                  */

#define NORM_CHUNK 65536

static double span_sumsq(const float *g, size_t n) {
    /* fixed chunks, each summed in order, chunks added in order: the same bits for any thread count */
    size_t nchunks = (n + NORM_CHUNK - 1) / NORM_CHUNK;
    double small[64];
    double *part = nchunks <= 64 ? small : malloc(nchunks * sizeof *part);
    if (!part) { /* out of memory: serial */
        double s = 0;
        for (size_t i = 0; i < n; i++) s += (double)g[i] * g[i];
        return s;
    }
#pragma omp parallel for schedule(static) if (nchunks > 1)
    for (size_t c = 0; c < nchunks; c++) {
        size_t i0 = c * NORM_CHUNK, i1 = i0 + NORM_CHUNK < n ? i0 + NORM_CHUNK : n;
        double s = 0;
        for (size_t i = i0; i < i1; i++) s += (double)g[i] * g[i];
        part[c] = s;
    }
    double s = 0;
    for (size_t c = 0; c < nchunks; c++) s += part[c];
    if (part != small) free(part);
    return s;
}

double grad_global_norm(const ParamSpan *spans, int n_spans) {
    double s = 0;
    for (int i = 0; i < n_spans; i++) s += span_sumsq(spans[i].grad, spans[i].n);
    return sqrt(s);
}

void grad_scale(const ParamSpan *spans, int n_spans, float f) {
    for (int s = 0; s < n_spans; s++) {
        float *g = spans[s].grad;
#pragma omp parallel for schedule(static) if (spans[s].n > 16384)
        for (size_t i = 0; i < spans[s].n; i++) g[i] *= f;
    }
}

double grad_clip_global_norm(const ParamSpan *spans, int n_spans, double max_norm) {
    double norm = grad_global_norm(spans, n_spans);
    double coef = max_norm / (norm + 1e-6);
    if (coef < 1.0) grad_scale(spans, n_spans, (float)coef);
    return norm;
}

void train_spans_zero_grads(const ParamSpan *spans, int n_spans) {
    for (int s = 0; s < n_spans; s++) memset(spans[s].grad, 0, spans[s].n * sizeof(float));
}

double train_weight_sum(const float *weights, size_t n) {
    if (!weights) return (double)n;
    double s = 0;
    for (size_t i = 0; i < n; i++) s += weights[i];
    return s;
}

/* ------------------------------------------------------------------------- */
/* spans                                                                      */

int train_spans_model_count(const Model *m) { return model_params(m, NULL, NULL); }

int train_spans_model(Model *m, ModelGrads *g, int no_decay_norms, ParamSpan *spans, int cap) {
    const ModelConfig *c = &m->cfg;
    if (!m->writable || m->wtype != KW_F32)
        return err_set("training: the model's weights are not writable fp32 (load it with ModelLoadOptions.writable = 1)");
    if (g->cfg.dim != c->dim || g->cfg.n_layers != c->n_layers || g->cfg.vocab_size != c->vocab_size || g->cfg.tied != c->tied)
        return err_set("training: the gradient buffers were made for another model");
    int need = train_spans_model_count(m);
    if (cap < need) return err_set("training: %d spans needed, room for %d", need, cap);
    ModelParam *ps = malloc((size_t)need * sizeof *ps);
    if (!ps) return err_set("out of memory");
    model_params(m, g, ps); /* the model's tensors, the family's biases and norms included */
    for (int k = 0; k < need; k++) {
        spans[k].param = ps[k].param;
        spans[k].grad = ps[k].grad;
        spans[k].n = ps[k].n;
        spans[k].no_decay = ps[k].is_norm ? no_decay_norms : 0;
    }
    free(ps);
    return need;
}

int train_spans_lora(LoraAdapter *a, LoraAdapter *g, ParamSpan *span) {
    if (a->n_floats != g->n_floats || a->rank != g->rank || a->targets != g->targets || a->n_layers != g->n_layers)
        return err_set("training: the adapter gradient does not have the adapter's shape (use lora_init_like)");
    span->param = a->data;
    span->grad = g->data;
    span->n = a->n_floats;
    span->no_decay = 0;
    return 0;
}

/* ------------------------------------------------------------------------- */
/* schedule                                                                   */

double lr_schedule_at(const LrSchedule *s, long step) {
    if (step < 0) step = 0;
    if (s->warmup > 0 && step < s->warmup) return s->peak * (double)(step + 1) / (double)s->warmup;
    if (s->decay == LR_CONSTANT) return s->peak;
    long span = s->total - s->warmup;
    if (span <= 0 || step >= s->total) return s->floor;
    double p = (double)(step - s->warmup) / (double)span;
    double f = s->decay == LR_LINEAR ? 1.0 - p : 0.5 * (1.0 + cos(M_PI * p));
    return s->floor + (s->peak - s->floor) * f;
}
