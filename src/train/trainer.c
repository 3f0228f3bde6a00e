/* train/trainer.c - the training loop (see trainer.h). */
#include "trainer.h"
#include "core/cpu.h"
#include "core/dist.h"
#include "core/error.h"
#include "core/file.h"

#include <errno.h>
#if defined(__GLIBC__)
#include <malloc.h>
#endif
#include <math.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define LOG_FILE "train_log.jsonl"

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

void train_options_default(TrainOptions *o, TrainMode mode) {
    memset(o, 0, sizeof *o);
    o->mode = mode;
    o->batch = 4;
    o->grad_accum = 1;
    o->epochs = 1.0;
    o->lr = 1e-4;
    o->warmup = -1;
    o->schedule = LR_COSINE;
    o->adamw = adamw_config_default();
    o->adamw.weight_decay = 0.0;
    o->clip = 1.0;
    o->no_decay_norms = 1;
    o->seed = 42;
}

/* ------------------------------------------------------------------------- */
/* data order                                                                 */

static void draw_order(Trainer *t) {
    long n = t->data->n[DATA_TRAIN];
    t->rng_epoch = t->rng.s;
    for (long i = 0; i < n; i++) t->perm[i] = i;
    for (long i = n - 1; i > 0; i--) { /* Fisher-Yates */
        uint64_t x = ((uint64_t)rng_u32(&t->rng) << 32) | rng_u32(&t->rng);
        long j = (long)(x % (uint64_t)(i + 1));
        long tmp = t->perm[i];
        t->perm[i] = t->perm[j];
        t->perm[j] = tmp;
    }
}

static long next_example(Trainer *t) {
    long ex = t->perm[t->index++];
    if (t->index == t->data->n[DATA_TRAIN]) { /* the epoch is done: draw the next order now */
        t->epoch++;
        t->index = 0;
        draw_order(t);
    }
    return ex;
}

/* ------------------------------------------------------------------------- */
/* set-up                                                                     */

static const char *const SCHED_NAMES[] = {"constant", "linear", "cosine"};

static int check_options(const TrainOptions *o, const Model *m, const TrainData *d) {
    if (o->mode != TRAIN_FULL && o->mode != TRAIN_LORA) return err_set("training: unknown mode %d", (int)o->mode);
    if (o->batch < 1 || o->batch > 65536) return err_set("--batch %d: expected 1..65536", o->batch);
    if (o->grad_accum < 1 || o->grad_accum > 65536) return err_set("--grad-accum %d: expected 1..65536", o->grad_accum);
    if (o->steps < 0) return err_set("--steps %ld: expected a count >= 1", o->steps);
    if (o->steps == 0 && !(o->epochs > 0 && o->epochs <= 1e6)) return err_set("--epochs %g: expected a number in (0, 1e6]", o->epochs);
    if (!(o->lr > 0) || !isfinite(o->lr) || o->lr > 10) return err_set("--lr %g: expected a number in (0, 10]", o->lr);
    if (!(o->min_lr >= 0) || o->min_lr > o->lr) return err_set("--min-lr %g: expected a number in [0, --lr %g]", o->min_lr, o->lr);
    if (o->warmup < -1) return err_set("--warmup %ld: expected a step count >= 0", o->warmup);
    if ((unsigned)o->schedule > LR_COSINE) return err_set("--schedule: unknown schedule %d", (int)o->schedule);
    if (!(o->adamw.weight_decay >= 0) || o->adamw.weight_decay > 10) return err_set("--weight-decay %g: expected a number in [0, 10]", o->adamw.weight_decay);
    if (!(o->adamw.beta1 >= 0 && o->adamw.beta1 < 1) || !(o->adamw.beta2 >= 0 && o->adamw.beta2 < 1))
        return err_set("AdamW betas (%g, %g): expected each in [0, 1)", o->adamw.beta1, o->adamw.beta2);
    if (!(o->adamw.eps > 0)) return err_set("AdamW eps %g: expected a number > 0", o->adamw.eps);
    if (!(o->clip >= 0) || !isfinite(o->clip)) return err_set("--clip %g: expected a number >= 0 (0 = off)", o->clip);
    if (o->eval_every < 0) return err_set("--eval-every %ld: expected a step count >= 0", o->eval_every);
    if (o->val_max < 0) return err_set("--val-max %ld: expected a count >= 0", o->val_max);
    if (o->save_every < 0) return err_set("--save-every %ld: expected a step count >= 0", o->save_every);
    if (o->resume && !o->out_dir) return err_set("resuming needs an output folder");
    if (o->bf16 && o->mode != TRAIN_FULL)
        return err_set("training: mixed precision (bf16) of the trainer is for full training; LoRA gets it from a bf16 base model");
    if (d->seq_len < 1 || d->seq_len > m->cfg.seq_len)
        return err_set("--seq-len %d: expected 1..%d (the model's context)", d->seq_len, m->cfg.seq_len);
    if (d->n[DATA_TRAIN] < 1) return err_set("training data: no training example");
    return 0;
}

