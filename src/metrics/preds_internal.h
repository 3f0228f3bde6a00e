/* metrics/preds_internal.h - shared by preds.c (records, checks, matching) and
 * preds_import.c (other tools' formats). Not part of the public API. */
#ifndef MUSCLE_METRICS_PREDS_INTERNAL_H
#define MUSCLE_METRICS_PREDS_INTERNAL_H

#include "preds.h"

#include <cJSON.h>
#include <stddef.h>

/* "a boolean", "a number", ... for messages. */

/* Appends a record (takes obj, a canonical PREDS.jsonl object) and checks it, and that it
 * carries the same fields as the first record. *cap: the capacity of f->rec. */
int preds_push(PredFile *f, size_t line, cJSON *obj, size_t *cap);

/* Turns one parsed line (consumed) into a canonical object (*out; NULL = skip the line). */
typedef int (*PredsLineFn)(void *ctx, PredFile *f, size_t line, cJSON *obj, cJSON **out);

/* Reads JSON lines; fn NULL = the lines are canonical already. */
int preds_read_jsonl(PredFile *f, const char *data, size_t size, PredsLineFn fn, void *ctx);

/* After the last record: an empty file and duplicate ids are errors. */
int preds_finish(PredFile *f);

#endif
