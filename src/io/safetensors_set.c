/* io/safetensors_set.c - sharded safetensors (safetensors.h): model.safetensors.index.json
 * parsed and checked, and a set of one file or of every shard it names opened as one. */
#include "safetensors.h"

#include <cJSON.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "core/file.h"
#include "io_internal.h"
#include "json.h"
#include "st_internal.h"

/* ================================================================ index.json */

void st_index_free(StIndex *ix) {
    if (!ix) return;
    for (size_t i = 0; i < ix->n_entries; i++) {
        free(ix->entries[i].tensor);
        free(ix->entries[i].file);
    }
    free(ix->entries);
    for (size_t i = 0; i < ix->n_files; i++) free(ix->files[i]);
    free(ix->files);
    meta_free(ix->meta, ix->n_meta);
    free(ix->name);
    memset(ix, 0, sizeof *ix);
}

static int entry_cmp(const void *a, const void *b) {
    return strcmp(((const StIndexEntry *)a)->tensor, ((const StIndexEntry *)b)->tensor);
}
static int str_cmp(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* A shard must be a plain file name in the index's folder. */
static int shard_name_ok(const char *s) {
    if (!*s || strcmp(s, ".") == 0 || strcmp(s, "..") == 0) return 0;
    return strchr(s, '/') == NULL && strchr(s, '\\') == NULL;
}

static int index_parse_meta(StIndex *ix, const cJSON *obj) {
    if (cJSON_IsNull(obj)) return 0;
    if (ix->meta) return err_set("%s: field 'metadata' appears twice", ix->name);
    if (!cJSON_IsObject(obj))
        return err_set("%s: field 'metadata': expected an object, got %s", ix->name, io_json_kind(obj));
    size_t n = (size_t)cJSON_GetArraySize(obj);
    ix->meta = calloc(n ? n : 1, sizeof *ix->meta);
    if (!ix->meta) return err_set("%s: out of memory", ix->name);
    for (const cJSON *kv = obj->child; kv; kv = kv->next) {
        char num[64];
        const char *val;
        if (cJSON_IsString(kv)) {
            val = kv->valuestring;
        } else if (cJSON_IsNumber(kv)) {
            double d = kv->valuedouble;
            if (d == floor(d) && fabs(d) < 9007199254740992.0) snprintf(num, sizeof num, "%.0f", d);
            else snprintf(num, sizeof num, "%.17g", d);
            val = num;
        } else if (cJSON_IsBool(kv)) {
            val = cJSON_IsTrue(kv) ? "true" : "false";
        } else {
            continue; /* free-form: nested values are not kept */
        }
        StMeta *m = &ix->meta[ix->n_meta];
        m->key = strdup(kv->string);
        m->value = strdup(val);
        ix->n_meta++;
        if (!m->key || !m->value) return err_set("%s: out of memory", ix->name);
    }
    return meta_finish(ix->meta, ix->n_meta, ix->name, "metadata");
}

static int index_parse_map(StIndex *ix, const cJSON *obj) {
    if (ix->entries) return err_set("%s: field 'weight_map' appears twice", ix->name);
    if (!cJSON_IsObject(obj))
        return err_set("%s: field 'weight_map': expected an object {tensor: file}, got %s", ix->name,
                       io_json_kind(obj));
    size_t n = (size_t)cJSON_GetArraySize(obj);
    ix->entries = calloc(n ? n : 1, sizeof *ix->entries);
    if (!ix->entries) return err_set("%s: out of memory", ix->name);
    for (const cJSON *kv = obj->child; kv; kv = kv->next) {
        char q[IO_QUOTE_CAP], q2[IO_QUOTE_CAP];
        if (!cJSON_IsString(kv))
            return err_set("%s: field 'weight_map': tensor '%s': expected a file name, got %s", ix->name,
                           io_quote(q, kv->string, strlen(kv->string)), io_json_kind(kv));
        if (!shard_name_ok(kv->valuestring))
            return err_set("%s: field 'weight_map': tensor '%s': file '%s' is not a plain file name in the index's "
                           "folder",
                           ix->name, io_quote(q, kv->string, strlen(kv->string)),
                           io_quote(q2, kv->valuestring, strlen(kv->valuestring)));
        StIndexEntry *e = &ix->entries[ix->n_entries];
        e->tensor = strdup(kv->string);
        e->file = strdup(kv->valuestring);
        ix->n_entries++;
        if (!e->tensor || !e->file) return err_set("%s: out of memory", ix->name);
    }
    if (ix->n_entries > 1) qsort(ix->entries, ix->n_entries, sizeof *ix->entries, entry_cmp);
    for (size_t i = 1; i < ix->n_entries; i++) {
        if (strcmp(ix->entries[i - 1].tensor, ix->entries[i].tensor) == 0) {
            char q[IO_QUOTE_CAP];
            return err_set("%s: field 'weight_map': tensor '%s' appears twice", ix->name,
                           io_quote(q, ix->entries[i].tensor, strlen(ix->entries[i].tensor)));
        }
    }
    /* distinct files */
    ix->files = calloc(ix->n_entries ? ix->n_entries : 1, sizeof *ix->files);
    if (!ix->files) return err_set("%s: out of memory", ix->name);
    char **tmp = malloc((ix->n_entries ? ix->n_entries : 1) * sizeof *tmp);
    if (!tmp) return err_set("%s: out of memory", ix->name);
    for (size_t i = 0; i < ix->n_entries; i++) tmp[i] = ix->entries[i].file;
    if (ix->n_entries > 1) qsort(tmp, ix->n_entries, sizeof *tmp, str_cmp);
    for (size_t i = 0; i < ix->n_entries; i++) {
        if (i > 0 && strcmp(tmp[i - 1], tmp[i]) == 0) continue;
        ix->files[ix->n_files] = strdup(tmp[i]);
        if (!ix->files[ix->n_files]) {
            free(tmp);
            return err_set("%s: out of memory", ix->name);
        }
        ix->n_files++;
    }
    free(tmp);
    return 0;
}

int st_index_parse_buffer(StIndex *ix, const char *json, size_t n, const char *display_name) {
    memset(ix, 0, sizeof *ix);
    ix->name = strdup(display_name ? display_name : "(index)");
    if (!ix->name) return err_set("out of memory");
    cJSON *root = io_json_parse_object((const uint8_t *)json, n, ix->name, "index");
    if (!root) {
        st_index_free(ix);
        return -1;
    }
    int rc = 0;
    for (const cJSON *c = root->child; c && rc == 0; c = c->next) {
        if (strcmp(c->string, "weight_map") == 0) rc = index_parse_map(ix, c);
        else if (strcmp(c->string, "metadata") == 0) rc = index_parse_meta(ix, c);
    }
    if (rc == 0 && !ix->entries) rc = err_set("%s: field 'weight_map': missing", ix->name);
    if (rc == 0 && ix->n_entries == 0) rc = err_set("%s: field 'weight_map': empty (no tensor)", ix->name);
    cJSON_Delete(root);
    if (rc) {
        st_index_free(ix);
        return -1;
    }
    return 0;
}

/* ================================================================ sets */

void st_set_close(StSet *s) {
    if (!s) return;
    for (size_t i = 0; i < s->n_shards; i++) st_close(&s->shards[i]);
    free(s->shards);
    free(s->entries);
    st_index_free(&s->index);
    free(s->path);
    memset(s, 0, sizeof *s);
}

static int ends_with(const char *s, const char *suffix) {
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && strcmp(s + a - b, suffix) == 0;
}

static int set_open_single(StSet *s, const char *file) {
    s->shards = calloc(1, sizeof *s->shards);
    if (!s->shards) return err_set("%s: out of memory", file);
    if (st_open(&s->shards[0], file)) return -1;
    s->n_shards = 1;
    const StFile *f = &s->shards[0];
    s->entries = calloc(f->n_tensors ? f->n_tensors : 1, sizeof *s->entries);
    if (!s->entries) return err_set("%s: out of memory", file);
    for (size_t i = 0; i < f->n_tensors; i++) {
        const StTensor *t = &f->tensors[f->by_name[i]];
        s->entries[i].name = t->name;
        s->entries[i].tensor = t;
        s->entries[i].shard = 0;
    }
    s->n_entries = f->n_tensors;
    return 0;
}

static int set_open_index(StSet *s, const char *index_path) {
    size_t n;
    char *json = file_read_all(index_path, &n, ST_MAX_HEADER);
    if (!json) return -1;
    int rc = st_index_parse_buffer(&s->index, json, n, index_path);
    free(json);
    if (rc) return -1;
    const StIndex *ix = &s->index;
    char *dir = file_dirname(index_path);
    if (!dir) return err_set("%s: out of memory", index_path);
    s->shards = calloc(ix->n_files, sizeof *s->shards);
    if (!s->shards) {
        free(dir);
        return err_set("%s: out of memory", index_path);
    }
    for (size_t i = 0; i < ix->n_files; i++) {
        char *p = file_join(dir, ix->files[i]);
        if (!p) {
            free(dir);
            return err_set("%s: out of memory", index_path);
        }
        rc = st_open(&s->shards[i], p);
        free(p);
        if (rc) {
            free(dir);
            return err_prefix("%s: shard %zu of %zu", index_path, i + 1, ix->n_files);
        }
        s->n_shards++;
    }
    free(dir);
    s->entries = calloc(ix->n_entries, sizeof *s->entries);
    if (!s->entries) return err_set("%s: out of memory", index_path);
    for (size_t i = 0; i < ix->n_entries; i++) {
        const StIndexEntry *e = &ix->entries[i];
        long k = io_sorted_find(ix->files, ix->n_files, sizeof *ix->files, e->file); /* files are sorted */
        const StTensor *t = k < 0 ? NULL : st_tensor_find(&s->shards[k], e->tensor);
        if (!t) {
            char q[IO_QUOTE_CAP], q2[IO_QUOTE_CAP];
            return err_set("%s: field 'weight_map': tensor '%s' is mapped to '%s', which has no such tensor",
                           index_path, io_quote(q, e->tensor, strlen(e->tensor)),
                           io_quote(q2, e->file, strlen(e->file)));
        }
        s->entries[i].name = t->name;
        s->entries[i].tensor = t;
        s->entries[i].shard = (size_t)k;
    }
    s->n_entries = ix->n_entries;
    return 0;
}

int st_set_open(StSet *s, const char *path) {
    memset(s, 0, sizeof *s);
    s->path = strdup(path);
    if (!s->path) return err_set("out of memory");
    int rc;
    if (file_is_dir(path)) {
        char *ip = file_join(path, "model.safetensors.index.json");
        char *sp = file_join(path, "model.safetensors");
        if (!ip || !sp) rc = err_set("%s: out of memory", path);
        else if (file_exists(ip)) rc = set_open_index(s, ip);
        else if (file_exists(sp)) rc = set_open_single(s, sp);
        else rc = err_set("%s: no model.safetensors.index.json nor model.safetensors in this folder", path);
        free(ip);
        free(sp);
    } else if (ends_with(path, ".json")) {
        rc = set_open_index(s, path);
    } else {
        rc = set_open_single(s, path);
    }
    if (rc) {
        st_set_close(s);
        return -1;
    }
    return 0;
}

const StTensor *st_set_tensor_find(const StSet *s, const char *name, const StFile **shard) {
    long i = io_sorted_find(s->entries, s->n_entries, sizeof *s->entries, name);
    if (i < 0) return NULL;
    if (shard) *shard = &s->shards[s->entries[i].shard];
    return s->entries[i].tensor;
}

