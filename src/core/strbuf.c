/* core/strbuf.c - growable byte buffer (see strbuf.h). */
#include "core/strbuf.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int strbuf_reserve(StrBuf *b, size_t extra) {
    if (b->oom) return -1;
    if (extra > SIZE_MAX - b->n - 1) {
        b->oom = 1;
        return -1;
    }
    size_t want = b->n + extra + 1;
    if (want <= b->cap) return 0;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < want) {
        if (cap > SIZE_MAX / 2) {
            cap = want;
            break;
        }
        cap *= 2;
    }
    char *p = realloc(b->p, cap);
    if (!p) {
        b->oom = 1;
        return -1;
    }
    b->p = p;
    b->cap = cap;
    return 0;
}

int strbuf_put(StrBuf *b, const void *p, size_t n) {
    if (strbuf_reserve(b, n)) return -1;
    if (n) memcpy(b->p + b->n, p, n);
    b->n += n;
    b->p[b->n] = 0;
    return 0;
}

int strbuf_puts(StrBuf *b, const char *s) { return strbuf_put(b, s, strlen(s)); }

int strbuf_printf(StrBuf *b, const char *fmt, ...) {
    char small[256];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(small, sizeof small, fmt, ap);
    va_end(ap);
    if (n < 0) {
        b->oom = 1;
        return -1;
    }
    if ((size_t)n < sizeof small) return strbuf_put(b, small, (size_t)n);
    if (strbuf_reserve(b, (size_t)n)) return -1;
    va_start(ap, fmt);
    vsnprintf(b->p + b->n, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->n += (size_t)n;
    return 0;
}

char *strbuf_take(StrBuf *b) {
    char *p = b->oom ? NULL : b->p ? b->p : calloc(1, 1);
    if (b->oom) free(b->p);
    memset(b, 0, sizeof *b);
    return p;
}

void strbuf_free(StrBuf *b) {
    free(b->p);
    memset(b, 0, sizeof *b);
}
