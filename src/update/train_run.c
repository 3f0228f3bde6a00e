/* update/train_run.c - the defaults, the run's record (training.json), the progress
 * lines, and pretraining (train_run.h). Finetuning: finetune.c. */
#include "update/train_run.h"
#include "update/train_run_impl.h"

#include "core/cpu.h"
#include "core/dist.h"
#include "core/error.h"
#include "core/file.h"
#include "core/lock.h"
#include "update/bundle.h"

#include <cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

void train_spec_default(TrainSpec *s, TrainRunKind kind) {
    memset(s, 0, sizeof *s);
    s->kind = kind;
    s->data.format = DATA_FMT_AUTO;
    s->data.val_frac = -1;
    s->out_dtype = DT_F32;
    train_options_default(&s->t, kind == TRAIN_RUN_FINETUNE ? TRAIN_LORA : TRAIN_FULL);
    s->t.eval_every = -1;
    s->adapter.keep_best = 1; /* (finetune --task) */
    s->t.val_max = 256; /* 64K tokens at --seq-len 256: a steady estimate at a bounded cost */
    if (kind == TRAIN_RUN_FINETUNE) {
        /* the paper's recipe (LoRA on all linear layers, no weight decay, accumulation 8,
         * alpha/rank = 2) at a rank and learning rate that move small models */
        s->t.batch = 4;
        s->t.grad_accum = 8;
        s->t.epochs = 3;
        s->t.lr = 1e-3;
        s->t.adamw.weight_decay = 0.0;
        s->adapter.rank = 8;
        s->adapter.targets = LORA_TARGETS_ALL;
        compat_config_default(&s->compat.cfg);
    } else {
        /* llama2.c's recipe for the TinyStories models, at a CPU's batch */
        s->t.batch = 8;
        s->t.grad_accum = 4;
        s->t.epochs = 1;
        s->t.lr = 5e-4;
        s->t.min_lr = s->t.lr / 10;
        s->t.adamw.weight_decay = 0.1;
    }
}

int train_spec_check(const TrainSpec *s) {
    const TrainDataSpec *d = &s->data;
    const CompatRunSpec *c = &s->compat;
    int fine = s->kind == TRAIN_RUN_FINETUNE;
    if (d->task && d->data) return err_set("give --data or --task, not both");
    if (!d->data && !d->task) return err_set(fine ? "--data FILE or --task FILE is required" : "--data FILE is required");
    if (!d->task && (d->task_format || d->prompt || d->answer || d->prompt_file || d->skip_bad || !s->adapter.keep_best))
        return err_set("--format, --prompt, --answer, --prompt-file, --skip-bad and --no-keep-best go with --task");
    if (!s->out) return err_set("--out DIR is required");
    if (fine) {
        if (!s->model) return err_set("--model is required");
        if (c->on && !d->task) return err_set("--compat trains on a task: give --task");
        if (c->on && !s->adapter.init) return err_set("--compat needs --adapter-init A2, the new task model's adapter (the student starts from it)");
        if (c->on && (!c->old_model || !c->old_adapter)) return err_set("--compat needs the old task model: --old-model M1 --old-adapter A1");
        if (!c->on && (c->old_model || c->old_adapter || c->transfer))
            return err_set("--old-model, --old-adapter, --transfer, --max-tokens and --no-repeat-ngram go with --compat");
        return 0;
    }
    const NewModelSpec *n = &s->shape;
    int shape = n->dim || n->layers || n->heads || n->kv_heads || n->hidden || n->vocab || n->untied;
    if ((s->model != NULL) + (n->config != NULL) + (shape != 0) != 1)
        return err_set("give exactly one of --model M, --config CONFIG.json, or a shape (--dim --layers --heads --hidden)");
    if (shape && (!n->dim || !n->layers || !n->heads || !n->hidden)) return err_set("a new model needs --dim, --layers, --heads and --hidden");
    if (!s->model && !s->tokenizer) return err_set("a new model needs --tokenizer");
    if (shape && n->dim % n->heads) return err_set("--dim %ld is not a multiple of --heads %ld", n->dim, n->heads);
    if (shape && (n->dim / n->heads) % 2) return err_set("--dim / --heads = %ld: the head size must be even (rotary pairs)", n->dim / n->heads);
    return 0;
}

const char *train_run_cmd(const TrainSpec *s) { return s->kind == TRAIN_RUN_FINETUNE ? "finetune" : "pretrain"; }

int train_run_quiet(const TrainSpec *s) { return s->t.quiet || dist_rank() > 0; }

