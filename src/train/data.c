/* train/data.c - batches, token-stream windows, corpus reading and tokenization. */
#include "data.h"
#include "core/error.h"
#include "core/file.h"

#include <cJSON.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------------- */
/* batches                                                                    */

int train_batch_init(TrainBatch *b, int cap_rows, int T) {
    memset(b, 0, sizeof *b);
    if (cap_rows < 1 || T < 1) return err_set("batch: %d rows of %d positions: expected at least 1 of each", cap_rows, T);
    size_t n = (size_t)cap_rows * T;
    b->tokens = malloc(n * sizeof *b->tokens);
    b->targets = malloc(n * sizeof *b->targets);
    b->weights = malloc(n * sizeof *b->weights);
    if (!b->tokens || !b->targets || !b->weights) {
        train_batch_free(b);
        return err_set("out of memory: a batch of %d x %d", cap_rows, T);
    }
    b->cap = cap_rows;
    b->T = T;
    return 0;
}

void train_batch_free(TrainBatch *b) {
    free(b->tokens);
    free(b->targets);
    free(b->weights);
    memset(b, 0, sizeof *b);
}

int data_fill_row(const TrainData *d, int split, long i, TrainBatch *b, int row) {
    if (split != DATA_TRAIN && split != DATA_VAL) return err_set("data: split %d: expected 0 (train) or 1 (held-out)", split);
    if (i < 0 || i >= d->n[split]) return err_set("data: example %ld: the %s split holds %ld", i, split ? "held-out" : "training", d->n[split]);
    if (row < 0 || row >= b->cap) return err_set("data: row %d: the batch holds %d", row, b->cap);
    if (b->T != d->seq_len) return err_set("data: the batch has rows of %d positions, the data %d", b->T, d->seq_len);
    size_t off = (size_t)row * b->T;
    return d->fill(d, split, i, b->tokens + off, b->targets + off, b->weights + off);
}

void data_free(TrainData *d) {
    if (d->destroy) d->destroy(d);
    memset(d, 0, sizeof *d);
}

/* ------------------------------------------------------------------------- */
/* windows over token streams                                                 */

typedef struct {
    int *ids[2];
    size_t n[2];
} StreamImpl;

static long windows_of(size_t n, int T) { return n < 2 ? 0 : (long)((n - 1 + (size_t)T - 1) / (size_t)T); }

static int stream_fill(const TrainData *d, int split, long i, int *tok, int *tgt, float *w) {
    const StreamImpl *s = d->impl;
    const int *ids = s->ids[split];
    size_t n = s->n[split], start = (size_t)i * (size_t)d->seq_len;
    for (int j = 0; j < d->seq_len; j++) {
        size_t p = start + (size_t)j;
        if (p + 1 < n) {
            tok[j] = ids[p];
            tgt[j] = ids[p + 1];
            w[j] = 1.0f;
        } else { /* past the end of a short last window: padding */
            tok[j] = ids[n - 1];
            tgt[j] = ids[n - 1];
            w[j] = 0.0f;
        }
    }
    return 0;
}

static void stream_destroy(TrainData *d) {
    StreamImpl *s = d->impl;
    if (s) {
        free(s->ids[0]);
        free(s->ids[1]);
        free(s);
    }
    d->impl = NULL;
}

static uint64_t hash_ints(uint64_t h, const int *v, size_t n) {
    for (size_t i = 0; i < n; i++) {
        h ^= (uint32_t)v[i];
        h *= 0x100000001b3ull;
        h ^= h >> 29;
    }
    return h;
}

