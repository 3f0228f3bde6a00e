/* compat/compat_seq.c - the sequence level of compatibility training: the greedy outputs
 * of the teachers and of the student, their masks (kept in the run folder for a resumed
 * run), and the step on the reference rows and M1's output rows. */
#include "compat_impl.h"
#include "compat_method.h"
#include "core/cpu.h"
#include "core/error.h"
#include "core/file.h"
#include "core/progress.h"
#include "eval/eval.h"
#include "metrics/rouge.h"
#include "model/backward.h"
#include "model/forward.h"

#include <cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ------------------------------------------------------------------------- */
/* sequence level: greedy outputs of the teachers and of the student          */

/* The task set a training example came from. */
static const TaskSet *ex_set(const CompatTrainer *ct, const CEx *e) { return e->labelled ? ct->s.train : ct->s.transfer; }

/* Greedy outputs of the members mem[0..nm) (one model + adapter, or an ensemble or
 * mixture of several: compat_mixgen.h) for every training example (res[n]), decoded as
 * muscle eval decodes a generation task (batched, model/generate_batch.h): the prompt cut
 * to the context minus max tokens (the smallest member's; BOS and the latest tokens kept),
 * the template's stop strings, EOS, no repeated n-grams as configured. old: M1 alone. */
static int seq_generate_all(CompatTrainer *ct, const CompatMember *mem, int nm, int old, GenResult *res) {
    /* across tokenizers M1 reads its own tokenization of the prompts */
    const Tokenizer *tok = old && ct->xtok ? ct->s.old_tok : ct->s.tok;
    long n = ct->n[DATA_TRAIN];
    const Model *m = mem[0].model;
    int ctx = m->cfg.seq_len;
    for (int k = 1; k < nm; k++)
        if (mem[k].model->cfg.seq_len < ctx) ctx = mem[k].model->cfg.seq_len;
    int limit = ctx - ct->cfg.gen_max_tokens;
    if (limit < 2)
        return err_set("compat: --max-tokens %d leaves no room for a prompt in the model's context of %d", ct->cfg.gen_max_tokens, ctx);
    GenRequest *req = calloc((size_t)(n ? n : 1), sizeof *req);
    int **cut = calloc((size_t)(n ? n : 1), sizeof *cut); /* the prompts longer than limit, cut */
    if (!req || !cut) { free(req); free(cut); return err_set("out of memory"); }
    int max_len = 1, rc = 0;
    for (long i = 0; i < n && rc == 0; i++) {
        CEx *e = &ct->ex[DATA_TRAIN][i];
        const int *gp = old && ct->xtok ? e->gp1 : e->gp;
        int np = old && ct->xtok ? e->gn1 : e->gn;
        if (np > limit && !(cut[i] = malloc((size_t)limit * sizeof **cut))) rc = err_set("out of memory");
        const int *prompt = rc ? gp : eval_prompt_fit(gp, &np, limit, cut[i]);
        req[i] = (GenRequest){prompt, np, 0};
        if (np + ct->cfg.gen_max_tokens > max_len) max_len = np + ct->cfg.gen_max_tokens;
    }
    GenOptions g;
    gen_options_default(&g);
    g.max_tokens = ct->cfg.gen_max_tokens;
    g.no_repeat_ngram = ct->cfg.gen_no_repeat_ngram;
    g.stops = (const char *const *)ct->s.prompt->stops;
    g.n_stops = ct->s.prompt->n_stops;
    g.lora = mem[0].adapter;
    if (max_len > ctx) max_len = ctx;
    if (rc == 0 && nm == 1 && mem[0].w == 1.0) /* one model: as muscle eval decodes */
        rc = model_generate_batch(m, tok, req, (int)n, &g, gen_batch_width_default(m, max_len, (int)n), NULL, NULL, res);
    else if (rc == 0)
        rc = compat_mix_generate(mem, nm, tok, req, (int)n, &g, 0, NULL, NULL, res);
    for (long i = 0; i < n; i++) free(cut[i]);
    free(cut);
    free(req);
    return rc;
}

/* ROUGE-1 F of text against example e's reference (as muscle eval scores it: stemmed). */
static int seq_rouge(const CompatTrainer *ct, const CEx *e, const char *text, double *f) {
    RougeResult rr;
    if (rouge_compute(ex_set(ct, e)->gen[e->src].target, text, 1, &rr) != 0) return -1;
    *f = rr.rouge1.f1;
    return 0;
}

