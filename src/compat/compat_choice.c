/* compat/compat_choice.c - the choice level of compatibility training: the step on
 * packed rows (an example's context once, then each choice in a segment of its own),
 * with plain rows (a row per choice) for the examples whose packed row does not fit. */
#include "eval/mc.h"
#include "compat_impl.h"
#include "compat_method.h"
#include "core/cpu.h"
#include "core/error.h"
#include "kernel/vmath.h"
#include "model/backward.h"
#include "model/forward.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Choice level. A packed row (model_forward_train_packed) holds one example: its
 * context once (segment 0, positions 0 .. n_ctx - 1), then each choice c but its last
 * token as segment c + 1 at positions n_ctx .. n_ctx + n_cont[c] - 2; choice c's token j
 * is predicted at the context's last position (j = 0, shared by every choice) or at its
 * segment's position j - 1. A plain row (the fallback for an example whose packed row is
 * longer than the run state's chunk) is context + choice. */
int compat_choice_packed_len(const TaskMCTokens *tk) { return eval_mc_packed_len(tk->n_ctx, tk->n_cont, tk->n_choices, 1); }

/* One forward and backward pass of b examples exs[] (indices into the training
 * examples): the choices' log-likelihoods, the loss of each example, d loss / d logits. */
static int choice_pass(CompatTrainer *ct, Trainer *t, const long *exs, int b, int packed, double ce_s, double kd_s,
                       double *total) {
    const CEx *E = ct->ex[DATA_TRAIN];
    int V = ct->V, C = ct->max_choices, Tm = 1, rows = 0;
    int *row_ex = ct->row_ex, *row_c = ct->row_c;
    int *row_start = ct->row_at, *row_base = ct->row_at + ct->row_cap, *ex_q0 = ct->row_at + 2 * ct->row_cap;
    for (int r = 0; r < b; r++) {
        const TaskMCTokens *tk = &ct->mc[E[exs[r]].mc];
        ex_q0[r] = rows;
        if (packed && compat_choice_packed_len(tk) > Tm) Tm = compat_choice_packed_len(tk);
        for (int c = 0; c < tk->n_choices; c++) {
            row_ex[rows] = r;
            row_c[rows++] = c;
            if (!packed && tk->n_ctx + tk->n_cont[c] - 1 > Tm) Tm = tk->n_ctx + tk->n_cont[c] - 1;
        }
    }
    if (packed) {
        for (int r = 0; r < b; r++) {
            const TaskMCTokens *tk = &ct->mc[E[exs[r]].mc];
            eval_mc_pack_row(tk->ctx, tk->n_ctx, (const int *const *)tk->cont, tk->n_cont, tk->n_choices, 1, Tm,
                             ct->rows_tok + (size_t)r * Tm, ct->pk_pos + (size_t)r * Tm, ct->pk_seg + (size_t)r * Tm,
                             row_start + ex_q0[r]);
            for (int c = 0; c < tk->n_choices; c++) row_base[ex_q0[r] + c] = r * Tm;
        }
        if (model_forward_train_packed(&ct->cs, ct->rows_tok, ct->pk_pos, ct->pk_seg, b, Tm) != 0) return -1;
    } else {
        for (int q = 0; q < rows; q++) {
            const TaskMCTokens *tk = &ct->mc[E[exs[row_ex[q]]].mc];
            int c = row_c[q], *dst = ct->rows_tok + (size_t)q * Tm;
            row_start[q] = tk->n_ctx;
            row_base[q] = q * Tm;
            for (int j = 0; j < Tm; j++)
                dst[j] = j < tk->n_ctx ? tk->ctx[j] : j - tk->n_ctx < tk->n_cont[c] - 1 ? tk->cont[c][j - tk->n_ctx] : 0;
        }
        if (model_forward_train(&ct->cs, ct->rows_tok, rows, Tm) != 0) return -1;
    }
    float *logits = ct->cs.logits;
    double *ll = ct->row_ll, *dll = ct->row_dll;
    /* each choice's log-likelihood: token j at the context's last position (j = 0), else
     * at position row_start + j - 1 of its row */
#pragma omp parallel for schedule(dynamic, 1) if (CPU_PAR((size_t)rows * Tm * V))
    for (int q = 0; q < rows; q++) {
        const TaskMCTokens *tk = &ct->mc[E[exs[row_ex[q]]].mc];
        int c = row_c[q];
        double s = 0.0;
        for (int j = 0; j < tk->n_cont[c]; j++) {
            size_t at = (size_t)row_base[q] + (j == 0 ? tk->n_ctx - 1 : row_start[q] + j - 1);
            s += compat_logprob(logits + at * V, V, tk->cont[c][j]);
        }
        ll[q] = s;
    }
    for (int r = 0; r < b; r++) {
        const CEx *x = &E[exs[r]];
        const TaskMCTokens *tk = &ct->mc[x->mc];
        int q = ex_q0[r];
        CompatTokenOut o;
        const double *l1 = ct->ll1 + (size_t)x->mc * C, *l2 = ct->ll2 + (size_t)x->mc * C;
        *total += compat_choice_loss(&ct->cfg, ll + q, l1, l2, tk->n_choices, x->label, x->labelled, ce_s, kd_s, dll + q, &o);
        ct->st.masked += o.masked;
        ct->st.distilled++;
        if (x->labelled) {
            ct->st.answers++;
            ct->st.answers_correct += o.student_correct;
        }
    }
    /* d ll_c / d z at a choice position = onehot(y) - softmax(z); at a packed row's shared
     * position (the context's last) the sum over the choices */
    if (packed) {
#pragma omp parallel for schedule(dynamic, 4) if (CPU_PAR((size_t)b * Tm * V))
        for (int p = 0; p < b * Tm; p++) {
            int r = p / Tm, k = p % Tm, q0 = ex_q0[r], sg = ct->pk_seg[p];
            const TaskMCTokens *tk = &ct->mc[E[exs[r]].mc];
            float *z = logits + (size_t)p * V;
            double G = 0.0;
            int any = 0, target = -1;
            if (k == tk->n_ctx - 1) {
                for (int c = 0; c < tk->n_choices; c++)
                    if (tk->n_cont[c] > 0 && (float)dll[q0 + c] != 0.0f) {
                        G += (float)dll[q0 + c];
                        any = 1;
                    }
            } else if (k >= tk->n_ctx && sg >= 1 && sg <= tk->n_choices) {
                int c = sg - 1;
                G = (float)dll[q0 + c];
                any = G != 0.0;
                target = tk->cont[c][ct->pk_pos[p] - tk->n_ctx + 1];
            }
            if (!any) {
                memset(z, 0, (size_t)V * sizeof(float));
                continue;
            }
            float mx = kvec_max(z, V);
            kvec_exp_scale(z, z, mx, (float)(-G / kvec_sum_exp(z, mx, V)), V);
            if (target >= 0) {
                z[target] += (float)G;
            } else {
                for (int c = 0; c < tk->n_choices; c++)
                    if (tk->n_cont[c] > 0) z[tk->cont[c][0]] += (float)dll[q0 + c];
            }
        }
    } else {
#pragma omp parallel for schedule(dynamic, 1) if (CPU_PAR((size_t)rows * Tm * V))
        for (int q = 0; q < rows; q++) {
            const TaskMCTokens *tk = &ct->mc[E[exs[row_ex[q]]].mc];
            int c = row_c[q], j0 = tk->n_ctx - 1, j1 = j0 + tk->n_cont[c];
            float g = (float)dll[q];
            for (int j = 0; j < Tm; j++) {
                float *z = logits + ((size_t)q * Tm + j) * V;
                if (j < j0 || j >= j1 || g == 0.0f) {
                    memset(z, 0, (size_t)V * sizeof(float));
                    continue;
                }
                float mx = kvec_max(z, V);
                kvec_exp_scale(z, z, mx, (float)(-g / kvec_sum_exp(z, mx, V)), V);
                z[tk->cont[c][j - j0]] += g;
            }
        }
    }
    return model_backward_logits(&ct->cs, NULL, &t->lora_grad);
}

