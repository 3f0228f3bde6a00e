/* update/finetune.c - a LoRA adapter trained on a frozen base (train_run.h): on text, on
 * a task's answer tokens (keeping the best epoch), or as a compatibility adapter taught
 * by the old task model M1 and the new one M2 (compat/compat_train.h). */
#include "update/train_run.h"
#include "update/train_run_impl.h"

#include "compat/compat_train.h"
#include "core/dist.h"
#include "core/error.h"
#include "core/file.h"
#include "model/lora_peft.h"
#include "train/data_task.h"
#include "update/bundle.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- keep the best epoch: its values in memory, and in OUT/best for a resumed run ---- */

typedef struct {
    const TrainSpec *s;
    const Model *m;
    const LoraAdapter *ad;
    float *best_values;   /* [ad->n_floats] the adapter of the best held-out loss so far */
    double best;          /* that loss (INFINITY: none yet) */
    char *best_dir;       /* OUT/best */
} KeepBest;

/* After each validation: when the held-out loss improved, the adapter's values are kept
 * (and written to OUT/best, where a resumed run finds the best of its earlier part). */
static int keep_best_hook(Trainer *t, void *ctx) {
    KeepBest *kb = ctx;
    if (!(t->val_loss < kb->best)) return 0;
    kb->best = t->val_loss;
    memcpy(kb->best_values, kb->ad->data, kb->ad->n_floats * sizeof(float));
    char v[64], st[32];
    snprintf(v, sizeof v, "%.17g", t->val_loss);
    snprintf(st, sizeof st, "%ld", t->adam.step);
    LoraMeta meta[2] = {{"muscle.val_loss", v}, {"muscle.step", st}};
    if (dist_rank() != 0) return 0; /* only rank 0 writes files */
    return lora_save_peft(kb->ad, &kb->m->cfg, kb->best_dir, kb->s->model, meta, 2); /* -1 with err_set: trainer_run stops with it */
}

/* A resumed run: the best of its earlier part, from OUT/best (when there is one). */
static int keep_best_resume(KeepBest *kb) {
    char *v = lora_peft_meta(kb->best_dir, "muscle.val_loss");
    if (!v) return 0;
    kb->best = strtod(v, NULL);
    free(v);
    LoraAdapter best;
    if (lora_load_peft(&best, &kb->m->cfg, kb->best_dir) != 0) return -1;
    memcpy(kb->best_values, best.data, kb->ad->n_floats * sizeof(float));
    lora_free(&best);
    return 0;
}

/* ---- finetune --task: labelled data (answer-token masks) ---- */

static int task_load_all(const TrainSpec *s, TaskSet *tr, TaskSet *va, TaskSet *tf, TaskPrompt *p) {
    TaskLoadOptions lo;
    task_load_options_default(&lo);
    lo.skip_bad = s->data.skip_bad;
    if (s->data.task_format && task_format_from_name(s->data.task_format, &lo.format) != 0) return -1;
    if (task_set_load(tr, s->data.task, &lo) != 0) return -1;
    if (s->data.val && task_set_load(va, s->data.val, &lo) != 0) return -1;
    if (tf && s->compat.transfer && task_set_load(tf, s->compat.transfer, &lo) != 0) return -1;
    return task_prompt_setup(p, tr, s->data.prompt_file, s->data.prompt, s->data.answer, NULL, 0);
}

static int max_len(const TrainSpec *s, const Model *m) { return (int)(s->data.seq_len ? s->data.seq_len + 1 : m->cfg.seq_len); }

