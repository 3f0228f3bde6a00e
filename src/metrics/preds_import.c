/* metrics/preds_import.c - other tools' per-instance results as prediction records:
 * lm-evaluation-harness `--log_samples` files and plain CSV / JSONL tables of id + outcome.
 * Each line becomes a canonical PREDS.jsonl object and then goes through preds.c's checks
 * (ids, duplicates, outcome fields, NaN). Formats and sources: docs/lm-eval.md.
 *
 * lm-eval sample lines (lm_eval/evaluator.py builds them, lm_eval/loggers/
 * evaluation_tracker.py save_results_samples writes them):
 *   doc_id (int), doc (object), target (str(target)), arguments {"gen_args_i": {"arg_0":
 *   context, "arg_1": continuation or generation kwargs}}, resps, filtered_resps (every
 *   leaf turned into a string by sanitize_list: loglikelihood pairs are ["-12.5", "False"]),
 *   filter, metrics (names), doc_hash, prompt_hash, target_hash, and one key per metric.
 * One line per (doc, filter): generation tasks with several filters (gsm8k: strict-match,
 * flexible-extract) log each doc once per filter.
 */
#include "preds.h"
#include "preds_internal.h"
#include "io/json.h"

#include "core/error.h"
#include "core/file.h"
#include "core/utf8.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int preds_format_parse(const char *s, PredsFormat *out) {
    static const struct { const char *name; PredsFormat f; } names[] = {
        {"auto", PREDS_FMT_AUTO}, {"muscle", PREDS_FMT_MUSCLE}, {"jsonl", PREDS_FMT_MUSCLE},
        {"lm-eval", PREDS_FMT_LMEVAL}, {"csv", PREDS_FMT_CSV}};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (strcmp(s, names[i].name) == 0) {
            *out = names[i].f;
            return 0;
        }
    return err_set("format '%.40s': expected auto, muscle, jsonl, lm-eval or csv", s);
}

/* ================================================================ UTF-8 */

static int check_utf8(const char *path, const char *data, size_t size) {
    size_t ok = utf8_valid_prefix(data, size);
    if (ok == size) return 0;
    size_t line = 1, col = 1;
    for (size_t i = 0; i < ok; i++) {
        if (data[i] == '\n') { line++; col = 1; }
        else col++;
    }
    return err_set("%s:%zu: not valid UTF-8 (byte 0x%02X at column %zu)", path, line, (uint8_t)data[ok], col);
}

/* Unicode code points in a valid UTF-8 string (Python's len(), which lm-eval's acc_norm uses). */
static size_t utf8_codepoints(const char *s) {
    size_t n = 0;
    for (; *s; s++) n += ((uint8_t)*s & 0xC0) != 0x80;
    return n;
}

/* ================================================================ lm-eval */

typedef struct {
    const char *metric_opt; /* "NAME" or "NAME,FILTER" or NULL */
    char metric[128];       /* chosen metric name ("" until the first line) */
    char filter[128];       /* chosen filter ("" until the first line) */
    int binary;             /* the metric is a 0/1 accuracy */
} LmCtx;

static int metric_is_binary(const char *m) {
    static const char *bin[] = {"acc", "acc_norm", "exact_match", "acc_mutual_info", "em", "exact", "contains"};
    for (size_t i = 0; i < sizeof bin / sizeof bin[0]; i++)
        if (strcmp(m, bin[i]) == 0) return 1;
    return 0;
}

/* A number lm-eval logged, as a JSON number or (sanitize_list) a string; strict. */
static int lm_number(const cJSON *v, double *out) {
    if (cJSON_IsNumber(v)) {
        *out = v->valuedouble;
        return isfinite(*out) ? 0 : -1;
    }
    if (!cJSON_IsString(v) || !v->valuestring[0] || isspace((unsigned char)v->valuestring[0])) return -1;
    char *end;
    errno = 0;
    double d = strtod(v->valuestring, &end);
    if (*end || errno == ERANGE || !isfinite(d)) return -1;
    *out = d;
    return 0;
}

/* The i-th request's arguments: arg_0 (the context) and arg_1 (continuation or gen kwargs).
 * Saved files hold {"gen_args_0": {"arg_0": .., "arg_1": ..}, ...}; in-memory results a
 * list of [arg_0, arg_1] pairs. Returns the number of requests, -1 on a bad shape. */
