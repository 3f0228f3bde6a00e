/* compat/compat_train.c - compatibility training (compat_train.h): the examples, the
 * teachers' choice scores, the token level (its teacher cache and step), set-up, and the
 * step hook that runs a step of the configured level (the sequence level: compat_seq.c,
 * the choice level: compat_choice.c; what they share: compat_impl.h). */
#include "compat_impl.h"
#include "core/hash.h"
#include "core/cpu.h"
#include "core/error.h"
#include "core/progress.h"
#include "eval/mc.h"
#include "model/backward.h"
#include "model/forward.h"

#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ------------------------------------------------------------------------- */
/* examples                                                                   */

int compat_covered(const CompatTrainer *ct, const CEx *e, int j) {
    if (e->t_pos && e->t_pos[j] < 0) return 0; /* across tokenizers: no M1 position here */
    return ct->cfg.answer_only ? (e->labelled || ct->kind == TASK_MC) && e->mask[j + 1] : 1;
}

int compat_is_answer(const CEx *e, int j) { return e->labelled && e->mask[j + 1]; }

static void ex_free(CEx *e, long n) {
    if (!e) return;
    for (long i = 0; i < n; i++) {
        free(e[i].ids);
        free(e[i].mask);
        free(e[i].kd_ids);
        free(e[i].kd_mask);
        free(e[i].gp);
        free(e[i].t_ids);
        free(e[i].t_pos);
        free(e[i].gp1);
    }
    free(e);
}

/* Examples of instances idx[0..n) of ts (labelled: MC instances without a label are skipped). */
static int add_examples(CompatTrainer *ct, int split, const TaskSet *ts, const int *idx, int n, int labelled) {
    TaskSet sub;
    if (task_set_subset(ts, idx, n, &sub) != 0) return -1;
    long base = ct->n[split];
    CEx *grown = realloc(ct->ex[split], (size_t)(base + n + 1) * sizeof *grown);
    if (!grown) {
        task_set_free(&sub);
        return err_set("out of memory");
    }
    ct->ex[split] = grown;
    int rc = 0;
    if (sub.kind == TASK_MC) {
        TaskMCTokens *tk = NULL, *tk1 = NULL;
        rc = task_mc_tokenize(&sub, ct->s.prompt, ct->s.tok, ct->max_len, &tk);
        /* across tokenizers: the same instances in M1's tokenization (its choice scores) */
        if (rc == 0 && ct->xtok && split == DATA_TRAIN)
            rc = task_mc_tokenize(&sub, ct->s.prompt, ct->s.old_tok, ct->s.old_model->cfg.seq_len, &tk1);
        for (int i = 0; rc == 0 && i < sub.n; i++) {
            if (labelled && tk[i].label < 0) continue;
            CEx *e = &ct->ex[split][ct->n[split]];
            memset(e, 0, sizeof *e);
            e->labelled = labelled;
            e->label = labelled ? tk[i].label : -1;
            e->mc = -1;
            if (split == DATA_TRAIN) {
                /* keep the tokens: the choice level and transfer rows need every choice */
                TaskMCTokens *g = realloc(ct->mc, (size_t)(ct->n_mc + 1) * sizeof *g);
                if (!g) { rc = err_set("out of memory"); break; }
                ct->mc = g;
                ct->mc[ct->n_mc] = tk[i];
                memset(&tk[i], 0, sizeof tk[i]);
                if (tk1) {
                    TaskMCTokens *g1 = realloc(ct->mc1, (size_t)(ct->n_mc + 1) * sizeof *g1);
                    if (!g1) { rc = err_set("out of memory"); break; }
                    ct->mc1 = g1;
                    ct->mc1[ct->n_mc] = tk1[i];
                    memset(&tk1[i], 0, sizeof tk1[i]);
                }
                e->mc = ct->n_mc++;
                if (ct->mc[e->mc].n_choices > ct->max_choices) ct->max_choices = ct->mc[e->mc].n_choices;
                if (labelled) rc = task_mc_train_seq(&ct->mc[e->mc], e->label, &e->ids, &e->mask, &e->len);
            } else {
                rc = task_mc_train_seq(&tk[i], e->label, &e->ids, &e->mask, &e->len);
            }
            if (rc == 0) ct->n[split]++;
        }
        if (tk) task_mc_tokens_free_all(tk, sub.n);
        if (tk1) task_mc_tokens_free_all(tk1, sub.n);
    } else {
        TaskGenTokens *tk = NULL;
        rc = task_gen_tokenize(&sub, ct->s.prompt, ct->s.tok, ct->max_len, &tk);
        for (int i = 0; rc == 0 && i < sub.n; i++) {
            CEx *e = &ct->ex[split][ct->n[split]];
            memset(e, 0, sizeof *e);
            e->labelled = labelled;
            e->label = -1;
            e->mc = -1;
            e->src = idx[i];
            if (labelled) {
                rc = task_gen_train_seq(&tk[i], &e->ids, &e->mask, &e->len);
            } else { /* the prompt alone */
                e->len = tk[i].n_prompt;
                e->ids = malloc((size_t)e->len * sizeof *e->ids);
                e->mask = calloc((size_t)e->len, 1);
                if (!e->ids || !e->mask) rc = err_set("out of memory");
                else memcpy(e->ids, tk[i].prompt, (size_t)e->len * sizeof *e->ids);
                if (rc == 0 && e->len < 2) { /* nothing to predict */
                    free(e->ids);
                    free(e->mask);
                    continue;
                }
            }
            if (rc == 0) ct->n[split]++;
        }
        if (tk) task_gen_tokens_free_all(tk, sub.n);
    }
    task_set_free(&sub);
    return rc;
}

