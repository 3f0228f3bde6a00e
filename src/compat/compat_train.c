/* compat/compat_train.c - examples, the teacher cache and the training step of
 * compatibility training (compat_train.h). */
#include "compat_train.h"
#include "core/cpu.h"
#include "core/error.h"
#include "core/progress.h"
#include "eval/mc.h"
#include "core/file.h"
#include "kernel/vmath.h"
#include "metrics/rouge.h"
#include "model/generate.h"
#include "model/backward.h"
#include "model/forward.h"

#include <cJSON.h>
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* One training or held-out example: a row of ids; mask[j] = 1 when ids[j] is an
 * answer token (its prediction from position j - 1 carries the cross-entropy). */
typedef struct {
    int *ids;
    uint8_t *mask;
    int len;
    int labelled;  /* 0: transfer instance (no cross-entropy) */
    int label;     /* MC: the choice in the row (M1's for a transfer instance); -1 generation */
    int mc;        /* MC: index into ct->mc; -1 otherwise */
    int src;       /* its instance in the task set it came from (train, val or transfer) */
    /* sequence level: M1's greedy output as a row (prompt + output [+ EOS]; kd_mask = 1 on
     * the output) and the prompt as muscle eval reads it (whole: cut per model) */
    int *kd_ids;
    uint8_t *kd_mask;
    int kd_len;
    int *gp;
    int gn;
} CEx;

struct CompatTrainer {
    CompatConfig cfg;
    CompatSetup s;
    TaskKind kind;
    int V;
    CEx *ex[2];                /* [DATA_TRAIN], [DATA_VAL] */
    long n[2];
    int max_len;
    /* multiple choice: the tokenized training instances and the teachers' choice scores */
    TaskMCTokens *mc;
    int n_mc, max_choices;
    double *ll1, *ll2;         /* [n_mc * max_choices] */
    /* token level: teacher cache, position p = pos_off[e] + j (j = 0 .. len - 2) */
    size_t *pos_off;           /* [n_train + 1] */
    TeacherPos *tp[2];         /* [positions] M1, M2 (NULL when not needed) */
    int *ids_pool[2];
    float *z_pool[2];
    int k;                     /* kept per covered position (V = exact) */
    /* training */
    Trainer *t;
    RunState cs;               /* choice level: every choice of a micro-batch's instances */
    int have_cs;
    int *rows_tok;             /* micro-batch tokens */
    float *scratch;            /* [threads, 3 V] */
    double *pos_loss;          /* [rows * T] */
    int *pos_meta;             /* per position: masked (bit 0), distilled (1), answer (2), student right (3) */
    int *row_ex, *row_c, *seq_flag; /* per row of a micro-batch: its example, its choice; per example: the flag */
    double *row_ll, *row_dll;  /* per row: the choice's log-likelihood and d loss / d it */
    /* choice level: per (example, choice) of a pass, where its segment starts and where its
     * row starts in the logits; per example its first (example, choice) (row_cap each) */
    int *row_at, row_cap;
    int *pk_pos, *pk_seg;      /* [B * T] positions and segments of the packed rows */
    long *mb_ex;               /* [2 B] a micro-batch's examples: packed, then plain */
    int unpacked;              /* MUSCLE_COMPAT_UNPACKED=1: every choice a plain row (the old path);
                                  MUSCLE_COMPAT_PACK_MAX=N: packed rows of at most max(N, T)
                                  tokens, the longer ones as plain rows (test knobs) */
    /* sequence level: per training example, ROUGE-1 F of M1's and M2's outputs, M1's text,
     * [M2's text == M1's], the current mask and the epoch it was computed for */
    double *r1, *r2;
    char **text1;
    uint8_t *same2, *smask;
    long mask_epoch;
    int *gen_buf;              /* a prompt cut to a model's context */
    CompatStats st;
};

/* ------------------------------------------------------------------------- */
/* examples                                                                   */

