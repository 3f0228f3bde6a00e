/* task/task_field.c - reading one field of a task record (task_field.h): the converters of
 * task_convert.c get every id, text, label and choice list through these, so every format
 * refuses the same things with the same words. */
#include "task/task_field.h"

#include "core/error.h"
#include "io/json.h"

#include <cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* io_json_kind, but a boolean by its value ("got true"). */
const char *task_field_kind(const cJSON *v) {
    return cJSON_IsBool(v) ? (cJSON_IsTrue(v) ? "true" : "false") : io_json_kind(v);
}

/* The member `k` of o, or NULL (+ error when required). Duplicate keys are an error: Python's
 * json keeps the last one, cJSON the first; refusing keeps both readers in agreement. */
int task_field_get(const cJSON *o, const char *k, int required, const cJSON **out) {
    const cJSON *found = NULL;
    *out = NULL;
    for (const cJSON *c = o->child; c; c = c->next) {
        if (c->string && strcmp(c->string, k) == 0) {
            if (found) return err_set("field '%s': appears twice in the record", k);
            found = c;
        }
    }
    if (!found && required) {
        char keys[256];
        task_json_keys(o, keys, sizeof keys);
        return err_set("field '%s': missing (the record has: %s)", k, keys);
    }
    *out = found;
    return 0;
}

static int check_text(const TaskRec *r, const char *what, const char *s) {
    size_t n = strlen(s);
    if (n > r->opt->max_text_bytes)
        return err_set("%s: text of %zu bytes is longer than the limit of %zu", what, n,
                       r->opt->max_text_bytes);
    return 0;
}

int task_field_copy(const TaskRec *r, const char *what, const char *s, const char **out) {
    if (check_text(r, what, s) != 0) return -1;
    *out = task_arena_strdup(r->arena, s);
    return *out ? 0 : -1;
}

/* Required string field. */
int task_field_str(const TaskRec *r, const cJSON *o, const char *k, const char **out) {
    const cJSON *v;
    if (task_field_get(o, k, 1, &v) != 0) return -1;
    if (!cJSON_IsString(v)) return err_set("field '%s': expected a string, got %s", k, task_field_kind(v));
    char what[96];
    snprintf(what, sizeof what, "field '%s'", k);
    return task_field_copy(r, what, v->valuestring, out);
}

/* Optional string field (absent or null -> dflt). */
int task_field_str_opt(const TaskRec *r, const cJSON *o, const char *k, const char *dflt, const char **out) {
    const cJSON *v;
    if (task_field_get(o, k, 0, &v) != 0) return -1;
    if (!v || cJSON_IsNull(v)) {
        *out = dflt;
        return 0;
    }
    if (!cJSON_IsString(v)) return err_set("field '%s': expected a string, got %s", k, task_field_kind(v));
    char what[96];
    snprintf(what, sizeof what, "field '%s'", k);
    return task_field_copy(r, what, v->valuestring, out);
}

/* A JSON number that is an integer -> its decimal text (so ids and answers read the same). */
int task_field_number_text(const cJSON *v, char *buf, size_t cap) {
    double d = v->valuedouble;
    if (!isfinite(d)) return -1;
    if (d == floor(d) && fabs(d) < 1e15) snprintf(buf, cap, "%.0f", d);
    else snprintf(buf, cap, "%.17g", d);
    return 0;
}

/* The instance id: the first present of keys[] (string or number), else the record index. */
int task_field_id(const TaskRec *r, const cJSON *o, const char *const *keys, int nk, const char **out) {
    char buf[64];
    for (int i = 0; i < nk; i++) {
        const cJSON *v;
        if (task_field_get(o, keys[i], 0, &v) != 0) return -1;
        if (!v || cJSON_IsNull(v)) continue;
        if (cJSON_IsString(v)) {
            char what[96];
            snprintf(what, sizeof what, "field '%s'", keys[i]);
            return task_field_copy(r, what, v->valuestring, out);
        }
        if (cJSON_IsNumber(v) && task_field_number_text(v, buf, sizeof buf) == 0) {
            *out = task_arena_strdup(r->arena, buf);
            return *out ? 0 : -1;
        }
        return err_set("field '%s': expected a string or a number, got %s", keys[i], task_field_kind(v));
    }
    snprintf(buf, sizeof buf, "%d", r->index);
    *out = task_arena_strdup(r->arena, buf);
    return *out ? 0 : -1;
}

/* "0 or 1" / "0 to 3" for messages. */
static void range_text(int n, char *buf, size_t cap) {
    if (n == 2) snprintf(buf, cap, "0 or 1");
    else snprintf(buf, cap, "0 to %d", n - 1);
}

/* An integer label in [0, n) or -1 / null (unknown). allow_str: "2" and "" (unknown) too. */
int task_field_label(const cJSON *o, const char *k, int n, int allow_str, int *label) {
    const cJSON *v;
    if (task_field_get(o, k, 1, &v) != 0) return -1;
    char range[32];
    range_text(n, range, sizeof range);
    if (cJSON_IsNull(v)) {
        *label = -1;
        return 0;
    }
    if (cJSON_IsNumber(v)) {
        double d = v->valuedouble;
        char buf[64];
        if (d != floor(d) || d < -1 || d >= n) {
            if (task_field_number_text(v, buf, sizeof buf) != 0) snprintf(buf, sizeof buf, "%g", d);
            return err_set("field '%s': expected %s, got %s", k, range, buf);
        }
        *label = (int)d;
        return 0;
    }
    if (allow_str && cJSON_IsString(v)) {
        const char *s = v->valuestring;
        if (!*s) {
            *label = -1;
            return 0;
        }
        size_t len = strlen(s);
        int ok = len <= 9, x = 0;
        for (size_t i = 0; ok && i < len; i++) {
            if (s[i] < '0' || s[i] > '9') ok = 0;
            else x = x * 10 + (s[i] - '0');
        }
        if (!ok || x >= n)
            return err_set("field '%s': expected %s, got \"%.40s\"", k, range, s);
        *label = x;
        return 0;
    }
    return err_set("field '%s': expected %s, got %s", k, range, task_field_kind(v));
}

/* An array of 2..max_choices strings -> arena copies. */
int task_field_str_array(const TaskRec *r, const cJSON *o, const char *k, const char ***out, int *n_out) {
    const cJSON *v;
    if (task_field_get(o, k, 1, &v) != 0) return -1;
    if (!cJSON_IsArray(v)) return err_set("field '%s': expected an array of strings, got %s", k, task_field_kind(v));
    int n = cJSON_GetArraySize(v);
    if (n < 2 || n > r->opt->max_choices)
        return err_set("field '%s': expected 2 to %d choices, got %d", k, r->opt->max_choices, n);
    const char **a = task_arena_alloc(r->arena, (size_t)n * sizeof *a);
    if (!a) return -1;
    int i = 0;
    for (const cJSON *c = v->child; c; c = c->next, i++) {
        if (!cJSON_IsString(c))
            return err_set("field '%s': item %d: expected a string, got %s", k, i, task_field_kind(c));
        char what[96];
        snprintf(what, sizeof what, "field '%s': item %d", k, i);
        if (task_field_copy(r, what, c->valuestring, &a[i]) != 0) return -1;
    }
    *out = a;
    *n_out = n;
    return 0;
}

const char **task_field_list_new(const TaskRec *r, int n) {
    return task_arena_alloc(r->arena, (size_t)(n ? n : 1) * sizeof(const char *));
}
