/* core/strbuf.h - the growable byte buffer / string builder of the tree.
 *
 * Always NUL-terminated after the first append (p[n] == 0), so p is a C string when the
 * content has no NUL. Allocation failure is sticky: `oom` is set, later appends are no-ops,
 * strbuf_take returns NULL; callers check once at the end. Zero-initialise to start
 * (StrBuf b = {0}); free with strbuf_free or take the string with strbuf_take. */
#ifndef MUSCLE_CORE_STRBUF_H
#define MUSCLE_CORE_STRBUF_H

#include <stddef.h>

typedef struct {
    char *p;       /* n bytes + NUL; NULL before the first append */
    size_t n, cap; /* bytes used (without the NUL), bytes allocated */
    int oom;       /* an allocation failed (or a size overflowed): the content is incomplete */
} StrBuf;

/* Makes room for `extra` more bytes (and the NUL). 0, or -1 with oom set. */
int strbuf_reserve(StrBuf *b, size_t extra);
/* Appends p[0..n). 0, or -1 when out of memory (now or before). */
int strbuf_put(StrBuf *b, const void *p, size_t n);
int strbuf_puts(StrBuf *b, const char *s);
int strbuf_printf(StrBuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* The malloc'd NUL-terminated content ("" when empty), or NULL when out of memory at any
 * point; the buffer is reset either way. */
char *strbuf_take(StrBuf *b);
void strbuf_free(StrBuf *b);

#endif