static int all_examples(CompatTrainer *ct, const TaskSet *ts, int split, int labelled, const int *idx, int n) {
    int *all = NULL;
    if (!idx) {
        all = malloc((size_t)(ts->n ? ts->n : 1) * sizeof *all);
        if (!all) return err_set("out of memory");
        for (int i = 0; i < ts->n; i++) all[i] = i;
        idx = all;
        n = ts->n;
    }
    int rc = add_examples(ct, split, ts, idx, n, labelled);
    free(all);
    return rc;
}

/* ------------------------------------------------------------------------- */
/* teachers                                                                   */

static int mc_scores(CompatTrainer *ct, const TaskMCTokens *mc, const Model *m, const LoraAdapter *a, double *ll, const char *who) {
    McItem *items = calloc((size_t)ct->n_mc, sizeof *items);
    McResult *res = calloc((size_t)ct->n_mc, sizeof *res);
    int *ntok = malloc((size_t)ct->n_mc * ct->max_choices * sizeof *ntok);
    int *greedy = malloc((size_t)ct->n_mc * ct->max_choices * sizeof *greedy);
    int rc = 0;
    if (!items || !res || !ntok || !greedy) rc = err_set("out of memory");
    for (int i = 0; rc == 0 && i < ct->n_mc; i++) {
        const TaskMCTokens *t = &mc[i];
        items[i] = (McItem){t->ctx, t->n_ctx, t->n_choices, (const int *const *)t->cont, t->n_cont};
        res[i] = (McResult){ll + (size_t)i * ct->max_choices, ntok + (size_t)i * ct->max_choices,
                            greedy + (size_t)i * ct->max_choices};
    }
    if (rc == 0) {
        McOptions mo;
        memset(&mo, 0, sizeof mo);
        mo.max_batch = 8;
        mo.lora = a;
        if (eval_mc_score(m, items, ct->n_mc, res, &mo) != 0) rc = err_prefix("teacher %s", who);
    }
    free(items);
    free(res);
    free(ntok);
    free(greedy);
    return rc;
}

static int argmax_row(const double *v, int n) {
    int a = 0;
    for (int i = 1; i < n; i++)
        if (v[i] > v[a]) a = i;
    return a;
}

