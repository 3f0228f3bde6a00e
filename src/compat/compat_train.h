/* compat/compat_train.h - compatibility training: a student adapter on the new base,
 * taught by the old task model M1 = old base + old adapter and the new one M2 = new
 * base + new adapter (both frozen), with the losses of compat_loss.h, run by the
 * ordinary trainer (train/trainer.h) through its step hook.
 *
 * Data: the task's labelled training instances (the held-out split as data_task.h
 * makes it: `val`, or a seeded share of `train`) and, optionally, a transfer set
 * (instances without labels: only the distillation terms apply; a multiple-choice
 * transfer instance is read with M1's chosen answer, a generation one is its prompt).
 * Validation keeps the cross-entropy of the held-out answers (keep-best epochs).
 *
 * Teachers are computed once, before the first step, and reused every epoch:
 *   token level   each teacher's logits at every position the distillation covers
 *                 (every non-padding position, or the answer positions): all V of them
 *                 when the cache fits cfg.cache_mb, else the top k (cfg.topk, default
 *                 64) with the log-sum-exp (compat_loss.h: the rest as one bucket);
 *   choice level  each teacher's summed log-likelihood of every choice.
 */
#ifndef MUSCLE_COMPAT_COMPAT_TRAIN_H
#define MUSCLE_COMPAT_COMPAT_TRAIN_H

#include <stdint.h>

#include "compat/compat_loss.h"
#include "model/lora.h"
#include "model/model.h"
#include "task/task.h"
#include "tokenizer/tokenizer.h"
#include "train/data.h"
#include "train/trainer.h"

typedef struct {
    CompatConfig cfg;
    const Model *old_model;           /* M1's base */
    const LoraAdapter *old_adapter;   /* M1's adapter */
    const Model *model;               /* the student's base = M2's */
    const LoraAdapter *new_adapter;   /* M2's adapter (copied: the student may start from the same values) */
    const LoraAdapter *const *ensemble; /* ensemble and mixture teachers: the K new adapters on model
                                           (NULL / 0: new_adapter alone) */
    int n_ensemble;
    const TaskSet *train, *val;       /* val may be NULL: val_frac of train is held out */
    const TaskSet *transfer;          /* may be NULL */
    const TaskPrompt *prompt;
    const Tokenizer *tok;
    const Tokenizer *old_tok;         /* M1's tokenizer; NULL or the same pieces: tok (one tokenizer) */
    int max_len;                      /* tokens per sequence */
    double val_frac;
    uint64_t seed;                    /* of the held-out split */
    int batch;                        /* rows per micro-batch of the steps (trainer's batch) */
    int quiet;
    /* choice level test knobs (the CLI sets them from MUSCLE_COMPAT_UNPACKED and
     * MUSCLE_COMPAT_PACK_MAX): every choice as a plain row of its own, never packed; the
     * longest packed row allowed (0 = no cap) */
    int choice_rows_plain;
    int pack_max;
    /* across tokenizers: the least share of M1's mass the exact mapping must cover (0 =
     * COMPAT_XTOK_MIN_COVERAGE; test knob MUSCLE_XTOK_MIN_COVERAGE) */
    double min_coverage;
} CompatSetup;

typedef struct {
    int exact;                 /* token level: every logit kept */
    int topk;                  /* else: classes kept per position */
    double cache_mb;           /* size of the teacher cache */
    double teacher_seconds;    /* to compute it */
    long n_train, n_transfer, n_val;
    long distilled, masked;    /* positions (token level) or instances (choice level) seen in steps so far, and mask = 1 among them */
    long answers, answers_correct; /* answer positions seen and the student's argmax right on them */
    long unpacked;             /* choice level: instances seen whose choices went as plain rows (packed row too long) */
    int xtok;                  /* M1 has another tokenizer (compat_xtok.h) */
    long xtok_positions, xtok_aligned; /* token level: student positions, and those aligned with one of M1's */
    double xtok_coverage;      /* exact mapping: mean share of M1's mass on mapped pieces (aligned positions) */
    int n_new_teachers;        /* ensemble and mixture: K */
    double mixture_a;          /* mixture: the a in use; */
    int mixture_chosen;        /* 1: chosen on the held-out split, with there: */
    long mixture_n_val;        /* instances, */
    double mixture_acc, mixture_nfr, mixture_acc_m2; /* the mixture's accuracy and NFR against M1, M2's mean accuracy */
} CompatStats;

typedef struct CompatTrainer CompatTrainer;

/* Tokenizes the data, computes the teachers' outputs and makes d, the TrainData to
 * give trainer_init (its hash covers the data, the teachers and cfg). */
int compat_trainer_init(CompatTrainer **ct, const CompatSetup *s, TrainData *d);
/* Installs the step hook in t (made with trainer_init on d, TRAIN_LORA, the student's
 * adapter) and plans the student's run state for the choice level. */
int compat_trainer_attach(CompatTrainer *ct, Trainer *t);
const CompatStats *compat_trainer_stats(const CompatTrainer *ct);
/* The settings in use (the mixture's chosen a in mixture_a): for the adapter's metadata. */
const CompatConfig *compat_trainer_config(const CompatTrainer *ct);
void compat_trainer_free(CompatTrainer *ct);

#endif
