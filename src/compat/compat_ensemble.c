/* compat/compat_ensemble.c - the new-side teacher of compatibility training
 * (compat_method.h): M2 alone, the ensemble of K new adapters (their mean distribution),
 * or the mixture (1 - a) * mean(K new) + a * M1, with a chosen on the held-out split. */
#include "compat_impl.h"
#include "compat_method.h"
#include "core/error.h"
#include "metrics/compat.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int compat_needs_new_teacher(const CompatConfig *c) {
    const CompatMethodDef *d = compat_method_def(c->method);
    return d && (d->teachers & (COMPAT_TEACH_M2 | COMPAT_TEACH_ENSEMBLE | COMPAT_TEACH_MIXTURE)) != 0;
}

int compat_new_members(const CompatTrainer *ct, CompatMember **mem, int *n) {
    const CompatSetup *s = &ct->s;
    unsigned tw = compat_method_def(ct->cfg.method)->teachers;
    int K = (tw & (COMPAT_TEACH_ENSEMBLE | COMPAT_TEACH_MIXTURE)) && s->n_ensemble > 0 ? s->n_ensemble : 1;
    int mix = (tw & COMPAT_TEACH_MIXTURE) != 0;
    double a = mix ? ct->mix_a : 0.0;
    *mem = calloc((size_t)K + 1, sizeof **mem);
    if (!*mem) return err_set("out of memory");
    for (int k = 0; k < K; k++)
        (*mem)[k] = (CompatMember){s->model, K == 1 && !s->n_ensemble ? s->new_adapter : s->ensemble[k], (1.0 - a) / K,
                                   K == 1 ? "M2" : "M2 (ensemble)"};
    if (K == 1 && !mix) (*mem)[0].w = 1.0;
    if (mix) (*mem)[K] = (CompatMember){s->old_model, s->old_adapter, a, "M1"};
    *n = K + mix;
    return 0;
}

/* Scores of the training instances under every member, mixed at temperature T into ll. */
int compat_new_choice_scores(CompatTrainer *ct, double *ll) {
    CompatMember *mem = NULL;
    int nm = 0;
    if (compat_new_members(ct, &mem, &nm) != 0) return -1;
    ct->st.n_new_teachers = nm - ((compat_method_def(ct->cfg.method)->teachers & COMPAT_TEACH_MIXTURE) != 0);
    size_t N = (size_t)ct->n_mc * ct->max_choices;
    int rc = 0;
    if (nm == 1) { /* M2 itself */
        rc = compat_mc_scores(ct, ct->mc, ct->n_mc, mem[0].model, mem[0].adapter, ll, mem[0].who);
        free(mem);
        return rc;
    }
    double *acc = calloc(N ? N : 1, sizeof *acc), *tmp = malloc((N ? N : 1) * sizeof *tmp);
    if (!acc || !tmp) rc = err_set("out of memory");
    double T = ct->cfg.temperature;
    for (int i = 0; rc == 0 && i < nm; i++) {
        const double *src = tmp;
        if (mem[i].model == ct->s.old_model && mem[i].adapter == ct->s.old_adapter) src = ct->ll1; /* M1: computed already */
        else rc = compat_mc_scores(ct, ct->mc, ct->n_mc, mem[i].model, mem[i].adapter, tmp, mem[i].who);
        for (int e = 0; rc == 0 && e < ct->n_mc; e++) {
            size_t o = (size_t)e * ct->max_choices;
            compat_teacher_acc_d(src + o, ct->mc[e].n_choices, T, mem[i].w, acc + o);
        }
    }
    for (int e = 0; rc == 0 && e < ct->n_mc; e++) {
        size_t o = (size_t)e * ct->max_choices;
        compat_teacher_logits_d(acc + o, ct->mc[e].n_choices, T, ll + o);
    }
    free(acc);
    free(tmp);
    free(mem);
    return rc;
}

/* The grid of a and the rule (docs/compat.md; compat_choose_on_val): among the a whose
 * mixture keeps the held-out accuracy >= M2's (the mean of the K new adapters' accuracies) -
 * tolerance, the one with the lowest NFR against M1 (ties: the smaller a); when none does,
 * the most accurate (ties: the smaller a). Distributions at temperature 1: the
 * inference-time mixture. */
#define MIX_GRID_N 5
static const double mix_grid[MIX_GRID_N] = {0.1, 0.2, 0.3, 0.4, 0.5};