/* Names of the spans of train_spans_model, in its order (model_params). */
static int model_span_names(Trainer *t) {
    int n = model_params(t->model, NULL, NULL);
    ModelParam *ps = malloc((size_t)n * sizeof *ps);
    if (!ps) return err_set("out of memory");
    model_params(t->model, NULL, ps);
    int k;
    for (k = 0; k < n && k < t->n_spans; k++)
        if (!(t->span_names[k] = strdup(ps[k].name))) break;
    free(ps);
    if (k < n && k < t->n_spans) return err_set("out of memory");
    return n == t->n_spans ? 0 : err_set("training: %d span names for %d spans", n, t->n_spans);
}

/* The shortest text that reads back as the same double. */
static const char *num(char *buf, double v) {
    for (int prec = 6; prec <= 17; prec++) {
        snprintf(buf, 32, "%.*g", prec, v);
        if (strtod(buf, NULL) == v) break;
    }
    return buf;
}

static int add_settings(Trainer *t, const CkptSettings *extra) {
    char n1[32], n2[32];
    const TrainOptions *o = &t->opt;
    const ModelConfig *c = &t->model->cfg;
    CkptSettings *s = &t->settings;
    int rc = 0;
    rc |= ckpt_settings_set(s, "mode", "%s", o->mode == TRAIN_LORA ? "lora" : "full");
    rc |= ckpt_settings_set(s, "model", "dim %d, hidden %d, %d layers, %d heads, %d kv heads, vocab %d, context %d%s",
                            c->dim, c->hidden_dim, c->n_layers, c->n_heads, c->n_kv_heads, c->vocab_size, c->seq_len,
                            c->tied ? ", tied" : "");
    rc |= ckpt_settings_set(s, "weights", "%s", t->model->wtype == KW_BF16 ? "bf16" : "f32");
    if (o->mode == TRAIN_FULL) rc |= ckpt_settings_set(s, "precision", "%s", o->bf16 ? "bf16 mixed (--bf16)" : "fp32");
    rc |= ckpt_settings_set(s, "seq-len", "%d", t->data->seq_len);
    rc |= ckpt_settings_set(s, "batch", "%d", o->batch);
    rc |= ckpt_settings_set(s, "grad-accum", "%d", o->grad_accum);
    rc |= ckpt_settings_set(s, "steps", "%ld", t->total_steps);
    rc |= ckpt_settings_set(s, "lr", "%s", num(n1, o->lr));
    rc |= ckpt_settings_set(s, "min-lr", "%s", num(n1, o->min_lr));
    rc |= ckpt_settings_set(s, "warmup", "%ld", t->warmup);
    rc |= ckpt_settings_set(s, "schedule", "%s", SCHED_NAMES[o->schedule]);
    rc |= ckpt_settings_set(s, "weight-decay", "%s", num(n1, o->adamw.weight_decay));
    rc |= ckpt_settings_set(s, "betas", "%s, %s", num(n1, o->adamw.beta1), num(n2, o->adamw.beta2));
    rc |= ckpt_settings_set(s, "eps", "%s", num(n1, o->adamw.eps));
    rc |= ckpt_settings_set(s, "clip", "%s", num(n1, o->clip));
    if (o->mode == TRAIN_FULL) rc |= ckpt_settings_set(s, "no-decay-norms", "%d", o->no_decay_norms);
    rc |= ckpt_settings_set(s, "seed", "%llu", (unsigned long long)o->seed);
    if (o->mode == TRAIN_LORA) {
        const LoraAdapter *a = t->lora;
        char tg[64] = "";
        for (int i = 0; i < LORA_N_TARGETS; i++)
            if (a->targets & LORA_BIT(i)) {
                if (tg[0]) strcat(tg, ",");
                strcat(tg, lora_target_name((LoraTarget)i));
            }
        rc |= ckpt_settings_set(s, "rank", "%d", a->rank);
        rc |= ckpt_settings_set(s, "alpha", "%s", num(n1, (double)a->alpha));
        rc |= ckpt_settings_set(s, "rslora", "%d", a->rslora);
        rc |= ckpt_settings_set(s, "targets", "%s", tg);
    }
    for (int i = 0; extra && i < extra->n; i++) rc |= ckpt_settings_set(s, extra->v[i].key, "%s", extra->v[i].value);
    rc |= ckpt_settings_set(s, "data", "%ld training and %ld held-out examples, content hash %016llx", t->data->n[DATA_TRAIN],
                            t->data->n[DATA_VAL], (unsigned long long)t->data->hash);
    rc |= ckpt_settings_set(s, o->mode == TRAIN_LORA ? "base-weights" : "initial-weights", "hash %016llx",
                            (unsigned long long)train_hash_model(t->model));
    if (o->mode == TRAIN_LORA) rc |= ckpt_settings_set(s, "initial-adapter", "hash %016llx", (unsigned long long)train_hash_lora(t->lora));
    return rc ? -1 : 0;
}

