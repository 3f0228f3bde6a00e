/* tests/model/test_packed_train.c - training on packed rows (model_forward_train_packed
 * + model_backward_logits): several continuations sharing one prefix in one row.
 *
 * The case: a tiny random model (gradcheck.h: dim 16, 2 layers, 4 heads, 2 kv heads,
 * hidden 40, vocab 32) and two packed rows, as compat/ builds them for multiple choice:
 *   row 0: context of 5 tokens, then 3 choices of 3, 1 and 4 tokens (segments of 2, 0, 3:
 *          a choice's last token is never an input), 10 positions;
 *   row 1: context of 3 tokens, then 2 choices of 2 and 3 tokens, padded to 10 (padding
 *          in a segment of its own, position 0).
 * The loss is a weighted cross-entropy on the continuation tokens only: choice c's token
 * j is predicted from the context's last position (j = 0, shared by every choice) or from
 * its segment's position j - 1. The equivalent plain rows are context + choice (without
 * its last token), one sequence per choice, with the same targets and weights.
 * Checks:
 *  (a) the packed gradients (every base tensor and every LoRA tensor, one backward pass
 *      with both) equal the sums of the plain rows' gradients: per tensor
 *      max|packed - plain| / max|plain| < 1e-5 (float32, summation order only), with
 *      RS_KEEP_ALL and RS_KEEP_INPUTS (which give the same bits); a wrong mask in the
 *      forward pass, a wrong mask for the recomputation and wrong positions for the
 *      rotary backward are all caught by the same tolerance;
 *  (b) central differences of a float64 re-implementation with the same packed mask
 *      and positions (gradcheck.h), per tensor rel err < 1e-4 as tests/model/test_backward.c,
 *      for the full model and for LoRA; the masked attention backward alone too;
 *  (c) the logits of the packed training forward are those of model_forward_packed
 *      (same bits), and of the float64 reference; errors are reported, not crashes.
 */
#include "gradcheck.h"
#include "core/error.h"

#define TOL_SUM 1e-5   /* packed vs sum of plain rows, float32 */
#define TOL_FD 1e-4    /* float32 gradient vs float64 central differences */
#define FD_STEP 1e-5

enum { PB = 2, PN = 10, PNN = PB * PN, MAXCH = 3 };

typedef struct { int n_ctx, ctx[8], n_ch, len[MAXCH], cont[MAXCH][6]; float w[MAXCH][6]; } Item;
/* one term of the loss: row (b * PN + position), target, weight */
typedef struct { int row, target; float w; } Term;

typedef struct {
    Model m;
    LoraAdapter ad;
    int use_lora;
    Item it[PB];
    int tok[PNN], pos[PNN], seg[PNN];
    Term terms[64];
    int n_terms;
} Case;

static void case_init(Case *k, RopeStyle rope, int tied, int use_lora, uint64_t seed) {
    memset(k, 0, sizeof *k);
    ModelConfig cfg = tiny_config(rope, tied);
    tiny_model(&k->m, &cfg, seed, 0.4f);
    TRng r = {seed + 77};
    static const int nctx[PB] = {5, 3}, nch[PB] = {3, 2}, lens[PB][MAXCH] = {{3, 1, 4}, {2, 3, 0}};
    for (int b = 0; b < PB; b++) {
        Item *it = &k->it[b];
        it->n_ctx = nctx[b];
        it->n_ch = nch[b];
        for (int i = 0; i < it->n_ctx; i++) it->ctx[i] = 3 + (int)(trng_uniform(&r) * (cfg.vocab_size - 3));
        for (int c = 0; c < it->n_ch; c++) {
            it->len[c] = lens[b][c];
            for (int j = 0; j < it->len[c]; j++) {
                it->cont[c][j] = 3 + (int)(trng_uniform(&r) * (cfg.vocab_size - 3));
                it->w[c][j] = (float)(0.5 + trng_uniform(&r));
            }
        }
        /* the packed row and its terms */
        int *t = k->tok + b * PN, *p = k->pos + b * PN, *g = k->seg + b * PN, q = 0;
        for (int i = 0; i < it->n_ctx; i++, q++) { t[q] = it->ctx[i]; p[q] = i; g[q] = 0; }
        for (int c = 0; c < it->n_ch; c++) {
            int start = q;
            for (int j = 0; j + 1 < it->len[c]; j++, q++) { t[q] = it->cont[c][j]; p[q] = it->n_ctx + j; g[q] = c + 1; }
            for (int j = 0; j < it->len[c]; j++) {
                Term *e = &k->terms[k->n_terms++];
                e->row = b * PN + (j == 0 ? it->n_ctx - 1 : start + j - 1);
                e->target = it->cont[c][j];
                e->w = it->w[c][j];
            }
        }
        assert_true(q <= PN);
        for (; q < PN; q++) { t[q] = 0; p[q] = 0; g[q] = 99; } /* padding */
    }
    k->use_lora = use_lora;
    if (use_lora) {
        assert_int_equal(lora_init(&k->ad, &k->m.cfg, 2, 3.0f, 0, LORA_TARGETS_ALL), 0);
        trng_fill(&r, k->ad.data, k->ad.n_floats, 0.4f); /* B non-zero, or dA would be 0 */
    }
}