/* Choice level: per micro-batch, the examples whose packed row fits go through one
 * packed pass (a row each), the others (if any) through one pass of plain rows (a row
 * per choice). The loss is a sum over examples: the split does not change it. */
static int choice_step(CompatTrainer *ct, Trainer *t, const long *ex, int n, double *loss) {
    const CEx *E = ct->ex[DATA_TRAIN];
    double Na = 0;
    for (int i = 0; i < n; i++)
        if (E[ex[i]].labelled) Na += ct->mc[E[ex[i]].mc].n_cont[E[ex[i]].label];
    double ce_s, kd_s;
    compat_step_scales(&ct->cfg, Na, n, &ce_s, &kd_s);
    int B = t->opt.batch;
    long *pk = ct->mb_ex, *pl = ct->mb_ex + B;
    double total = 0.0;
    int lo = (int)t->shard_lo, hi = (int)t->shard_hi; /* this rank's rows (data parallel; 0..n on one rank) */
    for (int i0 = lo; i0 < hi; i0 += B) {
        int b = hi - i0 < B ? hi - i0 : B, np = 0, nl = 0;
        for (int r = 0; r < b; r++) {
            long e = ex[i0 + r];
            if (!ct->unpacked && compat_choice_packed_len(&ct->mc[E[e].mc]) <= ct->cs.max_chunk) pk[np++] = e;
            else pl[nl++] = e;
        }
        if (np && choice_pass(ct, t, pk, np, 1, ce_s, kd_s, &total) != 0) return -1;
        if (nl) {
            if (ct->cs.max_batch < nl * ct->max_choices)
                return err_set("compat: a choice-level example does not fit a packed row and the run state has no room for its plain rows (internal)");
            ct->st.unpacked += nl;
            if (choice_pass(ct, t, pl, nl, 0, ce_s, kd_s, &total) != 0) return -1;
        }
    }
    *loss = total;
    return 0;
}