static char *out_path(const Trainer *t, const char *name) { return file_join(t->opt.out_dir, name); }

int trainer_init(Trainer *t, Model *m, LoraAdapter *lora, TrainData *d, const TrainOptions *o, const CkptSettings *extra) {
    memset(t, 0, sizeof *t);
    t->val_loss = t->start_val_loss = NAN;
    if (check_options(o, m, d) != 0) return -1;
    if (o->mode == TRAIN_LORA && !lora) return err_set("training: LoRA mode needs an adapter");
    if (o->mode == TRAIN_FULL && lora) return err_set("training: full training takes no adapter");
    if (o->mode == TRAIN_FULL && (!m->writable || m->wtype != KW_F32))
        return err_set("training: full training needs a writable fp32 model (ModelLoadOptions.writable = 1)");
    if (lora && lora_check(lora, m) != 0) return -1;
    t->model = m;
    t->lora = lora;
    t->data = d;
    t->opt = *o;
    if (dist_rank() > 0) t->opt.quiet = 1; /* rank 0 speaks for the job */
    t->tty = isatty(2);
    int B = o->batch, G = o->grad_accum, T = d->seq_len;
    long per_step = (long)B * G;
    t->total_steps = o->steps ? o->steps : (long)ceil(o->epochs * (double)d->n[DATA_TRAIN] / (double)per_step);
    if (t->total_steps < 1) t->total_steps = 1;
    t->warmup = o->warmup >= 0 ? o->warmup : (t->total_steps + 19) / 20 < 500 ? (t->total_steps + 19) / 20 : 500;
    t->sched = (LrSchedule){o->lr, o->min_lr, t->warmup, t->total_steps, o->schedule};

    /* the output folder first: a bad --out should not wait for the memory planning
     * (data parallel: rank 0's, the one that writes; its error stops the job) */
    if (o->out_dir && dist_rank() == 0) {
        char *cdir = out_path(t, "checkpoint");
        int rc = cdir ? 0 : err_set("out of memory");
        if (rc == 0 && o->resume && !ckpt_exists(cdir))
            rc = err_set("%s/%s: no checkpoint to resume from (one is written every --save-every steps and at the end)", cdir, CKPT_FILE);
        if (rc == 0 && !o->resume && ckpt_exists(cdir))
            rc = err_set("%s/%s: this folder holds a training run already: continue it with --resume, or train into a new --out folder",
                         cdir, CKPT_FILE);
        if (rc == 0) rc = file_mkdirs(o->out_dir);
        if (rc == 0) rc = file_mkdirs(cdir);
        if (rc == 0 && access(cdir, W_OK) != 0) rc = err_set("%s: not writable: %s", cdir, strerror(errno));
        free(cdir);
        if (rc) return -1;
    }

    /* mixed precision: the run state computes with the bf16 view; the gradients, the
     * optimizer and the checkpoints see the fp32 masters */
    if (o->bf16 && mixed_init(&t->mixed, m) != 0) return -1;
#if defined(__GLIBC__)
    /* The mixed products round their operands into buffers allocated per call (the
     * classifier's gradient alone: 65 MB at 4 x 256 tokens and a 32000 vocabulary); above
     * glibc's mmap threshold every call maps, faults in and unmaps them again, which
     * measured a quarter of a 15M step (bench/train_profile.sh). Keep such blocks in the
     * heap for reuse instead; memory use is what the step's peak needs anyway. */
    if (o->bf16) {
        mallopt(M_MMAP_THRESHOLD, 1 << 30);
        mallopt(M_TRIM_THRESHOLD, 1 << 30);
    }
#endif
    int rc = runstate_init(&t->rs, o->bf16 ? &t->mixed.view : m, B, T, T, o->recompute ? RS_KEEP_INPUTS : RS_KEEP_ALL);
    if (rc) {
        mixed_free(&t->mixed);
        return -1;
    }
    if (o->mode == TRAIN_LORA) {
        t->n_spans = 1;
        t->spans = calloc(1, sizeof *t->spans);
        t->span_names = calloc(1, sizeof *t->span_names);
        if (!t->spans || !t->span_names || !(t->span_names[0] = strdup("lora"))) rc = err_set("out of memory");
        if (!rc) rc = lora_init_like(&t->lora_grad, lora);
        if (!rc) rc = runstate_set_lora(&t->rs, lora);
        if (!rc) rc = train_spans_lora(lora, &t->lora_grad, &t->spans[0]);
    } else {
        t->n_spans = train_spans_model_count(m);
        t->spans = calloc((size_t)t->n_spans, sizeof *t->spans);
        t->span_names = calloc((size_t)t->n_spans, sizeof *t->span_names);
        if (!t->spans || !t->span_names) rc = err_set("out of memory");
        if (!rc) rc = model_grads_init(&t->grads, m);
        if (!rc) rc = train_spans_model(m, &t->grads, o->no_decay_norms, t->spans, t->n_spans) == t->n_spans ? 0 : -1;
        if (!rc) rc = model_span_names(t);
    }
    if (!rc) rc = adamw_init(&t->adam, &o->adamw, train_spans_total(t->spans, t->n_spans));
    if (!rc) {
        t->perm = malloc((size_t)d->n[DATA_TRAIN] * sizeof *t->perm);
        t->step_examples = malloc((size_t)B * G * sizeof *t->step_examples);
        if (!t->perm || !t->step_examples) rc = err_set("out of memory: the order of %ld examples", d->n[DATA_TRAIN]);
    }
    if (!rc) rc = train_batch_init(&t->batch, B * G, T);
    if (!rc) rc = train_batch_init(&t->vbatch, B, T);
    if (!rc) rc = add_settings(t, extra);
    if (rc) {
        trainer_free(t);
        return -1;
    }
    rng_seed(&t->rng, o->seed ^ 0x6461746161616161ull); /* "data" stream of the seed */
    draw_order(t);
    return 0;
}

