/* metrics/preds.h - prediction files (PREDS.jsonl): what `muscle eval` writes and
 * `muscle compare` reads. One JSON object per line:
 *   "id"               string or number, unique in the file                 (required)
 *   "correct"          true / false                    } at least one of the two; every
 *   "score"            a number in [0, 1]              } line of a file has the same ones
 *   "prediction"       the predicted choice index (an integer) or the
 *                      generated text (a string)                             (required)
 *   "choice_logprobs"  optional array of numbers (one per choice)
 *   "target"           optional, any JSON value (the reference answer)
 * Other fields are ignored. Blank lines are skipped but counted in line numbers.
 * The ids 7 and "7" are different ids.
 */
#ifndef MUSCLE_METRICS_PREDS_H
#define MUSCLE_METRICS_PREDS_H

#include <cJSON.h>
#include <stddef.h>

typedef struct {
    char *key;                 /* the id as compact JSON ("\"abc\"", "7"): for matching and messages */
    size_t line;               /* 1-based line number */
    signed char correct;       /* 1, 0; -1 when absent */
    double score;              /* NAN when absent */
    cJSON *obj;                /* the parsed line (owned) */
    const cJSON *id, *prediction; /* inside obj */
    const cJSON *target, *choice_logprobs; /* inside obj; NULL when absent */
} PredRecord;

typedef struct {
    char *path;
    PredRecord *rec;
    size_t n;
    int has_correct, has_score;
} PredFile;

/* Reads and checks a whole file. Errors name "path:line: field 'x': expected ...";
 * duplicate ids are an error naming the first few and their lines. An empty file
 * is an error. */
int preds_read(PredFile *f, const char *path);
void preds_free(PredFile *f);

/* idx[i] (malloc'd, a->n entries) = index in b of the record with a->rec[i]'s id.
 * Errors: ids of one file missing from the other (the first few of each side are
 * named, with their file and line), or a "target" present in both that differs. */
int preds_match(const PredFile *a, const PredFile *b, size_t **idx);

/* 1 when both predictions are the same integer or the same text (byte for byte), else 0. */
int preds_same_prediction(const PredRecord *a, const PredRecord *b);

#endif