static int open_task_data(const TrainSpec *s, const Model *m, const Tokenizer *tok, TrainData *d) {
    TaskSet tr, va;
    TaskPrompt p;
    memset(&tr, 0, sizeof tr);
    memset(&va, 0, sizeof va);
    memset(&p, 0, sizeof p);
    int rc = task_load_all(s, &tr, &va, NULL, &p);
    TaskDataOptions o;
    task_data_options_default(&o);
    o.max_len = max_len(s, m);
    if (s->data.val_frac >= 0) o.val_frac = s->data.val_frac;
    o.seed = s->t.seed;
    if (!rc) rc = data_task_open(d, &tr, s->data.val ? &va : NULL, &p, tok, &o);
    if (rc && s->data.seq_len && strstr(err_msg(), "max_len")) /* max_len is --seq-len + 1 (the next-token target): say so */
        err_prefix("--seq-len %ld (examples of up to %d tokens)", s->data.seq_len, o.max_len);
    if (!rc && !train_run_quiet(s))
        fprintf(stderr, "muscle finetune: %s: %ld training and %ld held-out examples of up to %d tokens%s\n", s->data.task,
                d->n[DATA_TRAIN], d->n[DATA_VAL], d->seq_len + 1, o.n_unlabeled ? " (unlabelled instances skipped)" : "");
    task_prompt_free(&p);
    task_set_free(&tr);
    task_set_free(&va);
    return rc;
}

/* ---- finetune --compat: the old teacher, the data, the step hook ---- */

typedef struct {
    ModelBundle m1;        /* the old task model: M1's base + adapter */
    LoraAdapter *ens;      /* ensemble and mixture teachers: the K new adapters */
    const LoraAdapter **ens_p;
    int n_ens;
    CompatTrainer *ct;
    TaskSet tr, va, tf;
    TaskPrompt p;
} CompatRun;

static void compat_run_free(CompatRun *c) {
    compat_trainer_free(c->ct);
    for (int i = 0; i < c->n_ens; i++) lora_free(&c->ens[i]);
    free(c->ens);
    free(c->ens_p);
    model_bundle_free(&c->m1);
    task_prompt_free(&c->p);
    task_set_free(&c->tr);
    task_set_free(&c->va);
    task_set_free(&c->tf);
    memset(c, 0, sizeof *c);
}

static int open_compat_data(const TrainSpec *s, const Model *m, const Tokenizer *tok, const LoraAdapter *a2, CompatRun *c, TrainData *d) {
    const CompatRunSpec *cs = &s->compat;
    /* M1's own tokenizer when it has one (across tokenizers: compat/compat_xtok.h) */
    BundleSpec old = {.model = cs->old_model, .adapter = cs->old_adapter, .bf16 = s->adapter.bf16, .tok = BUNDLE_TOK_OPTIONAL,
                      .model_label = "--old-model", .adapter_label = "--old-adapter"};
    if (model_bundle_load(&c->m1, &old) != 0) return -1;
    if (task_load_all(s, &c->tr, &c->va, &c->tf, &c->p) != 0) return -1;
    if (cs->ensemble) { /* the K new adapters of an ensemble or mixture teacher, on the new base */
        char *list = strdup(cs->ensemble), *save = NULL;
        int cap = 1;
        for (const char *q = cs->ensemble; *q; q++) cap += *q == ',';
        c->ens = calloc((size_t)cap, sizeof *c->ens);
        c->ens_p = calloc((size_t)cap, sizeof *c->ens_p);
        if (!list || !c->ens || !c->ens_p) {
            free(list);
            return err_set("out of memory");
        }
        for (char *w = strtok_r(list, ",", &save); w; w = strtok_r(NULL, ",", &save)) {
            if (!*w) continue;
            if (lora_load_peft(&c->ens[c->n_ens], &m->cfg, w) != 0) {
                err_prefix("--ensemble-adapters %s", w); /* w points into list */
                free(list);
                return -1;
            }
            c->ens_p[c->n_ens] = &c->ens[c->n_ens];
            c->n_ens++;
        }
        free(list);
        if (c->n_ens == 0) return err_set("--ensemble-adapters '%s': no adapter in the list", cs->ensemble);
    }
    CompatSetup su;
    memset(&su, 0, sizeof su);
    su.cfg = cs->cfg;
    su.old_model = &c->m1.model;
    su.old_adapter = model_bundle_adapter(&c->m1);
    su.model = m;
    su.new_adapter = a2;
    su.ensemble = c->ens_p;
    su.n_ensemble = c->n_ens;
    su.train = &c->tr;
    su.val = s->data.val ? &c->va : NULL;
    su.transfer = cs->transfer ? &c->tf : NULL;
    su.prompt = &c->p;
    su.tok = tok;
    su.old_tok = c->m1.tok;
    su.max_len = max_len(s, m);
    su.val_frac = s->data.val_frac >= 0 ? s->data.val_frac : 0.2;
    su.seed = s->t.seed;
    su.batch = s->t.batch;
    su.quiet = train_run_quiet(s);
    su.choice_rows_plain = cs->choice_rows_plain;
    su.pack_max = cs->pack_max;
    su.min_coverage = cs->min_coverage;
    if (compat_trainer_init(&c->ct, &su, d) != 0) return -1;
    const CompatStats *st = compat_trainer_stats(c->ct);
    if (!train_run_quiet(s))
        fprintf(stderr, "muscle finetune --compat %s (%s level, %s tokens, T %g): %ld training, %ld transfer and %ld held-out examples; teachers computed in %.1f s\n",
                compat_method_name(cs->cfg.method), compat_level_name(cs->cfg.level), cs->cfg.answer_only ? "answer" : "all",
                cs->cfg.temperature, st->n_train, st->n_transfer, st->n_val, st->teacher_seconds);
    if (!train_run_quiet(s) && st->mixture_chosen)
        fprintf(stderr, "muscle finetune --compat mixture: a = %g chosen on %ld held-out instances (the mixture's accuracy %.4f, NFR %.4f; M2's accuracy %.4f)\n",
                st->mixture_a, st->mixture_n_val, st->mixture_acc, st->mixture_nfr, st->mixture_acc_m2);
    return 0;
}