void trainer_free(Trainer *t) {
    if (t->log) fclose(t->log);
    runstate_free(&t->rs);
    mixed_free(&t->mixed);
    if (t->grads.data) model_grads_free(&t->grads);
    if (t->lora_grad.data) lora_free(&t->lora_grad);
    for (int i = 0; t->span_names && i < t->n_spans; i++) free(t->span_names[i]);
    free(t->span_names);
    free(t->spans);
    adamw_free(&t->adam);
    free(t->perm);
    free(t->step_examples);
    train_batch_free(&t->batch);
    train_batch_free(&t->vbatch);
    ckpt_settings_free(&t->settings);
    kmm_scratch_release(); /* the products' per-thread buffers (the training's operand copies are the large ones) */
    memset(t, 0, sizeof *t);
}

/* ------------------------------------------------------------------------- */
/* steps                                                                      */

static int step_finish(Trainer *t, double loss, long positions, double t0, long step);

/* Drops the positions after the last one with a non-zero weight in any of the B rows
 * of T (padding of short task examples: causal attention makes them irrelevant to the
 * positions before) and packs the rows to the new length n, in place. Returns n. */
static int trim_rows(int *tok, int *tgt, float *w, int B, int T) {
    int n = 1;
    for (int r = 0; r < B; r++)
        for (int j = T - 1; j >= n; j--)
            if (w[(size_t)r * T + j] != 0.0f) {
                n = j + 1;
                break;
            }
    if (n == T) return T;
    for (int r = 1; r < B; r++) {
        memmove(tok + (size_t)r * n, tok + (size_t)r * T, (size_t)n * sizeof *tok);
        memmove(tgt + (size_t)r * n, tgt + (size_t)r * T, (size_t)n * sizeof *tgt);
        memmove(w + (size_t)r * n, w + (size_t)r * T, (size_t)n * sizeof *w);
    }
    return n;
}

/* Data parallel: the sum over the ranks of the gradients (every span's, one buffer)
 * and of the loss. */
static int reduce_ranks(Trainer *t, double *loss) {
    if (!dist_active()) return 0;
    float *g = t->opt.mode == TRAIN_LORA ? t->lora_grad.data : t->grads.data;
    size_t n = t->opt.mode == TRAIN_LORA ? t->lora_grad.n_floats : t->grads.n_floats;
    if (dist_allreduce_sum_f32(g, n) != 0) return -1;
    return dist_allreduce_sum_f64(loss, 1);
}

