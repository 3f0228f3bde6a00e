/* train/trainer.h - the training loop: batches, gradient accumulation, clipping,
 * AdamW with a warm-up + decay schedule, validation, progress, a JSON log and
 * checkpoints that a killed run resumes from bit for bit.
 *
 * Modes: TRAIN_FULL trains every weight of a writable model (model loaded with
 * ModelLoadOptions.writable = 1, or model_init_random), in fp32 or, with opt.bf16, in
 * mixed precision (train/mixed.h: fp32 masters and AdamW state, bf16 copies of the
 * matrices refreshed after every step for the products); TRAIN_LORA trains an adapter
 * attached to a frozen base (fp32 or bf16 weights: a bf16 base runs the mixed products).
 *
 * One optimizer step takes the next batch * grad_accum examples of the training split
 * in a seeded order (a new permutation every epoch, drawn from core/rng.h; a step may
 * run across an epoch's end), runs grad_accum micro-batches of `batch` rows through
 * model_loss + model_backward with the step's total weight as the divisor (so the
 * accumulated gradient is that of the whole step's mean loss), clips the global norm,
 * and applies AdamW at lr_schedule_at(step). The data position is (epoch, examples
 * consumed in it) plus the generator state the epoch's order was drawn from.
 *
 * Files in out_dir (when set):
 *   train_log.jsonl   one JSON line per step: {"step", "epoch" (fractional), "loss", "lr",
 *                     "grad_norm", "tokens_per_s"}, with "val_loss" (and "val_tokens") on
 *                     steps where it was measured; a first line {"step": 0, ...,
 *                     "val_loss"} holds the loss before training. Lines are appended and
 *                     flushed as they come; a resumed run first cuts the file back to the
 *                     checkpoint's step (rewritten atomically).
 *   checkpoint/state.safetensors  (train/checkpoint.h) every save_every steps, at the
 *                     end, and when a stop was requested.
 * Same data, settings, seed and OpenMP thread count give the same bits, also across a
 * kill and a resume.
 *
 * Data parallel (core/dist.h, docs/distributed.md): on N MPI ranks every rank draws the
 * same order and the same step examples; rank r computes the rows
 * [r*S/N, (r+1)*S/N) of the step's S = batch * grad_accum (in micro-batches of up to
 * `batch` rows, with the divisor of the whole step), the gradients and the loss are
 * summed over the ranks (MPI_Allreduce, in place, in buckets) and every rank applies
 * the same optimizer step. Validation micro-batches are dealt round-robin and their
 * sums added the same way. Only rank 0 writes the log and the checkpoints; a resume
 * reads the checkpoint on rank 0 and broadcasts it, so a checkpoint of N ranks resumes
 * on any number. With one rank this is the single-process loop, bit for bit.
 */
#ifndef MUSCLE_TRAIN_TRAINER_H
#define MUSCLE_TRAIN_TRAINER_H

#include <stdint.h>
#include <stdio.h>

#include "core/rng.h"
#include "model/backward.h"
#include "model/forward.h"
#include "model/lora.h"
#include "train/adamw.h"
#include "train/checkpoint.h"
#include "train/data.h"
#include "train/mixed.h"

typedef enum { TRAIN_FULL = 0, TRAIN_LORA = 1 } TrainMode;

typedef struct {
    TrainMode mode;
    int batch;            /* B: sequences per micro-batch */
    int grad_accum;       /* micro-batches per optimizer step */
    long steps;           /* optimizer steps; 0 = from `epochs` */
    double epochs;        /* when steps == 0: ceil(epochs * examples / (batch * grad_accum)) steps */
    double lr;            /* peak learning rate */
    double min_lr;        /* reached at the last step (LR_LINEAR, LR_COSINE) */
    long warmup;          /* steps of linear warm-up; -1 = auto: min(500, ceil(steps / 20)) */
    LrDecay schedule;
    AdamWConfig adamw;    /* betas, eps, weight decay */
    double clip;          /* max global gradient norm; 0 = no clipping */
    int no_decay_norms;   /* full training: no weight decay on the norm weights */
    uint64_t seed;        /* data order */
    long eval_every;      /* validation every N steps (and at the start and the end); 0 = start and end only */
    long val_max;         /* validate on the first N held-out examples; 0 = all */
    long save_every;      /* checkpoint every N steps (and at the end); 0 = at the end only */
    int recompute;        /* keep only each layer's input and recompute it in the backward pass */
    int bf16;             /* TRAIN_FULL: mixed precision (train/mixed.h); recorded in the checkpoint */
    const char *out_dir;  /* log and checkpoint folder; NULL = no files (benchmarks) */
    int resume;           /* continue from out_dir/checkpoint */
    int quiet;            /* no progress on stderr */
} TrainOptions;

/* Defaults: batch 4, grad_accum 1, steps 0, epochs 1, lr 1e-4, min_lr 0, warmup auto,
 * cosine, AdamW (0.9, 0.999, 1e-8) with weight decay 0, clip 1.0, no_decay_norms 1,
 * seed 42, eval_every 0, val_max 0, save_every 0. */
void train_options_default(TrainOptions *o, TrainMode mode);