static int lm_arguments(const cJSON *args, const cJSON **a0, const cJSON **a1, int cap) {
    int n = 0;
    if (cJSON_IsObject(args)) {
        for (;; n++) {
            char key[32];
            snprintf(key, sizeof key, "gen_args_%d", n);
            const cJSON *g = cJSON_GetObjectItemCaseSensitive(args, key);
            if (!g) break;
            if (!cJSON_IsObject(g) || n >= cap) return -1;
            a0[n] = cJSON_GetObjectItemCaseSensitive(g, "arg_0");
            a1[n] = cJSON_GetObjectItemCaseSensitive(g, "arg_1");
        }
        return n == cJSON_GetArraySize(args) ? n : -1;
    }
    if (cJSON_IsArray(args)) {
        for (const cJSON *g = args->child; g; g = g->next, n++) {
            if (!cJSON_IsArray(g) || n >= cap) return -1;
            a0[n] = cJSON_GetArrayItem(g, 0);
            a1[n] = cJSON_GetArrayItem(g, 1);
        }
        return n;
    }
    return -1;
}

#define LM_MAX_CHOICES 4096

static int lm_line(void *vctx, PredFile *f, size_t line, cJSON *obj, cJSON **out) {
    LmCtx *c = vctx;
    const char *path = f->path;
    cJSON *o = NULL;
    int rc = -1;
    *out = NULL;
    if (!cJSON_IsObject(obj)) {
        rc = err_set("%s:%zu: expected a JSON object (an lm-eval sample), got %s", path, line, io_json_kind(obj));
        goto done;
    }
    const cJSON *id = cJSON_GetObjectItemCaseSensitive(obj, "doc_id");
    if (!cJSON_IsNumber(id) || id->valuedouble != floor(id->valuedouble) || id->valuedouble < 0 ||
        id->valuedouble >= 9007199254740992.0) {
        rc = err_set("%s:%zu: field 'doc_id': expected a non-negative integer, got %s", path, line,
                     id ? io_json_kind(id) : "nothing");
        goto done;
    }
    /* the filter: one line per (doc, filter) */
    const cJSON *fl = cJSON_GetObjectItemCaseSensitive(obj, "filter");
    if (fl && !cJSON_IsString(fl)) {
        rc = err_set("%s:%zu: field 'filter': expected a string, got %s", path, line, io_json_kind(fl));
        goto done;
    }
    const char *filter = fl ? fl->valuestring : "none";
    if (!c->filter[0]) snprintf(c->filter, sizeof c->filter, "%s", filter);
    if (strcmp(filter, c->filter) != 0) {
        rc = 0; /* another filter's line */
        goto done;
    }
    /* the metric */
    if (!c->metric[0]) {
        if (cJSON_GetObjectItemCaseSensitive(obj, "acc")) snprintf(c->metric, sizeof c->metric, "acc");
        else if (cJSON_GetObjectItemCaseSensitive(obj, "exact_match")) snprintf(c->metric, sizeof c->metric, "exact_match");
        else {
            char names[256] = "";
            size_t used = 0;
            for (const cJSON *k = obj->child; k && used < sizeof names; k = k->next)
                if ((cJSON_IsNumber(k) || cJSON_IsBool(k)) && strcmp(k->string, "doc_id") != 0)
                    used += (size_t)snprintf(names + used, sizeof names - used, "%s%s", used ? ", " : "", k->string);
            rc = err_set("%s:%zu: no 'acc' or 'exact_match' in this lm-eval sample: name the outcome with --metric "
                         "(per-sample metrics here: %s)", path, line, used ? names : "none");
            goto done;
        }
        c->binary = metric_is_binary(c->metric);
    }
    const cJSON *mv = cJSON_GetObjectItemCaseSensitive(obj, c->metric);
    double v;
    if (!mv) {
        rc = err_set("%s:%zu: metric '%s' is missing (filter '%s')", path, line, c->metric, c->filter);
        goto done;
    }
    if (cJSON_IsBool(mv)) v = cJSON_IsTrue(mv) ? 1 : 0;
    else if (cJSON_IsNumber(mv)) v = mv->valuedouble;
    else {
        rc = err_set("%s:%zu: metric '%s': expected a number, got %s", path, line, c->metric, io_json_kind(mv));
        goto done;
    }
    o = cJSON_CreateObject();
    if (!o) goto oom;
    cJSON_AddItemToObject(o, "id", cJSON_CreateNumber(id->valuedouble));
    if (c->binary) {
        if (v != 0 && v != 1) {
            rc = err_set("%s:%zu: metric '%s': expected 0 or 1 (a per-instance accuracy), got %g", path, line, c->metric, v);
            goto done;
        }
        cJSON_AddBoolToObject(o, "correct", v == 1);
    } else {
        if (!(v >= 0 && v <= 1)) {
            rc = err_set("%s:%zu: metric '%s': expected a score in [0, 1], got %g (muscle compares scores in [0, 1])", path,
                         line, c->metric, v);
            goto done;
        }
        cJSON_AddNumberToObject(o, "score", v);
    }
    /* the request(s): context and, for multiple choice, the choices */
    const cJSON *a0[LM_MAX_CHOICES], *a1[LM_MAX_CHOICES];
    const cJSON *args = cJSON_GetObjectItemCaseSensitive(obj, "arguments");
    int nreq = args ? lm_arguments(args, a0, a1, LM_MAX_CHOICES) : 0;
    if (nreq < 0) {
        rc = err_set("%s:%zu: field 'arguments': expected {\"gen_args_0\": {\"arg_0\": ..}, ..} or a list of argument lists",
                     path, line);
        goto done;
    }
    if (nreq > 0 && cJSON_IsString(a0[0])) cJSON_AddStringToObject(o, "text", a0[0]->valuestring);
    int mc = nreq > 0;
    for (int i = 0; i < nreq; i++) mc &= cJSON_IsString(a1[i]);
    const cJSON *fr = cJSON_GetObjectItemCaseSensitive(obj, "filtered_resps");
    if (!cJSON_IsArray(fr)) {
        rc = err_set("%s:%zu: field 'filtered_resps': expected an array, got %s", path, line, fr ? io_json_kind(fr) : "nothing");
        goto done;
    }
    const cJSON *target = cJSON_GetObjectItemCaseSensitive(obj, "target");
    if (target) cJSON_AddItemToObject(o, "target", cJSON_Duplicate(target, 1));
    if (mc) {
        /* loglikelihood requests: filtered_resps[i] = [loglikelihood, is_greedy] */
        if (cJSON_GetArraySize(fr) != nreq) {
            rc = err_set("%s:%zu: field 'filtered_resps': %d entries for %d requests", path, line, cJSON_GetArraySize(fr), nreq);
            goto done;
        }
        cJSON *lps = cJSON_CreateArray(), *chs = cJSON_CreateArray();
        cJSON_AddItemToObject(o, "choice_logprobs", lps);
        cJSON_AddItemToObject(o, "choices", chs);
        int best = -1, i = 0;
        double bestv = -INFINITY;
        int norm = strcmp(c->metric, "acc_norm") == 0;
        for (const cJSON *e = fr->child; e; e = e->next, i++) {
            const cJSON *ll = cJSON_IsArray(e) ? e->child : e;
            double x;
            if (!ll || lm_number(ll, &x) != 0) {
                rc = err_set("%s:%zu: field 'filtered_resps': entry %d: expected [loglikelihood, is_greedy] with a finite "
                             "number, got %s", path, line, i, ll ? io_json_kind(ll) : "an empty array");
                goto done;
            }
            cJSON_AddItemToArray(lps, cJSON_CreateNumber(x));
            cJSON_AddItemToArray(chs, cJSON_CreateString(a1[i]->valuestring));
            size_t len = utf8_codepoints(a1[i]->valuestring);
            double s = norm ? x / (double)(len ? len : 1) : x;
            if (s > bestv) {
                bestv = s;
                best = i;
            }
        }
        cJSON_AddNumberToObject(o, "prediction", best);
        /* the file must agree with itself: acc / acc_norm = [argmax == gold] */
        if ((strcmp(c->metric, "acc") == 0 || norm) && cJSON_IsString(target) && nreq > 1) {
            char *end;
            long gold = strtol(target->valuestring, &end, 10);
            if (target->valuestring[0] && !*end && gold >= 0 && gold < nreq && (best == gold) != (v == 1)) {
                rc = err_set("%s:%zu: metric '%s' is %g, but the logged loglikelihoods pick choice %d and the target is %ld",
                             path, line, c->metric, v, best, gold);
                goto done;
            }
        }
    } else {
        /* generation: filtered_resps = [text] (or [[text]]) */
        const cJSON *g = fr->child;
        if (cJSON_IsArray(g)) g = g->child;
        if (g && cJSON_IsString(g)) cJSON_AddStringToObject(o, "prediction", g->valuestring);
        else if (g) {
            rc = err_set("%s:%zu: field 'filtered_resps': expected the generated text, got %s", path, line, io_json_kind(g));
            goto done;
        }
    }
    static const char *hashes[] = {"doc_hash", "prompt_hash"};
    for (int k = 0; k < 2; k++) {
        const cJSON *h = cJSON_GetObjectItemCaseSensitive(obj, hashes[k]);
        if (cJSON_IsString(h)) cJSON_AddStringToObject(o, hashes[k], h->valuestring);
    }
    *out = o;
    o = NULL;
    rc = 0;
    goto done;
oom:
    rc = err_set("%s:%zu: out of memory", path, line);
done:
    cJSON_Delete(o);
    cJSON_Delete(obj);
    return rc;
}