/* The settings a resumed compatibility run must share (beyond the trainer's). */
static int compat_settings(const TrainSpec *s, const CompatConfig *cc, CkptSettings *extra) {
    int rc = ckpt_settings_set(extra, "compat", "%s/%s/%s/T%g/ce%g/kd%g", compat_method_name(cc->method), compat_level_name(cc->level),
                               cc->answer_only ? "answer" : "all", cc->temperature, cc->ce_weight, cc->kd_weight);
    if (rc == 0 && cc->method == COMPAT_MIXTURE) rc = ckpt_settings_set(extra, "compat_mixture", "a%g/tol%g", cc->mixture_a, cc->mixture_tol);
    if (rc == 0 && s->compat.ensemble) rc = ckpt_settings_set(extra, "compat_ensemble", "%s", s->compat.ensemble);
    if (rc == 0 && cc->level == COMPAT_LEVEL_SEQUENCE) /* the decoding of the outputs */
        rc = ckpt_settings_set(extra, "compat_decoding", "max%d/nr%d", cc->gen_max_tokens, cc->gen_no_repeat_ngram);
    return rc;
}

static void compat_report(const TrainSpec *s, const CompatTrainer *ct) {
    const CompatStats *st = compat_trainer_stats(ct);
    CompatLevel level = s->compat.cfg.level;
    /* at the sequence level the ensemble and mixture methods distil their own teacher, not M1 */
    const char *teacher = level == COMPAT_LEVEL_SEQUENCE && s->compat.cfg.method == COMPAT_ENSEMBLE   ? "the ensemble"
                          : level == COMPAT_LEVEL_SEQUENCE && s->compat.cfg.method == COMPAT_MIXTURE ? "the mixture"
                                                                                                       : "M1";
    fprintf(stderr, "muscle finetune --compat: the mask chose %s on %.1f%% of %ld distilled %s; the student's answer was right on %.1f%% of %ld answer %s\n",
            teacher, st->distilled ? 100.0 * st->masked / st->distilled : 0.0, st->distilled, level != COMPAT_LEVEL_TOKEN ? "instances" : "positions",
            st->answers ? 100.0 * st->answers_correct / st->answers : 0.0, st->answers, level == COMPAT_LEVEL_CHOICE ? "instances" : "tokens");
}

/* ---- the run ---- */