static void case_free(Case *k) {
    lora_free(&k->ad);
    model_free(&k->m);
}

/* sum of w * -log softmax(z[row])[target] over the terms, and (dz != NULL) its gradient
 * d/dz [PNN, V] (zero on rows without a term), from float logits, in double */
static double terms_loss(const Term *terms, int n_terms, const float *z, int V, float *dz) {
    double loss = 0;
    double *acc = dz ? calloc((size_t)PNN * V, sizeof *acc) : NULL;
    for (int i = 0; i < n_terms; i++) {
        const float *zr = z + (size_t)terms[i].row * V;
        double mx = zr[0], s = 0;
        for (int v = 1; v < V; v++) mx = zr[v] > mx ? zr[v] : mx;
        for (int v = 0; v < V; v++) s += exp(zr[v] - mx);
        loss += terms[i].w * (mx + log(s) - zr[terms[i].target]);
        if (acc) {
            double *a = acc + (size_t)terms[i].row * V;
            for (int v = 0; v < V; v++) a[v] += terms[i].w * exp(zr[v] - mx) / s;
            a[terms[i].target] -= terms[i].w;
        }
    }
    if (dz) {
        for (size_t i = 0; i < (size_t)PNN * V; i++) dz[i] = (float)acc[i];
        free(acc);
    }
    return loss;
}

/* The engine on the packed rows: loss, base gradients into g (when not NULL) and adapter
 * gradients into lg (when not NULL). seg_fwd: the segments given to the forward pass. */
static double packed_engine(Case *k, RunState *s, const int *seg_fwd, ModelGrads *g, LoraAdapter *lg) {
    int V = k->m.cfg.vocab_size;
    assert_int_equal(model_forward_train_packed(s, k->tok, k->pos, seg_fwd, PB, PN), 0);
    float *dz = malloc((size_t)PNN * V * sizeof *dz);
    double loss = terms_loss(k->terms, k->n_terms, s->logits, V, dz);
    memcpy(s->logits, dz, (size_t)PNN * V * sizeof *dz);
    free(dz);
    assert_int_equal(model_backward_logits(s, g, lg), 0);
    return loss;
}

/* The same loss on plain rows: context + choice (without its last token), one sequence
 * per choice, model_loss with the terms' weights and divisor 1, gradients summed. */
static double plain_engine(Case *k, ModelGrads *g, LoraAdapter *lg) {
    RunState s;
    assert_int_equal(runstate_init(&s, &k->m, 1, PN, PN, RS_KEEP_ALL), 0);
    if (k->use_lora) assert_int_equal(runstate_set_lora(&s, &k->ad), 0);
    double total = 0;
    for (int b = 0; b < PB; b++) {
        const Item *it = &k->it[b];
        for (int c = 0; c < it->n_ch; c++) {
            int n = it->n_ctx + it->len[c] - 1, tok[PN], tgt[PN];
            float w[PN];
            for (int i = 0; i < n; i++) {
                tok[i] = i < it->n_ctx ? it->ctx[i] : it->cont[c][i - it->n_ctx];
                int j = i - (it->n_ctx - 1); /* the continuation token this position predicts */
                tgt[i] = j >= 0 ? it->cont[c][j] : 0;
                w[i] = j >= 0 ? it->w[c][j] : 0.0f;
            }
            double loss;
            assert_int_equal(model_loss(&s, tok, tgt, w, 1, n, 1.0, &loss, NULL), 0);
            assert_int_equal(model_backward(&s, g, lg), 0);
            total += loss;
        }
    }
    runstate_free(&s);
    return total;
}

