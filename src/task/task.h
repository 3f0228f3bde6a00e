/* task/task.h - task data: instances read from benchmark files, prompt templates, the
 * tokenized form the engine scores and trains on, and a train/validation split.
 *
 * A TaskSet holds N instances of one kind:
 *   multiple choice  {id, context, choices[], label (index, -1 = unknown)}
 *   generation       {id, prompt, target, answer (reference for exact match)}
 * read from JSON lines or a JSON array (told apart by the content), in one of the record
 * formats below (detected from the first record's fields, or forced by name). Every
 * instance remembers the line it started on, for messages "file:17: field 'label': ...".
 *
 * Formatting an instance with a TaskPrompt (templates with named fields, "{goal}") gives
 * the harness's strings: MC -> a context (no trailing whitespace) and one continuation per
 * choice (starting with a space); generation -> a prompt, a target and stop strings.
 * Tokenizing follows lm-evaluation-harness's _encode_pair: ids(context) and the tail of
 * ids(context + continuation) after them. See docs/tasks.md for every rule.
 *
 * Errors: -1 / NULL and err_set() (core/error.h), the message naming file, line and field.
 */
#ifndef MUSCLE_TASK_H
#define MUSCLE_TASK_H

#include <stddef.h>
#include <stdint.h>

#include "tokenizer/tokenizer.h"

typedef enum { TASK_MC = 1, TASK_GEN = 2 } TaskKind;

typedef enum {
    TASK_FMT_AUTO = 0,     /* detect from the first record's fields */
    TASK_FMT_NATIVE_MC,    /* "native-mc":  {"id","context","choices","label"} */
    TASK_FMT_NATIVE_GEN,   /* "native-gen": {"id","prompt","target"} */
    TASK_FMT_HELLASWAG,    /* "hellaswag":  activity_label, ctx_a, ctx_b, endings, label */
    TASK_FMT_PIQA,         /* "piqa":       goal, sol1, sol2, label */
    TASK_FMT_ARC,          /* "arc":        question(.stem), choices, answerKey */
    TASK_FMT_BOOLQ,        /* "boolq":      question, passage, answer (bool) or label (0/1) */
    TASK_FMT_RACE,         /* "race":       article, question, options, answer (letter) */
    TASK_FMT_GSM8K,        /* "gsm8k":      question, answer ending in "#### N" (generation) */
    TASK_FMT_DIALOGSUM,    /* "dialogsum":  dialogue, summary (SAMSum, DialogSum; generation) */
    TASK_FMT_LLM_ADAPTERS, /* "llm-adapters": instruction, input, output, answer */
    TASK_FMT_COUNT
} TaskFormat;

/* "native-mc", "hellaswag", ... ("?" for a bad value). */
const char *task_format_name(TaskFormat f);
/* Name (or alias "samsum", "alpaca") -> format; -1 + err_set naming the known names. */
int task_format_from_name(const char *name, TaskFormat *f);

/* How a generated answer is compared with the reference (metrics/answer.h). */
typedef enum {
    TASK_ANSWER_EXACT = 0, /* normalized exact match */
    TASK_ANSWER_GSM8K,     /* the number after "####" (else the last number) of each text */
} TaskAnswerRule;
TaskAnswerRule task_format_answer_rule(TaskFormat f);

/* ---- instances --------------------------------------------------------------------------- */

/* Strings belong to the TaskSet (never free them). `fields` holds the values of the set's
 * `field_names` (same order): the record's named texts that templates may use. */
typedef struct {
    const char *id;
    const char *context;
    const char **choices;
    int n_choices;
    int label; /* index into choices, -1 = unknown */
    const char **choice_texts; /* llm-adapters only: each option's text parsed from the
                                  instruction ("Solution1: <text>"); NULL when a marker is
                                  missing, and for every other format */
    const char **fields;
    int line; /* line of the source file where the record starts (1-based) */
} TaskMC;

typedef struct {
    const char *id;
    const char *prompt;
    const char *target;
    const char *answer; /* reference answer for exact match (GSM8K: N); = target when none */
    const char **fields;
    int line;
} TaskGen;

