/* train/data_task.h - labelled task data as training examples (train/data.h), for
 * task adapters: the loss goes on the answer tokens only.
 *
 * Multiple choice: an example is [BOS] + context + the correct choice's continuation
 * (task_mc_train_seq); generation: [BOS] + prompt + target + EOS (task_gen_train_seq).
 * At position j the model reads ids[j] and must predict ids[j+1], with weight 1 where
 * ids[j+1] is an answer token and 0 elsewhere (context, padding). Every example is one
 * row of T positions (T = the longest sequence - 1, at most max_len - 1; shorter ones
 * are padded with weight 0; longer contexts are cut from the left by the task layer).
 * Multiple-choice instances without a label are skipped (counted).
 * The held-out split is `val` when given, else a seeded 20% of `train` (task_split). */
#ifndef MUSCLE_TRAIN_DATA_TASK_H
#define MUSCLE_TRAIN_DATA_TASK_H

#include "task/task.h"
#include "train/data.h"

typedef struct {
    int max_len;        /* cap on tokens per example (default: the model's context) */
    double val_frac;    /* held out of `train` when no `val` set is given (default 0.2) */
    uint64_t seed;      /* of that split */
    int n_unlabeled;    /* out: skipped multiple-choice instances without a label */
} TaskDataOptions;

void task_data_options_default(TaskDataOptions *o);
/* `val` may be NULL. The prompt formats both sets. */
int data_task_open(TrainData *d, const TaskSet *train, const TaskSet *val, const TaskPrompt *p, const Tokenizer *t,
                   TaskDataOptions *o);

#endif