static int covered(const CompatTrainer *ct, const CEx *e, int j) {
    return ct->cfg.answer_only ? (e->labelled || ct->kind == TASK_MC) && e->mask[j + 1] : 1;
}

static int is_answer(const CEx *e, int j) { return e->labelled && e->mask[j + 1]; }

static void ex_free(CEx *e, long n) {
    if (!e) return;
    for (long i = 0; i < n; i++) {
        free(e[i].ids);
        free(e[i].mask);
        free(e[i].kd_ids);
        free(e[i].kd_mask);
        free(e[i].gp);
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
        TaskMCTokens *tk = NULL;
        rc = task_mc_tokenize(&sub, ct->s.prompt, ct->s.tok, ct->max_len, &tk);
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
                e->mc = ct->n_mc++;
                if (ct->mc[e->mc].n_choices > ct->max_choices) ct->max_choices = ct->mc[e->mc].n_choices;
                if (labelled) rc = task_mc_train_seq(&ct->mc[e->mc], e->label, &e->ids, &e->mask, &e->len);
            } else {
                rc = task_mc_train_seq(&tk[i], e->label, &e->ids, &e->mask, &e->len);
            }
            if (rc == 0) ct->n[split]++;
        }
        if (tk) task_mc_tokens_free_all(tk, sub.n);
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