/* M1's output as a training row: the formatted prompt + its text, tokenized as a reference
 * target is (task_gen_tokenize_text: EOS appended, the prompt cut from the left to fit
 * max_len); without the EOS when the output was cut by the token limit or the context. */
static int seq_m1_row(CompatTrainer *ct, CEx *e, const char *prompt_text, const GenResult *r) {
    TaskGenText txt = {(char *)prompt_text, r->text};
    TaskGenTokens tk;
    if (task_gen_tokenize_text(ct->s.tok, &txt, ct->max_len, &tk) != 0) return -1;
    int rc = task_gen_train_seq(&tk, &e->kd_ids, &e->kd_mask, &e->kd_len);
    if (rc == 0 && r->stopped_by != GEN_STOP_EOS && r->stopped_by != GEN_STOP_STRING && tok_eos_id(ct->s.tok) >= 0 && e->kd_len > tk.n_prompt) e->kd_len--;
    task_gen_tokens_free(&tk);
    return rc;
}

/* Before the first step: M1's and M2's outputs of every training and transfer instance,
 * their scores, M1's rows, and the first epoch's mask (the student starts as M2). */
static int seq_teachers(CompatTrainer *ct) {
    long n = ct->n[DATA_TRAIN];
    size_t nn = (size_t)(n ? n : 1);
    ct->r1 = calloc(nn, sizeof *ct->r1);
    ct->r2 = calloc(nn, sizeof *ct->r2);
    ct->text1 = calloc(nn, sizeof *ct->text1);
    ct->same2 = calloc(nn, 1);
    ct->smask = calloc(nn, 1);
    if (!ct->r1 || !ct->r2 || !ct->text1 || !ct->same2 || !ct->smask) return err_set("out of memory");
    int maxp = 1;
    for (long i = 0; i < n; i++) { /* the prompts as muscle eval reads them */
        CEx *e = &ct->ex[DATA_TRAIN][i];
        TaskGenText txt;
        TaskGenTokens tk;
        if (task_gen_format(ex_set(ct, e), e->src, ct->s.prompt, &txt) != 0) return -1;
        int rc = 0;
        if (ct->xtok) { /* M1's own tokenization of the same prompt text, cut in text for both */
            rc = compat_xtok_gen_prompts(ct, &txt, e);
        } else if ((rc = task_gen_tokenize_text(ct->s.tok, &txt, 0, &tk)) == 0) {
            e->gp = tk.prompt;
            e->gn = tk.n_prompt;
            tk.prompt = NULL;
            task_gen_tokens_free(&tk);
        }
        task_gen_text_free(&txt);
        if (rc != 0) return -1;
        if (e->gn > maxp) maxp = e->gn;
    }
    ct->gen_buf = malloc((size_t)maxp * sizeof *ct->gen_buf);
    if (!ct->gen_buf) return err_set("out of memory");
    /* the teacher whose outputs are distilled (r1, text1, M1's rows): M1, or for an ensemble
     * or mixture method its members decoded together (compat_mixgen.h) */
    CompatMember m1 = {ct->s.old_model, ct->s.old_adapter, 1.0, "M1"}, m2 = {ct->s.model, ct->s.new_adapter, 1.0, "M2"}, *tm = &m1;
    int ntm = 1, mixed = (compat_method_def(ct->cfg.method)->teachers & (COMPAT_TEACH_ENSEMBLE | COMPAT_TEACH_MIXTURE)) != 0;
    if (mixed && compat_new_members(ct, &tm, &ntm) != 0) return -1;
    if (mixed) ct->st.n_new_teachers = ntm - ((compat_method_def(ct->cfg.method)->teachers & COMPAT_TEACH_MIXTURE) != 0);
    const char *tname = !mixed ? "M1" : (compat_method_def(ct->cfg.method)->teachers & COMPAT_TEACH_MIXTURE) ? "mixture" : "ensemble";
    int rc_t = 0;
    for (int w = 0; w < 2 && rc_t == 0; w++) {
        char label[64];
        snprintf(label, sizeof label, "teacher %s (generating)", w ? "M2" : tname);
        Progress pr;
        progress_init(&pr, label, "examples", n, ct->s.quiet);
        GenResult *all = calloc(nn, sizeof *all);
        if (!all) { rc_t = err_set("out of memory"); break; }
        if (seq_generate_all(ct, w ? &m2 : tm, w ? 1 : ntm, !w && !mixed, all) != 0) {
            free(all);
            rc_t = err_prefix("teacher %s", w ? "M2" : tname);
            break;
        }
        for (long i = 0; i < n; i++) {
            CEx *e = &ct->ex[DATA_TRAIN][i];
            GenResult r = all[i];
            memset(&all[i], 0, sizeof all[i]);
            int rc = 0;
            if (e->labelled) rc = seq_rouge(ct, e, r.text, w ? &ct->r2[i] : &ct->r1[i]);
            if (rc == 0 && w == 0) {
                TaskGenText txt;
                rc = task_gen_format(ex_set(ct, e), e->src, ct->s.prompt, &txt);
                if (rc == 0) {
                    rc = seq_m1_row(ct, e, txt.prompt, &r);
                    task_gen_text_free(&txt);
                }
                if (rc != 0) {
                    const TaskSet *ts = ex_set(ct, e);
                    err_prefix("sequence level: M1's output for %s:%d (instance '%s')", ts->path, ts->gen[e->src].line, ts->gen[e->src].id);
                } else {
                    ct->text1[i] = r.text;
                    r.text = NULL;
                }
            }
            if (rc == 0 && w == 1) ct->same2[i] = strcmp(r.text, ct->text1[i]) == 0;
            gen_result_free(&r);
            if (rc != 0) {
                for (long k = i + 1; k < n; k++) gen_result_free(&all[k]);
                free(all);
                all = NULL;
                rc_t = -1;
                break;
            }
            progress_update(&pr, i + 1, NULL);
        }
        if (rc_t != 0) break;
        free(all);
        progress_finish(&pr);
    }
    if (mixed) free(tm);
    if (rc_t != 0) return -1;
    for (long i = 0; i < n; i++) {
        const CEx *e = &ct->ex[DATA_TRAIN][i];
        CompatSeqScores sc = {e->labelled, ct->r1[i], ct->r2[i], ct->r2[i], ct->same2[i]};
        int m = compat_seq_mask(ct->cfg.method, &sc);
        if (m < 0) return -1;
        ct->smask[i] = (uint8_t)m;
    }
    ct->mask_epoch = 0;
    return 0;
}