void train_run_options(const TrainSpec *s, TrainOptions *o) {
    *o = s->t;
    if (o->eval_every < 0) o->eval_every = 0; /* resolved once the steps are known */
    o->out_dir = s->out;
    o->quiet = train_run_quiet(s);
}

void train_run_text_options(const TrainSpec *s, const Model *m, TextDataOptions *d) {
    text_data_options_default(d);
    d->format = s->data.format;
    d->val_path = s->data.val;
    d->val_frac = s->data.val ? 0 : s->data.val_frac >= 0 ? s->data.val_frac : 0.05;
    d->seq_len = (int)(s->data.seq_len ? s->data.seq_len : (m->cfg.seq_len < 256 ? m->cfg.seq_len : 256));
}

static void json_num_or_null(cJSON *o, const char *k, double v) {
    if (isfinite(v)) cJSON_AddNumberToObject(o, k, v);
    else cJSON_AddNullToObject(o, k);
}

char *train_run_record(const TrainSpec *s, const Trainer *t, int formatted) {
    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "command", train_run_cmd(s));
    if (s->model) cJSON_AddStringToObject(j, "model", s->model);
    cJSON_AddStringToObject(j, s->data.task ? "task" : "data", s->data.task ? s->data.task : s->data.data);
    if (s->data.val) cJSON_AddStringToObject(j, "val", s->data.val);
    cJSON_AddNumberToObject(j, "train_examples", (double)t->data->n[DATA_TRAIN]);
    cJSON_AddNumberToObject(j, "val_examples", (double)t->data->n[DATA_VAL]);
    cJSON_AddNumberToObject(j, "train_tokens", (double)t->data->n_tokens[DATA_TRAIN]);
    cJSON_AddNumberToObject(j, "val_tokens", (double)t->data->n_tokens[DATA_VAL]);
    cJSON *st = cJSON_AddObjectToObject(j, "settings");
    for (int i = 0; i < t->settings.n; i++) cJSON_AddStringToObject(st, t->settings.v[i].key, t->settings.v[i].value);
    cJSON_AddNumberToObject(j, "steps", (double)t->total_steps);
    json_num_or_null(j, "start_val_loss", t->start_val_loss);
    json_num_or_null(j, "val_loss", t->val_loss);
    char *text = formatted ? cJSON_Print(j) : cJSON_PrintUnformatted(j);
    cJSON_Delete(j);
    return text;
}

int train_run_write_record(const TrainSpec *s, const Trainer *t) {
    char *text = train_run_record(s, t, 1);
    char *path = file_join(s->out, "training.json");
    int rc = text && path ? 0 : err_set("out of memory");
    if (!rc) {
        size_t n = strlen(text);
        text[n] = '\n'; /* cJSON's buffer holds the NUL here: write it as the final newline */
        rc = file_write_all_atomic(path, text, n + 1);
    }
    free(text);
    free(path);
    return rc;
}

void train_run_summary(const TrainSpec *s, const Trainer *t, uint64_t trainable) {
    if (t->opt.quiet) return;
    const TrainData *d = t->data;
    fprintf(stderr, "muscle %s: %llu trainable parameters; data: %zu documents, %zu + %zu tokens = %ld training + %ld held-out windows of %d; "
                    "%ld steps of %d x %d sequences, lr %g, warm-up %ld, %d threads%s\n",
            train_run_cmd(s), (unsigned long long)trainable, d->n_docs, d->n_tokens[0], d->n_tokens[1], d->n[0], d->n[1], d->seq_len,
            t->total_steps, s->t.batch, s->t.grad_accum, s->t.lr, t->warmup, cpu_threads(), s->t.resume ? ", resuming" : "");
}

int train_run_finish(const TrainSpec *s, const Trainer *t, int rc) {
    if (rc == 0 && !t->opt.quiet)
        fprintf(stderr, "muscle %s: held-out loss %.4f -> %.4f; %ld steps in %.1f s; %s written to %s\n", train_run_cmd(s), t->start_val_loss,
                t->val_loss, t->steps_this_run, t->train_seconds, s->kind == TRAIN_RUN_FINETUNE ? "adapter" : "model", s->out);
    if (rc > 0)
        fprintf(stderr, "muscle: stopped by %s after step %ld of %ld: checkpoint saved in %s/checkpoint; continue with --resume\n",
                rc == 2 ? "SIGINT" : rc == 15 ? "SIGTERM" : "a signal", t->adam.step, t->total_steps, s->out);
    return rc;
}