int trainer_step(Trainer *t) {
    const TrainOptions *o = &t->opt;
    int B = o->batch, G = o->grad_accum, T = t->data->seq_len;
    double t0 = now_s(), c0 = dist_comm_seconds();
    long step = t->adam.step + 1; /* for messages: 1-based */
    for (int r = 0; r < B * G; r++) t->step_examples[r] = next_example(t);
    dist_shard((long)B * G, dist_rank(), dist_size(), &t->shard_lo, &t->shard_hi);
    int lo = (int)t->shard_lo, hi = (int)t->shard_hi;
    if (t->step_fn) {
        train_spans_zero_grads(t->spans, t->n_spans);
        double loss = 0.0;
        if (t->step_fn(t, t->step_ctx, t->step_examples, B * G, &loss) != 0) return err_prefix("step %ld", step);
        if (reduce_ranks(t, &loss) != 0) return err_prefix("step %ld", step);
        t->comm_seconds = dist_comm_seconds() - c0;
        return step_finish(t, loss, B * G * T, t0, step);
    }
    for (int r = 0; r < B * G; r++)
        if (data_fill_row(t->data, DATA_TRAIN, t->step_examples[r], &t->batch, r) != 0) return -1;
    t->batch.B = B * G;
    double norm = train_weight_sum(t->batch.weights, (size_t)B * G * T);
    if (!(norm > 0)) return err_set("step %ld: every position of the batch has loss weight 0: nothing to learn from", step);
    train_spans_zero_grads(t->spans, t->n_spans);
    double loss = 0.0;
    /* this rank's rows (all of them on one rank: G micro-batches of B) */
    for (int r0 = lo; r0 < hi; r0 += B) {
        int b = hi - r0 < B ? hi - r0 : B;
        size_t off = (size_t)r0 * T;
        if (train_weight_sum(t->batch.weights + off, (size_t)b * T) == 0.0) continue; /* adds nothing */
        double l;
        int n = trim_rows(t->batch.tokens + off, t->batch.targets + off, t->batch.weights + off, b, T);
        if (model_loss(&t->rs, t->batch.tokens + off, t->batch.targets + off, t->batch.weights + off, b, n, norm, &l, NULL) != 0 ||
            model_backward(&t->rs, o->mode == TRAIN_FULL ? &t->grads : NULL, o->mode == TRAIN_LORA ? &t->lora_grad : NULL) != 0)
            return err_prefix("step %ld", step);
        loss += l;
    }
    if (reduce_ranks(t, &loss) != 0) return err_prefix("step %ld", step);
    t->comm_seconds = dist_comm_seconds() - c0;
    return step_finish(t, loss, B * G * T, t0, step);
}

/* Clipping, the optimizer step and the step's numbers. */
static int step_finish(Trainer *t, double loss, long positions, double t0, long step) {
    const TrainOptions *o = &t->opt;
    if (!isfinite(loss)) return err_set("step %ld: the loss is %g: training diverged (try a lower --lr)", step, loss);
    double gn = o->clip > 0 ? grad_clip_global_norm(t->spans, t->n_spans, o->clip) : grad_global_norm(t->spans, t->n_spans);
    if (!isfinite(gn)) return err_set("step %ld: the gradient norm is %g: training diverged (try a lower --lr)", step, gn);
    double lr = lr_schedule_at(&t->sched, t->adam.step);
    if (adamw_step(&t->adam, t->spans, t->n_spans, lr) != 0) return -1;
    if (o->bf16) mixed_refresh(&t->mixed); /* the next products see the updated masters */
    t->loss = loss;
    t->grad_norm = gn;
    t->lr = lr;
    t->step_seconds = now_s() - t0;
    t->tokens_per_s = (double)positions / (t->step_seconds > 0 ? t->step_seconds : 1e-9);
    t->train_seconds += t->step_seconds;
    t->comm_total += t->comm_seconds;
    t->steps_this_run++;
    return 0;
}