/* The masks file of a run (OUT/seqkd_masks.jsonl): one line per epoch whose student
 * outputs were generated, so a resumed run uses the very masks of the uninterrupted one. */
static char *seq_masks_path(const Trainer *t) { return t->opt.out_dir ? file_join(t->opt.out_dir, "seqkd_masks.jsonl") : NULL; }

/* Reads the mask of epoch `ep` from the file into smask; 1 when found. */
static int masks_load(CompatTrainer *ct, const Trainer *t, long ep) {
    char *path = seq_masks_path(t);
    size_t sz = 0;
    char *text = path ? file_read_all(path, &sz, 0) : NULL;
    free(path);
    if (!text) {
        err_clear();
        return 0;
    }
    long n = ct->n[DATA_TRAIN];
    int found = 0;
    for (char *line = text, *nl; line && *line && !found; line = nl ? nl + 1 : NULL) {
        nl = strchr(line, '\n');
        if (nl) *nl = 0;
        cJSON *j = cJSON_Parse(line);
        cJSON *je = cJSON_GetObjectItemCaseSensitive(j, "epoch"), *jm = cJSON_GetObjectItemCaseSensitive(j, "mask");
        if (cJSON_IsNumber(je) && (long)je->valuedouble == ep && cJSON_IsString(jm) && (long)strlen(jm->valuestring) == n) {
            for (long i = 0; i < n; i++) ct->smask[i] = jm->valuestring[i] == '1';
            found = 1;
        }
        cJSON_Delete(j);
    }
    free(text);
    return found;
}