static int mc_scores(CompatTrainer *ct, const Model *m, const LoraAdapter *a, double *ll, const char *who) {
    McItem *items = calloc((size_t)ct->n_mc, sizeof *items);
    McResult *res = calloc((size_t)ct->n_mc, sizeof *res);
    int *ntok = malloc((size_t)ct->n_mc * ct->max_choices * sizeof *ntok);
    int *greedy = malloc((size_t)ct->n_mc * ct->max_choices * sizeof *greedy);
    int rc = 0;
    if (!items || !res || !ntok || !greedy) rc = err_set("out of memory");
    for (int i = 0; rc == 0 && i < ct->n_mc; i++) {
        const TaskMCTokens *t = &ct->mc[i];
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
            slot[ct->pos_off[e] + j] = covered(ct, &ct->ex[DATA_TRAIN][e], j) ? c++ : (size_t)-1;
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
/* sequence level: greedy outputs of the teachers and of the student          */

/* The task set a training example came from. */
static const TaskSet *ex_set(const CompatTrainer *ct, const CEx *e) { return e->labelled ? ct->s.train : ct->s.transfer; }

/* Greedy output of m + a for example e, decoded as muscle eval decodes a generation task:
 * the prompt cut to the model's context minus max tokens (BOS and the latest tokens
 * kept), the template's stop strings, EOS, no repeated n-grams as configured. */
static int seq_generate(CompatTrainer *ct, const Model *m, const LoraAdapter *a, const CEx *e, GenResult *r) {
    int limit = m->cfg.seq_len - ct->cfg.gen_max_tokens;
    if (limit < 2)
        return err_set("compat: --max-tokens %d leaves no room for a prompt in the model's context of %d", ct->cfg.gen_max_tokens,
                       m->cfg.seq_len);
    const int *prompt = e->gp;
    int np = e->gn;
    if (np > limit) {
        ct->gen_buf[0] = prompt[0];
        memcpy(ct->gen_buf + 1, prompt + np - (limit - 1), (size_t)(limit - 1) * sizeof *prompt);
        prompt = ct->gen_buf;
        np = limit;
    }
    GenOptions g;
    gen_options_default(&g);
    g.max_tokens = ct->cfg.gen_max_tokens;
    g.no_repeat_ngram = ct->cfg.gen_no_repeat_ngram;
    g.stops = (const char *const *)ct->s.prompt->stops;
    g.n_stops = ct->s.prompt->n_stops;
    g.lora = a;
    return model_generate(m, ct->s.tok, prompt, np, &g, NULL, NULL, r);
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
    if (rc == 0 && r->stopped_by != 1 && r->stopped_by != 2 && tok_eos_id(ct->s.tok) >= 0 && e->kd_len > tk.n_prompt) e->kd_len--;
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
        int rc = task_gen_tokenize_text(ct->s.tok, &txt, 0, &tk);
        task_gen_text_free(&txt);
        if (rc != 0) return -1;
        e->gp = tk.prompt;
        e->gn = tk.n_prompt;
        tk.prompt = NULL;
        task_gen_tokens_free(&tk);
        if (e->gn > maxp) maxp = e->gn;
    }
    ct->gen_buf = malloc((size_t)maxp * sizeof *ct->gen_buf);
    if (!ct->gen_buf) return err_set("out of memory");
    for (int w = 0; w < 2; w++) {
        const Model *m = w ? ct->s.model : ct->s.old_model;
        const LoraAdapter *a = w ? ct->s.new_adapter : ct->s.old_adapter;
        Progress pr;
        progress_init(&pr, w ? "teacher M2 (generating)" : "teacher M1 (generating)", "examples", n, ct->s.quiet);
        for (long i = 0; i < n; i++) {
            CEx *e = &ct->ex[DATA_TRAIN][i];
            GenResult r;
            if (seq_generate(ct, m, a, e, &r) != 0) return err_prefix("teacher %s", w ? "M2" : "M1");
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
            if (rc != 0) return -1;
            progress_update(&pr, i + 1, NULL);
        }
        progress_finish(&pr);
    }
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
static char *masks_path(const Trainer *t) { return t->opt.out_dir ? file_join(t->opt.out_dir, "seqkd_masks.jsonl") : NULL; }

/* Reads the mask of epoch `ep` from the file into smask; 1 when found. */
static int masks_load(CompatTrainer *ct, const Trainer *t, long ep) {
    char *path = masks_path(t);
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
    char *path = masks_path(t);
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
    if (ct->cfg.method == COMPAT_NONE || ct->cfg.method == COMPAT_OLD_CORRECT) { /* the masks do not read the student */
        ct->mask_epoch = ep;
        return 0;
    }
    Progress pr;
    progress_init(&pr, "student (generating)", "examples", n, ct->s.quiet);
    double sum_rs = 0.0;
    long masked = 0, n_lab = 0;
    for (long i = 0; i < n; i++) {
        const CEx *e = &ct->ex[DATA_TRAIN][i];
        GenResult r;
        if (seq_generate(ct, ct->s.model, t->lora, e, &r) != 0) return err_prefix("student");
        CompatSeqScores sc = {e->labelled, ct->r1[i], ct->r2[i], 0.0, 0};
        int rc = 0;
        if (e->labelled) rc = seq_rouge(ct, e, r.text, &sc.rs);
        else sc.student_same = strcmp(r.text, ct->text1[i]) == 0;
        gen_result_free(&r);
        if (rc != 0) return -1;
        int m = compat_seq_mask(ct->cfg.method, &sc);
        if (m < 0) return -1;
        ct->smask[i] = (uint8_t)m;
        masked += m;
        if (e->labelled) {
            sum_rs += sc.rs;
            n_lab++;
        }
        progress_update(&pr, i + 1, NULL);
    }
    progress_finish(&pr);
    ct->mask_epoch = ep;
    return masks_save(ct, t, ep, n_lab ? sum_rs / n_lab : 0.0, masked);
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
            w[j] = is_answer(e, j) ? 1.0f : 0.0f;
        } else {
            tok[j] = tgt[j] = 0;
            w[j] = 0.0f;
        }
    }
    return 0;
}

static uint64_t fnv(uint64_t h, const void *p, size_t n) {
    const uint8_t *b = p;
    for (size_t i = 0; i < n; i++) h = (h ^ b[i]) * 0x100000001b3ull;
    return h;
}

/* ------------------------------------------------------------------------- */
/* set-up                                                                     */

