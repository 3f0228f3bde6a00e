/* metrics/preds.c - reading PREDS.jsonl files and pairing their instances by id. */
#include "preds.h"
#include "preds_internal.h"

#include "core/error.h"
#include "core/file.h"
#include "core/hash.h"
#include "io/json.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NAMED_MAX 3 /* how many offending ids an error names */

/* ================================================================ id hash set */

typedef struct {
    size_t *slot; /* record index + 1; 0 = empty */
    size_t cap;
} IdSet;

static int idset_init(IdSet *s, size_t n) {
    s->cap = 16;
    while (s->cap < 2 * n) s->cap *= 2;
    s->slot = calloc(s->cap, sizeof *s->slot);
    return s->slot ? 0 : err_set("out of memory for %zu ids", n);
}

/* Finds key; when absent and insert_idx != (size_t)-1, inserts it. Returns the record
 * index found, or (size_t)-1. */
static size_t idset_find(IdSet *s, const PredRecord *rec, const char *key, size_t insert_idx) {
    size_t m = s->cap - 1, i = (size_t)hash_fnv64_str(key) & m;
    while (s->slot[i]) {
        size_t r = s->slot[i] - 1;
        if (strcmp(rec[r].key, key) == 0) return r;
        i = (i + 1) & m;
    }
    if (insert_idx != (size_t)-1) s->slot[i] = insert_idx + 1;
    return (size_t)-1;
}

/* ================================================================ reading */

void preds_free(PredFile *f) {
    for (size_t i = 0; i < f->n; i++) {
        free(f->rec[i].key);
        cJSON_Delete(f->rec[i].obj);
    }
    free(f->rec);
    free(f->path);
    free(f->metric);
    memset(f, 0, sizeof *f);
}

