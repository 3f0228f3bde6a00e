/* model/lora.c - LoRA adapters: layout, initialisation, merging, the adapted linear. */
#include "lora.h"
#include "core/error.h"
#include "core/rng.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static const char *const TARGET_NAMES[LORA_N_TARGETS] = {"q", "k", "v", "o", "gate", "up", "down"};

const char *lora_target_name(LoraTarget t) {
    return (unsigned)t < LORA_N_TARGETS ? TARGET_NAMES[t] : "?";
}

int lora_targets_parse(const char *s, unsigned *targets) {
    *targets = 0;
    if (!s || !*s) return err_set("LoRA targets: empty list (expected names among q,k,v,o,gate,up,down, or \"all\")");
    if (strcmp(s, "all") == 0) {
        *targets = LORA_TARGETS_ALL;
        return 0;
    }
    const char *p = s;
    while (*p) {
        const char *e = strchr(p, ',');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        int found = -1;
        for (int t = 0; t < LORA_N_TARGETS; t++)
            if (strlen(TARGET_NAMES[t]) == len && strncmp(p, TARGET_NAMES[t], len) == 0) found = t;
        if (found < 0)
            return err_set("LoRA targets \"%s\": unknown target \"%.*s\" (expected q, k, v, o, gate, up, down or all)", s, (int)len, p);
        *targets |= LORA_BIT(found);
        if (!e) break;
        p = e + 1;
    }
    return 0;
}

/* in/out of each target's base weight for a config */
static void target_shape(const ModelConfig *c, LoraTarget t, int *in, int *out) {
    int d = c->dim, qd = c->n_heads * c->head_dim, kvd = c->n_kv_heads * c->head_dim, hid = c->hidden_dim;
    switch (t) {
    case LORA_Q: *in = d; *out = qd; break;
    case LORA_K:
    case LORA_V: *in = d; *out = kvd; break;
    case LORA_O: *in = qd; *out = d; break;
    case LORA_GATE:
    case LORA_UP: *in = d; *out = hid; break;
    default: *in = hid; *out = d; break; /* LORA_DOWN */
    }
}

static int layout(LoraAdapter *a, const ModelConfig *c, int rank, float alpha, int rslora, unsigned targets) {
    memset(a, 0, sizeof *a);
    /* "all" is every linear the family has (Phi: no gate); naming a missing one is an error */
    unsigned have = c->linears ? c->linears : LIN_ALL & ~(c->arch ? c->arch->no_linears : 0u);
    if (targets == LORA_TARGETS_ALL) targets &= have;
    for (int t = 0; t < LORA_N_TARGETS; t++)
        if ((targets & LORA_BIT(t)) && !(have & LIN_BIT(t)))
            return err_set("LoRA: target %s: the %s family has no such linear layer", TARGET_NAMES[t], c->arch ? c->arch->model_type : "llama");
    if (rank < 1 || rank > 65536) return err_set("LoRA: rank %d: expected 1..65536", rank);
    if (targets == 0 || (targets & ~LORA_TARGETS_ALL)) return err_set("LoRA: target set 0x%x: expected a non-empty subset of q,k,v,o,gate,up,down", targets);
    if (!isfinite(alpha)) return err_set("LoRA: alpha is not finite");
    a->rank = rank;
    a->alpha = alpha;
    a->rslora = rslora;
    a->scaling = rslora ? alpha / sqrtf((float)rank) : alpha / (float)rank;
    a->targets = targets;
    a->n_layers = c->n_layers;
    a->mats = calloc((size_t)c->n_layers * LORA_N_TARGETS, sizeof *a->mats);
    if (!a->mats) return err_set("out of memory");
    size_t n = 0;
    for (int l = 0; l < c->n_layers; l++)
        for (int t = 0; t < LORA_N_TARGETS; t++) {
            LoraMat *p = &a->mats[(size_t)l * LORA_N_TARGETS + t];
            target_shape(c, (LoraTarget)t, &p->in, &p->out);
            p->rank = rank;
            if (targets & LORA_BIT(t)) n += (size_t)rank * ((size_t)p->in + (size_t)p->out);
        }
    a->n_floats = n;
    a->data = calloc(n ? n : 1, sizeof(float));
    if (!a->data) {
        free(a->mats);
        memset(a, 0, sizeof *a);
        return err_set("out of memory: a rank-%d adapter needs %zu MB", rank, (n * sizeof(float)) >> 20);
    }
    float *p = a->data;
    for (int l = 0; l < c->n_layers; l++)
        for (int t = 0; t < LORA_N_TARGETS; t++) {
            if (!(targets & LORA_BIT(t))) continue;
            LoraMat *m = &a->mats[(size_t)l * LORA_N_TARGETS + t];
            m->A = p;
            p += (size_t)rank * m->in;
            m->B = p;
            p += (size_t)m->out * rank;
        }
    return 0;
}