/* worst per-tensor rel err of got against ref (same layouts); prints each when verbose */
static double worst_tensor(const ModelGrads *got, const ModelGrads *ref, const LoraAdapter *lgot, const LoraAdapter *lref,
                           int verbose) {
    TensorRef a[64], b[64];
    double worst = 0;
    int n = model_tensors(got, a);
    model_tensors(ref, b);
    for (int i = 0; i < n; i++) {
        double e = rel_err_ff(a[i].a, b[i].a, a[i].n);
        if (verbose) printf("#   %-28s rel err %.2e\n", a[i].name, e);
        if (!(e <= worst)) worst = e;
    }
    if (lgot) {
        n = lora_tensors(lgot, a);
        lora_tensors(lref, b);
        for (int i = 0; i < n; i++) {
            double e = rel_err_ff(a[i].a, b[i].a, a[i].n);
            if (verbose) printf("#   %-28s rel err %.2e\n", a[i].name, e);
            if (!(e <= worst)) worst = e;
        }
    }
    return worst;
}

/* ------------------------------------------------------------------------- */
/* (a) packed = sum of the plain rows                                          */

static void sum_case(RopeStyle rope, int tied) {
    Case k;
    case_init(&k, rope, tied, 1, 5 + rope * 2 + tied);
    ModelGrads gp, gq, gr;
    LoraAdapter lp, lq, lr;
    assert_int_equal(model_grads_init(&gp, &k.m), 0);
    assert_int_equal(model_grads_init(&gq, &k.m), 0);
    assert_int_equal(model_grads_init(&gr, &k.m), 0);
    assert_int_equal(lora_init_like(&lp, &k.ad), 0);
    assert_int_equal(lora_init_like(&lq, &k.ad), 0);
    assert_int_equal(lora_init_like(&lr, &k.ad), 0);
    double lref = plain_engine(&k, &gr, &lr);

    RunState s, si;
    assert_int_equal(runstate_init(&s, &k.m, PB, PN, PN, RS_KEEP_ALL), 0);
    assert_int_equal(runstate_init(&si, &k.m, PB, PN, PN, RS_KEEP_INPUTS), 0);
    assert_int_equal(runstate_set_lora(&s, &k.ad), 0);
    assert_int_equal(runstate_set_lora(&si, &k.ad), 0);
    double lpk = packed_engine(&k, &s, k.seg, &gp, &lp);
    double lpi = packed_engine(&k, &si, k.seg, &gq, &lq);
    printf("# rope %s, %s: loss packed %.9f, plain rows %.9f\n", rope == ROPE_HALF ? "half" : "interleaved",
           tied ? "tied" : "untied", lpk, lref);
    assert_true(fabs(lpk - lref) < 1e-6 * fabs(lref));
    /* checkpointing recomputes the packed layers exactly */
    assert_true(lpk == lpi);
    assert_memory_equal(gp.data, gq.data, gp.n_floats * sizeof(float));
    assert_memory_equal(lp.data, lq.data, lp.n_floats * sizeof(float));
    double worst = worst_tensor(&gp, &gr, &lp, &lr, 1);
    printf("# packed vs sum of plain rows: worst tensor rel err %.2e (tol %.0e)\n", worst, TOL_SUM);
    if (!(worst < TOL_SUM)) fail_msg("packed gradients differ from the plain rows' sum: %.3e", worst);

    /* wrong: the forward pass without the segment mask (every choice sees the others) */
    int seg0[PNN];
    for (int i = 0; i < PNN; i++) seg0[i] = 0;
    model_grads_zero(&gq);
    lora_zero(&lq);
    packed_engine(&k, &s, seg0, &gq, &lq);
    double e = worst_tensor(&gq, &gr, &lq, &lr, 0);
    printf("# without the mask: rel err %.2e: caught\n", e);
    assert_true(e >= TOL_SUM);
    /* wrong: checkpointing that recomputes with another mask (all one segment) */
    int V = k.m.cfg.vocab_size;
    float *dz = malloc((size_t)PNN * V * sizeof *dz);
    model_grads_zero(&gq);
    lora_zero(&lq);
    assert_int_equal(model_forward_train_packed(&si, k.tok, k.pos, k.seg, PB, PN), 0);
    terms_loss(k.terms, k.n_terms, si.logits, V, dz);
    memcpy(si.logits, dz, (size_t)PNN * V * sizeof *dz);
    for (int i = 0; i < PNN; i++) si.train_seg[i] = 0;
    assert_int_equal(model_backward_logits(&si, &gq, &lq), 0);
    e = worst_tensor(&gq, &gr, &lq, &lr, 0);
    printf("# recomputed without the mask: rel err %.2e: caught\n", e);
    assert_true(e >= TOL_SUM);
    /* wrong: the rotary backward at the plain positions 0..n-1 */
    model_grads_zero(&gq);
    lora_zero(&lq);
    assert_int_equal(model_forward_train_packed(&s, k.tok, k.pos, k.seg, PB, PN), 0);
    terms_loss(k.terms, k.n_terms, s.logits, V, dz);
    memcpy(s.logits, dz, (size_t)PNN * V * sizeof *dz);
    for (int i = 0; i < PNN; i++) s.train_pos[i] = i % PN;
    assert_int_equal(model_backward_logits(&s, &gq, &lq), 0);
    e = worst_tensor(&gq, &gr, &lq, &lr, 0);
    printf("# rotary backward at plain positions: rel err %.2e: caught\n", e);
    assert_true(e >= TOL_SUM);
    free(dz);

    runstate_free(&s);
    runstate_free(&si);
    model_grads_free(&gp);
    model_grads_free(&gq);
    model_grads_free(&gr);
    lora_free(&lp);
    lora_free(&lq);
    lora_free(&lr);
    case_free(&k);
}
static void test_sum_of_rows_interleaved_untied(void **st) { (void)st; sum_case(ROPE_INTERLEAVED, 0); }
static void test_sum_of_rows_half_tied(void **st) { (void)st; sum_case(ROPE_HALF, 1); }