/* Checks one parsed line and fills r (r->obj already set). */
static int check_record(const char *path, size_t line, PredRecord *r) {
    static const char *known[] = {"id", "correct", "score", "prediction", "choice_logprobs", "target",
                                  "text", "choices", "doc_hash", "prompt_hash"};
    const cJSON *o = r->obj;
    if (!cJSON_IsObject(o)) return err_set("%s:%zu: expected a JSON object, got %s", path, line, io_json_kind(o));
    for (size_t k = 0; k < sizeof known / sizeof known[0]; k++) {
        int count = 0;
        for (const cJSON *c = o->child; c; c = c->next)
            if (c->string && strcmp(c->string, known[k]) == 0) count++;
        if (count > 1) return err_set("%s:%zu: field '%s' appears %d times", path, line, known[k], count);
    }
    const cJSON *id = cJSON_GetObjectItemCaseSensitive(o, "id");
    if (!id) return err_set("%s:%zu: field 'id' is missing", path, line);
    if (!cJSON_IsString(id) && !cJSON_IsNumber(id))
        return err_set("%s:%zu: field 'id': expected a string or a number, got %s", path, line, io_json_kind(id));
    r->id = id;
    r->key = cJSON_PrintUnformatted(id);
    if (!r->key) return err_set("%s:%zu: out of memory", path, line);
    const cJSON *c = cJSON_GetObjectItemCaseSensitive(o, "correct");
    r->correct = -1;
    if (c) {
        if (!cJSON_IsBool(c)) return err_set("%s:%zu: field 'correct': expected true or false, got %s", path, line, io_json_kind(c));
        r->correct = cJSON_IsTrue(c) ? 1 : 0;
    }
    const cJSON *s = cJSON_GetObjectItemCaseSensitive(o, "score");
    r->score = NAN;
    if (s) {
        if (!cJSON_IsNumber(s)) return err_set("%s:%zu: field 'score': expected a number in [0, 1], got %s", path, line, io_json_kind(s));
        if (!(s->valuedouble >= 0 && s->valuedouble <= 1))
            return err_set("%s:%zu: field 'score': expected a number in [0, 1], got %g", path, line, s->valuedouble);
        r->score = s->valuedouble;
    }
    if (!c && !s) return err_set("%s:%zu: expected field 'correct' (true/false) or 'score' (a number in [0, 1])", path, line);
    const cJSON *p = cJSON_GetObjectItemCaseSensitive(o, "prediction");
    if (!p) {
        /* absent: allowed, but every line must agree (check_same_fields) */
    } else if (cJSON_IsNumber(p)) {
        double v = p->valuedouble;
        if (!(v == floor(v) && fabs(v) < 9007199254740992.0))
            return err_set("%s:%zu: field 'prediction': expected an integer choice index or a text, got %g", path, line, v);
    } else if (!cJSON_IsString(p)) {
        return err_set("%s:%zu: field 'prediction': expected an integer choice index or a text, got %s", path, line, io_json_kind(p));
    }
    r->prediction = p;
    const cJSON *lp = cJSON_GetObjectItemCaseSensitive(o, "choice_logprobs");
    if (lp) {
        if (!cJSON_IsArray(lp))
            return err_set("%s:%zu: field 'choice_logprobs': expected an array of numbers, got %s", path, line, io_json_kind(lp));
        int i = 0;
        for (const cJSON *e = lp->child; e; e = e->next, i++)
            if (!cJSON_IsNumber(e))
                return err_set("%s:%zu: field 'choice_logprobs': element %d: expected a number, got %s", path, line, i, io_json_kind(e));
        r->choice_logprobs = lp;
    }
    r->target = cJSON_GetObjectItemCaseSensitive(o, "target");
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(o, "text");
    if (t && !cJSON_IsString(t)) return err_set("%s:%zu: field 'text': expected a string, got %s", path, line, io_json_kind(t));
    r->text = t;
    const cJSON *ch = cJSON_GetObjectItemCaseSensitive(o, "choices");
    if (ch) {
        if (!cJSON_IsArray(ch)) return err_set("%s:%zu: field 'choices': expected an array of strings, got %s", path, line, io_json_kind(ch));
        int i = 0;
        for (const cJSON *e = ch->child; e; e = e->next, i++)
            if (!cJSON_IsString(e))
                return err_set("%s:%zu: field 'choices': element %d: expected a string, got %s", path, line, i, io_json_kind(e));
        r->choices = ch;
    }
    static const char *hashes[] = {"doc_hash", "prompt_hash"};
    for (int k = 0; k < 2; k++) {
        const cJSON *h = cJSON_GetObjectItemCaseSensitive(o, hashes[k]);
        if (h && !cJSON_IsString(h)) return err_set("%s:%zu: field '%s': expected a string, got %s", path, line, hashes[k], io_json_kind(h));
        if (k == 0) r->doc_hash = h ? h->valuestring : NULL;
        else r->prompt_hash = h ? h->valuestring : NULL;
    }
    return 0;
}

/* Every line must carry the same outcome fields and, likewise, a prediction or none. */
static int check_same_fields(PredFile *f, const PredRecord *r) {
    const char *path = f->path;
    size_t line = r->line;
    if (f->n == 1) {
        f->has_correct = r->correct >= 0;
        f->has_score = !isnan(r->score);
        f->has_prediction = r->prediction != NULL;
        return 0;
    }
    const PredRecord *first = &f->rec[0];
    if ((r->correct >= 0) != f->has_correct)
        return err_set("%s:%zu: field 'correct' is %s, but line %zu %s (every line must carry the same outcome fields)",
                       path, line, f->has_correct ? "missing" : "present", first->line, f->has_correct ? "has it" : "has none");
    if ((!isnan(r->score)) != f->has_score)
        return err_set("%s:%zu: field 'score' is %s, but line %zu %s (every line must carry the same outcome fields)",
                       path, line, f->has_score ? "missing" : "present", first->line, f->has_score ? "has it" : "has none");
    if ((r->prediction != NULL) != f->has_prediction)
        return err_set("%s:%zu: field 'prediction' is %s, but line %zu %s (every line must have one, or none)", path, line,
                       f->has_prediction ? "missing" : "present", first->line, f->has_prediction ? "has it" : "has none");
    return 0;
}