/* A new model's random weights, of the shape of --config or of the numbers. */
static int new_model(const TrainSpec *s, Model *m) {
    const NewModelSpec *n = &s->shape;
    ModelConfig c;
    memset(&c, 0, sizeof c);
    Tokenizer *t0 = tok_load(s->tokenizer);
    if (!t0) return -1;
    int rc = 0;
    if (n->config) {
        char *dir = file_is_dir(n->config) ? strdup(n->config) : file_dirname(n->config);
        const char *base = strrchr(n->config, '/');
        base = base ? base + 1 : n->config;
        rc = !file_is_dir(n->config) && strcmp(base, "config.json")
                 ? err_set("--config %s: expected a file named config.json, or a folder holding one", n->config)
                 : hf_config_read(&c, dir);
        free(dir);
    } else {
        c.dim = (int)n->dim;
        c.n_layers = (int)n->layers;
        c.n_heads = (int)n->heads;
        c.n_kv_heads = (int)(n->kv_heads ? n->kv_heads : n->heads);
        c.hidden_dim = (int)n->hidden;
        c.vocab_size = (int)(n->vocab ? n->vocab : tok_vocab_size(t0));
        c.seq_len = (int)(s->data.seq_len ? s->data.seq_len : 256);
        c.rope_theta = 10000.0f;
        c.norm_eps = 1e-5f;
        c.tied = !n->untied;
        c.bos_id = tok_bos_id(t0) >= 0 ? tok_bos_id(t0) : 1;
        c.eos_id = tok_eos_id(t0) >= 0 ? tok_eos_id(t0) : 2;
    }
    tok_free(t0);
    if (rc) return rc;
    ModelLoadOptions lo = {KW_F32, 1};
    return model_init_random(m, &c, &lo, s->t.seed);
}

/* Pretraining: every weight of a loaded or a new model. */
static int pretrain_run(const TrainSpec *s) {
    ModelBundle b;
    int rc;
    if (s->model) {
        BundleSpec bs = {.model = s->model, .tokenizer = s->tokenizer, .writable = 1};
        rc = model_bundle_load(&b, &bs);
    } else {
        memset(&b, 0, sizeof b);
        rc = new_model(s, &b.model);
        if (rc == 0) {
            b.tok = model_tokenizer_load_ex(&b.model, s->tokenizer, &b.tok_path);
            if (!b.tok) {
                model_free(&b.model);
                rc = -1;
            }
        }
    }
    if (rc) return -1;
    TrainOptions o;
    train_run_options(s, &o);
    TextDataOptions dopt;
    train_run_text_options(s, &b.model, &dopt);
    TrainData d;
    Trainer t;
    rc = data_text_open(&d, s->data.data, &dopt, b.tok);
    if (rc == 0) {
        rc = trainer_init(&t, &b.model, NULL, &d, &o, NULL);
        if (rc == 0) {
            if (s->t.eval_every < 0) t.opt.eval_every = (t.total_steps + 9) / 10;
            train_run_summary(s, &t, model_param_count(&b.model));
            rc = trainer_run(&t);
            if (rc == 0 && dist_rank() == 0) rc = model_save_hf(&b.model, s->out, s->out_dtype);
            if (rc == 0 && dist_rank() == 0 && b.tok_path) rc = model_bundle_copy_tokenizer(&b, s->out);
            if (rc == 0 && dist_rank() == 0) rc = train_run_write_record(s, &t);
            rc = train_run_finish(s, &t, rc);
            trainer_free(&t);
        }
        data_free(&d);
    }
    model_bundle_free(&b);
    return rc;
}

int train_run(const TrainSpec *s) {
    /* one run per --out (core/lock.h): a second finetune into the same folder fails at
     * once instead of interleaving train_log.jsonl; rank 0 holds it for every rank */
    DirLock lk = {-1, NULL};
    int made = s->out && !file_is_dir(s->out); /* a failed run leaves no folder it made */
    if (dist_rank() == 0 && s->out && dir_lock_acquire(&lk, s->out, train_run_cmd(s), DIR_LOCK_PRIVATE) != 0) return -1;
    int rc = s->kind == TRAIN_RUN_FINETUNE ? finetune_run(s) : pretrain_run(s);
    if (rc != 0 && made && lk.path) { /* still holding the lock: nobody else can be using the folder */
        unlink(lk.path);
        rmdir(s->out); /* only when empty */
    }
    dir_lock_release(&lk);
    return rc;
}