typedef struct {
    TaskKind kind;
    TaskFormat format;
    char *path; /* the source's name, for messages */
    int n;      /* instances */
    TaskMC *mc;   /* kind == TASK_MC: n of them */
    TaskGen *gen; /* kind == TASK_GEN */
    const char *const *field_names; /* names of the per-instance fields (static) */
    int n_fields;
    int n_skipped;        /* records skipped by skip_bad */
    char *first_skip_msg; /* message of the first skipped record (NULL when none) */
    int n_unlabeled;      /* MC instances with label -1 */
    void *arena;          /* owns every string */
} TaskSet;

typedef struct {
    TaskFormat format;       /* TASK_FMT_AUTO: detect */
    int skip_bad;            /* skip records that do not fit (counted in n_skipped) */
    size_t max_file_bytes;   /* default 1 GiB */
    size_t max_record_bytes; /* one JSON line / array element; default 1 MiB */
    size_t max_text_bytes;   /* one string of a record; default 256 KiB */
    int max_choices;         /* default 64 */
} TaskLoadOptions;

void task_load_options_default(TaskLoadOptions *o);
/* Reads a file. opt NULL = defaults. On error *ts is left empty (task_set_free is harmless). */
int task_set_load(TaskSet *ts, const char *path, const TaskLoadOptions *opt);
/* Same from a buffer; `name` is used in messages. */
int task_set_parse(TaskSet *ts, const void *data, size_t size, const char *name,
                   const TaskLoadOptions *opt);
void task_set_free(TaskSet *ts);
/* A new set holding copies of instances idx[0..n) of `ts` (in that order). */
int task_set_subset(const TaskSet *ts, const int *idx, int n, TaskSet *out);

/* ---- train / validation split ------------------------------------------------------------ */

/* Deterministic split of n items: n_val = round(n * val_frac) (at least 1 and at most n-1
 * when n >= 2 and 0 < val_frac < 1), chosen by a seeded shuffle; both lists ascending.
 * malloc'd lists (free()). Same (n, val_frac, seed) -> same split on every machine. */
int task_split(int n, double val_frac, uint64_t seed, int **train_idx, int *n_train,
               int **val_idx, int *n_val);

/* ---- templates --------------------------------------------------------------------------- */

/* "Question: {goal}\nAnswer:" with values for the names; "{{" and "}}" are literal braces.
 * malloc'd result. An unknown field, a lone "{" or "}", or an empty/bad name is an error
 * naming the template. `what` names the template in messages ("prompt template"). */
char *task_template_format(const char *tmpl, const char *const *names, const char *const *values,
                           int n, const char *what);
/* Only checks `tmpl` against the names. */
int task_template_check(const char *tmpl, const char *const *names, int n, const char *what);
/* C escapes \n \t \r \\ \" -> characters (for templates given on a command line); malloc'd. */
char *task_template_unescape(const char *s);

/* Templates of one task. Fields: the set's field_names plus "id" and "context" (MC) or
 * "prompt" (generation); the answer template adds "choice" (MC; and "choice_text" for
 * llm-adapters) or "target" and "answer". A field without a value for a record (choice_text
 * when the options could not be parsed) is an error when that record is formatted. */
typedef struct {
    char *prompt;       /* MC: context template; generation: prompt template */
    char *prompt_input; /* NULL, or used instead of `prompt` when the field "input" is not empty */
    char *answer;       /* MC: continuation template (" {choice}"); generation: target (" {target}") */
    char **stops;       /* generation: stop strings */
    int n_stops;
} TaskPrompt;

/* The documented default of the set's format (docs/tasks.md). */
int task_prompt_default(TaskPrompt *p, const TaskSet *ts);
/* Replaces pieces (NULL keeps the current one). */
int task_prompt_set(TaskPrompt *p, const char *prompt, const char *answer);
int task_prompt_set_stops(TaskPrompt *p, const char *const *stops, int n);
/* Reads a JSON file {"prompt": "...", "answer": "...", "prompt_input": "...", "stop": [...]};
 * keys present replace the current pieces ("choice" and "target" are accepted for "answer"). */
int task_prompt_load(TaskPrompt *p, const char *path);
/* Every template field known for this set? (error naming the template and the field) */
int task_prompt_check(const TaskPrompt *p, const TaskSet *ts);
void task_prompt_free(TaskPrompt *p);
/* The usual sequence: the set's default, then a prompt file, then template overrides
 * (NULL = none), then extra stop strings added to the template's; checked against the set. */
