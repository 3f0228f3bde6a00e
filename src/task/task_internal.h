/* task/task_internal.h - helpers shared by the task module's files (not public). */
#ifndef MUSCLE_TASK_INTERNAL_H
#define MUSCLE_TASK_INTERNAL_H

#include "task/task.h"

#include <stddef.h>
#include <stdint.h>

/* ---- arena: every string and pointer array of a TaskSet ---------------------------------- */

typedef struct TaskArenaBlock {
    struct TaskArenaBlock *next;
    size_t used, cap;
    _Alignas(16) unsigned char data[];
} TaskArenaBlock;

typedef struct {
    TaskArenaBlock *head;
} TaskArena;

TaskArena *task_arena_new(void);
void task_arena_free(TaskArena *a);
/* 16-byte aligned; NULL + err_set on overflow or out of memory. */
void *task_arena_alloc(TaskArena *a, size_t n);
char *task_arena_strndup(TaskArena *a, const char *s, size_t n);
char *task_arena_strdup(TaskArena *a, const char *s);

/* Growable strings: StrBuf (core/strbuf.h); UTF-8 checks: core/utf8.h. */
#include "core/strbuf.h"
#include "core/utf8.h"

/* ---- text -------------------------------------------------------------------------------- */

/* Python's str.isspace() for one code point. */
int task_py_isspace(uint32_t cp);
/* Bytes of trailing Python whitespace at the end of s[0..n) (valid UTF-8). */
size_t task_py_rstrip_len(const char *s, size_t n);
/* Python str.strip(): the [*b, *e) range of s without leading/trailing whitespace. */
void task_py_strip(const char *s, size_t n, size_t *b, size_t *e);

/* ---- formats (task_formats.c) ------------------------------------------------------------ */

struct cJSON;

/* Where a record comes from, for converters. */
typedef struct {
    const char *name; /* file name for messages */
    int line;         /* 1-based line where the record starts */
    int index;        /* 0-based record index in the file (ids default to it) */
    const TaskLoadOptions *opt;
    TaskArena *arena;
} TaskRec;

/* ---- the format table: one entry per TaskFormat, the only place a format is defined ----- */

/* Default templates for one kind of instance (docs/tasks.md). */
typedef struct {
    const char *prompt;       /* the prompt template */
    const char *prompt_input; /* used instead when the record's "input" is not empty (NULL: prompt) */
    const char *answer;       /* MC: each choice; generation: the target */
    const char *const *stops; /* generation's stop strings, NULL-terminated (NULL: none) */
} TaskTemplates;

typedef struct {
    const char *name;            /* --format NAME, messages, task files' "format" */
    const char *const *aliases;  /* other accepted names, NULL-terminated (NULL: none) */
    TaskKind kind;               /* TASK_MC / TASK_GEN; 0: decided by each file's first record */
    const char *const *fields;   /* the record's named texts templates may use, besides the
                                    built-ins (id, context/prompt, choice/target); NULL-terminated */
    int detect_rank;             /* auto-detection tries rank 1 first; 0: never detected */
    const char *const *detect;   /* keys a record must have ("a|b": either), NULL-terminated */
    /* the converter: exactly one is set (convert_any when kind is 0) */
    int (*convert_mc)(const TaskRec *r, const struct cJSON *o, TaskMC *mc);
    int (*convert_gen)(const TaskRec *r, const struct cJSON *o, TaskGen *gen);
    int (*convert_any)(const TaskRec *r, const struct cJSON *o, TaskKind *kind, TaskMC *mc, TaskGen *gen);
    TaskTemplates tmpl_mc, tmpl_gen; /* default templates (the kind's own; both when kind is 0) */
    int choice_text;             /* MC answer templates may use {choice_text} */
    TaskAnswerRule answer_rule;  /* how a generated answer is matched (eval) */
} TaskFormatDef;

/* The entry of f, or NULL for a value out of range. */
const TaskFormatDef *task_format_def(TaskFormat f);
/* Entries of a NULL-terminated list (0 for NULL). */
int task_list_count(const char *const *list);
/* The kind of a format's instances (0 for llm-adapters: it depends on the records). */
TaskKind task_format_kind(TaskFormat f);
/* TASK_FMT_AUTO when no rule matches. */
TaskFormat task_format_detect(const struct cJSON *o);
/* The per-instance template fields of a format (static list). */
int task_format_fields(TaskFormat f, const char *const **names);
/* "a, b, c" list of an object's keys, for messages. */
void task_json_keys(const struct cJSON *o, char *buf, size_t cap);
/* One record -> *mc or *gen (by *kind, which the first record of llm-adapters sets).
 * Messages lack the "file:line: " prefix. */
int task_record_convert(TaskFormat f, const TaskRec *r, const struct cJSON *o, TaskKind *kind,
                        TaskMC *mc, TaskGen *gen);

/* The converters (task_convert.c): one per format, from a record to an instance; the table
 * of task_formats.c names them. */
int conv_native_mc(const TaskRec *r, const struct cJSON *o, TaskMC *m);
int conv_native_gen(const TaskRec *r, const struct cJSON *o, TaskGen *g);
int conv_hellaswag(const TaskRec *r, const struct cJSON *o, TaskMC *m);
int conv_piqa(const TaskRec *r, const struct cJSON *o, TaskMC *m);
int conv_arc(const TaskRec *r, const struct cJSON *o, TaskMC *m);
int conv_boolq(const TaskRec *r, const struct cJSON *o, TaskMC *m);
int conv_race(const TaskRec *r, const struct cJSON *o, TaskMC *m);
int conv_gsm8k(const TaskRec *r, const struct cJSON *o, TaskGen *g);
int conv_dialogsum(const TaskRec *r, const struct cJSON *o, TaskGen *g);
int conv_llm_adapters(const TaskRec *r, const struct cJSON *o, TaskKind *kind, TaskMC *m, TaskGen *g);

#endif
