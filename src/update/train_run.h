/* update/train_run.h - a whole training run as `muscle pretrain` and `muscle finetune`
 * make it: the model and data set-up, the trainer (train/trainer.h), compatibility
 * training (compat/compat_train.h), keeping the best epoch, and the output folder.
 *
 * A TrainSpec says everything a run needs, typed; the CLI fills it from its options,
 * `muscle update` (update/update.h) builds one per training step. Outputs in spec.out:
 *   pretrain  a Hugging Face folder (config.json, model.safetensors, the tokenizer file)
 *   finetune  a PEFT folder (adapter_config.json, adapter_model.safetensors with the
 *             settings in its metadata); with --task and a held-out split, best/ holds
 *             the best epoch's adapter so far (read back only by a resumed run)
 *   both      train_log.jsonl, training.json, checkpoint/ (to resume)
 * Progress and the results line go to stderr unless t.quiet.
 */
#ifndef MUSCLE_UPDATE_TRAIN_RUN_H
#define MUSCLE_UPDATE_TRAIN_RUN_H

#include "compat/compat_loss.h"
#include "core/dtype.h"
#include "train/data.h"
#include "train/trainer.h"

typedef enum { TRAIN_RUN_PRETRAIN = 0, TRAIN_RUN_FINETUNE = 1 } TrainRunKind;

/* What the model learns from: plain text (data) or a labelled task file (task). */
typedef struct {
    const char *data;        /* text or JSON lines; each document starts with BOS */
    DataFormat format;       /* of data */
    const char *task;        /* labelled task file (finetune): loss on the answer tokens */
    const char *val;         /* held-out file (text or task, as above), or NULL */
    double val_frac;         /* held-out share when val is NULL; < 0: the default (0.05 of text, 0.2 of a task) */
    long seq_len;            /* tokens per window; 0: the default (256 at most, the model's context) */
    const char *task_format; /* task format name (NULL: detected), prompt and answer templates, prompt file */
    const char *prompt, *answer, *prompt_file;
    int skip_bad;            /* skip task records that do not fit the format */
} TrainDataSpec;

/* pretrain without a model: the shape of a new one (from config, or the numbers). */
typedef struct {
    const char *config;      /* a Hugging Face config.json, or a folder holding one */
    long dim, layers, heads, kv_heads, hidden, vocab; /* kv_heads 0 = heads, vocab 0 = the tokenizer's */
    int untied;
} NewModelSpec;

/* finetune: the adapter trained. */
typedef struct {
    const char *init;        /* start from this PEFT adapter (its rank, alpha, targets), or NULL */
    long rank;
    double alpha;            /* 0: 2 * rank */
    int rslora;
    unsigned targets;        /* LORA_BIT()s */
    int bf16;                /* compute with bf16 base weights */
    int keep_best;           /* with a task: the adapter of the epoch with the best held-out loss */
} AdapterSpec;

/* finetune --compat: a compatibility adapter (init = M2's adapter, the student's start). */
typedef struct {
    int on;
    CompatConfig cfg;
    const char *old_model, *old_adapter; /* M1 */
    const char *transfer;    /* unlabelled task inputs, or NULL */
    const char *ensemble;    /* ensemble and mixture teachers: the K new adapters, comma-separated
                                (NULL: adapter.init alone) */
    int choice_rows_plain;   /* choice level: every choice as its own row, never packed (a test knob) */
    int pack_max;            /* choice level: the longest packed row allowed; 0 = no cap (a test knob) */
    double min_coverage;     /* across tokenizers: the share of M1's mass the vocabulary mapping must
                                cover; 0 = the default (a test knob) */
} CompatRunSpec;

typedef struct {
    TrainRunKind kind;
    const char *model;       /* the base model (pretrain: continue it; NULL = a new one) */
    const char *tokenizer;   /* NULL: beside / inside the model */
    const char *out;         /* output folder */
    TrainOptions t;          /* t.eval_every < 0: ten validations a run (finetune --task: every epoch) */
    DType out_dtype;         /* pretrain: type of the saved weights */
    TrainDataSpec data;
    NewModelSpec shape;
    AdapterSpec adapter;
    CompatRunSpec compat;
} TrainSpec;

/* The defaults of `muscle pretrain` / `muscle finetune`. */
void train_spec_default(TrainSpec *s, TrainRunKind kind);
/* Checks the combinations (data or task, the task's options, the output, the model or
 * the shape of a new one, what compatibility training needs): -1 with err_set() naming
 * the options otherwise. train_run assumes a spec that passes. */
int train_spec_check(const TrainSpec *s);
/* Runs it: 0 when done; -1 with err_set() on error; a signal's number when SIGINT or
 * SIGTERM stopped it (the checkpoint saved, a message on stderr says how to resume). */
int train_run(const TrainSpec *s);

#endif
