/* compat/compat_xtok_train.c - compatibility training when M1 has its own tokenizer
 * (compat_xtok.h has the maths): M1's rows of the same text in its tokenization and
 * their alignment with the student's, M1's token-level cache in the student's terms
 * (exact mapping: its logits written into the student's vocabulary; ULD: its sorted
 * probabilities), and one position of a ULD step. */
#include "compat_impl.h"
#include "core/cpu.h"
#include "core/error.h"
#include "core/progress.h"
#include "model/forward.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* M1's row of each training example: the student's row decoded to text and encoded by
 * M1's tokenizer (cut to M1's context), and the alignment of the two by byte offsets. */
int compat_xtok_rows(CompatTrainer *ct) {
    const Tokenizer *ts = ct->s.tok, *tt = ct->s.old_tok;
    int cap = ct->s.old_model->cfg.seq_len;
    for (long i = 0; i < ct->n[DATA_TRAIN]; i++) {
        CEx *e = &ct->ex[DATA_TRAIN][i];
        size_t len = 0;
        char *text = tok_decode(ts, e->ids, e->len, &len);
        if (!text) return -1;
        int rc = tok_encode(tt, text, len, tok_bos_id(tt) >= 0, 0, &e->t_ids, &e->t_len);
        free(text);
        if (rc != 0) return -1;
        if (e->t_len > cap) e->t_len = cap;
        int *os = malloc((size_t)(e->len + 1) * sizeof *os), *ot = malloc((size_t)(e->t_len + 1) * sizeof *ot);
        e->t_pos = malloc((size_t)(e->len > 1 ? e->len - 1 : 1) * sizeof *e->t_pos);
        if (!os || !ot || !e->t_pos) rc = err_set("out of memory");
        if (rc == 0) rc = compat_xtok_offsets(ts, e->ids, e->len, os);
        if (rc == 0) rc = compat_xtok_offsets(tt, e->t_ids, e->t_len, ot);
        if (rc == 0) {
            ct->st.xtok_aligned += compat_xtok_align(os, e->len, ot, e->t_len, e->t_pos);
            ct->st.xtok_positions += e->len - 1;
        }
        free(os);
        free(ot);
        if (rc != 0) return -1;
    }
    return 0;
}

/* M1's cache at the student's covered positions (compat_covered: aligned ones only). */
int compat_xtok_token_cache(CompatTrainer *ct, size_t covered_n) {
    long n = ct->n[DATA_TRAIN];
    size_t P = ct->pos_off[n];
    int V = ct->V, uld = ct->cfg.vocab_map == COMPAT_XTOK_ULD;
    const Model *m = ct->s.old_model;
    int Vt = m->cfg.vocab_size, tv = tok_vocab_size(ct->s.old_tok);
    ct->vt = Vt;
    size_t cn = covered_n ? covered_n : 1;
    ct->tp[0] = calloc(P ? P : 1, sizeof(TeacherPos));
    if (uld) ct->uld_pool = malloc(cn * (size_t)Vt * sizeof(float));
    else ct->z_pool[0] = malloc(cn * (size_t)V * sizeof(float));
    float *tmp = malloc((size_t)(V > Vt ? V : Vt) * sizeof(float));
    if (!ct->tp[0] || (uld ? !ct->uld_pool : !ct->z_pool[0]) || !tmp) {
        free(tmp);
        return err_set("out of memory: M1's cache across tokenizers needs %.0f MB", (double)cn * (uld ? Vt : V) * 4 / 1048576.0);
    }
    if (!uld && compat_vocab_map_init(&ct->vmap, ct->s.old_tok, ct->s.tok) != 0) {
        free(tmp);
        return -1;
    }
    int T = 1;
    for (long e = 0; e < n; e++)
        if (ct->ex[DATA_TRAIN][e].t_len - 1 > T) T = ct->ex[DATA_TRAIN][e].t_len - 1;
    RunState rs;
    if (runstate_init(&rs, m, 1, T, T, RS_KEEP_NONE) != 0) {
        free(tmp);
        return -1;
    }
    if (ct->s.old_adapter && runstate_set_lora(&rs, ct->s.old_adapter) != 0) {
        runstate_free(&rs);
        free(tmp);
        return -1;
    }
    Progress pr;
    progress_init(&pr, "teacher M1 (own tokenizer)", "examples", n, ct->s.quiet);
    double Tt = ct->cfg.temperature;
    size_t slot = 0;
    int rc = 0;
    for (long e = 0; rc == 0 && e < n; e++) {
        const CEx *x = &ct->ex[DATA_TRAIN][e];
        int Tm = x->t_len - 1;
        if (Tm < 1) continue;
        if (model_forward(&rs, x->t_ids, 1, Tm, 0) != 0) {
            rc = err_prefix("teacher M1");
            break;
        }
        for (int j = 0; j + 1 < x->len; j++) {
            if (!compat_covered(ct, x, j)) continue;
            int i = x->t_pos[j];
            const float *zt = rs.logits + (size_t)i * Vt;
            TeacherPos *tp = &ct->tp[0][ct->pos_off[e] + j];
            if (uld) {
                float *p = ct->uld_pool + slot * (size_t)Vt;
                compat_uld_teacher(zt, Vt, Tt, p);
                *tp = (TeacherPos){Vt, NULL, p, 0.0f, 0.0f, 0.0f, -1};
            } else {
                CompatVocabMap vm = ct->vmap;
                if (vm.vt > Vt) vm.vt = Vt;
                (void)tv;
                double cover = compat_vocab_map_logits(&vm, zt, Tt, tmp);
                ct->cover_sum += cover;
                ct->cover_n++;
                compat_teacher_pos(tmp, V, Tt, -1, V, NULL, ct->z_pool[0] + slot * (size_t)V, tp);
            }
            /* M1's side of the span j opens (compat_xtok.h): right on all of it, its log-likelihood */
            int te = 0;
            compat_xtok_span_end(x->t_pos, x->len, x->t_len, j, &te);
            CompatSpanSide side;
            compat_xtok_span_side(zt, Vt, x->t_ids + i + 1, te - i, &side);
            tp->logp_y = (float)side.ll;
            tp->argmax = side.wrong ? -1 : x->ids[j + 1];
            slot++;
        }
        progress_update(&pr, e + 1, NULL);
    }
    if (rc == 0) progress_finish(&pr);
    runstate_free(&rs);
    free(tmp);
    if (rc != 0) return -1;
    ct->st.xtok_coverage = ct->cover_n ? ct->cover_sum / (double)ct->cover_n : 1.0;
    if (!uld && !ct->s.quiet)
        fprintf(stderr, "muscle compat: vocabulary mapping (exact pieces): %d of M1's %d pieces mapped; they hold %.1f%% of M1's probability mass at the aligned positions\n",
                ct->vmap.n_mapped, ct->vmap.vt, 100.0 * ct->st.xtok_coverage);
    double least = ct->s.min_coverage > 0 ? ct->s.min_coverage : COMPAT_XTOK_MIN_COVERAGE;
    if (!uld && ct->cover_n && ct->st.xtok_coverage < least)
        return err_set("compat: the exact vocabulary mapping covers %.1f%% of the old model's probability mass (below %.0f%%): its KL would be taken over too little of it; use --vocab-map uld",
                       100.0 * ct->st.xtok_coverage, 100.0 * least);
    return 0;
}

