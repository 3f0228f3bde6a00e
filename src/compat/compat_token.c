/* compat/compat_token.c - the token level of compatibility training: the teachers'
 * cache at every covered position (one teacher's logits, or an ensemble's or mixture's
 * distribution as logits: compat_method.h), and the step (compat_token_loss per position). */
#include "compat_impl.h"
#include "compat_method.h"
#include "core/cpu.h"
#include "core/error.h"
#include "core/progress.h"
#include "model/backward.h"
#include "model/forward.h"

#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Token-level cache of one teacher over the training examples: slot `which` (0 M1, 1 the
 * new side) from n_mem members. One member of weight 1: its own logits (a single teacher);
 * more: the distribution sum_k w_k softmax(z_k / T) as logits T log of it
 * (compat_teacher_acc / compat_teacher_logits), accumulated per micro-batch. */
static int token_cache(CompatTrainer *ct, int which, const CompatMember *mem, int n_mem, size_t covered_n) {
    const Model *m = mem[0].model;
    const LoraAdapter *a = mem[0].adapter;
    int mixed = n_mem > 1;
    long n = ct->n[DATA_TRAIN];
    size_t P = ct->pos_off[n];
    int V = ct->V, k = ct->k, exact = k >= V;
    ct->tp[which] = calloc(P ? P : 1, sizeof(TeacherPos));
    if (!exact) ct->ids_pool[which] = malloc((covered_n ? covered_n : 1) * (size_t)k * sizeof(int));
    ct->z_pool[which] = malloc((covered_n ? covered_n : 1) * (size_t)k * sizeof(float));
    if (!ct->tp[which] || (!exact && !ct->ids_pool[which]) || !ct->z_pool[which])
        return err_set("out of memory: the teacher cache needs %.0f MB (lower --teacher-topk or --teacher-cache-mb)",
                       (double)covered_n * k * (exact ? 4 : 8) / 1048576.0);
    int B = mixed ? 2 : 8, T = ct->max_len; /* mixed: [B * T, V] doubles of distribution at once */
    RunState rs, rs1; /* rs1: a member on another base (M1 in a mixture) */
    int have1 = 0;
    if (runstate_init(&rs, m, B, T, T, RS_KEEP_NONE) != 0) return -1;
    if (a && runstate_set_lora(&rs, a) != 0) {
        runstate_free(&rs);
        return -1;
    }
    for (int i = 1; i < n_mem; i++)
        if (mem[i].model != m && !have1) {
            if (runstate_init(&rs1, mem[i].model, B, T, T, RS_KEEP_NONE) != 0) {
                runstate_free(&rs);
                return -1;
            }
            have1 = 1;
        }
    int *tok = calloc((size_t)B * T, sizeof *tok);
    size_t *slot = malloc((P ? P : 1) * sizeof *slot); /* covered position -> pool slot */
    double *acc = mixed ? malloc((size_t)B * T * V * sizeof *acc) : NULL; /* [B * Tm, V] the mixed distribution */
    float *zmix = mixed ? malloc((size_t)B * T * V * sizeof *zmix) : NULL;
    int rc = !tok || !slot || (mixed && (!acc || !zmix)) ? err_set("out of memory") : 0;
    size_t c = 0;
    for (long e = 0; rc == 0 && e < n; e++)
        for (int j = 0; j + 1 < ct->ex[DATA_TRAIN][e].len; j++)
            slot[ct->pos_off[e] + j] = compat_covered(ct, &ct->ex[DATA_TRAIN][e], j) ? c++ : (size_t)-1;
    Progress pr;
    progress_init(&pr, which ? (mixed ? "teacher (new, mixed)" : "teacher M2") : "teacher M1", "examples", n, ct->s.quiet);
    for (long e0 = 0; rc == 0 && e0 < n; e0 += B) {
        int b = (int)(n - e0 < B ? n - e0 : B), Tm = 1;
        for (int r = 0; r < b; r++)
            if (ct->ex[DATA_TRAIN][e0 + r].len - 1 > Tm) Tm = ct->ex[DATA_TRAIN][e0 + r].len - 1;
        for (int r = 0; r < b; r++) {
            const CEx *x = &ct->ex[DATA_TRAIN][e0 + r];
            for (int j = 0; j < Tm; j++) tok[(size_t)r * Tm + j] = j < x->len - 1 ? x->ids[j] : 0;
        }
        double T_ = ct->cfg.temperature;
        const float *logits = rs.logits;
        if (!mixed) {
            if (model_forward(&rs, tok, b, Tm, 0) != 0) {
                rc = err_prefix("teacher %s", which ? "M2" : "M1");
                break;
            }
        } else {
            memset(acc, 0, (size_t)b * Tm * V * sizeof *acc);
            for (int i = 0; rc == 0 && i < n_mem; i++) {
                RunState *r = mem[i].model == m ? &rs : &rs1;
                if (runstate_set_lora(r, mem[i].adapter) != 0 || model_forward(r, tok, b, Tm, 0) != 0) {
                    rc = err_prefix("teacher %s", mem[i].who);
                    break;
                }
#pragma omp parallel for schedule(static) if (CPU_PAR((size_t)b * Tm * V * 4))
                for (int q = 0; q < b * Tm; q++)
                    compat_teacher_acc(r->logits + (size_t)q * V, V, T_, mem[i].w, acc + (size_t)q * V);
            }
            if (rc) break;
#pragma omp parallel for schedule(static) if (CPU_PAR((size_t)b * Tm * V * 4))
            for (int q = 0; q < b * Tm; q++) compat_teacher_logits(acc + (size_t)q * V, V, T_, zmix + (size_t)q * V);
            logits = zmix;
        }
#pragma omp parallel for schedule(dynamic, 8) if (CPU_PAR((size_t)b * Tm * V * 4))
        for (int q = 0; q < b * Tm; q++) {
            int r = q / Tm, j = q % Tm;
            const CEx *x = &ct->ex[DATA_TRAIN][e0 + r];
            if (j >= x->len - 1) continue;
            size_t p = ct->pos_off[e0 + r] + j, sl = slot[p];
            if (sl == (size_t)-1) continue;
            compat_teacher_pos(logits + (size_t)q * V, V, T_, x->ids[j + 1], k,
                               exact ? NULL : ct->ids_pool[which] + sl * k, ct->z_pool[which] + sl * k, &ct->tp[which][p]);
        }
        progress_update(&pr, e0 + b, NULL);
    }
    if (rc == 0) progress_finish(&pr);
    free(tok);
    free(slot);
    free(acc);
    free(zmix);
    runstate_free(&rs);
    if (have1) runstate_free(&rs1);
    return rc;
}