/* ================================================================ CSV */

/* One CSV record (RFC 4180: quoted fields, "" inside quotes) starting at *pos; fields are
 * NUL-terminated copies in *cells (malloc'd block). Returns the field count, 0 at the end,
 * -1 on an error. *lines = physical lines the record spans. */
static int csv_record(const char *d, size_t n, size_t *pos, char ***cells_out, char **block_out, size_t *lines,
                      const char *path, size_t line) {
    size_t p = *pos;
    *lines = 0;
    if (p >= n) return 0;
    char *block = malloc(n - p + 1);
    char **cells = NULL;
    int nc = 0, capc = 0;
    size_t w = 0;
    if (!block) return err_set("%s: out of memory", path);
    for (;;) {
        if (nc == capc) {
            capc = capc ? 2 * capc : 16;
            char **nn = realloc(cells, (size_t)capc * sizeof *nn);
            if (!nn) {
                free(block);
                free(cells);
                return err_set("%s: out of memory", path);
            }
            cells = nn;
        }
        cells[nc++] = block + w;
        if (p < n && d[p] == '"') {
            p++;
            for (;;) {
                if (p >= n) {
                    free(block);
                    free(cells);
                    return err_set("%s:%zu: a quoted field is not closed", path, line);
                }
                if (d[p] == '"') {
                    if (p + 1 < n && d[p + 1] == '"') { block[w++] = '"'; p += 2; continue; }
                    p++;
                    break;
                }
                if (d[p] == '\n') (*lines)++;
                block[w++] = d[p++];
            }
            if (p < n && d[p] != ',' && d[p] != '\n' && !(d[p] == '\r' && (p + 1 == n || d[p + 1] == '\n'))) {
                free(block);
                free(cells);
                return err_set("%s:%zu: unexpected text after a quoted field (field %d)", path, line + *lines, nc);
            }
        } else {
            while (p < n && d[p] != ',' && d[p] != '\n') {
                if (d[p] == '"') {
                    free(block);
                    free(cells);
                    return err_set("%s:%zu: a quote inside an unquoted field (field %d)", path, line + *lines, nc);
                }
                block[w++] = d[p++];
            }
            if (w > 0 && block[w - 1] == '\r' && (p >= n || d[p] == '\n')) w--;
        }
        block[w++] = 0;
        if (p < n && d[p] == ',') { p++; continue; }
        if (p < n && d[p] == '\r') p++;
        if (p < n && d[p] == '\n') p++;
        break;
    }
    (*lines)++;
    *pos = p;
    *cells_out = cells;
    *block_out = block;
    return nc;
}

