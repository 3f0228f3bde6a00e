/* train/checkpoint.h - the training state on disk, for resuming a run.
 *
 * One file, DIR/state.safetensors, written atomically (core/file.h): a killed run
 * leaves the previous checkpoint in place. It holds
 *   tensors   the trainable parameters by name ("lora" for an adapter; "tok_emb",
 *             "layers.{i}.wq", ... for a whole model), then "adamw.m" and "adamw.v"
 *             (the optimizer's moments, in the order of the parameters), all F32;
 *   metadata  "muscle.checkpoint" (format version "1"), the position (CkptPos: "step",
 *             "total_steps", "epoch", "index", "rng" as 16 hex digits, "threads",
 *             "val_loss", "start_val_loss") and
 *             every setting that must not change on resume as "setting.<name>".
 * Loading checks the settings one by one before anything else, so that a changed
 * setting is reported by name ("setting 'lr' is 0.001 now, 0.0003 in the checkpoint");
 * a setting recorded only since a later version (full training's "precision") reads as
 * its old implicit value ("fp32") in a checkpoint made before it.
 */
#ifndef MUSCLE_TRAIN_CHECKPOINT_H
#define MUSCLE_TRAIN_CHECKPOINT_H

#include <stddef.h>
#include <stdint.h>

#define CKPT_FILE "state.safetensors"

/* Settings: name -> value text (any length: a setting may list an ensemble's adapter
 * paths), compared as text on resume. */
typedef struct {
    char key[48];
    char *value; /* owned */
} CkptSetting;

typedef struct {
    CkptSetting *v;
    int n, cap;
} CkptSettings;

/* Adds (or replaces) a setting, printf-style value. */
int ckpt_settings_set(CkptSettings *s, const char *key, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;
/* The value of a setting, NULL when absent. */
const char *ckpt_settings_get(const CkptSettings *s, const char *key);
void ckpt_settings_free(CkptSettings *s);

/* Where the run stands. */
typedef struct {
    long step;         /* optimizer updates done */
    long total_steps;  /* of the whole run */
    long epoch;        /* data position: epoch (0-based) ... */
    long index;        /* ... and examples of it consumed */
    uint64_t rng;      /* data-order generator state when this epoch's order was drawn */
    int threads;       /* OpenMP threads of the run (results depend on it) */
    double val_loss;       /* last validation loss measured (NAN: none) */
    double start_val_loss; /* before the first step (NAN: none) */
} CkptPos;

/* A float tensor of the state (1-D, n values at data). */
typedef struct {
    const char *name;
    float *data;
    size_t n;
} CkptTensor;

/* DIR/state.safetensors exists. */
int ckpt_exists(const char *dir);
/* Writes DIR/state.safetensors atomically (creates DIR). Removes temporary files that
 * a killed earlier save left in DIR. */
int ckpt_save(const char *dir, const CkptTensor *t, int n, const CkptPos *pos, const CkptSettings *s);
/* Reads DIR/state.safetensors: first checks that every setting of `s` has the same
 * value there (error naming the first difference), then fills pos and the tensors
 * (each must be present with exactly t[i].n values). On error nothing of pos is set
 * but tensors may be partly overwritten. */
int ckpt_load(const char *dir, CkptTensor *t, int n, CkptPos *pos, const CkptSettings *s);

#endif