/* The teacher cache of every covered position, before the first step. */
static int token_teachers(CompatTrainer *ct) {
    const CompatSetup *s = &ct->s;
    int xtok = ct->xtok, rc = 0;
    {
        long n = ct->n[DATA_TRAIN];
        if (xtok) { /* M1's rows of the same texts, aligned with the student's */
            rc = compat_xtok_rows(ct);
            if (rc == 0 && !s->quiet)
                fprintf(stderr, "muscle compat: across tokenizers: %ld of %ld positions aligned by byte offset with the old model's\n",
                        ct->st.xtok_aligned, ct->st.xtok_positions);
        }
        ct->pos_off = malloc((size_t)(n + 1) * sizeof *ct->pos_off);
        if (!ct->pos_off) rc = err_set("out of memory");
        size_t P = 0, C = 0;
        for (long e = 0; rc == 0 && e < n; e++) {
            ct->pos_off[e] = P;
            for (int j = 0; j + 1 < ct->ex[DATA_TRAIN][e].len; j++) C += (size_t)compat_covered(ct, &ct->ex[DATA_TRAIN][e], j);
            P += (size_t)ct->ex[DATA_TRAIN][e].len - 1;
        }
        if (rc == 0) ct->pos_off[n] = P;
        int teachers = compat_needs_new_teacher(&s->cfg) ? 2 : 1;
        double exact_mb = (double)C * ct->V * 4.0 * teachers / 1048576.0;
        if (xtok) ct->k = ct->V; /* across tokenizers: M1's cache is exact (compat_xtok_train.c) */
        else if (s->cfg.topk > 0) ct->k = s->cfg.topk < ct->V ? s->cfg.topk : ct->V;
        else ct->k = exact_mb <= s->cfg.cache_mb ? ct->V : (64 < ct->V ? 64 : ct->V);
        ct->st.exact = ct->k >= ct->V;
        ct->st.topk = ct->k;
        ct->st.cache_mb = (double)C * ct->k * (ct->st.exact ? 4.0 : 8.0) * teachers / 1048576.0 +
                          (double)P * sizeof(TeacherPos) * teachers / 1048576.0;
        if (rc == 0 && !s->quiet)
            fprintf(stderr, "muscle compat: teacher cache: %zu positions distilled, %s, %.0f MB\n", C,
                    ct->st.exact ? "every logit (exact)" : "top-k logits + the rest as one bucket", ct->st.cache_mb);
        CompatMember m1 = {s->old_model, s->old_adapter, 1.0, "M1"};
        if (rc == 0) rc = xtok ? compat_xtok_token_cache(ct, C) : token_cache(ct, 0, &m1, 1, C);
        if (rc == 0 && teachers == 2) {
            CompatMember *mem = NULL;
            int nm = 0;
            rc = compat_new_members(ct, &mem, &nm);
            if (rc == 0) rc = token_cache(ct, 1, mem, nm, C);
            free(mem);
        }
    }
    return rc;
}