typedef struct Trainer {
    /* what is trained (not owned) */
    Model *model;
    LoraAdapter *lora;    /* TRAIN_LORA */
    TrainData *data;
    TrainOptions opt;
    /* run state and gradients */
    MixedModel mixed;     /* opt.bf16: the bf16 view of the model the run state computes with */
    RunState rs;
    ModelGrads grads;     /* TRAIN_FULL */
    LoraAdapter lora_grad;/* TRAIN_LORA */
    ParamSpan *spans;
    char **span_names;    /* checkpoint tensor names */
    int n_spans;
    AdamW adam;
    LrSchedule sched;
    long total_steps;
    long warmup;          /* resolved */
    /* data position */
    long *perm;           /* order of the current epoch */
    Rng rng;              /* data-order generator (after drawing perm) */
    uint64_t rng_epoch;   /* its state before drawing perm */
    long epoch, index;
    TrainBatch batch;     /* one whole step: batch * grad_accum rows */
    TrainBatch vbatch;    /* validation: batch rows */
    CkptSettings settings;/* must not change on resume */
    /* results */
    double loss;          /* of the last step (mean over its weighted positions) */
    double grad_norm;     /* before clipping */
    double lr;            /* used by the last step */
    double val_loss;      /* last measured (NAN before) */
    double val_tokens;    /* weight it was measured on */
    double step_seconds;  /* of the last step */
    double tokens_per_s;  /* of the last step (positions of its batch / its time) */
    double start_val_loss;/* measured before the first step (NAN when resumed past it) */
    /* called after each validation during trainer_run (e.g. to keep the best adapter);
     * non-zero stops the run with that code: return -1 with err_set() for an error
     * (a positive code reads as a signal's number to trainer_run's callers) */
    int (*on_eval)(struct Trainer *t, void *ctx);
    void *on_eval_ctx;
    /* Optional: replaces the cross-entropy of the training steps (e.g. distillation,
     * compat/compat_train.h). Called once a step with the step's examples (indices into
     * the training split, batch * grad_accum of them, in order); must add the gradient
     * of the step's loss to lora_grad (TRAIN_LORA) or grads (TRAIN_FULL), which are
     * zeroed before, and set *loss. -1 with err_set() on error. Validation keeps the
     * cross-entropy of the held-out split. */
    int (*step_fn)(struct Trainer *t, void *ctx, const long *examples, int n, double *loss);
    void *step_ctx;
    long *step_examples;  /* [batch * grad_accum] */
    /* data parallel: the rows [shard_lo, shard_hi) of the step's examples are this rank's
     * (all of them on one rank). A step_fn must add the gradient of those rows only,
     * normalised as the whole step's (its divisor computed over all n examples): the
     * trainer sums the ranks' gradients and losses after it returns. */
    long shard_lo, shard_hi;
    double comm_seconds;  /* of the last step: in MPI collectives (0 on one rank) */
    double comm_total;    /* in steps of this process */
    /* progress and log */
    FILE *log;
    double t_start, t_last_print, train_seconds; /* train_seconds: in steps, this process */
    long steps_this_run;
    int tty;
} Trainer;

/* Plans everything up front: run state, gradients, optimizer, batches, settings.
 * `lora` must be attached to nothing else; in TRAIN_FULL mode it must be NULL and the
 * model writable. Checks the options (one message per bad value) and that out_dir is
 * a writable folder (created when missing); refuses an out_dir that already holds a
 * checkpoint unless resuming. Adds to the settings the fingerprint of the starting
 * weights (base model and initial adapter) and of the data. `extra` (may be NULL):
 * more settings that must not change on resume (e.g. the command's own). */
int trainer_init(Trainer *t, Model *m, LoraAdapter *lora, TrainData *d, const TrainOptions *o,
                 const CkptSettings *extra);
void trainer_free(Trainer *t);

/* Continues from out_dir/checkpoint (settings checked, then parameters, optimizer
 * state and data position restored; the log cut back to the checkpoint's step). */
int trainer_resume(Trainer *t);
/* One optimizer step on the next batch * grad_accum examples; sets loss, grad_norm,
 * lr, tokens_per_s. -1 on error, including a loss or gradient that is not finite. */
int trainer_step(Trainer *t);
/* Mean loss over the held-out examples (the first val_max of them): t->val_loss. */
int trainer_eval(Trainer *t);
/* Writes out_dir/checkpoint/state.safetensors. */
int trainer_save(Trainer *t);

/* The whole run: resume when asked, validation at the start, steps with logging,
 * validation and checkpoints, a final validation and checkpoint. SIGINT and SIGTERM
 * are caught while it runs: the current step finishes, a checkpoint is saved and it
 * returns the signal's number (a second signal stops the process at once). Returns 0
 * when all steps are done, -1 on error. */
int trainer_run(Trainer *t);

/* Asks a running trainer_run to stop after the current step, as a signal does. */
void trainer_request_stop(int signo);

/* Hash of a model's weights (every tensor's bytes) and of an adapter's values. */
/* FNV-style running hash of n bytes (train_hash.c). */
uint64_t train_hash_bytes(uint64_t h, const void *p, size_t n);
uint64_t train_hash_model(const Model *m);
uint64_t train_hash_lora(const LoraAdapter *a);

#endif
