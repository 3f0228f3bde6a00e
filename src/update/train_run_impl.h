/* update/train_run_impl.h - what train_run.c (pretraining, the run's record) and
 * finetune.c share; private to src/update. */
#ifndef MUSCLE_UPDATE_TRAIN_RUN_IMPL_H
#define MUSCLE_UPDATE_TRAIN_RUN_IMPL_H

#include "update/train_run.h"

/* "pretrain" or "finetune": the command named in messages and in training.json. */
const char *train_run_cmd(const TrainSpec *s);
/* No progress: t.quiet, or an MPI rank other than 0 (rank 0 speaks for the job). */
int train_run_quiet(const TrainSpec *s);
/* The trainer's options: out_dir, eval_every resolved later, quiet on ranks > 0. */
void train_run_options(const TrainSpec *s, TrainOptions *o);
/* Plain-text data options (--data) for model m. */
void train_run_text_options(const TrainSpec *s, const Model *m, TextDataOptions *d);
/* The run's record: command, inputs, every setting, results (deterministic content),
 * malloc'd JSON; training.json holds it formatted. */
char *train_run_record(const TrainSpec *s, const Trainer *t, int formatted);
int train_run_write_record(const TrainSpec *s, const Trainer *t);
/* "muscle CMD: N trainable parameters; data: ..." on stderr (unless quiet). */
void train_run_summary(const TrainSpec *s, const Trainer *t, uint64_t trainable);
/* After trainer_run: the results line (rc 0), or how to resume after a stop by a signal
 * (rc > 0); returns rc. */
int train_run_finish(const TrainSpec *s, const Trainer *t, int rc);
int finetune_run(const TrainSpec *s);

#endif