/* Token-level cache of one teacher over the training examples. */
static int token_cache(CompatTrainer *ct, int which, const Model *m, const LoraAdapter *a, size_t covered_n) {
    long n = ct->n[DATA_TRAIN];
    size_t P = ct->pos_off[n];
    int V = ct->V, k = ct->k, exact = k >= V;
    ct->tp[which] = calloc(P ? P : 1, sizeof(TeacherPos));
    if (!exact) ct->ids_pool[which] = malloc((covered_n ? covered_n : 1) * (size_t)k * sizeof(int));
    ct->z_pool[which] = malloc((covered_n ? covered_n : 1) * (size_t)k * sizeof(float));
    if (!ct->tp[which] || (!exact && !ct->ids_pool[which]) || !ct->z_pool[which])
        return err_set("out of memory: the teacher cache needs %.0f MB (lower --teacher-topk or --teacher-cache-mb)",
                       (double)covered_n * k * (exact ? 4 : 8) / 1048576.0);
    int B = 8, T = ct->max_len;
    RunState rs;
    if (runstate_init(&rs, m, B, T, T, RS_KEEP_NONE) != 0) return -1;
    if (a && runstate_set_lora(&rs, a) != 0) {
        runstate_free(&rs);
        return -1;
    }
    int *tok = calloc((size_t)B * T, sizeof *tok);
    size_t *slot = malloc((P ? P : 1) * sizeof *slot); /* covered position -> pool slot */
    if (!tok || !slot) {
        free(tok);
        free(slot);
        runstate_free(&rs);
        return err_set("out of memory");
    }
    size_t c = 0;
    for (long e = 0; e < n; e++)
        for (int j = 0; j + 1 < ct->ex[DATA_TRAIN][e].len; j++)
            slot[ct->pos_off[e] + j] = compat_covered(ct, &ct->ex[DATA_TRAIN][e], j) ? c++ : (size_t)-1;
    Progress pr;
    progress_init(&pr, which ? "teacher M2" : "teacher M1", "examples", n, ct->s.quiet);
    int rc = 0;
    for (long e0 = 0; rc == 0 && e0 < n; e0 += B) {
        int b = (int)(n - e0 < B ? n - e0 : B), Tm = 1;
        for (int r = 0; r < b; r++)
            if (ct->ex[DATA_TRAIN][e0 + r].len - 1 > Tm) Tm = ct->ex[DATA_TRAIN][e0 + r].len - 1;
        for (int r = 0; r < b; r++) {
            const CEx *x = &ct->ex[DATA_TRAIN][e0 + r];
            for (int j = 0; j < Tm; j++) tok[(size_t)r * Tm + j] = j < x->len - 1 ? x->ids[j] : 0;
        }
        if (model_forward(&rs, tok, b, Tm, 0) != 0) {
            rc = err_prefix("teacher %s", which ? "M2" : "M1");
            break;
        }
        double T_ = ct->cfg.temperature;
#pragma omp parallel for schedule(dynamic, 8) if (CPU_PAR((size_t)b * Tm * V * 4))
        for (int q = 0; q < b * Tm; q++) {
            int r = q / Tm, j = q % Tm;
            const CEx *x = &ct->ex[DATA_TRAIN][e0 + r];
            if (j >= x->len - 1) continue;
            size_t p = ct->pos_off[e0 + r] + j, sl = slot[p];
            if (sl == (size_t)-1) continue;
            compat_teacher_pos(rs.logits + (size_t)q * V, V, T_, x->ids[j + 1], k,
                               exact ? NULL : ct->ids_pool[which] + sl * k, ct->z_pool[which] + sl * k, &ct->tp[which][p]);
        }
        progress_update(&pr, e0 + b, NULL);
    }
    if (rc == 0) progress_finish(&pr);
    free(tok);
    free(slot);
    runstate_free(&rs);
    return rc;
}

static int needs_m2(const CompatConfig *c) {
    return c->method != COMPAT_NONE && c->method != COMPAT_FOCAL && c->method != COMPAT_ELODI;
}

/* ------------------------------------------------------------------------- */
/* TrainData over the examples (the trainer reads the held-out split)          */

static int cx_fill(const TrainData *d, int split, long i, int *tok, int *tgt, float *w) {
    const CompatTrainer *ct = d->impl;
    const CEx *e = &ct->ex[split][i];
    for (int j = 0; j < d->seq_len; j++) {
        if (j + 1 < e->len) {
            tok[j] = e->ids[j];
            tgt[j] = e->ids[j + 1];
            w[j] = compat_is_answer(e, j) ? 1.0f : 0.0f;
        } else {
            tok[j] = tgt[j] = 0;
            w[j] = 0.0f;
        }
    }
    return 0;
}


/* ------------------------------------------------------------------------- */
/* set-up                                                                     */