static int is_int_literal(const char *s) {
    const char *p = s;
    if (*p == '-') p++;
    if (!*p || (p[0] == '0' && p[1])) return 0;
    size_t k = 0;
    for (; *p; p++, k++)
        if (!isdigit((unsigned char)*p)) return 0;
    return k <= 15;
}

static int read_csv(PredFile *f, const char *d, size_t n) {
    enum { C_ID, C_CORRECT, C_SCORE, C_PRED, C_TARGET, C_TEXT, C_N };
    static const char *names[C_N] = {"id", "correct", "score", "prediction", "target", "text"};
    int col[C_N];
    for (int k = 0; k < C_N; k++) col[k] = -1;
    size_t pos = 0, line = 1, span, cap = 0;
    char **cells, *block;
    int nh = csv_record(d, n, &pos, &cells, &block, &span, f->path, line);
    if (nh <= 0) return nh < 0 ? -1 : err_set("%s: no predictions (the file is empty)", f->path);
    for (int i = 0; i < nh; i++) {
        const char *h = cells[i];
        if (i == 0 && (uint8_t)h[0] == 0xEF && (uint8_t)h[1] == 0xBB && (uint8_t)h[2] == 0xBF) h += 3; /* BOM */
        for (int k = 0; k < C_N; k++)
            if (strcmp(h, names[k]) == 0) {
                if (col[k] >= 0) {
                    free(block);
                    free(cells);
                    return err_set("%s:1: column '%s' appears twice in the header", f->path, names[k]);
                }
                col[k] = i;
            }
    }
    free(block);
    free(cells);
    if (col[C_ID] < 0) return err_set("%s:1: the header has no column 'id' (expected id plus correct and/or score)", f->path);
    if (col[C_CORRECT] < 0 && col[C_SCORE] < 0)
        return err_set("%s:1: the header has no column 'correct' or 'score' (expected id plus correct and/or score)", f->path);
    line += span;
    for (;;) {
        /* skip blank lines */
        while (pos < n && (d[pos] == '\n' || (d[pos] == '\r' && pos + 1 < n && d[pos + 1] == '\n'))) {
            pos += d[pos] == '\r' ? 2 : 1;
            line++;
        }
        int nc = csv_record(d, n, &pos, &cells, &block, &span, f->path, line);
        if (nc < 0) return -1;
        if (nc == 0) break;
        int rc = 0;
        cJSON *o = NULL;
        if (nc != nh) {
            rc = err_set("%s:%zu: %d fields, but the header has %d", f->path, line, nc, nh);
            goto next;
        }
        o = cJSON_CreateObject();
        const char *id = cells[col[C_ID]];
        if (!*id) {
            rc = err_set("%s:%zu: field 'id' is empty", f->path, line);
            goto next;
        }
        cJSON_AddItemToObject(o, "id", is_int_literal(id) ? cJSON_CreateNumber(strtod(id, NULL)) : cJSON_CreateString(id));
        if (col[C_CORRECT] >= 0) {
            const char *s = cells[col[C_CORRECT]];
            int b = !strcmp(s, "true") || !strcmp(s, "True") || !strcmp(s, "TRUE") || !strcmp(s, "1") ? 1
                    : !strcmp(s, "false") || !strcmp(s, "False") || !strcmp(s, "FALSE") || !strcmp(s, "0") ? 0 : -1;
            if (b < 0) {
                rc = err_set("%s:%zu: field 'correct': expected true/false or 1/0, got '%.40s'", f->path, line, s);
                goto next;
            }
            cJSON_AddBoolToObject(o, "correct", b);
        }
        if (col[C_SCORE] >= 0) {
            const char *s = cells[col[C_SCORE]];
            char *end;
            errno = 0;
            double v = *s && !isspace((unsigned char)*s) ? strtod(s, &end) : NAN;
            if (isnan(v) || *end || errno == ERANGE || !(v >= 0 && v <= 1)) {
                rc = err_set("%s:%zu: field 'score': expected a number in [0, 1], got '%.40s'", f->path, line, s);
                goto next;
            }
            cJSON_AddNumberToObject(o, "score", v);
        }
        if (col[C_PRED] >= 0) {
            const char *s = cells[col[C_PRED]];
            cJSON_AddItemToObject(o, "prediction", is_int_literal(s) ? cJSON_CreateNumber(strtod(s, NULL)) : cJSON_CreateString(s));
        }
        if (col[C_TARGET] >= 0) cJSON_AddStringToObject(o, "target", cells[col[C_TARGET]]);
        if (col[C_TEXT] >= 0) cJSON_AddStringToObject(o, "text", cells[col[C_TEXT]]);
        rc = preds_push(f, line, o, &cap);
        o = NULL;
    next:
        cJSON_Delete(o);
        free(block);
        free(cells);
        if (rc != 0) return -1;
        line += span;
    }
    return 0;
}