int lora_init(LoraAdapter *a, const ModelConfig *c, int rank, float alpha, int rslora, unsigned targets) {
    return layout(a, c, rank, alpha, rslora, targets);
}

int lora_init_like(LoraAdapter *a, const LoraAdapter *like) {
    /* rebuild the config fields the layout depends on from the matrices' shapes */
    memset(a, 0, sizeof *a);
    if (!like->mats || like->n_layers < 1) return err_set("LoRA: cannot copy the shape of an empty adapter");
    a->rank = like->rank;
    a->alpha = like->alpha;
    a->rslora = like->rslora;
    a->scaling = like->scaling;
    a->targets = like->targets;
    a->n_layers = like->n_layers;
    a->n_floats = like->n_floats;
    a->mats = calloc((size_t)like->n_layers * LORA_N_TARGETS, sizeof *a->mats);
    a->data = calloc(like->n_floats ? like->n_floats : 1, sizeof(float));
    if (!a->mats || !a->data) {
        free(a->mats);
        free(a->data);
        memset(a, 0, sizeof *a);
        return err_set("out of memory");
    }
    for (size_t i = 0; i < (size_t)like->n_layers * LORA_N_TARGETS; i++) {
        const LoraMat *s = &like->mats[i];
        LoraMat *m = &a->mats[i];
        m->in = s->in;
        m->out = s->out;
        m->rank = s->rank;
        if (s->A) {
            m->A = a->data + (s->A - like->data);
            m->B = a->data + (s->B - like->data);
        }
    }
    return 0;
}

void lora_free(LoraAdapter *a) {
    free(a->mats);
    free(a->data);
    memset(a, 0, sizeof *a);
}

void lora_zero(LoraAdapter *a) {
    if (a->data) memset(a->data, 0, a->n_floats * sizeof(float));
}

void lora_reset_peft(LoraAdapter *a, uint64_t seed) {
    Rng r;
    rng_seed(&r, seed);
    for (int l = 0; l < a->n_layers; l++)
        for (int t = 0; t < LORA_N_TARGETS; t++) {
            LoraMat *m = lora_mat(a, l, (LoraTarget)t);
            if (!m) continue;
            float bound = 1.0f / sqrtf((float)m->in);
            size_t nA = (size_t)a->rank * m->in;
            for (size_t i = 0; i < nA; i++) m->A[i] = (2.0f * rng_f32(&r) - 1.0f) * bound;
            memset(m->B, 0, (size_t)m->out * a->rank * sizeof(float));
        }
    a->merged = 0;
}

LoraMat *lora_mat(const LoraAdapter *a, int layer, LoraTarget t) {
    if (!a || layer < 0 || layer >= a->n_layers || (unsigned)t >= LORA_N_TARGETS) return NULL;
    LoraMat *m = &a->mats[(size_t)layer * LORA_N_TARGETS + t];
    return m->A ? m : NULL;
}

const KWeight *lora_base_weight(const Model *m, int layer, LoraTarget t) {
    return (unsigned)t < LORA_N_TARGETS ? model_linear(m, layer, (LinearSlot)t) : NULL;
}

