/* train/data_task.c - task instances as masked training examples. */
#include "data_task.h"
#include "core/hash.h"
#include "core/error.h"

#include <stdlib.h>
#include <string.h>

typedef struct {
    int **ids[2];
    uint8_t **mask[2];
    int *len[2];
} TaskData;

void task_data_options_default(TaskDataOptions *o) {
    memset(o, 0, sizeof *o);
    o->max_len = 512;
    o->val_frac = 0.2;
    o->seed = 42;
}

static int task_fill(const TrainData *d, int split, long i, int *tok, int *tgt, float *w) {
    const TaskData *td = d->impl;
    const int *ids = td->ids[split][i];
    const uint8_t *mask = td->mask[split][i];
    int n = td->len[split][i], T = d->seq_len;
    for (int j = 0; j < T; j++) {
        if (j + 1 < n) {
            tok[j] = ids[j];
            tgt[j] = ids[j + 1];
            w[j] = mask[j + 1] ? 1.0f : 0.0f;
        } else {
            tok[j] = 0;
            tgt[j] = 0;
            w[j] = 0.0f;
        }
    }
    return 0;
}

static void task_destroy(TrainData *d) {
    TaskData *td = d->impl;
    if (!td) return;
    for (int s = 0; s < 2; s++) {
        for (long i = 0; i < d->n[s]; i++) {
            if (td->ids[s]) free(td->ids[s][i]);
            if (td->mask[s]) free(td->mask[s][i]);
        }
        free(td->ids[s]);
        free(td->mask[s]);
        free(td->len[s]);
    }
    free(td);
    d->impl = NULL;
}

/* Sequences of the instances idx[0..n) of ts into split s of td. */
static int add_split(TrainData *d, TaskData *td, int s, const TaskSet *ts, const int *idx, int n, const TaskPrompt *p,
                     const Tokenizer *t, TaskDataOptions *o) {
    td->ids[s] = calloc((size_t)(n ? n : 1), sizeof(int *));
    td->mask[s] = calloc((size_t)(n ? n : 1), sizeof(uint8_t *));
    td->len[s] = calloc((size_t)(n ? n : 1), sizeof(int));
    if (!td->ids[s] || !td->mask[s] || !td->len[s]) return err_set("out of memory");
    TaskSet sub;
    if (task_set_subset(ts, idx, n, &sub) != 0) return -1;
    int rc = 0;
    long k = 0;
    if (sub.kind == TASK_MC) {
        TaskMCTokens *tk = NULL;
        rc = task_mc_tokenize(&sub, p, t, o->max_len, &tk);
        for (int i = 0; rc == 0 && i < sub.n; i++) {
            if (tk[i].label < 0) { o->n_unlabeled++; continue; }
            rc = task_mc_train_seq(&tk[i], tk[i].label, &td->ids[s][k], &td->mask[s][k], &td->len[s][k]);
            if (rc == 0) k++;
        }
        if (tk) task_mc_tokens_free_all(tk, sub.n);
    } else {
        TaskGenTokens *tk = NULL;
        rc = task_gen_tokenize(&sub, p, t, o->max_len, &tk);
        for (int i = 0; rc == 0 && i < sub.n; i++) {
            rc = task_gen_train_seq(&tk[i], &td->ids[s][k], &td->mask[s][k], &td->len[s][k]);
            if (rc == 0) k++;
        }
        if (tk) task_gen_tokens_free_all(tk, sub.n);
    }
    d->n[s] = k;
    for (long i = 0; i < k; i++) {
        d->n_tokens[s] += (size_t)td->len[s][i];
        if (td->len[s][i] - 1 > d->seq_len) d->seq_len = td->len[s][i] - 1;
    }
    task_set_free(&sub);
    return rc;
}


int data_task_open(TrainData *d, const TaskSet *train, const TaskSet *val, const TaskPrompt *p, const Tokenizer *t,
                   TaskDataOptions *o) {
    memset(d, 0, sizeof *d);
    if (val && val->kind != train->kind) return err_set("%s and %s: one is multiple choice, the other generation", train->path, val->path);
    TaskData *td = calloc(1, sizeof *td);
    if (!td) return err_set("out of memory");
    d->impl = td;
    d->destroy = task_destroy;
    d->fill = task_fill;
    d->seq_len = 1;
    o->n_unlabeled = 0;
    int rc;
    if (val) {
        int *all = malloc((size_t)(train->n ? train->n : 1) * sizeof *all), *vall = malloc((size_t)(val->n ? val->n : 1) * sizeof *vall);
        if (!all || !vall) { free(all); free(vall); data_free(d); return err_set("out of memory"); }
        for (int i = 0; i < train->n; i++) all[i] = i;
        for (int i = 0; i < val->n; i++) vall[i] = i;
        rc = add_split(d, td, DATA_TRAIN, train, all, train->n, p, t, o);
        if (rc == 0) rc = add_split(d, td, DATA_VAL, val, vall, val->n, p, t, o);
        free(all);
        free(vall);
    } else {
        int *tr = NULL, *va = NULL, ntr = 0, nva = 0;
        rc = task_split(train->n, o->val_frac, o->seed, &tr, &ntr, &va, &nva);
        if (rc == 0) rc = add_split(d, td, DATA_TRAIN, train, tr, ntr, p, t, o);
        if (rc == 0) rc = add_split(d, td, DATA_VAL, train, va, nva, p, t, o);
        free(tr);
        free(va);
    }
    if (rc == 0 && d->n[DATA_TRAIN] == 0) rc = err_set("%s: no labelled instance to train on", train->path);
    if (rc != 0) { data_free(d); return -1; }
    uint64_t h = HASH_FNV64_BASIS;
    for (int s = 0; s < 2; s++)
        for (long i = 0; i < d->n[s]; i++) {
            h = hash_fnv64(h, td->ids[s][i], (size_t)td->len[s][i] * sizeof(int));
            h = hash_fnv64(h, td->mask[s][i], (size_t)td->len[s][i]);
        }
    d->hash = h;
    d->n_docs = (size_t)(d->n[0] + d->n[1]);
    return 0;
}