int preds_push(PredFile *f, size_t line, cJSON *obj, size_t *cap) {
    if (f->n == *cap) {
        size_t nc = *cap ? 2 * *cap : 256;
        PredRecord *nr = realloc(f->rec, nc * sizeof *nr);
        if (!nr) {
            cJSON_Delete(obj);
            return err_set("%s:%zu: out of memory", f->path, line);
        }
        f->rec = nr;
        *cap = nc;
    }
    PredRecord *r = &f->rec[f->n];
    memset(r, 0, sizeof *r);
    r->line = line;
    r->obj = obj;
    f->n++; /* owned from here on, freed by preds_free */
    if (check_record(f->path, line, r) != 0) return -1;
    return check_same_fields(f, r);
}

int preds_read_jsonl(PredFile *f, const char *data, size_t size, PredsLineFn fn, void *ctx) {
    size_t cap = 0, line = 0, pos = 0;
    while (pos < size) {
        const char *start = data + pos;
        const char *nl = memchr(start, '\n', size - pos);
        size_t len = nl ? (size_t)(nl - start) : size - pos;
        pos += len + (nl ? 1 : 0);
        line++;
        size_t k = 0;
        while (k < len && (start[k] == ' ' || start[k] == '\t' || start[k] == '\r')) k++;
        if (k == len) continue; /* blank line */
        const char *end = NULL;
        cJSON *obj = cJSON_ParseWithLengthOpts(start, len, &end, 0);
        if (!obj) {
            const char *ep = cJSON_GetErrorPtr();
            size_t col = ep && ep >= start && ep <= start + len ? (size_t)(ep - start) + 1 : 1;
            return err_set("%s:%zu: not valid JSON (column %zu)", f->path, line, col);
        }
        while (end && end < start + len && (*end == ' ' || *end == '\t' || *end == '\r')) end++;
        if (end && end < start + len) {
            cJSON_Delete(obj);
            return err_set("%s:%zu: unexpected text after the JSON object (column %zu)", f->path, line, (size_t)(end - start) + 1);
        }
        if (fn) {
            cJSON *canon = NULL;
            int rc = fn(ctx, f, line, obj, &canon); /* consumes obj */
            if (rc != 0) return -1;
            if (!canon) continue; /* skipped (another filter) */
            obj = canon;
        }
        if (preds_push(f, line, obj, &cap) != 0) return -1;
    }
    return 0;
}

static int check_duplicates(PredFile *f) {
    IdSet set;
    if (idset_init(&set, f->n) != 0) return -1;
    char named[512] = "";
    size_t ndup = 0, used = 0;
    for (size_t i = 0; i < f->n; i++) {
        size_t j = idset_find(&set, f->rec, f->rec[i].key, i);
        if (j == (size_t)-1) continue;
        if (ndup < NAMED_MAX && used < sizeof named)
            used += (size_t)snprintf(named + used, sizeof named - used, "%s%.60s (lines %zu and %zu)", ndup ? ", " : "",
                                     f->rec[i].key, f->rec[j].line, f->rec[i].line);
        ndup++;
    }
    free(set.slot);
    if (!ndup) return 0;
    if (ndup > NAMED_MAX) return err_set("%s: %zu duplicate ids: %s and %zu more", f->path, ndup, named, ndup - NAMED_MAX);
    return err_set("%s: duplicate id%s %s", f->path, ndup > 1 ? "s" : "", named);
}

int preds_finish(PredFile *f) {
    if (f->n == 0) return err_set("%s: no predictions (the file is empty)", f->path);
    return check_duplicates(f);
}

int preds_read(PredFile *f, const char *path) { return preds_read_opts(f, path, NULL); }

/* ================================================================ matching */