int compat_trainer_init(CompatTrainer **out, const CompatSetup *s, TrainData *d) {
    *out = NULL;
    memset(d, 0, sizeof *d);
    if (compat_config_check(&s->cfg) != 0) return -1;
    if (s->old_model->cfg.vocab_size != s->model->cfg.vocab_size)
        return err_set("compat: the old model has %d tokens in its vocabulary, the new one %d: compatibility training needs one tokenizer",
                       s->old_model->cfg.vocab_size, s->model->cfg.vocab_size);
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
        if (rc == 0) rc = mc_scores(ct, s->old_model, s->old_adapter, ct->ll1, "M1");
        if (rc == 0 && s->cfg.level == COMPAT_LEVEL_CHOICE && needs_m2(&s->cfg))
            rc = mc_scores(ct, s->model, s->new_adapter, ct->ll2, "M2");
        for (long e = n_lab; rc == 0 && e < ct->n[DATA_TRAIN]; e++) {
            CEx *x = &ct->ex[DATA_TRAIN][e];
            const TaskMCTokens *t = &ct->mc[x->mc];
            x->label = argmax_row(ct->ll1 + (size_t)x->mc * ct->max_choices, t->n_choices);
            rc = task_mc_train_seq(t, x->label, &x->ids, &x->mask, &x->len);
        }
    }
    /* sequence level: the teachers' outputs */
    if (rc == 0 && s->cfg.level == COMPAT_LEVEL_SEQUENCE) rc = seq_teachers(ct);
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
        ct->pos_off = malloc((size_t)(n + 1) * sizeof *ct->pos_off);
        if (!ct->pos_off) rc = err_set("out of memory");
        size_t P = 0, C = 0;
        for (long e = 0; rc == 0 && e < n; e++) {
            ct->pos_off[e] = P;
            for (int j = 0; j + 1 < ct->ex[DATA_TRAIN][e].len; j++) C += (size_t)covered(ct, &ct->ex[DATA_TRAIN][e], j);
            P += (size_t)ct->ex[DATA_TRAIN][e].len - 1;
        }
        if (rc == 0) ct->pos_off[n] = P;
        int teachers = needs_m2(&s->cfg) ? 2 : 1;
        double exact_mb = (double)C * ct->V * 4.0 * teachers / 1048576.0;
        if (s->cfg.topk > 0) ct->k = s->cfg.topk < ct->V ? s->cfg.topk : ct->V;
        else ct->k = exact_mb <= s->cfg.cache_mb ? ct->V : (64 < ct->V ? 64 : ct->V);
        ct->st.exact = ct->k >= ct->V;
        ct->st.topk = ct->k;
        ct->st.cache_mb = (double)C * ct->k * (ct->st.exact ? 4.0 : 8.0) * teachers / 1048576.0 +
                          (double)P * sizeof(TeacherPos) * teachers / 1048576.0;
        if (rc == 0 && !s->quiet)
            fprintf(stderr, "muscle compat: teacher cache: %zu positions distilled, %s, %.0f MB\n", C,
                    ct->st.exact ? "every logit (exact)" : "top-k logits + the rest as one bucket", ct->st.cache_mb);
        if (rc == 0) rc = token_cache(ct, 0, s->old_model, s->old_adapter, C);
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
    uint64_t h = 0xcbf29ce484222325ull;
    for (int sp = 0; sp < 2; sp++)
        for (long i = 0; i < ct->n[sp]; i++) {
            const CEx *e = &ct->ex[sp][i];
            h = fnv(h, e->ids, (size_t)e->len * sizeof(int));
            h = fnv(h, e->mask, (size_t)e->len);
            h = fnv(h, &e->labelled, sizeof e->labelled);
            d->n_tokens[sp] += (size_t)e->len;
        }
    uint64_t tw = train_hash_model(s->old_model) ^ (train_hash_lora(s->old_adapter) * 3) ^ (train_hash_lora(s->new_adapter) * 7);
    h = fnv(h, &tw, sizeof tw);
    char *js = compat_config_json(&s->cfg);
    if (js) h = fnv(h, js, strlen(js));
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