/* ------------------------------------------------------------------------- */
/* (b) central differences                                                     */

enum { AB = 1, AN = 7, AH = 4, AKV = 2, AHD = 4, AQD = AH * AHD, AKVD = AKV * AHD };
static const int ASEG[AN] = {0, 0, 0, 1, 1, 2, 2};
typedef struct { double *q, *k, *v, *R; const int *seg; } AttCtx;
static double att_obj(void *p) {
    AttCtx *c = p;
    double out[AB * AN * AQD], s = 0;
    d_attention_seg(out, NULL, c->q, c->k, c->v, c->seg, AB, AN, AH, AKV, AHD);
    for (int i = 0; i < AB * AN * AQD; i++) s += c->R[i] * out[i];
    return s;
}

static void test_attention_backward_seg_fd(void **st) {
    (void)st;
    enum { NQ = AB * AN * AQD, NKV = AB * AN * AKVD, NP = AB * AH * AN * AN };
    TRng r = {91};
    float q[NQ], k[NKV], v[NKV], R[NQ], att[NP], datt[NP], dq[NQ], dk[NKV], dv[NKV];
    trng_fill(&r, q, NQ, 1.5f);
    trng_fill(&r, k, NKV, 1.5f);
    trng_fill(&r, v, NKV, 1.0f);
    trng_fill(&r, R, NQ, 1.0f);
    AttCtx c = {dup_f64(q, NQ), dup_f64(k, NKV), dup_f64(v, NKV), dup_f64(R, NQ), ASEG};
    double out[NQ], P[NP];
    d_attention_seg(out, P, c.q, c.k, c.v, ASEG, AB, AN, AH, AKV, AHD);
    for (int i = 0; i < NP; i++) att[i] = (float)P[i];
    attention_backward(dq, dk, dv, datt, R, q, k, v, (size_t)AN * AKVD, att, AB, AN, AH, AKV, AHD);
    double nq[NQ], nk[NKV], nv[NKV];
    fd_grad(c.q, NQ, FD_STEP, att_obj, &c, nq);
    fd_grad(c.k, NKV, FD_STEP, att_obj, &c, nk);
    fd_grad(c.v, NKV, FD_STEP, att_obj, &c, nv);
    double e[3] = {rel_err_fd(dq, nq, NQ), rel_err_fd(dk, nk, NKV), rel_err_fd(dv, nv, NKV)};
    printf("# masked attention backward: dq %.2e, dk %.2e, dv %.2e (tol %.0e)\n", e[0], e[1], e[2], TOL_FD);
    for (int i = 0; i < 3; i++) assert_true(e[i] < TOL_FD);
    /* wrong: the causal probabilities (no mask) through the backward */
    double Pc[NP];
    d_attention(out, Pc, c.q, c.k, c.v, AB, AN, AH, AKV, AHD);
    for (int i = 0; i < NP; i++) att[i] = (float)Pc[i];
    attention_backward(dq, dk, dv, datt, R, q, k, v, (size_t)AN * AKVD, att, AB, AN, AH, AKV, AHD);
    double w = rel_err_fd(dq, nq, NQ);
    printf("# with unmasked probabilities: dq rel err %.2e: caught\n", w);
    assert_true(w >= TOL_FD);
    free(c.q); free(c.k); free(c.v); free(c.R);
}

