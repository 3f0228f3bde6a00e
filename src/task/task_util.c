/* task/task_util.c - arena, byte buffer, strict UTF-8 check and Python-style whitespace. */
#include "task/task_internal.h"

#include "core/error.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* ---- arena -------------------------------------------------------------------------------- */

#define ARENA_BLOCK (256 * 1024)

TaskArena *task_arena_new(void) {
    TaskArena *a = calloc(1, sizeof *a);
    if (!a) err_set("out of memory");
    return a;
}

void task_arena_free(TaskArena *a) {
    if (!a) return;
    TaskArenaBlock *b = a->head;
    while (b) {
        TaskArenaBlock *next = b->next;
        free(b);
        b = next;
    }
    free(a);
}

void *task_arena_alloc(TaskArena *a, size_t n) {
    if (n > SIZE_MAX - 64 - sizeof(TaskArenaBlock)) {
        err_set("out of memory (allocation of %zu bytes)", n);
        return NULL;
    }
    size_t need = (n + 15) & ~(size_t)15;
    if (need == 0) need = 16;
    TaskArenaBlock *b = a->head;
    if (!b || b->cap - b->used < need) {
        size_t cap = need > ARENA_BLOCK ? need : ARENA_BLOCK;
        TaskArenaBlock *nb = malloc(sizeof *nb + cap);
        if (!nb) {
            err_set("out of memory (allocation of %zu bytes)", n);
            return NULL;
        }
        nb->used = 0;
        nb->cap = cap;
        if (b && cap == need) {
            /* a big one-off: keep the current block as the head for the small ones */
            nb->next = b->next;
            b->next = nb;
            nb->used = need;
            return nb->data;
        }
        nb->next = b;
        a->head = nb;
        b = nb;
    }
    void *p = b->data + b->used;
    b->used += need;
    return p;
}

char *task_arena_strndup(TaskArena *a, const char *s, size_t n) {
    if (n == SIZE_MAX) {
        err_set("out of memory");
        return NULL;
    }
    char *p = task_arena_alloc(a, n + 1);
    if (!p) return NULL;
    if (n) memcpy(p, s, n);
    p[n] = 0;
    return p;
}

char *task_arena_strdup(TaskArena *a, const char *s) { return task_arena_strndup(a, s, strlen(s)); }

/* Python's str.isspace(): bidirectional class WS, B or S, or category Zs. */
int task_py_isspace(uint32_t cp) {
    if (cp >= 0x09 && cp <= 0x0D) return 1;
    if (cp >= 0x1C && cp <= 0x20) return 1;
    switch (cp) {
    case 0x85: case 0xA0: case 0x1680: case 0x2028: case 0x2029: case 0x202F: case 0x205F:
    case 0x3000:
        return 1;
    default:
        return cp >= 0x2000 && cp <= 0x200A;
    }
}

/* Decodes the code point ending at s[e-1] (valid UTF-8); returns its first byte's index. */
static size_t prev_cp(const char *s, size_t e, uint32_t *cp) {
    const uint8_t *u = (const uint8_t *)s;
    size_t b = e - 1;
    while (b > 0 && (u[b] & 0xC0) == 0x80 && e - b < 4) b--;
    uint32_t c = u[b];
    size_t len = e - b;
    if (len == 1) c = u[b];
    else if (len == 2) c = c & 0x1F;
    else if (len == 3) c = c & 0x0F;
    else c = c & 0x07;
    for (size_t k = 1; k < len; k++) c = (c << 6) | (u[b + k] & 0x3F);
    *cp = c;
    return b;
}

static size_t next_cp(const char *s, size_t i, size_t n, uint32_t *cp) {
    const uint8_t *u = (const uint8_t *)s;
    uint8_t c = u[i];
    size_t len = c < 0x80 ? 1 : c < 0xE0 ? 2 : c < 0xF0 ? 3 : 4;
    if (len > n - i) len = n - i;
    uint32_t v = len == 1 ? c : len == 2 ? (c & 0x1Fu) : len == 3 ? (c & 0x0Fu) : (c & 0x07u);
    for (size_t k = 1; k < len; k++) v = (v << 6) | (u[i + k] & 0x3F);
    *cp = v;
    return i + len;
}

size_t task_py_rstrip_len(const char *s, size_t n) {
    size_t e = n;
    while (e > 0) {
        uint32_t cp;
        size_t b = prev_cp(s, e, &cp);
        if (!task_py_isspace(cp)) break;
        e = b;
    }
    return n - e;
}

void task_py_strip(const char *s, size_t n, size_t *b, size_t *e) {
    size_t i = 0;
    while (i < n) {
        uint32_t cp;
        size_t j = next_cp(s, i, n, &cp);
        if (!task_py_isspace(cp)) break;
        i = j;
    }
    size_t end = n - task_py_rstrip_len(s + i, n - i);
    *b = i;
    *e = end;
}