int trainer_eval(Trainer *t) {
    long n = t->data->n[DATA_VAL];
    if (t->opt.val_max > 0 && n > t->opt.val_max) n = t->opt.val_max;
    if (n == 0) {
        t->val_loss = NAN;
        t->val_tokens = 0;
        return 0;
    }
    int B = t->opt.batch, T = t->data->seq_len, R = dist_rank(), N = dist_size();
    double sum = 0.0, wsum = 0.0;
    for (long i = 0; i < n; i += B) {
        if ((i / B) % N != R) continue; /* data parallel: micro-batch k is rank k mod N's */
        int rows = (int)(n - i < B ? n - i : B);
        for (int r = 0; r < rows; r++)
            if (data_fill_row(t->data, DATA_VAL, i + r, &t->vbatch, r) != 0) return -1;
        double w = train_weight_sum(t->vbatch.weights, (size_t)rows * T), l;
        if (w == 0.0) continue;
        int n = trim_rows(t->vbatch.tokens, t->vbatch.targets, t->vbatch.weights, rows, T);
        /* divisor 1: the loss is the weighted sum of the positions' -log p */
        if (model_loss(&t->rs, t->vbatch.tokens, t->vbatch.targets, t->vbatch.weights, rows, n, 1.0, &l, NULL) != 0)
            return err_prefix("validation");
        sum += l;
        wsum += w;
    }
    t->rs.have_loss = 0; /* nothing to differentiate */
    if (dist_active()) {
        double v[2] = {sum, wsum};
        if (dist_allreduce_sum_f64(v, 2) != 0) return err_prefix("validation");
        sum = v[0];
        wsum = v[1];
    }
    t->val_loss = wsum > 0 ? sum / wsum : NAN;
    t->val_tokens = wsum;
    return 0;
}

/* ------------------------------------------------------------------------- */
/* checkpoints                                                                */

static int state_tensors(Trainer *t, CkptTensor *ct) {
    int k = 0;
    for (int i = 0; i < t->n_spans; i++) ct[k++] = (CkptTensor){t->span_names[i], t->spans[i].param, t->spans[i].n};
    ct[k++] = (CkptTensor){"adamw.m", t->adam.m, t->adam.n};
    ct[k++] = (CkptTensor){"adamw.v", t->adam.v, t->adam.n};
    return k;
}

/* Data parallel: every rank must hold the same parameters (the same reduced gradients
 * and optimizer step); checked before each checkpoint with a hash of them. */
static int check_ranks_agree(Trainer *t) {
    if (!dist_active()) return 0;
    uint64_t h = 0xcbf29ce484222325ull;
    for (int i = 0; i < t->n_spans; i++) h = train_hash_bytes(h, t->spans[i].param, t->spans[i].n * sizeof(float));
    uint64_t h0 = h;
    if (dist_bcast(&h0, sizeof h0, 0) != 0) return -1;
    int bad = h != h0;
    if (dist_allreduce_max_int(&bad) != 0) return -1;
    if (bad) return err_set("step %ld: the parameters differ between the ranks (rank %d: hash %016llx, rank 0: %016llx): not saving",
                            t->adam.step, dist_rank(), (unsigned long long)h, (unsigned long long)h0);
    return 0;
}

int trainer_save(Trainer *t) {
    if (!t->opt.out_dir) return err_set("training: no output folder to save a checkpoint in");
    if (check_ranks_agree(t) != 0) return -1;
    if (dist_rank() != 0) return 0; /* only rank 0 writes files */
    CkptTensor *ct = malloc((size_t)(t->n_spans + 2) * sizeof *ct);
    char *cdir = out_path(t, "checkpoint");
    int rc = ct && cdir ? 0 : err_set("out of memory");
    if (!rc) {
        int n = state_tensors(t, ct);
        CkptPos p = {t->adam.step, t->total_steps, t->epoch, t->index, t->rng_epoch, cpu_threads(), t->val_loss, t->start_val_loss};
        rc = ckpt_save(cdir, ct, n, &p, &t->settings);
    }
    free(ct);
    free(cdir);
    return rc;
}

/* Rewrites the log keeping the lines of steps <= last (atomically). */
static int log_cut(Trainer *t, long last) {
    char *path = out_path(t, LOG_FILE);
    if (!path) return err_set("out of memory");
    if (!file_exists(path)) {
        free(path);
        return 0;
    }
    size_t n;
    char *text = file_read_all(path, &n, 0);
    if (!text) {
        free(path);
        return -1;
    }
    size_t keep = 0;
    for (size_t p = 0; p < n;) {
        char *nl = memchr(text + p, '\n', n - p);
        if (!nl) break; /* a torn last line */
        long step;
        if (sscanf(text + p, "{\"step\":%ld", &step) != 1 || step > last) break;
        p = (size_t)(nl - text) + 1;
        keep = p;
    }
    int rc = file_write_all_atomic(path, text, keep);
    free(text);
    free(path);
    return rc;
}