typedef struct {
    Case *k;
    DModel dm;
    const int *seg;
    double *logits;
} FdCtx;

static double fd_obj(void *p) {
    FdCtx *f = p;
    int V = f->k->m.cfg.vocab_size;
    dmodel_logits(&f->dm, f->k->tok, f->k->pos, f->seg, PB, PN, f->logits);
    double loss = 0;
    for (int i = 0; i < f->k->n_terms; i++) {
        const Term *t = &f->k->terms[i];
        const double *z = f->logits + (size_t)t->row * V;
        double mx = z[0], s = 0;
        for (int v = 1; v < V; v++) mx = z[v] > mx ? z[v] : mx;
        for (int v = 0; v < V; v++) s += exp(z[v] - mx);
        loss += t->w * (mx + log(s) - z[t->target]);
    }
    return loss;
}

static void fd_case(RopeStyle rope, int tied, int use_lora, int keep) {
    Case k;
    case_init(&k, rope, tied, use_lora, 40 + rope * 2 + tied);
    ModelGrads g;
    LoraAdapter lg;
    memset(&lg, 0, sizeof lg);
    assert_int_equal(model_grads_init(&g, &k.m), 0);
    if (use_lora) assert_int_equal(lora_init_like(&lg, &k.ad), 0);
    RunState s;
    assert_int_equal(runstate_init(&s, &k.m, PB, PN, PN, keep), 0);
    if (use_lora) assert_int_equal(runstate_set_lora(&s, &k.ad), 0);
    double loss = packed_engine(&k, &s, k.seg, use_lora ? NULL : &g, use_lora ? &lg : NULL);
    FdCtx f;
    memset(&f, 0, sizeof f);
    f.k = &k;
    f.seg = k.seg;
    f.logits = malloc((size_t)PNN * k.m.cfg.vocab_size * sizeof(double));
    double *P = malloc(g.n_floats * sizeof *P), *Q = use_lora ? dup_f64(k.ad.data, k.ad.n_floats) : NULL;
    dmodel_copy_weights(&k.m, &g, P);
    dmodel_bind(&f.dm, &g, P, use_lora ? &k.ad : NULL, Q, &s);
    double ld = fd_obj(&f);
    printf("# packed, rope %s, %s, %s, keep %s: loss %.9f, float64 model %.9f\n", rope == ROPE_HALF ? "half" : "interleaved",
           tied ? "tied" : "untied", use_lora ? "LoRA r=2 (base frozen)" : "full gradients",
           keep == RS_KEEP_INPUTS ? "inputs" : "all", loss, ld);
    assert_true(fabs(loss - ld) < 1e-5 * fabs(ld));
    double *params = use_lora ? Q : P;
    size_t np = use_lora ? k.ad.n_floats : g.n_floats;
    double *num = malloc(np * sizeof *num);
    fd_grad(params, np, FD_STEP, fd_obj, &f, num);
    TensorRef t[64];
    int nt = use_lora ? lora_tensors(&lg, t) : model_tensors(&g, t);
    double worst = 0;
    for (int i = 0; i < nt; i++) {
        double e = rel_err_fd(t[i].a, num + t[i].off, t[i].n);
        printf("#   %-28s rel err %.2e\n", t[i].name, e);
        if (!(e < TOL_FD)) fail_msg("%s: gradient relative error %.3e exceeds %.1e", t[i].name, e, TOL_FD);
        if (e > worst) worst = e;
    }
    printf("# worst tensor: rel err %.2e over %d tensors (%zu parameters)\n", worst, nt, np);
    /* wrong: the engine's gradient without the segment mask, against the masked differences */
    model_grads_zero(&g);
    if (use_lora) lora_zero(&lg);
    int seg0[PNN];
    for (int i = 0; i < PNN; i++) seg0[i] = k.seg[i] == 99 ? 99 : 0;
    packed_engine(&k, &s, seg0, use_lora ? NULL : &g, use_lora ? &lg : NULL);
    double e = 0;
    for (int i = 0; i < nt; i++) {
        double ei = rel_err_fd(t[i].a, num + t[i].off, t[i].n);
        e = ei > e ? ei : e;
    }
    printf("# without the mask: worst rel err %.2e: caught\n", e);
    assert_true(e >= TOL_FD);
    if (use_lora)
        for (size_t i = 0; i < g.n_floats; i++) assert_true(g.data[i] == 0.0f); /* base frozen */
    free(num);
    free(P);
    free(Q);
    free(f.logits);
    runstate_free(&s);
    lora_free(&lg);
    model_grads_free(&g);
    case_free(&k);
}
static void test_fd_full_half_untied(void **st) { (void)st; fd_case(ROPE_HALF, 0, 0, RS_KEEP_ALL); }
static void test_fd_full_interleaved_tied_recompute(void **st) { (void)st; fd_case(ROPE_INTERLEAVED, 1, 0, RS_KEEP_INPUTS); }
static void test_fd_lora_interleaved_untied(void **st) { (void)st; fd_case(ROPE_INTERLEAVED, 0, 1, RS_KEEP_ALL); }
static void test_fd_lora_half_tied_recompute(void **st) { (void)st; fd_case(ROPE_HALF, 1, 1, RS_KEEP_INPUTS); }