/* Before the first step: the new-side teacher's choice scores (M1's are computed for
 * every level that reads them: compat_train.c). */
static int choice_teachers(CompatTrainer *ct) {
    if (!compat_needs_new_teacher(&ct->cfg)) return 0;
    return compat_new_choice_scores(ct, ct->ll2);
}

/* The student's run state for the choice level: one packed row per example. A packed row
 * may be longer than T (its positions are not): its chunk is the longest packed row when
 * that run state takes no more memory than the old one of plain rows (a row per choice,
 * B x choices rows of T); else the chunk is T and the examples whose packed row is longer
 * go as plain rows. */
static int choice_attach(CompatTrainer *ct, Trainer *t) {
    int B = t->opt.batch, T = t->data->seq_len;
    int rows = B * ct->max_choices;
    ct->unpacked = ct->s.choice_rows_plain;
    long cap = ct->s.pack_max; /* test knob: the longest packed row allowed */
    int keep = t->opt.recompute ? RS_KEEP_INPUTS : RS_KEEP_ALL, longest = 1;
    for (long i = 0; i < ct->n[DATA_TRAIN]; i++)
        if (ct->ex[DATA_TRAIN][i].mc >= 0 && compat_choice_packed_len(&ct->mc[ct->ex[DATA_TRAIN][i].mc]) > longest)
            longest = compat_choice_packed_len(&ct->mc[ct->ex[DATA_TRAIN][i].mc]);
    int chunk = T, prows = rows;
    if (!ct->unpacked) {
        if (longest <= T) prows = B;
        else if ((cap <= 0 || longest <= cap) &&
                 runstate_bytes(ct->s.model, B, longest, longest, keep) <= runstate_bytes(ct->s.model, rows, T, T, keep)) {
            prows = B;
            chunk = longest;
        }
    }
    long too_long = 0;
    for (long i = 0; i < ct->n[DATA_TRAIN]; i++)
        if (ct->ex[DATA_TRAIN][i].mc >= 0 && compat_choice_packed_len(&ct->mc[ct->ex[DATA_TRAIN][i].mc]) > chunk) too_long++;
    if (too_long && !ct->unpacked && !ct->s.quiet)
        fprintf(stderr, "compat: %ld of %ld examples do not fit a packed row of %d tokens: their choices go as separate rows\n",
                too_long, ct->n[DATA_TRAIN], chunk);
    ct->row_cap = rows;
    ct->row_at = malloc((size_t)3 * rows * sizeof(int));
    ct->pk_pos = malloc((size_t)B * chunk * sizeof(int));
    ct->pk_seg = malloc((size_t)B * chunk * sizeof(int));
    ct->mb_ex = malloc((size_t)2 * B * sizeof(long));
    if ((size_t)B * chunk > (size_t)rows * T) { /* the tokens of the packed rows */
        free(ct->rows_tok);
        ct->rows_tok = calloc((size_t)B * chunk, sizeof *ct->rows_tok);
    }
    if (!ct->row_at || !ct->pk_pos || !ct->pk_seg || !ct->mb_ex || !ct->rows_tok) return err_set("out of memory");
    if (runstate_init(&ct->cs, ct->s.model, prows, chunk, chunk, keep) != 0) return -1;
    ct->have_cs = 1;
    if (runstate_set_lora(&ct->cs, t->lora) != 0) return -1;

    return 0;
}

static void choice_free(CompatTrainer *ct) {
    if (ct->have_cs) runstate_free(&ct->cs);
    ct->have_cs = 0;
    free(ct->row_at);
    free(ct->pk_pos);
    free(ct->pk_seg);
    free(ct->mb_ex);
    ct->row_at = ct->pk_pos = ct->pk_seg = NULL;
    ct->mb_ex = NULL;
}

const CompatLevelOps compat_level_choice = {COMPAT_LEVEL_CHOICE, choice_teachers, choice_attach, choice_step, choice_free};