/* Token level: every example is one row. */
static int token_step(CompatTrainer *ct, Trainer *t, const long *ex, int n, double *loss) {
    const CEx *E = ct->ex[DATA_TRAIN];
    double Na = 0, Nd = 0;
    for (int i = 0; i < n; i++)
        for (int j = 0; j + 1 < E[ex[i]].len; j++) {
            Na += compat_is_answer(&E[ex[i]], j);
            Nd += compat_covered(ct, &E[ex[i]], j);
        }
    double ce_s, kd_s;
    compat_step_scales(&ct->cfg, Na, Nd, &ce_s, &kd_s);
    int B = t->opt.batch, V = ct->V;
    double total = 0.0;
    int lo = (int)t->shard_lo, hi = (int)t->shard_hi; /* this rank's rows (data parallel; 0..n on one rank) */
    for (int i0 = lo; i0 < hi; i0 += B) {
        int b = hi - i0 < B ? hi - i0 : B, Tm = 1;
        for (int r = 0; r < b; r++)
            if (E[ex[i0 + r]].len - 1 > Tm) Tm = E[ex[i0 + r]].len - 1;
        for (int r = 0; r < b; r++)
            for (int j = 0; j < Tm; j++) ct->rows_tok[(size_t)r * Tm + j] = j < E[ex[i0 + r]].len - 1 ? E[ex[i0 + r]].ids[j] : 0;
        if (model_forward_train(&t->rs, ct->rows_tok, b, Tm) != 0) return -1;
        float *logits = t->rs.logits;
        /* sequence-likelihood mask: the student's answer log-likelihood against M1's */
        int *seq_flag = ct->seq_flag;
        if (compat_method_def(ct->cfg.method)->token_seq_flag)
            for (int r = 0; r < b; r++) {
                const CEx *x = &E[ex[i0 + r]];
                double lc = 0.0, l1 = 0.0;
                for (int j = 0; j + 1 < x->len; j++)
                    if (x->mask[j + 1]) {
                        lc += compat_logprob(logits + ((size_t)r * Tm + j) * V, V, x->ids[j + 1]);
                        l1 += ct->tp[0][ct->pos_off[ex[i0 + r]] + j].logp_y; /* answer positions are always cached */
                    }
                seq_flag[r] = lc < l1;
            }
        else
            for (int r = 0; r < b; r++) seq_flag[r] = 0;
        if (ct->xtok && compat_xtok_step_masks(ct, ex + i0, b, Tm, logits) != 0) return -1; /* across tokenizers: span masks */
#pragma omp parallel for schedule(dynamic, 4) if (CPU_PAR((size_t)b * Tm * V * 8))
        for (int q = 0; q < b * Tm; q++) {
            int r = q / Tm, j = q % Tm;
            const CEx *x = &E[ex[i0 + r]];
            float *z = logits + (size_t)q * V;
            int meta = 0;
            double l = 0.0;
            if (j + 1 >= x->len) {
                memset(z, 0, (size_t)V * sizeof(float));
            } else {
                int ans = compat_is_answer(x, j), dist = compat_covered(ct, x, j);
                size_t p = ct->pos_off[ex[i0 + r]] + j;
                const TeacherPos *t1 = dist ? &ct->tp[0][p] : NULL, *t2 = dist && ct->tp[1] ? &ct->tp[1][p] : NULL;
                CompatTokenOut o;
                float *scr = ct->scratch + (size_t)omp_get_thread_num() * (ct->xtok ? 7 : 3) * V;
                if (ct->xtok)
                    l = compat_xtok_step_pos(ct, q, t1, t2, z, x->ids[j + 1], ans, dist, ce_s, kd_s, z, scr, &o);
                else
                    l = compat_token_loss(&ct->cfg, z, V, x->ids[j + 1], ans, dist, seq_flag[r], t1, t2, ce_s, kd_s, z, scr, &o);
                meta = (o.masked && dist ? COMPAT_POS_MASKED : 0) | (dist ? COMPAT_POS_DISTILLED : 0) | (ans ? COMPAT_POS_ANSWER : 0) |
                       (o.student_correct && ans ? COMPAT_POS_STUDENT_RIGHT : 0);
            }
            ct->pos_loss[q] = l;
            ct->pos_meta[q] = meta;
        }
        for (int q = 0; q < b * Tm; q++) {
            total += ct->pos_loss[q];
            int m = ct->pos_meta[q];
            ct->st.masked += (m & COMPAT_POS_MASKED) != 0;
            ct->st.distilled += (m & COMPAT_POS_DISTILLED) != 0;
            ct->st.answers += (m & COMPAT_POS_ANSWER) != 0;
            ct->st.answers_correct += (m & COMPAT_POS_STUDENT_RIGHT) != 0;
        }
        if (model_backward_logits(&t->rs, NULL, &t->lora_grad) != 0) return -1;
    }
    *loss = total;
    return 0;
}


static void token_free(CompatTrainer *ct) {
    free(ct->pos_off);
    ct->pos_off = NULL;
    for (int i = 0; i < 2; i++) {
        free(ct->tp[i]);
        free(ct->ids_pool[i]);
        free(ct->z_pool[i]);
        ct->tp[i] = NULL;
        ct->ids_pool[i] = NULL;
        ct->z_pool[i] = NULL;
    }
}

const CompatLevelOps compat_level_token = {COMPAT_LEVEL_TOKEN, token_teachers, NULL, token_step, token_free};
