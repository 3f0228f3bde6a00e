/* task/task_load.c - reading a task file: JSON lines or one JSON array (told apart by the
 * first non-blank byte), one record at a time, each checked (size, UTF-8, nesting, JSON)
 * before cJSON sees it, then converted by its format (task_formats.c).
 *
 * Record-level problems (bad JSON on a line, a missing field, a label out of range, invalid
 * UTF-8, a record over the size limit) can be skipped with skip_bad; file-level ones (size,
 * an array whose structure is broken, no records) cannot.
 */
#include "task/task_internal.h"

#include "core/error.h"
#include "core/file.h"

#include <cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DEF_MAX_FILE ((size_t)1 << 30)
#define DEF_MAX_RECORD ((size_t)1 << 20)
#define DEF_MAX_TEXT ((size_t)256 << 10)
#define DEF_MAX_CHOICES 64
#define MAX_DEPTH 32

void task_load_options_default(TaskLoadOptions *o) {
    memset(o, 0, sizeof *o);
    o->format = TASK_FMT_AUTO;
    o->max_file_bytes = DEF_MAX_FILE;
    o->max_record_bytes = DEF_MAX_RECORD;
    o->max_text_bytes = DEF_MAX_TEXT;
    o->max_choices = DEF_MAX_CHOICES;
}

void task_set_free(TaskSet *ts) {
    if (!ts) return;
    free(ts->path);
    free(ts->mc);
    free(ts->gen);
    free(ts->first_skip_msg);
    task_arena_free(ts->arena);
    memset(ts, 0, sizeof *ts);
}

/* ---- structural scan ---------------------------------------------------------------------- */

/* Scans the JSON value starting at s[i] (an object or array) to its end, checking bracket
 * matching, nesting depth, control characters and \u0000 in strings (cJSON would cut the
 * string there). Counts newlines into *line. On error *msg says what and *at where. */
static int scan_value(const char *s, size_t n, size_t i, size_t *end, int *line, const char **msg,
                      size_t *at) {
    char stack[MAX_DEPTH];
    int depth = 0, in_str = 0;
    for (; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (in_str) {
            if (c == '"') {
                in_str = 0;
            } else if (c == '\\') {
                if (i + 1 >= n) break;
                if (s[i + 1] == 'u' && n - i >= 6 && memcmp(s + i + 2, "0000", 4) == 0) {
                    *msg = "\\u0000 inside a string";
                    *at = i;
                    return -1;
                }
                i++;
            } else if (c < 0x20) {
                *msg = "control character inside a string (JSON needs it escaped)";
                *at = i;
                return -1;
            }
            continue;
        }
        switch (c) {
        case '"':
            in_str = 1;
            break;
        case '{':
        case '[':
            if (depth == MAX_DEPTH) {
                *msg = "nested more than 32 levels deep";
                *at = i;
                return -1;
            }
            stack[depth++] = (char)c;
            break;
        case '}':
        case ']':
            if (depth == 0 || stack[depth - 1] != (c == '}' ? '{' : '[')) {
                *msg = c == '}' ? "unexpected '}'" : "unexpected ']'";
                *at = i;
                return -1;
            }
            if (--depth == 0) {
                *end = i + 1;
                return 0;
            }
            break;
        case '\n':
            (*line)++;
            break;
        default:
            break;
        }
    }
    *msg = in_str ? "unterminated string" : "unterminated object";
    *at = n;
    return -1;
}

static int is_ws(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }

/* ---- loader state ------------------------------------------------------------------------- */

typedef struct {
    TaskSet *ts;
    TaskLoadOptions opt;
    int cap;
    TaskKind kind;
    int n_records;
} Loader;

/* Handles a failed record: with skip_bad, counts it and keeps the first message (with its
 * prefix); otherwise prefixes the message and fails. */
static int record_failed(Loader *L, int line) {
    err_prefix("%s:%d", L->ts->path, line);
    if (!L->opt.skip_bad) return -1;
    if (!L->ts->first_skip_msg) L->ts->first_skip_msg = strdup(err_msg());
    L->ts->n_skipped++;
    return 0;
}

static int push(Loader *L, const TaskMC *mc, const TaskGen *gen) {
    TaskSet *ts = L->ts;
    if (ts->n == L->cap) {
        int cap = L->cap ? L->cap * 2 : 256;
        if (ts->kind == TASK_MC) {
            TaskMC *p = realloc(ts->mc, (size_t)cap * sizeof *p);
            if (!p) return err_set("out of memory");
            ts->mc = p;
        } else {
            TaskGen *p = realloc(ts->gen, (size_t)cap * sizeof *p);
            if (!p) return err_set("out of memory");
            ts->gen = p;
        }
        L->cap = cap;
    }
    if (ts->kind == TASK_MC) {
        ts->mc[ts->n] = *mc;
        if (mc->label < 0) ts->n_unlabeled++;
    } else {
        ts->gen[ts->n] = *gen;
    }
    ts->n++;
    return 0;
}