/* Lists (into buf) the first ids of `from` that `in` lacks; returns how many lack. */
static size_t missing(const PredFile *from, const PredFile *in, IdSet *in_set, char *buf, size_t cap) {
    size_t count = 0, used = 0;
    buf[0] = 0;
    for (size_t i = 0; i < from->n; i++) {
        if (idset_find(in_set, in->rec, from->rec[i].key, (size_t)-1) != (size_t)-1) continue;
        if (count < NAMED_MAX && used < cap)
            used += (size_t)snprintf(buf + used, cap - used, "%s%.60s (line %zu)", count ? ", " : "", from->rec[i].key,
                                     from->rec[i].line);
        count++;
    }
    if (count > NAMED_MAX && used < cap) snprintf(buf + used, cap - used, " and %zu more", count - NAMED_MAX);
    return count;
}

int preds_match(const PredFile *a, const PredFile *b, size_t **idx_out) {
    *idx_out = NULL;
    IdSet sa, sb;
    if (idset_init(&sa, a->n) != 0) return -1;
    if (idset_init(&sb, b->n) != 0) {
        free(sa.slot);
        return -1;
    }
    for (size_t i = 0; i < a->n; i++) idset_find(&sa, a->rec, a->rec[i].key, i);
    for (size_t i = 0; i < b->n; i++) idset_find(&sb, b->rec, b->rec[i].key, i);
    char ma[400], mb[400];
    size_t na = missing(a, b, &sb, ma, sizeof ma), nb = missing(b, a, &sa, mb, sizeof mb);
    int rc = 0;
    if (na && nb)
        rc = err_set("the files hold different instances: %zu id%s of %s missing from %s: %s; %zu id%s of %s missing from %s: %s",
                     na, na > 1 ? "s" : "", a->path, b->path, ma, nb, nb > 1 ? "s" : "", b->path, a->path, mb);
    else if (na)
        rc = err_set("the files hold different instances: %zu id%s of %s missing from %s: %s", na, na > 1 ? "s" : "", a->path,
                     b->path, ma);
    else if (nb)
        rc = err_set("the files hold different instances: %zu id%s of %s missing from %s: %s", nb, nb > 1 ? "s" : "", b->path,
                     a->path, mb);
    size_t *idx = NULL;
    if (rc == 0) {
        idx = malloc((a->n ? a->n : 1) * sizeof *idx);
        if (!idx) rc = err_set("out of memory for %zu ids", a->n);
    }
    for (size_t i = 0; rc == 0 && i < a->n; i++) {
        idx[i] = idset_find(&sb, b->rec, a->rec[i].key, (size_t)-1);
        const PredRecord *x = &a->rec[i], *y = &b->rec[idx[i]];
        if (x->target && y->target && !cJSON_Compare(x->target, y->target, 1))
            rc = err_set("id %.60s: 'target' differs between %s:%zu and %s:%zu (predictions on different test sets?)", x->key,
                         a->path, x->line, b->path, y->line);
        else if (x->doc_hash && y->doc_hash && strcmp(x->doc_hash, y->doc_hash) != 0)
            rc = err_set("id %.60s: 'doc_hash' differs between %s:%zu and %s:%zu (runs on different documents)", x->key,
                         a->path, x->line, b->path, y->line);
        else if (x->prompt_hash && y->prompt_hash && strcmp(x->prompt_hash, y->prompt_hash) != 0)
            rc = err_set("id %.60s: 'prompt_hash' differs between %s:%zu and %s:%zu (runs with different prompts: "
                         "not comparable instance by instance)", x->key, a->path, x->line, b->path, y->line);
    }
    free(sa.slot);
    free(sb.slot);
    if (rc != 0) {
        free(idx);
        return -1;
    }
    *idx_out = idx;
    return 0;
}

int preds_same_prediction(const PredRecord *a, const PredRecord *b) {
    const cJSON *x = a->prediction, *y = b->prediction;
    if (!x || !y) return -1;
    if (cJSON_IsNumber(x) && cJSON_IsNumber(y)) return x->valuedouble == y->valuedouble;
    if (cJSON_IsString(x) && cJSON_IsString(y)) return strcmp(x->valuestring, y->valuestring) == 0;
    return 0;
}