/* Appends the mask of epoch `ep` to the file (rewritten atomically). */
static int masks_save(const CompatTrainer *ct, const Trainer *t, long ep, double mean_rs, long masked) {
    char *path = seq_masks_path(t);
    if (!path) return 0;
    size_t sz = 0;
    char *old = file_read_all(path, &sz, 0);
    if (!old) {
        err_clear();
        sz = 0;
    }
    long n = ct->n[DATA_TRAIN];
    size_t cap = sz + (size_t)n + 256;
    char *buf = malloc(cap);
    if (!buf) {
        free(old);
        free(path);
        return err_set("out of memory");
    }
    if (sz) memcpy(buf, old, sz);
    size_t k = sz + (size_t)snprintf(buf + sz, cap - sz, "{\"epoch\":%ld,\"masked\":%ld,\"student_rouge1\":%.6f,\"mask\":\"", ep, masked, mean_rs);
    for (long i = 0; i < n; i++) buf[k++] = ct->smask[i] ? '1' : '0';
    k += (size_t)snprintf(buf + k, cap - k, "\"}\n");
    int rc = file_write_all_atomic(path, buf, k);
    free(buf);
    free(old);
    free(path);
    return rc;
}

/* At the first step of epoch ep >= 1: the student's greedy outputs with its current
 * adapter (or the run's file when resuming), and the masks from them. */
static int seq_refresh(CompatTrainer *ct, Trainer *t, long ep) {
    long n = ct->n[DATA_TRAIN];
    if (t->opt.resume && masks_load(ct, t, ep)) {
        ct->mask_epoch = ep;
        return 0;
    }
    if (!compat_method_def(ct->cfg.method)->seq_reads_student) { /* the masks do not read the student */
        ct->mask_epoch = ep;
        return 0;
    }
    Progress pr;
    progress_init(&pr, "student (generating)", "examples", n, ct->s.quiet);
    double sum_rs = 0.0;
    long masked = 0, n_lab = 0;
    GenResult *all = calloc((size_t)(n ? n : 1), sizeof *all);
    if (!all) return err_set("out of memory");
    CompatMember st = {ct->s.model, t->lora, 1.0, "student"};
    if (seq_generate_all(ct, &st, 1, 0, all) != 0) { free(all); return err_prefix("student"); }
    for (long i = 0; i < n; i++) {
        const CEx *e = &ct->ex[DATA_TRAIN][i];
        GenResult r = all[i];
        memset(&all[i], 0, sizeof all[i]);
        CompatSeqScores sc = {e->labelled, ct->r1[i], ct->r2[i], 0.0, 0};
        int rc = 0;
        if (e->labelled) rc = seq_rouge(ct, e, r.text, &sc.rs);
        else sc.student_same = strcmp(r.text, ct->text1[i]) == 0;
        gen_result_free(&r);
        int m = rc != 0 ? -1 : compat_seq_mask(ct->cfg.method, &sc);
        if (m < 0) {
            for (long k = i + 1; k < n; k++) gen_result_free(&all[k]);
            free(all);
            return -1;
        }
        ct->smask[i] = (uint8_t)m;
        masked += m;
        if (e->labelled) {
            sum_rs += sc.rs;
            n_lab++;
        }
        progress_update(&pr, i + 1, NULL);
    }
    free(all);
    progress_finish(&pr);
    ct->mask_epoch = ep;
    return masks_save(ct, t, ep, n_lab ? sum_rs / n_lab : 0.0, masked);
}

/* ------------------------------------------------------------------------- */
/* the step                                                                   */

/* Sequence level: per example, the reference row (labelled; with a CE weight) and M1's
 * output row (when its mask is set); rows go through the model B at a time. */