/* One record s[0..n) starting on `line`. Returns 0 (taken or skipped) or -1 (fatal). */
static int record(Loader *L, const char *s, size_t n, int line) {
    TaskSet *ts = L->ts;
    int index = L->n_records++;
    if (n > L->opt.max_record_bytes) {
        err_set("record is %zu bytes, more than the limit of %zu", n, L->opt.max_record_bytes);
        return record_failed(L, line);
    }
    size_t ok = utf8_valid_prefix((const uint8_t *)s, n);
    if (ok != n) {
        err_set("invalid UTF-8 (byte 0x%02x at offset %zu of the record)", (unsigned char)s[ok], ok);
        return record_failed(L, line);
    }
    cJSON *o = NULL;
    if (s[0] != '{') {
        err_set("expected a JSON object (a record), got '%c'", s[0]);
        return record_failed(L, line);
    }
    const char *end = NULL;
    o = cJSON_ParseWithLengthOpts(s, n, &end, 0);
    if (!o) {
        size_t at = end && end >= s && end <= s + n ? (size_t)(end - s) : 0;
        err_set("invalid JSON at offset %zu of the record", at);
        return record_failed(L, line);
    }
    for (const char *p = end; p < s + n; p++) {
        if (!is_ws(*p)) {
            cJSON_Delete(o);
            err_set("unexpected text after the JSON object at offset %zu", (size_t)(p - s));
            return record_failed(L, line);
        }
    }
    if (ts->format == TASK_FMT_AUTO) {
        TaskFormat f = task_format_detect(o);
        if (f == TASK_FMT_AUTO) {
            char keys[256];
            task_json_keys(o, keys, sizeof keys);
            cJSON_Delete(o);
            /* not skippable: the file is most likely in a format this module does not know */
            return err_set("%s:%d: cannot tell the record format from its fields (%s); expected "
                           "one of the formats of docs/tasks.md, or force one by name",
                           ts->path, line, keys);
        }
        ts->format = f;
        ts->n_fields = task_format_fields(f, &ts->field_names);
    }
    TaskRec r = {ts->path, line, index, &L->opt, ts->arena};
    TaskMC mc;
    TaskGen gen;
    TaskKind kind = L->kind;
    int rc = task_record_convert(ts->format, &r, o, &kind, &mc, &gen);
    cJSON_Delete(o);
    if (rc != 0) return record_failed(L, line);
    if (!L->kind) {
        L->kind = kind;
        ts->kind = kind;
    }
    return push(L, &mc, &gen);
}

/* JSON lines: one record per non-blank line. */
static int parse_lines(Loader *L, const char *s, size_t n, size_t i, int line) {
    while (i < n) {
        const char *nl = memchr(s + i, '\n', n - i);
        size_t e = nl ? (size_t)(nl - s) : n;
        size_t b = i, t = e;
        while (b < t && is_ws(s[b])) b++;
        while (t > b && is_ws(s[t - 1])) t--;
        if (t > b) {
            /* structure first: bracket nesting and \u0000 (only for lines within the limit;
             * record() refuses longer ones) */
            const char *msg = NULL;
            size_t at = 0, vend = 0;
            int dummy = 0;
            if (t - b <= L->opt.max_record_bytes && s[b] == '{' &&
                scan_value(s, t, b, &vend, &dummy, &msg, &at) != 0) {
                err_set("%s at offset %zu of the line", msg, at - b);
                if (record_failed(L, line) != 0) return -1;
                L->n_records++;
            } else if (record(L, s + b, t - b, line) != 0) {
                return -1;
            }
        }
        line++;
        i = e + 1;
    }
    return 0;
}

