/* train/checkpoint.c - the training state as a safetensors file with metadata. */
#include "checkpoint.h"
#include "core/error.h"
#include "core/hash.h"
#include "core/file.h"
#include "io/safetensors.h"

#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define CKPT_VERSION "1"

/* ------------------------------------------------------------------------- */
/* settings                                                                   */

/* Settings recorded since a later version of format 1, and the value every checkpoint
 * made before them had. */
static const struct {
    const char *key, *value;
} late_settings[] = {
    {"precision", "fp32"}, /* full training: --bf16 mixed precision */
};

/* The value of a setting in a checkpoint that predates it, NULL when it always existed. */
static const char *ckpt_setting_before(const char *key) {
    for (size_t i = 0; i < sizeof late_settings / sizeof late_settings[0]; i++)
        if (!strcmp(late_settings[i].key, key)) return late_settings[i].value;
    return NULL;
}

int ckpt_settings_set(CkptSettings *s, const char *key, const char *fmt, ...) {
    if (strlen(key) >= sizeof s->v[0].key) return err_set("checkpoint: setting name '%s' is too long", key);
    va_list ap;
    va_start(ap, fmt);
    char *v = NULL; /* the value first: a setting that cannot be stored leaves no entry */
    if (vasprintf(&v, fmt, ap) < 0) v = NULL;
    va_end(ap);
    if (!v) return err_set("checkpoint: setting '%s': its value cannot be stored (out of memory)", key);
    CkptSetting *e = NULL;
    for (int i = 0; i < s->n; i++)
        if (!strcmp(s->v[i].key, key)) e = &s->v[i];
    if (!e) {
        if (s->n == s->cap) {
            int cap = s->cap ? 2 * s->cap : 32;
            CkptSetting *nv = realloc(s->v, (size_t)cap * sizeof *nv);
            if (!nv) {
                free(v);
                return err_set("out of memory");
            }
            s->v = nv;
            s->cap = cap;
        }
        e = &s->v[s->n++];
        snprintf(e->key, sizeof e->key, "%s", key);
        e->value = NULL;
    }
    free(e->value);
    e->value = v;
    return 0;
}

const char *ckpt_settings_get(const CkptSettings *s, const char *key) {
    for (int i = 0; i < s->n; i++)
        if (!strcmp(s->v[i].key, key)) return s->v[i].value;
    return NULL;
}

void ckpt_settings_free(CkptSettings *s) {
    for (int i = 0; i < s->n; i++) free(s->v[i].value);
    free(s->v);
    memset(s, 0, sizeof *s);
}

/* ------------------------------------------------------------------------- */
/* files                                                                      */

int ckpt_exists(const char *dir) {
    char *p = file_join(dir, CKPT_FILE);
    int e = p && file_exists(p);
    free(p);
    return e;
}

/* Temporary files of file_atomic_open (".state.safetensors.tmp.XXXXXX") left by a kill. */
static void remove_stale_temps(const char *dir) {
    DIR *d = opendir(dir);
    if (!d) return;
    const char *prefix = "." CKPT_FILE ".tmp.";
    struct dirent *e;
    while ((e = readdir(d)))
        if (!strncmp(e->d_name, prefix, strlen(prefix))) {
            char *p = file_join(dir, e->d_name);
            if (p) unlink(p);
            free(p);
        }
    closedir(d);
}

int ckpt_save(const char *dir, const CkptTensor *t, int n, const CkptPos *pos, const CkptSettings *s) {
    if (file_mkdirs(dir) != 0) return -1;
    remove_stale_temps(dir);
    StWriter w;
    st_writer_init(&w);
    int rc = 0;
    for (int i = 0; i < n && !rc; i++) {
        int64_t shape[1] = {(int64_t)t[i].n};
        rc = st_writer_add(&w, t[i].name, DT_F32, 1, shape, t[i].data);
    }
    /* FNV-1a 64 over every tensor's bytes, in order: a flipped byte is refused on resume */
    uint64_t sum = HASH_FNV64_BASIS;
    for (int i = 0; i < n; i++) sum = hash_fnv64(sum, t[i].data, t[i].n * sizeof(float));
    char buf[64];
#define META(k, ...) do { if (!rc) { snprintf(buf, sizeof buf, __VA_ARGS__); rc = st_writer_meta_set(&w, k, buf); } } while (0)
    META("muscle.checkpoint", "%s", CKPT_VERSION);
    META("step", "%ld", pos->step);
    META("total_steps", "%ld", pos->total_steps);
    META("epoch", "%ld", pos->epoch);
    META("index", "%ld", pos->index);
    META("rng", "%016" PRIx64, pos->rng);
    META("threads", "%d", pos->threads);
    META("val_loss", "%.17g", pos->val_loss);
    META("start_val_loss", "%.17g", pos->start_val_loss);
    META("checksum.fnv64", "%016" PRIx64, sum);
#undef META
    char key[64];
    for (int i = 0; s && i < s->n && !rc; i++) {
        snprintf(key, sizeof key, "setting.%s", s->v[i].key);
        rc = st_writer_meta_set(&w, key, s->v[i].value);
    }
    char *path = file_join(dir, CKPT_FILE);
    if (!rc) rc = path ? st_writer_write(&w, path) : err_set("out of memory");
    free(path);
    st_writer_free(&w);
    return rc;
}