static void step_scales(const CompatConfig *c, double n_answer, double n_distill, double *ce, double *kd) {
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
            Na += is_answer(&E[ex[i]], j);
            Nd += covered(ct, &E[ex[i]], j);
        }
    double ce_s, kd_s;
    step_scales(&ct->cfg, Na, Nd, &ce_s, &kd_s);
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
                int ans = is_answer(x, j), dist = covered(ct, x, j);
                size_t p = ct->pos_off[ex[i0 + r]] + j;
                const TeacherPos *t1 = dist ? &ct->tp[0][p] : NULL, *t2 = dist && ct->tp[1] ? &ct->tp[1][p] : NULL;
                CompatTokenOut o;
                l = compat_token_loss(&ct->cfg, z, V, x->ids[j + 1], ans, dist, seq_flag[r], t1, t2, ce_s, kd_s, z,
                                      ct->scratch + (size_t)omp_get_thread_num() * 3 * V, &o);
                meta = (o.masked & dist) | (dist << 1) | (ans << 2) | ((o.student_correct & ans) << 3);
            }
            ct->pos_loss[q] = l;
            ct->pos_meta[q] = meta;
        }
        for (int q = 0; q < b * Tm; q++) {
            total += ct->pos_loss[q];
            int m = ct->pos_meta[q];
            ct->st.masked += m & 1;
            ct->st.distilled += (m >> 1) & 1;
            ct->st.answers += (m >> 2) & 1;
            ct->st.answers_correct += (m >> 3) & 1;
        }
        if (model_backward_logits(&t->rs, NULL, &t->lora_grad) != 0) return -1;
    }
    *loss = total;
    return 0;
}

/* Choice level. A packed row (model_forward_train_packed) holds one example: its
 * context once (segment 0, positions 0 .. n_ctx - 1), then each choice c but its last
 * token as segment c + 1 at positions n_ctx .. n_ctx + n_cont[c] - 2; choice c's token j
 * is predicted at the context's last position (j = 0, shared by every choice) or at its
 * segment's position j - 1. A plain row (the fallback for an example whose packed row is
 * longer than the run state's chunk) is context + choice. */
