/* compat/compat_train.c - compatibility training (compat_train.h): the examples, M1's
 * choice scores, set-up, and the step hook that runs a step of the configured level
 * (compat_impl.h: CompatLevelOps; the token level: compat_token.c, the choice level:
 * compat_choice.c, the sequence level: compat_seq.c). */
#include "compat_impl.h"
#include "compat_method.h"
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
    int keep_val = split == DATA_VAL && labelled && ct->cfg.method == COMPAT_MIXTURE && !(ct->cfg.mixture_a > 0);
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
                if (rc == 0 && keep_val) { /* the mixture's a is chosen on them */
                    TaskMCTokens *g = realloc(ct->mcv, (size_t)(ct->n_mcv + 1) * sizeof *g);
                    if (!g) { rc = err_set("out of memory"); break; }
                    ct->mcv = g;
                    ct->mcv[ct->n_mcv++] = tk[i];
                    memset(&tk[i], 0, sizeof tk[i]);
                }
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

int compat_mc_scores(CompatTrainer *ct, const TaskMCTokens *mc, int n, const Model *m, const LoraAdapter *a, double *ll,
                     const char *who) {
    McItem *items = calloc((size_t)(n ? n : 1), sizeof *items);
    McResult *res = calloc((size_t)(n ? n : 1), sizeof *res);
    int *ntok = malloc((size_t)(n ? n : 1) * ct->max_choices * sizeof *ntok);
    int *greedy = malloc((size_t)(n ? n : 1) * ct->max_choices * sizeof *greedy);
    int rc = 0;
    if (!items || !res || !ntok || !greedy) rc = err_set("out of memory");
    for (int i = 0; rc == 0 && i < n; i++) {
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
        if (eval_mc_score(m, items, n, res, &mo) != 0) rc = err_prefix("teacher %s", who);
    }
    free(items);
    free(res);
    free(ntok);
    free(greedy);
    return rc;
}

int compat_argmax_row(const double *v, int n) {
    int a = 0;
    for (int i = 1; i < n; i++)
        if (v[i] > v[a]) a = i;
    return a;
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
    const CompatMethodDef *def = compat_method_def(s->cfg.method);
    if (xtok && s->cfg.level == COMPAT_LEVEL_TOKEN &&
        !(def->xtok_token == COMPAT_XTOK_TOKEN_YES || (def->xtok_token == COMPAT_XTOK_TOKEN_EXACT && !s->cfg.vocab_map)))
        return err_set("compat: --compat %s at the token level is not defined across tokenizers (the old model's tokenizer differs): use %s, or --level choice / sequence",
                       compat_method_name(s->cfg.method), compat_methods_list(COMPAT_LEVEL_BIT(COMPAT_LEVEL_TOKEN), s->cfg.vocab_map ? 2 : 1));
    if (xtok && (def->teachers & (COMPAT_TEACH_ENSEMBLE | COMPAT_TEACH_MIXTURE)) && s->cfg.level != COMPAT_LEVEL_CHOICE)
        return err_set("compat: --compat %s across tokenizers: only at the choice level", compat_method_name(s->cfg.method));
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
    ct->lv = s->cfg.level == COMPAT_LEVEL_SEQUENCE ? &compat_level_seq : s->cfg.level == COMPAT_LEVEL_CHOICE ? &compat_level_choice : &compat_level_token;
    ct->mix_a = s->cfg.mixture_a;
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
        if (rc == 0) rc = compat_mc_scores(ct, ct->xtok ? ct->mc1 : ct->mc, ct->n_mc, s->old_model, s->old_adapter, ct->ll1, "M1");
        for (long e = n_lab; rc == 0 && e < ct->n[DATA_TRAIN]; e++) {
            CEx *x = &ct->ex[DATA_TRAIN][e];
            const TaskMCTokens *t = &ct->mc[x->mc];
            x->label = compat_argmax_row(ct->ll1 + (size_t)x->mc * ct->max_choices, t->n_choices);
            rc = task_mc_train_seq(t, x->label, &x->ids, &x->mask, &x->len);
        }
    }
    /* the mixture's a (chosen on the held-out split unless given), then the level's teachers */
    if (rc == 0 && (def->teachers & COMPAT_TEACH_MIXTURE)) rc = compat_mixture_choose(ct);
    if (rc == 0) rc = ct->lv->teachers(ct);
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
    if (ct->mcv) task_mc_tokens_free_all(ct->mcv, ct->n_mcv);
    compat_level_token.free(ct);
    compat_level_choice.free(ct);
    compat_level_seq.free(ct);
    free(ct->rows_tok);
    free(ct->scratch);
    free(ct->pos_loss);
    free(ct->pos_meta);
    free(ct->row_ex);
    free(ct->row_c);
    free(ct->seq_flag);
    free(ct->row_ll);
    free(ct->row_dll);
    free(ct);
}

const CompatStats *compat_trainer_stats(const CompatTrainer *ct) { return &ct->st; }

const CompatConfig *compat_trainer_config(const CompatTrainer *ct) { return &ct->cfg; }

/* ------------------------------------------------------------------------- */
/* the step                                                                   */

void compat_step_scales(const CompatConfig *c, double n_answer, double n_distill, double *ce, double *kd) {
    int baseline = compat_method_def(c->method)->scales == COMPAT_SCALES_ADD;
    double wce = baseline ? 1.0 : c->ce_weight, wkd = baseline ? c->kd_weight : 1.0 - c->ce_weight;
    *ce = n_answer > 0 ? wce / n_answer : 0.0;
    *kd = n_distill > 0 ? wkd / n_distill : 0.0;
}

static int compat_step(Trainer *t, void *ctx, const long *ex, int n, double *loss) {
    CompatTrainer *ct = ctx;
    return ct->lv->step(ct, t, ex, n, loss);
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
    if (ct->lv->attach && ct->lv->attach(ct, t) != 0) return -1;
    ct->t = t;
    t->step_fn = compat_step;
    t->step_ctx = ct;
    return 0;
}
