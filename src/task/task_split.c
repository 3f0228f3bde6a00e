/* task/task_split.c - deterministic train/validation split and subsets of a TaskSet. */
#include "task/task_internal.h"

#include "core/error.h"
#include "core/rng.h"

#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Uniform in [0, bound) without modulo bias (rejection). */
static uint32_t below(Rng *r, uint32_t bound) {
    uint32_t lim = (uint32_t)(-bound) % bound; /* 2^32 mod bound */
    for (;;) {
        uint32_t x = rng_u32(r);
        if (x >= lim) return x % bound;
    }
}

static int cmp_int(const void *a, const void *b) {
    int x = *(const int *)a, y = *(const int *)b;
    return (x > y) - (x < y);
}

int task_split(int n, double val_frac, uint64_t seed, int **train_idx, int *n_train, int **val_idx,
               int *n_val) {
    *train_idx = *val_idx = NULL;
    *n_train = *n_val = 0;
    if (n < 0) return err_set("split: bad count %d", n);
    if (!(val_frac >= 0.0 && val_frac <= 1.0))
        return err_set("split: validation fraction %g is not in [0, 1]", val_frac);
    int nv = (int)floor((double)n * val_frac + 0.5);
    if (n >= 2 && val_frac > 0.0 && val_frac < 1.0) {
        if (nv < 1) nv = 1;
        if (nv > n - 1) nv = n - 1;
    }
    if (nv > n) nv = n;
    int *perm = malloc((size_t)(n ? n : 1) * sizeof *perm);
    int *tr = malloc((size_t)(n - nv ? n - nv : 1) * sizeof *tr);
    int *va = malloc((size_t)(nv ? nv : 1) * sizeof *va);
    if (!perm || !tr || !va) {
        free(perm);
        free(tr);
        free(va);
        return err_set("out of memory");
    }
    for (int i = 0; i < n; i++) perm[i] = i;
    Rng r;
    rng_seed(&r, seed);
    for (int i = n - 1; i > 0; i--) { /* Fisher-Yates */
        int j = (int)below(&r, (uint32_t)i + 1);
        int t = perm[i];
        perm[i] = perm[j];
        perm[j] = t;
    }
    memcpy(va, perm, (size_t)nv * sizeof *va);
    memcpy(tr, perm + nv, (size_t)(n - nv) * sizeof *tr);
    free(perm);
    qsort(va, (size_t)nv, sizeof *va, cmp_int);
    qsort(tr, (size_t)(n - nv), sizeof *tr, cmp_int);
    *train_idx = tr;
    *n_train = n - nv;
    *val_idx = va;
    *n_val = nv;
    return 0;
}

static const char *dup(TaskArena *a, const char *s) { return s ? task_arena_strdup(a, s) : NULL; }

static const char **dup_fields(TaskArena *a, const char *const *f, int n) {
    const char **d = task_arena_alloc(a, (size_t)(n ? n : 1) * sizeof *d);
    if (!d) return NULL;
    for (int i = 0; i < n; i++)
        if (f[i] && !(d[i] = dup(a, f[i]))) return NULL;
    return d;
}

int task_set_subset(const TaskSet *ts, const int *idx, int n, TaskSet *out) {
    memset(out, 0, sizeof *out);
    if (n < 0) return err_set("subset: bad count %d", n);
    for (int k = 0; k < n; k++)
        if (idx[k] < 0 || idx[k] >= ts->n)
            return err_set("%s: subset index %d out of range (the set has %d instances)", ts->path,
                           idx[k], ts->n);
    out->kind = ts->kind;
    out->format = ts->format;
    out->field_names = ts->field_names; /* static lists */
    out->n_fields = ts->n_fields;
    out->path = strdup(ts->path ? ts->path : "?");
    TaskArena *a = task_arena_new();
    out->arena = a;
    size_t sz = ts->kind == TASK_MC ? sizeof(TaskMC) : sizeof(TaskGen);
    void *arr = calloc((size_t)(n ? n : 1), sz);
    if (ts->kind == TASK_MC) out->mc = arr;
    else out->gen = arr;
    if (!out->path || !a || !arr) {
        task_set_free(out);
        return err_set("out of memory");
    }
    int nf = ts->n_fields;
    for (int k = 0; k < n; k++) {
        int ok;
        if (ts->kind == TASK_MC) {
            const TaskMC *s = &ts->mc[idx[k]];
            TaskMC *d = &out->mc[k];
            *d = *s;
            d->choices = task_arena_alloc(a, (size_t)s->n_choices * sizeof *d->choices);
            ok = d->choices && (d->id = dup(a, s->id)) && (d->context = dup(a, s->context)) &&
                 (d->fields = dup_fields(a, s->fields, nf));
            for (int c = 0; ok && c < s->n_choices; c++) ok = (d->choices[c] = dup(a, s->choices[c])) != NULL;
            if (ok && s->choice_texts) {
                d->choice_texts = task_arena_alloc(a, (size_t)s->n_choices * sizeof *d->choice_texts);
                ok = d->choice_texts != NULL;
                for (int c = 0; ok && c < s->n_choices; c++)
                    ok = (d->choice_texts[c] = dup(a, s->choice_texts[c])) != NULL;
            }
            if (s->label < 0) out->n_unlabeled++;
        } else {
            const TaskGen *s = &ts->gen[idx[k]];
            TaskGen *d = &out->gen[k];
            *d = *s;
            ok = (d->id = dup(a, s->id)) && (d->prompt = dup(a, s->prompt)) &&
                 (d->target = dup(a, s->target)) && (d->answer = dup(a, s->answer)) &&
                 (d->fields = dup_fields(a, s->fields, nf));
        }
        if (!ok) {
            task_set_free(out);
            return err_set("out of memory");
        }
        out->n++;
    }
    return 0;
}