static int meta_long(const StFile *f, const char *path, const char *key, long *out) {
    const char *v = st_meta_get(f, key);
    char *end;
    if (!v) return err_set("%s: metadata '%s' is missing: not a muscle training checkpoint", path, key);
    errno = 0;
    long x = strtol(v, &end, 10);
    if (errno || end == v || *end || x < 0) return err_set("%s: metadata '%s' = '%s': expected an integer >= 0", path, key, v);
    *out = x;
    return 0;
}

int ckpt_load(const char *dir, CkptTensor *t, int n, CkptPos *pos, const CkptSettings *s) {
    char *path = file_join(dir, CKPT_FILE);
    if (!path) return err_set("out of memory");
    if (!file_exists(path)) {
        err_set("%s: no checkpoint to resume from (it is written every --save-every steps and at the end)", path);
        free(path);
        return -1;
    }
    StFile f;
    if (st_open(&f, path) != 0) {
        free(path);
        return -1;
    }
    int rc = 0;
    const char *ver = st_meta_get(&f, "muscle.checkpoint");
    if (!ver) rc = err_set("%s: not a muscle training checkpoint (no 'muscle.checkpoint' metadata)", path);
    else if (strcmp(ver, CKPT_VERSION)) rc = err_set("%s: checkpoint format '%s': expected '%s'", path, ver, CKPT_VERSION);
    /* settings first: the most useful message when a run is resumed differently */
    char key[64];
    for (int i = 0; s && i < s->n && !rc; i++) {
        snprintf(key, sizeof key, "setting.%s", s->v[i].key);
        const char *v = st_meta_get(&f, key);
        if (!v) v = ckpt_setting_before(s->v[i].key);
        if (!v) rc = err_set("%s: cannot resume: setting '%s' is not recorded in the checkpoint (made by another kind of run)", path, s->v[i].key);
        else if (strcmp(v, s->v[i].value))
            rc = err_set("%s: cannot resume: setting '%s' is %s now, %s in the checkpoint (resume with the same settings, or train into a new --out folder)",
                         path, s->v[i].key, s->v[i].value, v);
    }
    CkptPos p = {0};
    long thr = 0;
    if (!rc) rc = meta_long(&f, path, "step", &p.step) || meta_long(&f, path, "total_steps", &p.total_steps) ||
                  meta_long(&f, path, "epoch", &p.epoch) || meta_long(&f, path, "index", &p.index) ||
                  meta_long(&f, path, "threads", &thr) ? -1 : 0;
    if (!rc) {
        const char *r = st_meta_get(&f, "rng");
        char *end;
        if (!r || strlen(r) != 16) rc = err_set("%s: metadata 'rng': expected 16 hex digits", path);
        else {
            p.rng = strtoull(r, &end, 16);
            if (*end) rc = err_set("%s: metadata 'rng' = '%s': expected 16 hex digits", path, r);
        }
        p.threads = (int)thr;
        const char *v = st_meta_get(&f, "val_loss");
        p.val_loss = v ? strtod(v, NULL) : NAN;
        v = st_meta_get(&f, "start_val_loss");
        p.start_val_loss = v ? strtod(v, NULL) : NAN;
    }
    uint64_t sum = HASH_FNV64_BASIS;
    for (int i = 0; i < n && !rc; i++) {
        const StTensor *st = st_tensor_find(&f, t[i].name);
        if (!st) rc = err_set("%s: tensor '%s' is missing", path, t[i].name);
        else if (!st->supported || st->dtype != DT_F32 || st->numel != t[i].n)
            rc = err_set("%s: tensor '%s' is %s with %llu values: expected F32 with %zu", path, t[i].name, st->dtype_name,
                         (unsigned long long)st->numel, t[i].n);
        else {
            sum = hash_fnv64(sum, st->data, st->nbytes);
            rc = st_tensor_to_f32(&f, st, t[i].data);
        }
    }
    const char *want = st_meta_get(&f, "checksum.fnv64"); /* absent: a checkpoint of an earlier muscle */
    char got[20];
    snprintf(got, sizeof got, "%016" PRIx64, sum);
    if (!rc && want && strcmp(want, got))
        rc = err_set("%s: checksum mismatch (%s recorded, %s read): the file is damaged; train into a new --out folder", path, want, got);
    if (!rc) *pos = p;
    st_close(&f);
    free(path);
    return rc;
}