static int packed_len(const TaskMCTokens *tk) {
    int n = tk->n_ctx;
    for (int c = 0; c < tk->n_choices; c++) n += tk->n_cont[c] > 1 ? tk->n_cont[c] - 1 : 0;
    return n;
}

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
        if (packed && packed_len(tk) > Tm) Tm = packed_len(tk);
        for (int c = 0; c < tk->n_choices; c++) {
            row_ex[rows] = r;
            row_c[rows++] = c;
            if (!packed && tk->n_ctx + tk->n_cont[c] - 1 > Tm) Tm = tk->n_ctx + tk->n_cont[c] - 1;
        }
    }
    if (packed) {
        for (int r = 0; r < b; r++) {
            const TaskMCTokens *tk = &ct->mc[E[exs[r]].mc];
            int *tok = ct->rows_tok + (size_t)r * Tm, *pos = ct->pk_pos + (size_t)r * Tm, *seg = ct->pk_seg + (size_t)r * Tm;
            int k = 0;
            for (int i = 0; i < tk->n_ctx; i++, k++) { tok[k] = tk->ctx[i]; pos[k] = i; seg[k] = 0; }
            for (int c = 0; c < tk->n_choices; c++) {
                row_start[ex_q0[r] + c] = k;
                row_base[ex_q0[r] + c] = r * Tm;
                for (int j = 0; j + 1 < tk->n_cont[c]; j++, k++) { tok[k] = tk->cont[c][j]; pos[k] = tk->n_ctx + j; seg[k] = c + 1; }
            }
            for (; k < Tm; k++) { tok[k] = 0; pos[k] = 0; seg[k] = tk->n_choices + 1; } /* padding: a segment of its own */
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
static int step_choice(CompatTrainer *ct, Trainer *t, const long *ex, int n, double *loss) {
    const CEx *E = ct->ex[DATA_TRAIN];
    double Na = 0;
    for (int i = 0; i < n; i++)
        if (E[ex[i]].labelled) Na += ct->mc[E[ex[i]].mc].n_cont[E[ex[i]].label];
    double ce_s, kd_s;
    step_scales(&ct->cfg, Na, n, &ce_s, &kd_s);
    int B = t->opt.batch;
    long *pk = ct->mb_ex, *pl = ct->mb_ex + B;
    double total = 0.0;
    int lo = (int)t->shard_lo, hi = (int)t->shard_hi; /* this rank's rows (data parallel; 0..n on one rank) */
    for (int i0 = lo; i0 < hi; i0 += B) {
        int b = hi - i0 < B ? hi - i0 : B, np = 0, nl = 0;
        for (int r = 0; r < b; r++) {
            long e = ex[i0 + r];
            if (!ct->unpacked && packed_len(&ct->mc[E[e].mc]) <= ct->cs.max_chunk) pk[np++] = e;
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

/* Sequence level: per example, the reference row (labelled; with a CE weight) and M1's
 * output row (when its mask is set); rows go through the model B at a time. */
static int step_seq(CompatTrainer *ct, Trainer *t, const long *ex, int n, double *loss) {
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
        for (int j = 1; j < x->len; j++) Na += is_answer(x, j - 1);
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
            if (kd) rl[r] = compat_seq_row_loss(z, V, x->kd_ids, x->kd_mask, len, kd_s, z, &rc_[r]);
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

static int compat_step(Trainer *t, void *ctx, const long *ex, int n, double *loss) {
    CompatTrainer *ct = ctx;
    if (ct->cfg.level == COMPAT_LEVEL_SEQUENCE) return step_seq(ct, t, ex, n, loss);
    return ct->cfg.level == COMPAT_LEVEL_CHOICE ? step_choice(ct, t, ex, n, loss) : step_token(ct, t, ex, n, loss);
}

int compat_trainer_attach(CompatTrainer *ct, Trainer *t) {
    if (t->opt.mode != TRAIN_LORA || !t->lora) return err_set("compat: the trainer must train an adapter (TRAIN_LORA)");
    if (t->data->impl != ct) return err_set("compat: the trainer was made on other data than this compat trainer's");
    int B = t->opt.batch, T = t->data->seq_len, V = ct->V;
    int rows = ct->cfg.level == COMPAT_LEVEL_CHOICE ? B * ct->max_choices : B;
    int lists = ct->cfg.level == COMPAT_LEVEL_SEQUENCE ? 2 * B * t->opt.grad_accum : rows; /* sequence level: 2 rows an example */
    ct->rows_tok = calloc((size_t)rows * T, sizeof *ct->rows_tok);
    ct->scratch = malloc((size_t)cpu_threads() * 3 * V * sizeof(float));
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
        const char *env = getenv("MUSCLE_COMPAT_UNPACKED"), *cap_env = getenv("MUSCLE_COMPAT_PACK_MAX");
        ct->unpacked = env && strcmp(env, "1") == 0;
        long cap = cap_env && *cap_env ? strtol(cap_env, NULL, 10) : 0; /* test knob: the longest packed row allowed */
        int keep = t->opt.recompute ? RS_KEEP_INPUTS : RS_KEEP_ALL, longest = 1;
        for (long i = 0; i < ct->n[DATA_TRAIN]; i++)
            if (ct->ex[DATA_TRAIN][i].mc >= 0 && packed_len(&ct->mc[ct->ex[DATA_TRAIN][i].mc]) > longest)
                longest = packed_len(&ct->mc[ct->ex[DATA_TRAIN][i].mc]);
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
            if (ct->ex[DATA_TRAIN][i].mc >= 0 && packed_len(&ct->mc[ct->ex[DATA_TRAIN][i].mc]) > chunk) too_long++;
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
        char *mp = masks_path(t);
        if (mp) unlink(mp);
        free(mp);
    }
    ct->t = t;
    t->step_fn = compat_step;
    t->step_ctx = ct;
    return 0;
}