int data_stream_open(TrainData *d, const int *train_ids, size_t n_train, const int *val_ids, size_t n_val, int seq_len) {
    memset(d, 0, sizeof *d);
    if (seq_len < 1) return err_set("data: sequence length %d: expected at least 1", seq_len);
    if (n_train < 2) return err_set("data: %zu training tokens: at least 2 are needed (one input, one target)", n_train);
    if (n_val == 1) return err_set("data: 1 held-out token: at least 2 are needed (one input, one target)");
    StreamImpl *s = calloc(1, sizeof *s);
    if (!s) return err_set("out of memory");
    s->ids[0] = malloc(n_train * sizeof(int));
    s->ids[1] = malloc((n_val ? n_val : 1) * sizeof(int));
    if (!s->ids[0] || !s->ids[1]) {
        free(s->ids[0]);
        free(s->ids[1]);
        free(s);
        return err_set("out of memory: %zu tokens", n_train + n_val);
    }
    memcpy(s->ids[0], train_ids, n_train * sizeof(int));
    if (n_val) memcpy(s->ids[1], val_ids, n_val * sizeof(int));
    s->n[0] = n_train;
    s->n[1] = n_val;
    d->seq_len = seq_len;
    d->n[0] = windows_of(n_train, seq_len);
    d->n[1] = windows_of(n_val, seq_len);
    d->n_tokens[0] = n_train;
    d->n_tokens[1] = n_val;
    uint64_t h = 0xcbf29ce484222325ull ^ (uint64_t)seq_len;
    h = hash_ints(h, train_ids, n_train);
    h = hash_ints(h ^ 0x9e3779b97f4a7c15ull ^ n_train, val_ids, n_val);
    d->hash = h;
    d->fill = stream_fill;
    d->destroy = stream_destroy;
    d->impl = s;
    return 0;
}

/* ------------------------------------------------------------------------- */
/* corpus files                                                               */

int data_format_parse(const char *s, DataFormat *f) {
    static const char *names[] = {"auto", "text", "lines", "jsonl"};
    for (int i = 0; i < 4; i++)
        if (!strcmp(s, names[i])) {
            *f = (DataFormat)i;
            return 0;
        }
    return err_set("data format '%s': expected auto, text, lines or jsonl", s);
}

const char *data_format_name(DataFormat f) {
    static const char *names[] = {"auto", "text", "lines", "jsonl"};
    return (unsigned)f < 4 ? names[f] : "?";
}

void text_data_options_default(TextDataOptions *o) {
    memset(o, 0, sizeof *o);
    o->format = DATA_FMT_AUTO;
    o->seq_len = 256;
    o->val_frac = 0.05;
}

typedef struct {
    const char *p;  /* text (into the mapping, or `owned`) */
    size_t n;
    char *owned;    /* decoded JSON string */
} Doc;

typedef struct {
    Doc *v;
    size_t n, cap;
} Docs;

static int docs_push(Docs *d, const char *p, size_t n, char *owned) {
    if (d->n == d->cap) {
        size_t cap = d->cap ? d->cap * 2 : 256;
        Doc *v = realloc(d->v, cap * sizeof *v);
        if (!v) {
            free(owned);
            return err_set("out of memory");
        }
        d->v = v;
        d->cap = cap;
    }
    d->v[d->n++] = (Doc){p, n, owned};
    return 0;
}

static void docs_free(Docs *d) {
    for (size_t i = 0; i < d->n; i++) free(d->v[i].owned);
    free(d->v);
    memset(d, 0, sizeof *d);
}

static int is_blank(const char *p, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (p[i] != ' ' && p[i] != '\t' && p[i] != '\r') return 0;
    return 1;
}

/* Splits [s, s+n) into lines; calls back with each line (without its '\n') and its number. */
#define FOR_EACH_LINE(s, n, LP, LN, LNO, BODY)                                   \
    do {                                                                       \
        size_t pos_ = 0;                                                       \
        long LNO = 0;                                                          \
        while (pos_ < (n)) {                                                   \
            const char *LP = (s) + pos_;                                       \
            const char *nl_ = memchr(LP, '\n', (n) - pos_);                    \
            size_t LN = nl_ ? (size_t)(nl_ - LP) : (n) - pos_;                 \
            LNO++;                                                             \
            pos_ += LN + (nl_ ? 1 : 0);                                        \
            BODY                                                               \
        }                                                                      \
    } while (0)