int compat_trainer_init(CompatTrainer **out, const CompatSetup *s, TrainData *d) {
    *out = NULL;
    memset(d, 0, sizeof *d);
    if (compat_config_check(&s->cfg) != 0) return -1;
    /* across tokenizers (compat_xtok.h): M1 reads the text with its own tokenizer */
    int xtok = s->old_tok && !compat_tok_same(s->old_tok, s->tok);
    if (!xtok && s->old_model->cfg.vocab_size != s->model->cfg.vocab_size)
        return err_set("compat: the old model has %d tokens in its vocabulary, the new one %d, and no tokenizer of its own was found beside it",
                       s->old_model->cfg.vocab_size, s->model->cfg.vocab_size);
    if (xtok && s->cfg.level == COMPAT_LEVEL_TOKEN &&
        (s->cfg.method == COMPAT_ELODI || s->cfg.method == COMPAT_SEQ_LIKELIHOOD || s->cfg.method == COMPAT_FOCAL))
        return err_set("compat: --compat %s at the token level is not defined across tokenizers (the old model's tokenizer differs): use student-wrong, old-correct, none, token-likelihood, or --level choice / sequence",
                       compat_method_name(s->cfg.method));
    if (s->transfer && s->transfer->kind != s->train->kind)
        return err_set("compat: %s and %s: one is multiple choice, the other generation", s->train->path, s->transfer->path);
    if (s->val && s->val->kind != s->train->kind)
        return err_set("compat: %s and %s: one is multiple choice, the other generation", s->train->path, s->val->path);
    if (s->cfg.level == COMPAT_LEVEL_CHOICE && s->train->kind != TASK_MC)
        return err_set("compat: %s is a generation task: choice-level distillation is for multiple choice (use the token level)", s->train->path);
    if (s->cfg.level == COMPAT_LEVEL_SEQUENCE && s->train->kind != TASK_GEN)
        return err_set("compat: %s is a multiple-choice task: sequence-level distillation is for generation (use --level choice or token)", s->train->path);
    CompatTrainer *ct = calloc(1, sizeof *ct);
    if (!ct) return err_set("out of memory");
    ct->cfg = s->cfg;
    ct->s = *s;
    ct->kind = s->train->kind;
    ct->V = s->model->cfg.vocab_size;
    ct->xtok = xtok;
    ct->st.xtok = xtok;
    ct->max_len = s->max_len > 1 ? s->max_len : s->model->cfg.seq_len;
    double t0 = progress_now();
    int rc;
    if (s->val) {
        rc = all_examples(ct, s->train, DATA_TRAIN, 1, NULL, 0);
        if (rc == 0) rc = all_examples(ct, s->val, DATA_VAL, 1, NULL, 0);
    } else {
        int *tr = NULL, *va = NULL, ntr = 0, nva = 0;
        rc = task_split(s->train->n, s->val_frac, s->seed, &tr, &ntr, &va, &nva);
        if (rc == 0) rc = all_examples(ct, s->train, DATA_TRAIN, 1, tr, ntr);
        if (rc == 0) rc = all_examples(ct, s->train, DATA_VAL, 1, va, nva);
        free(tr);
        free(va);
    }
    long n_lab = ct->n[DATA_TRAIN];
    if (rc == 0 && n_lab == 0) rc = err_set("%s: no labelled instance to train on", s->train->path);
    if (rc == 0 && s->transfer) rc = all_examples(ct, s->transfer, DATA_TRAIN, 0, NULL, 0);
    ct->st.n_train = n_lab;
    ct->st.n_transfer = ct->n[DATA_TRAIN] - n_lab;
    ct->st.n_val = ct->n[DATA_VAL];
    /* multiple choice: the teachers' choice scores (choice level; M1's answers for transfer rows) */
    if (rc == 0 && ct->kind == TASK_MC && (s->cfg.level == COMPAT_LEVEL_CHOICE || ct->st.n_transfer)) {
        ct->ll1 = calloc((size_t)ct->n_mc * ct->max_choices, sizeof(double));
        ct->ll2 = calloc((size_t)ct->n_mc * ct->max_choices, sizeof(double));
        if (!ct->ll1 || !ct->ll2) rc = err_set("out of memory");
        if (rc == 0) rc = mc_scores(ct, ct->xtok ? ct->mc1 : ct->mc, s->old_model, s->old_adapter, ct->ll1, "M1");
        if (rc == 0 && s->cfg.level == COMPAT_LEVEL_CHOICE && needs_m2(&s->cfg))
            rc = mc_scores(ct, ct->mc, s->model, s->new_adapter, ct->ll2, "M2");
        for (long e = n_lab; rc == 0 && e < ct->n[DATA_TRAIN]; e++) {
            CEx *x = &ct->ex[DATA_TRAIN][e];
            const TaskMCTokens *t = &ct->mc[x->mc];
            x->label = argmax_row(ct->ll1 + (size_t)x->mc * ct->max_choices, t->n_choices);
            rc = task_mc_train_seq(t, x->label, &x->ids, &x->mask, &x->len);
        }
    }
    /* sequence level: the teachers' outputs */
    if (rc == 0 && s->cfg.level == COMPAT_LEVEL_SEQUENCE) rc = compat_seq_teachers(ct);
    /* the longest row */
    int T = 1;
    for (int sp = 0; sp < 2; sp++)
        for (long i = 0; i < ct->n[sp]; i++)
            if (ct->ex[sp][i].len - 1 > T) T = ct->ex[sp][i].len - 1;
    for (long i = 0; i < ct->n[DATA_TRAIN]; i++)
        if (ct->ex[DATA_TRAIN][i].kd_len - 1 > T) T = ct->ex[DATA_TRAIN][i].kd_len - 1;
    if (rc == 0 && ct->kind == TASK_MC)
        for (int i = 0; i < ct->n_mc; i++)
            for (int c = 0; c < ct->mc[i].n_choices; c++)
                if (ct->mc[i].n_ctx + ct->mc[i].n_cont[c] - 1 > T) T = ct->mc[i].n_ctx + ct->mc[i].n_cont[c] - 1;
    /* token level: the teacher cache */
    if (rc == 0 && s->cfg.level == COMPAT_LEVEL_TOKEN) {
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
        int teachers = needs_m2(&s->cfg) ? 2 : 1;
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
        if (rc == 0) rc = xtok ? compat_xtok_token_cache(ct, C) : token_cache(ct, 0, s->old_model, s->old_adapter, C);
        if (rc == 0 && teachers == 2) rc = token_cache(ct, 1, s->model, s->new_adapter, C);
    }
    ct->st.teacher_seconds = progress_now() - t0;
    if (rc != 0) {
        compat_trainer_free(ct);
        return -1;
    }
    /* the TrainData */
    d->seq_len = T;
    d->n[DATA_TRAIN] = ct->n[DATA_TRAIN];
    d->n[DATA_VAL] = ct->n[DATA_VAL];
    uint64_t h = HASH_FNV64_BASIS;
    for (int sp = 0; sp < 2; sp++)
        for (long i = 0; i < ct->n[sp]; i++) {
            const CEx *e = &ct->ex[sp][i];
            h = hash_fnv64(h, e->ids, (size_t)e->len * sizeof(int));
            h = hash_fnv64(h, e->mask, (size_t)e->len);
            h = hash_fnv64(h, &e->labelled, sizeof e->labelled);
            d->n_tokens[sp] += (size_t)e->len;
        }
    uint64_t tw = train_hash_model(s->old_model) ^ (train_hash_lora(s->old_adapter) * 3) ^ (train_hash_lora(s->new_adapter) * 7);
    h = hash_fnv64(h, &tw, sizeof tw);
    char *js = compat_config_json(&s->cfg);
    if (js) h = hash_fnv64(h, js, strlen(js));
    free(js);
    d->hash = h;
    d->n_docs = (size_t)(ct->n[0] + ct->n[1]);
    d->fill = cx_fill;
    d->destroy = NULL; /* the examples belong to ct */
    d->impl = ct;
    *out = ct;
    return 0;
}