/* The trainer on data d, from the start to the saved adapter. */
static int finetune_train(const TrainSpec *s, ModelBundle *b, LoraAdapter *ad, TrainData *d, CompatRun *cr, const CkptSettings *extra,
                          const char *compat_json) {
    TrainOptions o;
    train_run_options(s, &o);
    Trainer t;
    if (trainer_init(&t, &b->model, ad, d, &o, s->compat.on ? extra : NULL) != 0) return -1;
    if (s->compat.on && compat_trainer_attach(cr->ct, &t) != 0) {
        trainer_free(&t);
        return -1;
    }
    if (s->t.eval_every < 0) t.opt.eval_every = (t.total_steps + 9) / 10;
    KeepBest kb = {s, &b->model, ad, NULL, INFINITY, NULL};
    int rc = 0;
    if (s->data.task && s->adapter.keep_best && d->n[DATA_VAL]) {
        /* validation at the end of every epoch; the best adapter is kept */
        long per_step = (long)s->t.batch * s->t.grad_accum, per_epoch = (d->n[DATA_TRAIN] + per_step - 1) / per_step;
        if (s->t.eval_every < 0) t.opt.eval_every = per_epoch > 0 ? per_epoch : 1;
        kb.best_dir = file_join(s->out, "best");
        kb.best_values = malloc(ad->n_floats * sizeof(float));
        if (!kb.best_dir || !kb.best_values) rc = err_set("out of memory");
        if (rc == 0 && s->t.resume) rc = keep_best_resume(&kb);
        t.on_eval = keep_best_hook;
        t.on_eval_ctx = &kb;
    }
    if (rc == 0) {
        train_run_summary(s, &t, ad->n_floats);
        rc = trainer_run(&t);
    }
    if (rc == 0 && kb.best_values && kb.best < INFINITY) { /* the final adapter is the best epoch's */
        memcpy(ad->data, kb.best_values, ad->n_floats * sizeof(float));
        if (!o.quiet && !isnan(kb.best)) fprintf(stderr, "muscle finetune: keeping the adapter with the best held-out loss %.4f\n", kb.best);
    }
    if (rc == 0 && dist_rank() == 0) {
        char *js = train_run_record(s, &t, 0);
        LoraMeta meta[2] = {{"muscle.training", js ? js : "{}"}, {"muscle.compat", compat_json ? compat_json : "{}"}};
        rc = lora_save_peft(ad, &b->model.cfg, s->out, s->model, meta, s->compat.on ? 2 : 1);
        free(js);
    }
    if (rc == 0 && s->compat.on && !o.quiet) compat_report(s, cr->ct);
    if (rc == 0 && dist_rank() == 0) rc = train_run_write_record(s, &t);
    rc = train_run_finish(s, &t, rc);
    trainer_free(&t);
    free(kb.best_values);
    free(kb.best_dir);
    return rc;
}

int finetune_run(const TrainSpec *s) {
    ModelBundle b;
    BundleSpec bs = {.model = s->model, .tokenizer = s->tokenizer, .bf16 = s->adapter.bf16};
    if (model_bundle_load(&b, &bs) != 0) return -1;
    const AdapterSpec *as = &s->adapter;
    LoraAdapter ad;
    int rc;
    if (as->init) {
        rc = lora_load_peft(&ad, &b.model.cfg, as->init);
    } else {
        rc = lora_init(&ad, &b.model.cfg, (int)as->rank, (float)(as->alpha > 0 ? as->alpha : 2.0 * (double)as->rank), as->rslora, as->targets);
        if (rc == 0) lora_reset_peft(&ad, s->t.seed);
    }
    if (rc != 0) {
        model_bundle_free(&b);
        return -1;
    }
    TrainData d;
    CompatRun cr;
    memset(&cr, 0, sizeof cr);
    CkptSettings extra = {0};
    char *cjs = NULL;
    if (s->compat.on) {
        rc = open_compat_data(s, &b.model, b.tok, &ad, &cr, &d);
        cjs = rc == 0 ? compat_config_json(compat_trainer_config(cr.ct)) : NULL; /* the mixture's chosen a */
        if (rc == 0) rc = compat_settings(s, &s->compat.cfg, &extra);
    } else if (s->data.task) {
        rc = open_task_data(s, &b.model, b.tok, &d);
    } else {
        TextDataOptions dopt;
        train_run_text_options(s, &b.model, &dopt);
        rc = data_text_open(&d, s->data.data, &dopt, b.tok);
    }
    if (rc == 0) {
        rc = finetune_train(s, &b, &ad, &d, &cr, &extra, cjs);
        data_free(&d);
    }
    compat_run_free(&cr);
    ckpt_settings_free(&extra);
    free(cjs);
    lora_free(&ad);
    model_bundle_free(&b);
    return rc;
}
