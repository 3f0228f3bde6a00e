/* task/task_field.h - reading one field of a task record, for the converters (task_convert.c).
 * Messages lack the "file:line: " prefix (the loader adds it) and name the field and what was
 * expected: "field 'label': expected 0 or 1, got 3". Strings are copied into the record's
 * arena; texts longer than the options' max_text_bytes are refused. Not public. */
#ifndef MUSCLE_TASK_FIELD_H
#define MUSCLE_TASK_FIELD_H

#include "task/task_internal.h"

#include <stddef.h>

struct cJSON;

/* io_json_kind, but a boolean by its value ("got true"), for "expected X, got KIND". */
const char *task_field_kind(const struct cJSON *v);
/* The member k of o, or NULL (an error when required). A key given twice is an error:
 * Python's json keeps the last one, cJSON the first; refusing keeps both in agreement. */
int task_field_get(const struct cJSON *o, const char *k, int required, const struct cJSON **out);
/* s checked against the text limit (what names it in the message) and copied into the arena. */
int task_field_copy(const TaskRec *r, const char *what, const char *s, const char **out);
/* A required string field. */
int task_field_str(const TaskRec *r, const struct cJSON *o, const char *k, const char **out);
/* An optional string field (absent or null: dflt). */
int task_field_str_opt(const TaskRec *r, const struct cJSON *o, const char *k, const char *dflt, const char **out);
/* A finite JSON number as decimal text ("%.0f" for integers below 1e15, so ids and answers
 * read the same); -1 for inf/nan. */
int task_field_number_text(const struct cJSON *v, char *buf, size_t cap);
/* The instance id: the first present of keys[0..nk) (string or number), else the record index. */
int task_field_id(const TaskRec *r, const struct cJSON *o, const char *const *keys, int nk, const char **out);
/* An integer label in [0, n) or -1 / null (unknown); allow_str: "2" and "" (unknown) too. */
int task_field_label(const struct cJSON *o, const char *k, int n, int allow_str, int *label);
/* An array of 2..max_choices strings, copied into the arena. */
int task_field_str_array(const TaskRec *r, const struct cJSON *o, const char *k, const char ***out, int *n_out);
/* An arena array of n (at least 1) string pointers, for an instance's template fields. */
const char **task_field_list_new(const TaskRec *r, int n);

#endif