void compat_trainer_free(CompatTrainer *ct) {
    if (!ct) return;
    ex_free(ct->ex[0], ct->n[0]);
    ex_free(ct->ex[1], ct->n[1]);
    if (ct->mc) task_mc_tokens_free_all(ct->mc, ct->n_mc);
    if (ct->mc1) task_mc_tokens_free_all(ct->mc1, ct->n_mc);
    compat_vocab_map_free(&ct->vmap);
    free(ct->uld_pool);
    free(ct->span_m);
    free(ct->ll1);
    free(ct->ll2);
    free(ct->pos_off);
    for (int i = 0; i < 2; i++) {
        free(ct->tp[i]);
        free(ct->ids_pool[i]);
        free(ct->z_pool[i]);
    }
    if (ct->have_cs) runstate_free(&ct->cs);
    free(ct->rows_tok);
    free(ct->scratch);
    free(ct->pos_loss);
    free(ct->pos_meta);
    free(ct->row_ex);
    free(ct->row_c);
    free(ct->seq_flag);
    free(ct->row_ll);
    free(ct->row_dll);
    free(ct->row_at);
    free(ct->pk_pos);
    free(ct->pk_seg);
    free(ct->mb_ex);
    free(ct->r1);
    free(ct->r2);
    if (ct->text1)
        for (long i = 0; i < ct->n[DATA_TRAIN]; i++) free(ct->text1[i]);
    free(ct->text1);
    free(ct->same2);
    free(ct->smask);
    free(ct->gen_buf);
    free(ct);
}

