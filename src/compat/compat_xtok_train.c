/* compat/compat_xtok_train.c - compatibility training when M1 has its own tokenizer
 * (compat_xtok.h has the maths): M1's rows of the same text in its tokenization and
 * their alignment with the student's, M1's token-level cache in the student's terms
 * (exact mapping: its logits written into the student's vocabulary; ULD: its sorted
 * probabilities), and one position of a ULD step. */
#include "compat_impl.h"
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
            int y1 = x->t_ids[i + 1], am = 0;
            for (int v = 1; v < Vt; v++)
                if (zt[v] > zt[am]) am = v;
            double mx = zt[am], s = 0.0;
            for (int v = 0; v < Vt; v++) s += exp((double)zt[v] - mx);
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
            /* the masks: M1 against its own next token (compat_xtok.h) */
            tp->logp_y = (float)((double)zt[y1] - mx - log(s));
            tp->argmax = am == y1 ? x->ids[j + 1] : -1;
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

/* One position of a ULD step: ce_s * CE + kd_s * [dist] (m ULD(p1, q) + (1 - m) KL(p2 || q)),
 * m the method's mask (none: 1; student-wrong: the student's argmax is not y; old-correct:
 * M1 was right on its own next token). dz may be z. scratch: [7 V] floats. */
double compat_xtok_step_pos(CompatTrainer *ct, const TeacherPos *t1, const TeacherPos *t2, const float *z, int y, int ans,
                            int dist, int seq_flag, double ce_s, double kd_s, float *dz, float *scratch, CompatTokenOut *o) {
    int V = ct->V, am = 0;
    (void)seq_flag;
    for (int v = 1; v < V; v++)
        if (z[v] > z[am]) am = v;
    int m = 1;
    if (ct->cfg.method == COMPAT_STUDENT_WRONG) m = am != y;
    else if (ct->cfg.method == COMPAT_OLD_CORRECT) m = t1 && t1->argmax == y;
    float *g = scratch + 3 * (size_t)V;
    memset(g, 0, (size_t)V * sizeof *g);
    double l = 0.0;
    if (dist && m) l += compat_uld_loss(t1->z, t1->k, z, V, ct->cfg.temperature, kd_s, g, scratch + 4 * (size_t)V);
    int kl2 = dist && !m && t2 && ct->cfg.method != COMPAT_NONE;
    CompatConfig c = ct->cfg;
    c.method = COMPAT_NONE;
    l += compat_token_loss(&c, z, V, y, ans, kl2, 0, kl2 ? t2 : NULL, NULL, ce_s, kd_s, dz, scratch, o);
    if (!ans && !kl2) memset(dz, 0, (size_t)V * sizeof *dz);
    for (int v = 0; v < V; v++) dz[v] += g[v];
    o->masked = m;
    return l;
}