/* ================================================================ entry */

static PredsFormat detect(const char *d, size_t n) {
    size_t i = 0;
    if (n >= 3 && (uint8_t)d[0] == 0xEF && (uint8_t)d[1] == 0xBB && (uint8_t)d[2] == 0xBF) i = 3;
    while (i < n && isspace((unsigned char)d[i])) i++;
    if (i >= n || d[i] != '{') return PREDS_FMT_CSV;
    /* the first line's keys decide */
    const char *nl = memchr(d + i, '\n', n - i);
    size_t len = nl ? (size_t)(nl - (d + i)) : n - i;
    cJSON *o = cJSON_ParseWithLength(d + i, len);
    int lm = o && cJSON_GetObjectItemCaseSensitive(o, "doc_id") && !cJSON_GetObjectItemCaseSensitive(o, "id");
    cJSON_Delete(o);
    return lm ? PREDS_FMT_LMEVAL : PREDS_FMT_MUSCLE;
}

int preds_read_opts(PredFile *f, const char *path, const PredsReadOptions *opt) {
    memset(f, 0, sizeof *f);
    size_t size;
    char *data = file_read_all(path, &size, 0);
    if (!data) return -1;
    int rc = preds_parse_buffer(f, data, size, path, opt);
    free(data);
    return rc;
}

