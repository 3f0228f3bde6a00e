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

#endif
