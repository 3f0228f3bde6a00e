/* train/data.h - training data: batches, example sources, a tokenized text corpus.
 *
 * The trainer (train/trainer.h) reads fixed-length examples of T positions from a
 * TrainData, a source with two splits (training and held-out). Example i of a split
 * fills one row of a TrainBatch: at position j the model reads tokens[j], must predict
 * targets[j], and that position's loss counts weights[j] (0 = ignored: padding, prompt
 * tokens). A source is any pair of callbacks, so a task loader with answer-token masks
 * plugs in the same way as the text corpus below.
 *
 * Text corpus (data_text_open): the file is split into documents, each is tokenized
 * with the model's tokenizer and starts with BOS, and the documents are laid back to
 * back into one token stream. Formats (DataFormat), told apart by the content:
 *   text   documents separated by one or more blank lines (lines holding only spaces,
 *          tabs or CR); a document's inner line breaks are kept as they are;
 *   lines  one document per non-blank line (only when asked for: --data-format lines);
 *   jsonl  one JSON object per line with a string field "text" (blank lines skipped);
 *          chosen automatically when the first non-blank byte of the file is '{'.
 * The held-out split is a separate file (val_path, same format) or the last val_frac
 * of the token stream (default 5%, at least one window). Each split is cut into
 * windows of T+1 tokens with stride T (window i covers stream[i*T .. i*T+T]): the
 * inputs are its first T tokens, the targets its last T. The last window of a split may
 * be short: its missing positions get weight 0, so every token of the stream is
 * predicted exactly once per epoch (except the very first).
 */
#ifndef MUSCLE_TRAIN_DATA_H
#define MUSCLE_TRAIN_DATA_H

#include <stddef.h>
#include <stdint.h>

#include "tokenizer/tokenizer.h"

/* ---- batches ---- */

typedef struct {
    int B;            /* rows filled */
    int T;            /* positions per row */
    int cap;          /* rows allocated */
    int *tokens;      /* [cap, T] input ids */
    int *targets;     /* [cap, T] the id each position must predict */
    float *weights;   /* [cap, T] loss weight of each position (>= 0) */
} TrainBatch;

int train_batch_init(TrainBatch *b, int cap_rows, int T);
void train_batch_free(TrainBatch *b);

/* ---- example sources ---- */

enum { DATA_TRAIN = 0, DATA_VAL = 1 };

typedef struct TrainData {
    int seq_len;          /* T */
    long n[2];            /* examples in the training and the held-out split (n[DATA_VAL] may be 0) */
    uint64_t hash;        /* of the content: a resumed run checks that its data did not change */
    size_t n_tokens[2];   /* tokens of each split (for messages) */
    size_t n_docs;        /* documents read (for messages) */
    /* Writes example i (0 <= i < n[split]) into tokens, targets, weights [T] each. */
    int (*fill)(const struct TrainData *d, int split, long i, int *tokens, int *targets, float *weights);
    void (*destroy)(struct TrainData *d); /* frees impl */
    void *impl;
} TrainData;

/* Fills row `row` of b with example i of a split (checks the bounds and the row). */
int data_fill_row(const TrainData *d, int split, long i, TrainBatch *b, int row);
void data_free(TrainData *d);

/* A source over token streams already in memory (copied): the training split cut from
 * train_ids, the held-out split from val_ids (may be NULL/0), windows as described above.
 * Errors: a training stream shorter than 2 tokens, a held-out stream of exactly 1. */
int data_stream_open(TrainData *d, const int *train_ids, size_t n_train, const int *val_ids, size_t n_val,
                     int seq_len);

/* ---- text corpus ---- */

typedef enum { DATA_FMT_AUTO = 0, DATA_FMT_TEXT, DATA_FMT_LINES, DATA_FMT_JSONL } DataFormat;

/* "auto", "text", "lines", "jsonl" -> format; -1 (err_set) otherwise. */
int data_format_parse(const char *s, DataFormat *f);
const char *data_format_name(DataFormat f);

typedef struct {
    DataFormat format;    /* DATA_FMT_AUTO: jsonl when the first non-blank byte is '{', else text */
    int seq_len;          /* T >= 1 */
    double val_frac;      /* share of the stream's tail held out when val_path is NULL (0..0.5; 0 = none) */
    const char *val_path; /* held-out corpus, or NULL */
} TextDataOptions;

void text_data_options_default(TextDataOptions *o); /* auto, seq_len 256, val_frac 0.05 */

/* Reads and tokenizes a corpus file into one stream (documents in file order, each
 * starting with BOS when the tokenizer has one). malloc'd *ids. Errors name the file
 * (and the line for JSONL): unreadable, no text at all, bad JSON, no "text" string. */
int data_tokenize_file(const char *path, DataFormat fmt, const Tokenizer *t, int **ids, size_t *n_ids,
                       size_t *n_docs);

/* The corpus as a TrainData (data_tokenize_file, then the split and the windows).
 * Errors: too little text for one training window (and one held-out window). */
int data_text_open(TrainData *d, const char *path, const TextDataOptions *o, const Tokenizer *t);

#endif