const CompatStats *compat_trainer_stats(const CompatTrainer *ct) { return &ct->st; }

/* ------------------------------------------------------------------------- */
/* the step                                                                   */

void compat_step_scales(const CompatConfig *c, double n_answer, double n_distill, double *ce, double *kd) {
    int baseline = c->method == COMPAT_FOCAL || c->method == COMPAT_ELODI;
    double wce = baseline ? 1.0 : c->ce_weight, wkd = baseline ? c->kd_weight : 1.0 - c->ce_weight;
    *ce = n_answer > 0 ? wce / n_answer : 0.0;
    *kd = n_distill > 0 ? wkd / n_distill : 0.0;
}

/* Token level: every example is one row. */
static int step_token(CompatTrainer *ct, Trainer *t, const long *ex, int n, double *loss) {
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
        if (ct->cfg.method == COMPAT_SEQ_LIKELIHOOD)
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

static int compat_step(Trainer *t, void *ctx, const long *ex, int n, double *loss) {
    CompatTrainer *ct = ctx;
    if (ct->cfg.level == COMPAT_LEVEL_SEQUENCE) return compat_seq_step(ct, t, ex, n, loss);
    return ct->cfg.level == COMPAT_LEVEL_CHOICE ? compat_choice_step(ct, t, ex, n, loss) : step_token(ct, t, ex, n, loss);
}

int compat_trainer_attach(CompatTrainer *ct, Trainer *t) {
    if (t->opt.mode != TRAIN_LORA || !t->lora) return err_set("compat: the trainer must train an adapter (TRAIN_LORA)");
    if (t->data->impl != ct) return err_set("compat: the trainer was made on other data than this compat trainer's");
    int B = t->opt.batch, T = t->data->seq_len, V = ct->V;
    int rows = ct->cfg.level == COMPAT_LEVEL_CHOICE ? B * ct->max_choices : B;
    int lists = ct->cfg.level == COMPAT_LEVEL_SEQUENCE ? 2 * B * t->opt.grad_accum : rows; /* sequence level: 2 rows an example */
    ct->rows_tok = calloc((size_t)rows * T, sizeof *ct->rows_tok);
    ct->scratch = malloc((size_t)cpu_threads() * (ct->xtok ? 7 : 3) * V * sizeof(float));
    ct->pos_loss = malloc((size_t)B * T * sizeof(double));
    ct->pos_meta = malloc((size_t)B * T * sizeof(int));
    ct->row_ex = malloc((size_t)lists * sizeof(int));
    ct->row_c = malloc((size_t)lists * sizeof(int));
    ct->seq_flag = malloc((size_t)B * sizeof(int));
    ct->row_ll = malloc((size_t)rows * sizeof(double));
    ct->row_dll = malloc((size_t)rows * sizeof(double));
    if (!ct->rows_tok || !ct->scratch || !ct->pos_loss || !ct->pos_meta || !ct->row_ex || !ct->row_c || !ct->seq_flag ||
        !ct->row_ll || !ct->row_dll)
        return err_set("out of memory");
    if (ct->cfg.level == COMPAT_LEVEL_CHOICE) {
        /* one packed row per example. A packed row may be longer than T (its positions are
         * not): its chunk is the longest packed row when that run state takes no more memory
         * than the old one of plain rows (a row per choice, B x choices rows of T); else the
         * chunk is T and the examples whose packed row is longer go as plain rows. */
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
    }
    if (ct->cfg.level == COMPAT_LEVEL_SEQUENCE && !t->opt.resume) { /* a new run: no masks of an earlier one */
        char *mp = compat_seq_masks_path(t);
        if (mp) unlink(mp);
        free(mp);
    }
    ct->t = t;
    t->step_fn = compat_step;
    t->step_ctx = ct;
    return 0;
}