int trainer_resume(Trainer *t) {
    CkptTensor *ct = malloc((size_t)(t->n_spans + 2) * sizeof *ct);
    char *cdir = out_path(t, "checkpoint");
    if (!ct || !cdir) {
        free(ct);
        free(cdir);
        return err_set("out of memory");
    }
    int n = state_tensors(t, ct);
    CkptPos p;
    memset(&p, 0, sizeof p);
    char *cpath = file_join(cdir, CKPT_FILE);
    int rc = 0;
    if (dist_rank() == 0) { /* data parallel: rank 0 reads, the others receive */
        rc = ckpt_load(cdir, ct, n, &p, &t->settings);
        if (!rc && (p.total_steps != t->total_steps || p.step > p.total_steps))
            rc = err_set("%s: step %ld of %ld: does not fit this run of %ld steps", cpath, p.step, p.total_steps, t->total_steps);
        if (!rc && (p.index >= t->data->n[DATA_TRAIN]))
            rc = err_set("%s: data position %ld is past the %ld training examples", cpath, p.index, t->data->n[DATA_TRAIN]);
    }
    if (dist_active()) {
        int rc0 = rc;
        if (dist_bcast(&rc0, sizeof rc0, 0) != 0) rc = -1;
        else if (rc0 != 0 && dist_rank() > 0)
            rc = err_set("%s: cannot resume: rank 0 could not read the checkpoint (see its message)", cpath ? cpath : CKPT_FILE);
        for (int i = 0; i < n && rc == 0 && rc0 == 0; i++) rc = dist_bcast(ct[i].data, ct[i].n * sizeof(float), 0);
        if (rc == 0 && rc0 == 0) rc = dist_bcast(&p, sizeof p, 0);
    }
    if (!rc) {
        t->adam.step = p.step;
        t->epoch = p.epoch;
        t->index = p.index;
        t->rng.s = p.rng;
        draw_order(t); /* the epoch's order, and the generator where the run left it */
        if (t->opt.bf16) mixed_refresh(&t->mixed); /* the bf16 copies of the restored masters */
        t->val_loss = p.val_loss;
        t->start_val_loss = p.start_val_loss;
        if (p.threads != cpu_threads() && !t->opt.quiet)
            fprintf(stderr, "muscle: note: the checkpoint was made with %d threads, this run has %d: the result will not be "
                            "bit-identical to an uninterrupted run (set OMP_NUM_THREADS=%d for that)\n",
                    p.threads, cpu_threads(), p.threads);
        if (dist_rank() == 0) rc = log_cut(t, p.step);
    }
    free(cpath);
    free(ct);
    free(cdir);
    return rc;
}

/* ------------------------------------------------------------------------- */
/* progress and log                                                           */

static void fmt_duration(char *buf, size_t n, double s) {
    if (!(s >= 0) || s > 1e8) snprintf(buf, n, "?");
    else if (s < 60) snprintf(buf, n, "%.0fs", s);
    else if (s < 3600) snprintf(buf, n, "%dm%02ds", (int)s / 60, (int)s % 60);
    else snprintf(buf, n, "%dh%02dm", (int)s / 3600, ((int)s % 3600) / 60);
}

static void progress(Trainer *t, int force) {
    if (t->opt.quiet) return;
    double now = now_s();
    if (!force && now - t->t_last_print < (t->tty ? 0.2 : 30.0)) return;
    t->t_last_print = now;
    long step = t->adam.step, total = t->total_steps;
    int width = 24, fill = (int)((double)width * step / total);
    char bar[32];
    for (int i = 0; i < width; i++) bar[i] = i < fill ? '=' : i == fill ? '>' : ' ';
    bar[width] = 0;
    double per = t->steps_this_run ? t->train_seconds / t->steps_this_run : NAN;
    char eta[32], val[32] = "";
    fmt_duration(eta, sizeof eta, per * (double)(total - step));
    if (!isnan(t->val_loss)) snprintf(val, sizeof val, " | val %.4f", t->val_loss);
    char loss[32] = "-";
    if (t->steps_this_run) snprintf(loss, sizeof loss, "%.4f", t->loss);
    fprintf(stderr, "%sstep %ld/%ld [%s] %3d%% | loss %s%s | %.0f tok/s | ETA %s%s", t->tty ? "\r" : "", step, total, bar,
            (int)(100.0 * step / total), loss, val, t->train_seconds > 0 ? (double)t->steps_this_run * t->opt.batch * t->opt.grad_accum * t->data->seq_len / t->train_seconds : 0.0, eta, t->tty ? "\x1b[K" : "\n");
    fflush(stderr);
}