int task_prompt_setup(TaskPrompt *p, const TaskSet *ts, const char *file, const char *prompt, const char *answer,
                      const char *const *extra_stops, int n_extra);

/* ---- formatted text ----------------------------------------------------------------------- */

/* MC: the context with its trailing whitespace moved to the front of every continuation
 * (harness _encode_pair), so context has none and continuations usually start with " ". */
typedef struct {
    char *context;
    char **conts;
    int n_choices;
    int label;
} TaskMCText;

typedef struct {
    char *prompt; /* trailing whitespace moved to the target, as for MC */
    char *target;
} TaskGenText;

int task_mc_format(const TaskSet *ts, int i, const TaskPrompt *p, TaskMCText *out);
void task_mc_text_free(TaskMCText *t);
int task_gen_format(const TaskSet *ts, int i, const TaskPrompt *p, TaskGenText *out);
void task_gen_text_free(TaskGenText *t);

/* ---- tokenized form ----------------------------------------------------------------------- */

/* ctx = [BOS] + ids(context); cont[c] = ids([BOS] + context + conts[c]) after its first n_ctx
 * ids. The engine scores choice c on ctx + cont[c]: the logits at position n_ctx - 1 + j
 * predict cont[c][j]. max_len > 0: n_ctx + max_c n_cont[c] <= max_len, by dropping the
 * context's oldest tokens after BOS (n_dropped of them); error when no context would fit. */
typedef struct {
    int *ctx;
    int n_ctx;
    int **cont;
    int *n_cont;
    int n_choices;
    int label;
    int n_dropped;
} TaskMCTokens;

/* prompt = [BOS] + ids(prompt); target = ids([BOS] + prompt + target) after n_prompt ids, + EOS.
 * max_len > 0: n_prompt + n_target <= max_len (prompt cut from the left after BOS). */
typedef struct {
    int *prompt;
    int n_prompt;
    int *target;
    int n_target;
    int n_dropped;
} TaskGenTokens;

int task_mc_tokenize_text(const Tokenizer *tok, const TaskMCText *txt, int max_len,
                          TaskMCTokens *out);
int task_gen_tokenize_text(const Tokenizer *tok, const TaskGenText *txt, int max_len,
                           TaskGenTokens *out);
/* The whole set (format + tokenize, in parallel): malloc'd array of ts->n (free with
 * task_mc_tokens_free_all). Errors name the instance's file and line. */
int task_mc_tokenize(const TaskSet *ts, const TaskPrompt *p, const Tokenizer *tok, int max_len,
                     TaskMCTokens **out);
int task_gen_tokenize(const TaskSet *ts, const TaskPrompt *p, const Tokenizer *tok, int max_len,
                      TaskGenTokens **out);
void task_mc_tokens_free(TaskMCTokens *t);
void task_gen_tokens_free(TaskGenTokens *t);
void task_mc_tokens_free_all(TaskMCTokens *t, int n);
void task_gen_tokens_free_all(TaskGenTokens *t, int n);

/* A generation prompt cut in TEXT so that several models with different tokenizers read
 * the same instance: *start = the first byte kept of prompt (0 when it fits whole), the
 * smallest cut at which the prompt as task_gen_tokenize_text encodes it (trailing
 * whitespace off, BOS) takes at most limits[k] tokens under every toks[k] (n of them). The
 * cut is at the start of a word (after whitespace); when a word alone is too long, at a
 * UTF-8 character. Token counts are taken to shrink as the cut moves right (binary search;
 * the cut found always fits). -1 (err_set) when even the last character does not fit. */
int task_prompt_cut_text(const char *prompt, const Tokenizer *const *toks, const int *limits, int n, size_t *start);

/* Training sequences: ids = ctx + cont[choice] (MC) or prompt + target (generation); mask[i]
 * = 1 when ids[i] is an answer token (the loss goes on predicting it from position i - 1),
 * 0 for context tokens. malloc'd ids and mask of *n entries. */
int task_mc_train_seq(const TaskMCTokens *t, int choice, int **ids, uint8_t **mask, int *n);
int task_gen_train_seq(const TaskGenTokens *t, int **ids, uint8_t **mask, int *n);

#endif