static int split_text(const char *path, const char *s, size_t n, DataFormat fmt, Docs *docs) {
    if (fmt == DATA_FMT_LINES) {
        FOR_EACH_LINE(s, n, lp, ln, lno, {
            (void)lno;
            if (is_blank(lp, ln)) continue;
            while (ln && lp[ln - 1] == '\r') ln--;
            if (docs_push(docs, lp, ln, NULL)) return -1;
        });
        return 0;
    }
    if (fmt == DATA_FMT_TEXT) {
        const char *start = NULL, *end = NULL; /* current document */
        FOR_EACH_LINE(s, n, lp, ln, lno, {
            (void)lno;
            if (is_blank(lp, ln)) {
                if (start && docs_push(docs, start, (size_t)(end - start), NULL)) return -1;
                start = NULL;
                continue;
            }
            if (!start) start = lp;
            end = lp + ln;
        });
        if (start && docs_push(docs, start, (size_t)(end - start), NULL)) return -1;
        /* trailing CR/space of every document */
        for (size_t i = 0; i < docs->n; i++)
            while (docs->v[i].n && (docs->v[i].p[docs->v[i].n - 1] == '\r' || docs->v[i].p[docs->v[i].n - 1] == ' ' ||
                                    docs->v[i].p[docs->v[i].n - 1] == '\t'))
                docs->v[i].n--;
        return 0;
    }
    /* JSONL */
    int rc = 0;
    FOR_EACH_LINE(s, n, lp, ln, lno, {
        if (is_blank(lp, ln)) continue;
        cJSON *j = cJSON_ParseWithLength(lp, ln);
        if (!j || !cJSON_IsObject(j)) {
            cJSON_Delete(j);
            return err_set("%s:%ld: expected a JSON object per line (JSON lines with a \"text\" field)", path, lno);
        }
        const cJSON *t = cJSON_GetObjectItemCaseSensitive(j, "text");
        if (!t) rc = err_set("%s:%ld: field 'text' is missing", path, lno);
        else if (!cJSON_IsString(t)) rc = err_set("%s:%ld: field 'text': expected a string", path, lno);
        else if (t->valuestring[0]) {
            char *copy = strdup(t->valuestring);
            rc = copy ? docs_push(docs, copy, strlen(copy), copy) : err_set("out of memory");
        }
        cJSON_Delete(j);
        if (rc) return rc;
    });
    return 0;
}