static int seq_step(CompatTrainer *ct, Trainer *t, const long *ex, int n, double *loss) {
    const CEx *E = ct->ex[DATA_TRAIN];
    long N = ct->n[DATA_TRAIN];
    /* the epoch of the step's last example: a new one refreshes the student's outputs */
    long last = t->index > 0 ? t->epoch : t->epoch - 1;
    if (N > 0 && last > ct->mask_epoch && seq_refresh(ct, t, last) != 0) return -1;
    double Na = 0, Nd = 0;
    int rows = 0, *row_ex = ct->row_ex, *row_kd = ct->row_c;
    int lo = (int)t->shard_lo, hi = (int)t->shard_hi; /* this rank's examples (data parallel; 0..n on one rank) */
    for (int i = 0; i < n; i++) {
        const CEx *x = &E[ex[i]];
        for (int j = 1; j < x->len; j++) Na += compat_is_answer(x, j - 1);
        for (int j = 1; j < x->kd_len; j++) Nd += x->kd_mask[j];
        if (i < lo || i >= hi) continue; /* the scales cover the whole step, the rows only this rank's */
        ct->st.distilled++;
        ct->st.masked += ct->smask[ex[i]];
        if (x->labelled && ct->cfg.ce_weight > 0) {
            row_ex[rows] = i;
            row_kd[rows++] = 0;
        }
        if (ct->smask[ex[i]] && ct->cfg.kd_weight > 0 && x->kd_len > 1) {
            row_ex[rows] = i;
            row_kd[rows++] = 1;
        }
    }
    double ce_s, kd_s;
    compat_seq_scales(&ct->cfg, Na, Nd, &ce_s, &kd_s);
    int B = t->opt.batch, V = ct->V;
    const CompatMethodDef *wdef = compat_method_def(ct->cfg.method);
    if (!wdef->seq_weight) wdef = NULL;
    double total = 0.0;
    for (int q0 = 0; q0 < rows; q0 += B) {
        int b = rows - q0 < B ? rows - q0 : B, Tm = 1;
        for (int r = 0; r < b; r++) {
            const CEx *x = &E[ex[row_ex[q0 + r]]];
            int len = row_kd[q0 + r] ? x->kd_len : x->len;
            if (len - 1 > Tm) Tm = len - 1;
        }
        for (int r = 0; r < b; r++) {
            const CEx *x = &E[ex[row_ex[q0 + r]]];
            const int *ids = row_kd[q0 + r] ? x->kd_ids : x->ids;
            int len = row_kd[q0 + r] ? x->kd_len : x->len;
            for (int j = 0; j < Tm; j++) ct->rows_tok[(size_t)r * Tm + j] = j < len - 1 ? ids[j] : 0;
        }
        if (model_forward_train(&t->rs, ct->rows_tok, b, Tm) != 0) return -1;
        float *logits = t->rs.logits;
        double *rl = ct->row_ll;
        int *rc_ = ct->pos_meta;
#pragma omp parallel for schedule(static, 1) if (CPU_PAR((size_t)b * Tm * V * 4))
        for (int r = 0; r < b; r++) {
            const CEx *x = &E[ex[row_ex[q0 + r]]];
            int kd = row_kd[q0 + r], len = kd ? x->kd_len : x->len;
            float *z = logits + (size_t)r * Tm * V;
            if (kd) { /* M1's row, weighted per instance where the method says (compat_method.h: seq_weight) */
                double w = 1.0;
                if (wdef) {
                    long e = ex[row_ex[q0 + r]];
                    CompatSeqScores sc = {x->labelled, ct->r1[e], ct->r2[e], 0.0, 0};
                    w = wdef->seq_weight(&sc);
                }
                rl[r] = compat_seq_row_loss(z, V, x->kd_ids, x->kd_mask, len, wdef ? kd_s * w : kd_s, z, &rc_[r]);
            }
            else rl[r] = compat_seq_row_loss(z, V, x->ids, x->mask, len, ce_s, z, &rc_[r]);
            if (len - 1 < Tm) memset(z + (size_t)(len - 1) * V, 0, (size_t)(Tm - len + 1) * V * sizeof(float));
        }
        for (int r = 0; r < b; r++) {
            total += rl[r];
            if (!row_kd[q0 + r]) {
                const CEx *x = &E[ex[row_ex[q0 + r]]];
                for (int j = 1; j < x->len; j++) ct->st.answers += x->mask[j];
                ct->st.answers_correct += rc_[r];
            }
        }
        if (model_backward_logits(&t->rs, NULL, &t->lora_grad) != 0) return -1;
    }
    *loss = total;
    return 0;
}

static int seq_attach(CompatTrainer *ct, Trainer *t) {
    (void)ct;
    if (!t->opt.resume) { /* a new run: no masks of an earlier one */
        char *mp = seq_masks_path(t);
        if (mp) unlink(mp);
        free(mp);
    }
    return 0;
}

static void seq_free(CompatTrainer *ct) {
    free(ct->r1);
    free(ct->r2);
    if (ct->text1)
        for (long i = 0; i < ct->n[DATA_TRAIN]; i++) free(ct->text1[i]);
    free(ct->text1);
    free(ct->same2);
    free(ct->smask);
    free(ct->gen_buf);
    ct->r1 = ct->r2 = NULL;
    ct->text1 = NULL;
    ct->same2 = ct->smask = NULL;
    ct->gen_buf = NULL;
}

const CompatLevelOps compat_level_seq = {COMPAT_LEVEL_SEQUENCE, seq_teachers, seq_attach, seq_step, seq_free};