int preds_parse_buffer(PredFile *f, const char *data, size_t size, const char *path, const PredsReadOptions *opt) {
    memset(f, 0, sizeof *f);
    f->path = strdup(path);
    if (!f->path) return err_set("%s: out of memory", path);
    PredsFormat fmt = opt ? opt->format : PREDS_FMT_AUTO;
    const char *metric = opt ? opt->metric : NULL;
    int rc = check_utf8(path, data, size);
    if (rc == 0) rc = io_json_refuse_nul(data, size, path); /* ids are C strings: "a\u0000X" must not read as "a" */
    if (rc == 0 && fmt == PREDS_FMT_AUTO) fmt = detect(data, size);
    if (rc == 0 && metric && fmt != PREDS_FMT_LMEVAL)
        rc = err_set("%s: a metric ('%.60s') only applies to lm-eval sample files", path, metric);
    if (rc == 0) {
        switch (fmt) {
        case PREDS_FMT_LMEVAL: {
            LmCtx c = {0};
            f->format = "lm-eval";
            if (metric) {
                const char *comma = strchr(metric, ',');
                size_t ml = comma ? (size_t)(comma - metric) : strlen(metric);
                if (ml == 0 || ml >= sizeof c.metric || (comma && (!comma[1] || strlen(comma + 1) >= sizeof c.filter))) {
                    rc = err_set("metric '%.60s': expected NAME or NAME,FILTER (e.g. acc_norm, exact_match,strict-match)", metric);
                    break;
                }
                memcpy(c.metric, metric, ml);
                if (comma) snprintf(c.filter, sizeof c.filter, "%s", comma + 1);
                c.binary = metric_is_binary(c.metric);
            }
            rc = preds_read_jsonl(f, data, size, lm_line, &c);
            if (rc == 0 && f->n == 0 && c.filter[0])
                rc = err_set("%s: no sample with filter '%s'", path, c.filter);
            if (rc == 0) {
                size_t ml = strlen(c.metric) + strlen(c.filter) + 2;
                f->metric = malloc(ml);
                if (!f->metric) rc = err_set("%s: out of memory", path);
                else snprintf(f->metric, ml, "%s,%s", c.metric, c.filter);
            }
            break;
        }
        case PREDS_FMT_CSV:
            f->format = "csv";
            rc = read_csv(f, data, size);
            break;
        default:
            f->format = "muscle";
            rc = preds_read_jsonl(f, data, size, NULL, NULL);
            break;
        }
    }
    if (rc == 0) rc = preds_finish(f);
    if (rc != 0) preds_free(f);
    return rc;
}