int data_tokenize_file(const char *path, DataFormat fmt, const Tokenizer *t, int **ids_out, size_t *n_out,
                       size_t *n_docs_out) {
    *ids_out = NULL;
    *n_out = 0;
    if (n_docs_out) *n_docs_out = 0;
    MappedFile f;
    if (file_map(&f, path) != 0) return -1;
    const char *s = (const char *)f.data;
    size_t n = f.size;
    if (fmt == DATA_FMT_AUTO) {
        size_t i = 0;
        while (i < n && (s[i] == ' ' || s[i] == '\t' || s[i] == '\r' || s[i] == '\n')) i++;
        fmt = (i < n && s[i] == '{') ? DATA_FMT_JSONL : DATA_FMT_TEXT;
    }
    Docs docs = {0};
    int rc = n ? split_text(path, s, n, fmt, &docs) : 0;
    if (rc == 0 && docs.n == 0)
        rc = err_set("%s: no text (expected %s)", path,
                     fmt == DATA_FMT_JSONL ? "JSON lines with a non-empty \"text\" field"
                     : fmt == DATA_FMT_LINES ? "one document per non-blank line"
                                             : "plain text, documents separated by blank lines");
    int **per = NULL, *cnt = NULL;
    if (rc == 0) {
        per = calloc(docs.n, sizeof *per);
        cnt = calloc(docs.n, sizeof *cnt);
        if (!per || !cnt) rc = err_set("out of memory");
    }
    if (rc == 0) {
        /* documents in parallel (the tokenizer is immutable); the first failing document's
         * message is carried back to this thread (err_msg is thread-local) */
        long bad = -1;
        char badmsg[512] = "";
        int bos = tok_bos_id(t) >= 0;
#pragma omp parallel for schedule(dynamic, 8)
        for (size_t i = 0; i < docs.n; i++) {
            if (tok_encode(t, docs.v[i].p, docs.v[i].n, bos, 0, &per[i], &cnt[i]) != 0) {
#pragma omp critical(data_tok_err)
                if (bad < 0 || (long)i < bad) {
                    bad = (long)i;
                    snprintf(badmsg, sizeof badmsg, "%s", err_msg());
                }
            }
        }
        if (bad >= 0) rc = err_set("%s: document %ld: %s", path, bad + 1, badmsg);
    }
    size_t total = 0;
    if (rc == 0) {
        for (size_t i = 0; i < docs.n; i++) total += (size_t)cnt[i];
        *ids_out = malloc((total ? total : 1) * sizeof(int));
        if (!*ids_out) rc = err_set("out of memory: %zu tokens", total);
    }
    if (rc == 0) {
        size_t off = 0;
        for (size_t i = 0; i < docs.n; i++) {
            if (cnt[i]) memcpy(*ids_out + off, per[i], (size_t)cnt[i] * sizeof(int));
            off += (size_t)cnt[i];
        }
        *n_out = total;
        if (n_docs_out) *n_docs_out = docs.n;
        if (total == 0) {
            free(*ids_out);
            *ids_out = NULL;
            rc = err_set("%s: no text: the documents encode to no tokens", path);
        }
    }
    if (per)
        for (size_t i = 0; i < docs.n; i++) free(per[i]);
    free(per);
    free(cnt);
    docs_free(&docs);
    file_unmap(&f);
    return rc;
}

int data_text_open(TrainData *d, const char *path, const TextDataOptions *o, const Tokenizer *t) {
    memset(d, 0, sizeof *d);
    int T = o->seq_len;
    if (T < 1) return err_set("data: sequence length %d: expected at least 1", T);
    if (!o->val_path && !(o->val_frac >= 0 && o->val_frac <= 0.5))
        return err_set("data: held-out share %g: expected a value in 0..0.5", o->val_frac);
    int *ids = NULL, *vids = NULL;
    size_t n = 0, nv = 0, ndocs = 0, nvdocs = 0;
    if (data_tokenize_file(path, o->format, t, &ids, &n, &ndocs) != 0) return -1;
    int rc = 0;
    size_t ntrain = n;
    const int *val = NULL;
    if (o->val_path) {
        if (data_tokenize_file(o->val_path, o->format, t, &vids, &nv, &nvdocs) != 0) rc = -1;
        else if (nv < 2) rc = err_set("%s: %zu token: the held-out text needs at least 2", o->val_path, nv);
        val = vids;
    } else if (o->val_frac > 0) {
        nv = (size_t)llround(o->val_frac * (double)n);
        if (nv < (size_t)T + 1) nv = (size_t)T + 1; /* at least one whole window */
        if (nv + (size_t)T + 1 > n)
            rc = err_set("%s: %zu tokens are too few to hold out %zu for validation and train on a window of %d + 1 "
                         "(use a smaller --seq-len, more text, --val FILE or --val-frac 0)",
                         path, n, nv, T);
        ntrain = n - nv;
        val = ids + ntrain;
    }
    if (rc == 0 && ntrain < 2) rc = err_set("%s: %zu token: training needs at least 2", path, ntrain);
    if (rc == 0 && data_stream_open(d, ids, ntrain, val, nv, T) != 0) rc = -1;
    if (rc == 0) d->n_docs = ndocs + nvdocs;
    free(ids);
    free(vids);
    return rc;
}