int lora_check(const LoraAdapter *a, const Model *m) {
    if (a->n_layers != m->cfg.n_layers)
        return err_set("LoRA adapter has %d layers but the model has %d", a->n_layers, m->cfg.n_layers);
    for (int l = 0; l < a->n_layers; l++)
        for (int t = 0; t < LORA_N_TARGETS; t++) {
            const LoraMat *p = lora_mat(a, l, (LoraTarget)t);
            if (!p) continue;
            const KWeight *w = lora_base_weight(m, l, (LoraTarget)t);
            if (w->n != p->out || w->k != p->in)
                return err_set("LoRA adapter layer %d target %s: shape [%d, %d] does not fit the model's weight [%d, %d]",
                               l, lora_target_name((LoraTarget)t), p->out, p->in, w->n, w->k);
        }
    return 0;
}

static int merge(LoraAdapter *a, Model *m, float sign) {
    if (!m->writable || m->wtype != KW_F32)
        return err_set("LoRA merge: the model must be loaded writable (owned fp32 weights: ModelLoadOptions.writable)");
    if (lora_check(a, m) != 0) return -1;
    if (sign > 0 && a->merged) return err_set("LoRA merge: the adapter is already merged");
    if (sign < 0 && !a->merged) return err_set("LoRA unmerge: the adapter is not merged");
    for (int l = 0; l < a->n_layers; l++)
        for (int t = 0; t < LORA_N_TARGETS; t++) {
            const LoraMat *p = lora_mat(a, l, (LoraTarget)t);
            if (!p) continue;
            const KWeight *w = lora_base_weight(m, l, (LoraTarget)t);
            /* W[out, in] += sign * scaling * B[out, r] A[r, in] */
            kmm_f32_nn(p->out, p->in, a->rank, p->B, a->rank, p->A, p->in, (float *)w->f32, p->in, sign * a->scaling, 1.0f);
        }
    a->merged = sign > 0;
    return 0;
}

int lora_merge(LoraAdapter *a, Model *m) { return merge(a, m, 1.0f); }
int lora_unmerge(LoraAdapter *a, Model *m) { return merge(a, m, -1.0f); }

/* ------------------------------------------------------------------------- */
/* the adapted linear                                                         */

void lora_linear_forward(const LoraMat *p, float scaling, const float *x, int N, float *u, float *y) {
    lora_linear_forward_with(&kmm_products_f32, p, scaling, x, N, u, y);
}

void lora_linear_forward_with(const KmmProducts *pp, const LoraMat *p, float scaling, const float *x, int N, float *u,
                              float *y) {
    /* u[N, r] = x[N, in] A[r, in]^T;  y[N, out] += scaling * u[N, r] B[out, r]^T */
    pp->nt(N, p->rank, p->in, x, p->in, p->A, p->in, u, p->rank, 1.0f, 0.0f);
    pp->nt(N, p->out, p->rank, u, p->rank, p->B, p->rank, y, p->out, scaling, 1.0f);
}

void lora_linear_backward(const LoraMat *p, float scaling, const float *x, const float *u, const float *dy, int N,
                          LoraMat *g, float *du, float *dx) {
    lora_linear_backward_with(&kmm_products_f32, p, scaling, x, u, dy, N, g, du, dx);
}

void lora_linear_backward_with(const KmmProducts *pp, const LoraMat *p, float scaling, const float *x, const float *u,
                               const float *dy, int N, LoraMat *g, float *du, float *dx) {
    int r = p->rank;
    /* du[N, r] = scaling * dy[N, out] B[out, r] */
    pp->nn(N, r, p->out, dy, p->out, p->B, r, du, r, scaling, 0.0f);
    if (g) {
        /* gB[out, r] += scaling * dy^T u;  gA[r, in] += du^T x  (fp32 sums into fp32 grads) */
        pp->tn(p->out, r, N, dy, p->out, u, r, g->B, r, scaling, 1.0f);
        pp->tn(r, p->in, N, du, r, x, p->in, g->A, p->in, 1.0f, 1.0f);
    }
    /* dx[N, in] += du[N, r] A[r, in] */
    if (dx) pp->nn(N, p->in, r, du, r, p->A, p->in, dx, p->in, 1.0f, 1.0f);
}