/* One JSON array of records. */
static int parse_array(Loader *L, const char *s, size_t n, size_t i, int line) {
    const char *path = L->ts->path;
    i++; /* '[' */
    int first = 1;
    for (;;) {
        while (i < n && is_ws(s[i])) line += s[i++] == '\n';
        if (i >= n) return err_set("%s:%d: unterminated JSON array (expected ']')", path, line);
        if (s[i] == ']') {
            if (!first) return err_set("%s:%d: expected a record after ',', got ']'", path, line);
            i++;
            break;
        }
        if (s[i] != '{')
            return err_set("%s:%d: array item: expected a JSON object (a record), got '%c'", path,
                           line, (unsigned char)s[i] >= 0x20 && (unsigned char)s[i] < 0x7f ? s[i] : '?');
        const char *msg = NULL;
        size_t at = 0, end = 0;
        int l2 = line;
        if (scan_value(s, n, i, &end, &l2, &msg, &at) != 0) {
            int l3 = line;
            for (size_t k = i; k < at && k < n; k++) l3 += s[k] == '\n';
            return err_set("%s:%d: %s", path, l3, msg);
        }
        if (record(L, s + i, end - i, line) != 0) return -1;
        line = l2;
        i = end;
        while (i < n && is_ws(s[i])) line += s[i++] == '\n';
        if (i < n && s[i] == ',') {
            i++;
            first = 0;
            continue;
        }
        if (i < n && s[i] == ']') {
            i++;
            break;
        }
        if (i >= n) return err_set("%s:%d: unterminated JSON array (expected ']')", path, line);
        return err_set("%s:%d: expected ',' or ']' after a record", path, line);
    }
    while (i < n && is_ws(s[i])) line += s[i++] == '\n';
    if (i < n) return err_set("%s:%d: unexpected text after the JSON array", path, line);
    return 0;
}

int task_set_parse(TaskSet *ts, const void *data, size_t size, const char *name,
                   const TaskLoadOptions *opt) {
    memset(ts, 0, sizeof *ts);
    Loader L;
    memset(&L, 0, sizeof L);
    L.ts = ts;
    task_load_options_default(&L.opt);
    if (opt) {
        L.opt.format = opt->format;
        L.opt.skip_bad = opt->skip_bad;
        if (opt->max_file_bytes) L.opt.max_file_bytes = opt->max_file_bytes;
        if (opt->max_record_bytes) L.opt.max_record_bytes = opt->max_record_bytes;
        if (opt->max_text_bytes) L.opt.max_text_bytes = opt->max_text_bytes;
        if (opt->max_choices > 0) L.opt.max_choices = opt->max_choices;
    }
    if ((int)L.opt.format < 0 || L.opt.format >= TASK_FMT_COUNT)
        return err_set("%s: bad task format %d", name, (int)L.opt.format);
    ts->path = strdup(name ? name : "?");
    ts->arena = task_arena_new();
    if (!ts->path || !ts->arena) {
        task_set_free(ts);
        return err_set("out of memory");
    }
    ts->format = L.opt.format;
    if (ts->format != TASK_FMT_AUTO) ts->n_fields = task_format_fields(ts->format, &ts->field_names);
    L.kind = task_format_kind(ts->format);
    ts->kind = L.kind;
    const char *s = data;
    size_t n = size;
    if (n > L.opt.max_file_bytes) {
        err_set("%s: file is %zu bytes, more than the limit of %zu", ts->path, n, L.opt.max_file_bytes);
        task_set_free(ts);
        return -1;
    }
    size_t i = 0;
    if (n >= 3 && memcmp(s, "\xEF\xBB\xBF", 3) == 0) i = 3; /* UTF-8 byte order mark */
    int line = 1;
    while (i < n && is_ws(s[i])) line += s[i++] == '\n';
    int rc;
    if (i >= n) rc = err_set("%s: empty file (no records)", ts->path);
    else if (s[i] == '[') rc = parse_array(&L, s, n, i, line);
    else if (s[i] == '{') rc = parse_lines(&L, s, n, i, line);
    else
        rc = err_set("%s:%d: expected JSON lines (records starting with '{') or a JSON array "
                     "('['), got '%c'",
                     ts->path, line, (unsigned char)s[i] >= 0x20 && (unsigned char)s[i] < 0x7f ? s[i] : '?');
    if (rc == 0 && ts->n == 0) {
        if (ts->n_skipped)
            rc = err_set("%s: no valid records (%d skipped; the first: %s)", ts->path, ts->n_skipped,
                         ts->first_skip_msg);
        else
            rc = err_set("%s: no records", ts->path);
    }
    if (rc != 0) {
        task_set_free(ts);
        return -1;
    }
    return 0;
}

int task_set_load(TaskSet *ts, const char *path, const TaskLoadOptions *opt) {
    memset(ts, 0, sizeof *ts);
    MappedFile f;
    if (file_map(&f, path) != 0) return -1;
    size_t lim = opt && opt->max_file_bytes ? opt->max_file_bytes : DEF_MAX_FILE;
    if (f.size > lim) {
        size_t size = f.size;
        file_unmap(&f);
        return err_set("%s: file is %zu bytes, more than the limit of %zu", path, size, lim);
    }
    int rc = task_set_parse(ts, f.data ? (const void *)f.data : "", f.size, path, opt);
    file_unmap(&f);
    return rc;
}