int compat_mixture_choose(CompatTrainer *ct) {
    CompatStats *st = &ct->st;
    if (ct->cfg.mixture_a > 0) {
        ct->mix_a = st->mixture_a = ct->cfg.mixture_a;
        return 0;
    }
    if (ct->kind != TASK_MC)
        return err_set("compat: --compat mixture on a generation task: give --mixture-weight A (a is chosen on the held-out split only for multiple choice)");
    if (ct->xtok)
        return err_set("compat: --compat mixture across tokenizers: give --mixture-weight A (the held-out choice reads both models on one tokenization)");
    if (ct->n_mcv == 0) return err_set("compat: --compat mixture: no labelled held-out instance to choose the mixture weight on (give --mixture-weight A)");
    int n = ct->n_mcv, C = ct->max_choices;
    for (int i = 0; i < n; i++)
        if (ct->mcv[i].n_choices > C) C = ct->mcv[i].n_choices;
    const CompatSetup *s = &ct->s;
    int K = s->n_ensemble > 0 ? s->n_ensemble : 1;
    size_t N = (size_t)n * C;
    double *l1 = calloc(N, sizeof *l1), *l2 = calloc(N * K, sizeof *l2);
    int rc = l1 && l2 ? 0 : err_set("out of memory");
    int saved = ct->max_choices;
    ct->max_choices = C; /* compat_mc_scores lays rows out max_choices apart */
    if (rc == 0) rc = compat_mc_scores(ct, ct->mcv, n, s->old_model, s->old_adapter, l1, "M1 (held-out)");
    for (int k = 0; rc == 0 && k < K; k++)
        rc = compat_mc_scores(ct, ct->mcv, n, s->model, s->n_ensemble ? s->ensemble[k] : s->new_adapter, l2 + N * k, "M2 (held-out)");
    ct->max_choices = saved;
    double best_a = mix_grid[0], acc_m2 = 0.0, accs[MIX_GRID_N], nfrs[MIX_GRID_N];
    if (rc == 0) {
        long right2 = 0;
        for (int k = 0; k < K; k++)
            for (int i = 0; i < n; i++) right2 += compat_argmax_row(l2 + N * k + (size_t)i * C, ct->mcv[i].n_choices) == ct->mcv[i].label;
        acc_m2 = (double)right2 / ((double)n * K);
        double p1[64], pm[64];
        for (int g = 0; g < MIX_GRID_N; g++) {
            double a = mix_grid[g];
            long right = 0, nf = 0;
            for (int i = 0; i < n; i++) {
                int nc = ct->mcv[i].n_choices < 64 ? ct->mcv[i].n_choices : 64, y = ct->mcv[i].label;
                memset(pm, 0, sizeof pm);
                memset(p1, 0, sizeof p1);
                for (int k = 0; k < K; k++) compat_teacher_acc_d(l2 + N * k + (size_t)i * C, nc, 1.0, (1.0 - a) / K, pm);
                compat_teacher_acc_d(l1 + (size_t)i * C, nc, 1.0, a, pm);
                int pred = compat_argmax_row(pm, nc), r1 = compat_argmax_row(l1 + (size_t)i * C, nc) == y;
                right += pred == y;
                nf += r1 && pred != y;
            }
            accs[g] = (double)right / n;
            nfrs[g] = (double)nf / n;
        }
        int bi = compat_choose_on_val(accs, nfrs, MIX_GRID_N, acc_m2, ct->cfg.mixture_tol, COMPAT_VAL_MOST_ACCURATE);
        best_a = mix_grid[bi];
        st->mixture_acc = accs[bi];
        st->mixture_nfr = nfrs[bi];
        if (!s->quiet) {
            fprintf(stderr, "muscle compat: mixture weight on %d held-out instances (M2 accuracy %.4f, %d adapter%s; tolerance %g):", n,
                    acc_m2, K, K == 1 ? "" : "s", ct->cfg.mixture_tol);
            for (int g = 0; g < MIX_GRID_N; g++)
                fprintf(stderr, "%s a %.1f acc %.4f NFR %.4f%s", g ? ";" : "", mix_grid[g], accs[g], nfrs[g], g == bi ? " (chosen)" : "");
            fprintf(stderr, "\n");
        }
    }
    free(l1);
    free(l2);
    if (rc != 0) return -1;
    ct->mix_a = st->mixture_a = best_a;
    ct->cfg.mixture_a = best_a;
    st->mixture_chosen = 1;
    st->mixture_n_val = n;
    st->mixture_acc_m2 = acc_m2;
    return 0;
}
