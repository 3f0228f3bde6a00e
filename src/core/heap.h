/* core/heap.h - a binary heap of values, generated per element type so the comparison
 * inlines (the tokenizers' merge queues pop millions of times).
 *
 *   HEAP_DEFINE(Name, prefix, T, before)
 * defines
 *   typedef struct { T *v; size_t n, cap; } Name;   zero-initialise; free(h.v) when done
 *   static int prefix_push(Name *h, T x);            0, or -1 when out of memory
 *   static T prefix_pop(Name *h);                    the first element by `before` (h->n >= 1)
 * where `static inline int before(const T *a, const T *b)` is 1 when a comes out before b.
 * Elements neither before the other come out in an unspecified order: make the order total
 * (the tokenizers break ties by position) when the result must not depend on the heap. */
#ifndef MUSCLE_CORE_HEAP_H
#define MUSCLE_CORE_HEAP_H

#include <stddef.h>
#include <stdlib.h>

#define HEAP_DEFINE(Name, prefix, T, before)                                                       \
    typedef struct {                                                                               \
        T *v;                                                                                      \
        size_t n, cap;                                                                             \
    } Name;                                                                                        \
    static inline int prefix##_push(Name *h, T x) {                                                \
        if (h->n == h->cap) {                                                                      \
            size_t cap = h->cap ? h->cap * 2 : 64;                                                 \
            if (cap > (size_t)-1 / sizeof(T)) return -1;                                           \
            T *p = realloc(h->v, sizeof(T) * cap);                                                 \
            if (!p) return -1;                                                                     \
            h->v = p;                                                                              \
            h->cap = cap;                                                                          \
        }                                                                                          \
        size_t i = h->n++;                                                                         \
        while (i > 0) { /* sift up */                                                              \
            size_t p = (i - 1) / 2;                                                                \
            if (!before(&x, &h->v[p])) break;                                                      \
            h->v[i] = h->v[p];                                                                     \
            i = p;                                                                                 \
        }                                                                                          \
        h->v[i] = x;                                                                               \
        return 0;                                                                                  \
    }                                                                                              \
    static inline T prefix##_pop(Name *h) {                                                        \
        T top = h->v[0], last = h->v[--h->n];                                                      \
        size_t i = 0, n = h->n;                                                                    \
        for (;;) { /* sift the last element down from the root */                                  \
            size_t l = 2 * i + 1, r = l + 1, m = i;                                                \
            const T *best = &last;                                                                 \
            if (l < n && before(&h->v[l], best)) { m = l; best = &h->v[l]; }                       \
            if (r < n && before(&h->v[r], best)) m = r;                                            \
            if (m == i) break;                                                                     \
            h->v[i] = h->v[m];                                                                     \
            i = m;                                                                                 \
        }                                                                                          \
        if (n) h->v[i] = last;                                                                     \
        return top;                                                                                \
    }

#endif