static void json_num(FILE *f, const char *key, double v) {
    if (isfinite(v)) fprintf(f, ",\"%s\":%.9g", key, v);
    else fprintf(f, ",\"%s\":null", key);
}

static int log_line(Trainer *t, int with_train, int with_val) {
    if (!t->log) return 0;
    double epoch = (double)t->epoch + (double)t->index / (double)t->data->n[DATA_TRAIN];
    fprintf(t->log, "{\"step\":%ld", t->adam.step);
    json_num(t->log, "epoch", epoch);
    if (with_train) {
        json_num(t->log, "loss", t->loss);
        json_num(t->log, "lr", t->lr);
        json_num(t->log, "grad_norm", t->grad_norm);
        json_num(t->log, "tokens_per_s", t->tokens_per_s);
        if (dist_active()) { /* data parallel: the step's time and its part in MPI collectives */
            json_num(t->log, "step_s", t->step_seconds);
            json_num(t->log, "comm_s", t->comm_seconds);
        }
    }
    if (with_val) {
        json_num(t->log, "val_loss", t->val_loss);
        json_num(t->log, "val_tokens", t->val_tokens);
    }
    fputs("}\n", t->log);
    if (fflush(t->log) != 0 || ferror(t->log)) return err_set("%s/%s: write error", t->opt.out_dir, LOG_FILE);
    return 0;
}

/* ------------------------------------------------------------------------- */
/* the run                                                                    */

static volatile sig_atomic_t g_stop = 0;

static void on_signal(int signo) {
    if (g_stop) { /* a second signal: stop at once */
        signal(signo, SIG_DFL);
        raise(signo);
        return;
    }
    g_stop = signo;
}

void trainer_request_stop(int signo) { g_stop = signo; }

int trainer_run(Trainer *t) {
    const TrainOptions *o = &t->opt;
    struct sigaction sa, old_int, old_term;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART;
    g_stop = 0;
    sigaction(SIGINT, &sa, &old_int);
    sigaction(SIGTERM, &sa, &old_term);
    int rc = 0;
    t->t_start = now_s();
    if (o->resume) rc = trainer_resume(t);
    if (!rc && o->out_dir && dist_rank() == 0) { /* only rank 0 writes files */
        char *path = out_path(t, LOG_FILE);
        t->log = path ? fopen(path, o->resume ? "a" : "w") : NULL;
        if (!t->log) rc = err_set("%s: cannot open for writing: %s", path ? path : LOG_FILE, strerror(errno));
        free(path);
    }
    if (!rc && t->adam.step == 0) { /* the loss before training */
        rc = trainer_eval(t);
        t->start_val_loss = t->val_loss;
        if (!rc && t->data->n[DATA_VAL]) rc = log_line(t, 0, 1);
    }
    if (!rc) progress(t, 1);
    while (!rc && t->adam.step < t->total_steps) {
        if ((rc = trainer_step(t))) break;
        long s = t->adam.step;
        int last = s == t->total_steps;
        int do_eval = t->data->n[DATA_VAL] && (last || (o->eval_every && s % o->eval_every == 0));
        if (do_eval && (rc = trainer_eval(t))) break;
        if (do_eval && t->on_eval && (rc = t->on_eval(t, t->on_eval_ctx))) break;
        if ((rc = log_line(t, 1, do_eval))) break;
        progress(t, do_eval || last);
        int stop = g_stop; /* read once: the decisions below must be the same on every rank */
        if (dist_active() && (rc = dist_allreduce_max_int(&stop))) break; /* a signal on any rank stops them all */
        if (o->out_dir && (last || stop || (o->save_every && s % o->save_every == 0))) rc = trainer_save(t);
        if (!rc && stop && !last) {
            rc = stop;
            break;
        }
    }
    if (!o->quiet && t->tty) fputc('\n', stderr);
    if (!o->quiet && dist_active() && t->steps_this_run)
        fprintf(stderr, "muscle: data parallel on %d ranks: %.2f s of %.2f s of steps in MPI collectives (%.1f%%)\n", dist_size(),
                t->comm_total, t->train_seconds, t->train_seconds > 0 ? 100.0 * t->comm_total / t->train_seconds : 0.0);
    if (t->log) {
        fclose(t->log);
        t->log = NULL;
    }
    sigaction(SIGINT, &old_int, NULL);
    sigaction(SIGTERM, &old_term, NULL);
    g_stop = 0;
    return rc;
}
