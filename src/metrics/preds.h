/* metrics/preds.h - prediction files (PREDS.jsonl): what `muscle eval` writes and
 * `muscle compare` reads. One JSON object per line:
 *   "id"               string or number, unique in the file                 (required)
 *   "correct"          true / false                    } at least one of the two; every
 *   "score"            a number in [0, 1]              } line of a file has the same ones
 *   "prediction"       the predicted choice index (an integer) or the
 *                      generated text (a string)            (optional; when one line has
 *                      it, every line must: without it inconsistency flips are unknown)
 *   "choice_logprobs"  optional array of numbers (one per choice)
 *   "target"           optional, any JSON value (the reference answer)
 *   "text"             optional string: the instance's input (prompt / context)
 *   "choices"          optional array of strings: the choice texts (multiple choice)
 *   "doc_hash", "prompt_hash"  optional strings: when both files of a pair carry one, it
 *                      must match (the same document, the same prompt)
 * Other fields are ignored. Blank lines are skipped but counted in line numbers.
 * The ids 7 and "7" are different ids.
 *
 * Other tools' per-instance results are read into the same records and go through the
 * same checks (metrics/preds_import.c, docs/lm-eval.md):
 *   - lm-evaluation-harness `--log_samples` files (samples_<task>_<date>.jsonl);
 *   - a plain CSV (header row) or JSONL of "id" plus "correct" and/or "score".
 * Every file must be valid UTF-8.
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
    const cJSON *text, *choices;           /* inside obj; NULL when absent */
    const char *doc_hash, *prompt_hash;    /* inside obj; NULL when absent */
} PredRecord;

typedef struct {
    char *path;
    PredRecord *rec;
    size_t n;
    int has_correct, has_score, has_prediction;
    const char *format;        /* "muscle", "lm-eval", "csv" (static) */
    char *metric;              /* lm-eval: the metric (and filter) read, e.g. "acc,none"; else NULL */
} PredFile;

typedef enum {
    PREDS_FMT_AUTO = 0, /* from the content: '{' + "doc_id" -> lm-eval; '{' -> muscle; else csv */
    PREDS_FMT_MUSCLE,   /* PREDS.jsonl (also the plain JSONL of id + correct/score) */
    PREDS_FMT_LMEVAL,   /* lm-evaluation-harness --log_samples */
    PREDS_FMT_CSV       /* header row: id, correct and/or score, optional prediction, target, text */
} PredsFormat;

typedef struct {
    PredsFormat format;
    /* lm-eval: "NAME" or "NAME,FILTER" as in lm-eval's results keys ("acc", "exact_match,
     * strict-match"); NULL = acc when the lines have it (multiple choice), else exact_match;
     * the filter defaults to the first line's. Other formats: must be NULL. */
    const char *metric;
} PredsReadOptions;

/* "auto", "muscle", "jsonl" (= muscle), "lm-eval", "csv"; -1 (err_set) otherwise. */
int preds_format_parse(const char *s, PredsFormat *out);
/* preds_read with a format and a metric (o may be NULL: auto, default metric). */
int preds_read_opts(PredFile *f, const char *path, const PredsReadOptions *o);
/* The same on size bytes in memory (not NUL-terminated); `name` stands for the file in messages. */
int preds_parse_buffer(PredFile *f, const char *data, size_t size, const char *name, const PredsReadOptions *o);

/* Reads and checks a whole file. Errors name "path:line: field 'x': expected ...";
 * duplicate ids are an error naming the first few and their lines. An empty file
 * is an error. */
int preds_read(PredFile *f, const char *path);
void preds_free(PredFile *f);

/* idx[i] (malloc'd, a->n entries) = index in b of the record with a->rec[i]'s id.
 * Errors: ids of one file missing from the other (the first few of each side are
 * named, with their file and line), or a "target" present in both that differs. */
int preds_match(const PredFile *a, const PredFile *b, size_t **idx);

/* 1 when both predictions are the same integer or the same text (byte for byte), 0 when
 * they differ, -1 when a file has no predictions. */
int preds_same_prediction(const PredRecord *a, const PredRecord *b);

#endif