/* ------------------------------------------------------------------------- */
/* (c) logits, state and errors                                               */

static void test_logits_same_as_scoring(void **st) {
    (void)st;
    Case k;
    case_init(&k, ROPE_HALF, 0, 1, 3);
    int V = k.m.cfg.vocab_size;
    size_t nl = (size_t)PNN * V * sizeof(float);
    RunState s0, sa, si;
    assert_int_equal(runstate_init(&s0, &k.m, PB, PN, PN, RS_KEEP_NONE), 0);
    assert_int_equal(runstate_init(&sa, &k.m, PB, PN, PN, RS_KEEP_ALL), 0);
    assert_int_equal(runstate_init(&si, &k.m, PB, PN, PN, RS_KEEP_INPUTS), 0);
    assert_int_equal(runstate_set_lora(&s0, &k.ad), 0);
    assert_int_equal(runstate_set_lora(&sa, &k.ad), 0);
    assert_int_equal(runstate_set_lora(&si, &k.ad), 0);
    assert_int_equal(model_forward_packed(&s0, k.tok, k.pos, k.seg, PB, PN), 0);
    assert_int_equal(model_forward_train_packed(&sa, k.tok, k.pos, k.seg, PB, PN), 0);
    assert_int_equal(model_forward_train_packed(&si, k.tok, k.pos, k.seg, PB, PN), 0);
    assert_memory_equal(s0.logits, sa.logits, nl);
    assert_memory_equal(s0.logits, si.logits, nl);
    /* and the float64 reference with the same mask and positions */
    ModelGrads g;
    assert_int_equal(model_grads_init(&g, &k.m), 0);
    double *P = malloc(g.n_floats * sizeof *P), *Q = dup_f64(k.ad.data, k.ad.n_floats);
    double *zd = malloc((size_t)PNN * V * sizeof *zd);
    dmodel_copy_weights(&k.m, &g, P);
    DModel dm;
    dmodel_bind(&dm, &g, P, &k.ad, Q, &sa);
    dmodel_logits(&dm, k.tok, k.pos, k.seg, PB, PN, zd);
    double e = rel_err_fd(sa.logits, zd, (size_t)PNN * V);
    printf("# packed training logits vs float64 reference: rel err %.2e\n", e);
    assert_true(e < 1e-5);
    /* a wrong mask is seen in the logits of a choice's segment */
    int seg0[PNN];
    for (int i = 0; i < PNN; i++) seg0[i] = 0;
    assert_int_equal(model_forward_train_packed(&sa, k.tok, k.pos, seg0, PB, PN), 0);
    e = rel_err_fd(sa.logits, zd, (size_t)PNN * V);
    printf("# without the mask: rel err %.2e: caught\n", e);
    assert_true(e >= 1e-3);
    /* the state: positions and segments kept until the next forward pass */
    assert_int_equal(model_forward_train_packed(&sa, k.tok, k.pos, k.seg, PB, PN), 0);
    assert_true(sa.pos_ids == sa.train_pos && sa.seg_ids == sa.train_seg);
    assert_memory_equal(sa.train_seg, k.seg, sizeof k.seg);
    assert_int_equal(model_backward(&sa, NULL, NULL), -1); /* the caller's loss: model_backward_logits */
    assert_non_null(strstr(err_msg(), "model_backward_logits"));
    assert_int_equal(model_forward(&sa, k.tok, PB, PN, 0), 0);
    assert_true(sa.pos_ids == NULL && sa.seg_ids == NULL);
    /* errors */
    assert_int_equal(model_forward_train_packed(&s0, k.tok, k.pos, k.seg, PB, PN), -1);
    assert_non_null(strstr(err_msg(), "inference"));
    assert_int_equal(model_forward_train_packed(&sa, k.tok, k.pos, k.seg, PB + 1, PN), -1);
    assert_non_null(strstr(err_msg(), "does not fit"));
    int bad[PNN];
    memcpy(bad, k.pos, sizeof bad);
    bad[4] = PN;
    assert_int_equal(model_forward_train_packed(&sa, k.tok, bad, k.seg, PB, PN), -1);
    assert_non_null(strstr(err_msg(), "outside"));
    assert_int_equal(model_backward_logits(&sa, NULL, NULL), -1); /* no forward to differentiate */
    memcpy(bad, k.seg, sizeof bad);
    bad[2] = -1;
    assert_int_equal(model_forward_train_packed(&sa, k.tok, k.pos, bad, PB, PN), -1);
    assert_non_null(strstr(err_msg(), "negative"));
    assert_int_equal(model_forward_train_packed(&sa, k.tok, k.pos, NULL, PB, PN), -1);
    free(P);
    free(Q);
    free(zd);
    model_grads_free(&g);
    runstate_free(&s0);
    runstate_free(&sa);
    runstate_free(&si);
    case_free(&k);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_logits_same_as_scoring),
        cmocka_unit_test(test_sum_of_rows_interleaved_untied),
        cmocka_unit_test(test_sum_of_rows_half_tied),
        cmocka_unit_test(test_attention_backward_seg_fd),
        cmocka_unit_test(test_fd_full_half_untied),
        cmocka_unit_test(test_fd_full_interleaved_tied_recompute),
        cmocka_unit_test(test_fd_lora_interleaved_untied),
        cmocka_unit_test(test_fd_lora_half_tied_recompute),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