/* The span masks of a micro-batch's rows (compat_xtok.h) from their logits [b x Tm x V],
 * before the loss overwrites them: ct->span_m [b x Tm]. */
int compat_xtok_step_masks(CompatTrainer *ct, const long *ex, int b, int Tm, const float *logits) {
    size_t need = (size_t)b * Tm;
    if (need > ct->span_cap) {
        int *p = realloc(ct->span_m, need * sizeof *p);
        if (!p) return err_set("out of memory");
        ct->span_m = p;
        ct->span_cap = need;
    }
    int V = ct->V;
#pragma omp parallel for schedule(dynamic, 1) if (CPU_PAR(need * V * 4))
    for (int r = 0; r < b; r++) {
        const CEx *x = &ct->ex[DATA_TRAIN][ex[r]];
        if (x->len > 1)
            compat_xtok_row_masks(ct->cfg.method, x->t_pos, x->len, x->t_len, x->ids, logits + (size_t)r * Tm * V, V,
                                  ct->tp[0] + ct->pos_off[ex[r]], ct->span_m + (size_t)r * Tm);
    }
    return 0;
}

/* Position q (row r = q / Tm, j = q % Tm) of a step across tokenizers: the loss with its
 * span's mask (compat_xtok_pos_loss). */
double compat_xtok_step_pos(const CompatTrainer *ct, int q, const TeacherPos *t1, const TeacherPos *t2, const float *z, int y,
                            int ans, int dist, double ce_s, double kd_s, float *dz, float *scratch, CompatTokenOut *o) {
    int m = dist ? ct->span_m[q] : 0;
    return compat_xtok_pos_loss(&ct->cfg, ct->cfg.vocab_map == COMPAT_XTOK_ULD, m > 0, z, ct->V, y, ans,
                                dist, t1, t2, ce_s, kd_s, dz, scratch, o);
}

/* Sequence level: example e's prompt in the student's (gp) and M1's (gp1) tokenizations,
 * cut in text to fit both models' contexts less the new tokens (task_prompt_cut_text), so
 * both read the same text (a cut in each model's tokens would keep different texts). */
int compat_xtok_gen_prompts(CompatTrainer *ct, const TaskGenText *txt, CEx *e) {
    const Tokenizer *toks[2] = {ct->s.tok, ct->s.old_tok};
    int limits[2] = {ct->s.model->cfg.seq_len - ct->cfg.gen_max_tokens, ct->s.old_model->cfg.seq_len - ct->cfg.gen_max_tokens};
    size_t start = 0;
    if (limits[0] < 2 || limits[1] < 2)
        return err_set("compat: --max-tokens %d leaves no room for a prompt in a model's context (%d and %d)", ct->cfg.gen_max_tokens,
                       ct->s.model->cfg.seq_len, ct->s.old_model->cfg.seq_len);
    if (task_prompt_cut_text(txt->prompt, toks, limits, 2, &start) != 0) return -1;
    TaskGenText cut = {txt->prompt + start, txt->target};
    for (int w = 0; w < 2; w++) {
        TaskGenTokens tk;
        if (task_gen_tokenize_text(toks[w], &cut, 0, &tk) != 0) return -1;
        *(w ? &e->gp1 : &e->gp) = tk.prompt;
        *(w ? &e->gn1 : &e->gn) = tk.n_prompt;
        tk.prompt = NULL;
        task_gen_tokens_free(&tk);
    }
    return 0;
}
