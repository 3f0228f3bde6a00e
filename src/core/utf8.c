/* core/utf8.c - strict UTF-8 validation (see utf8.h). */
#include "core/utf8.h"

#include <stdint.h>

size_t utf8_char_len(const void *s, size_t n) {
    const uint8_t *b = s;
    if (n == 0) return 0;
    uint8_t c = b[0];
    if (c < 0x80) return 1;
    size_t len;
    uint32_t cp, min;
    if (c >= 0xc2 && c <= 0xdf) {
        len = 2; cp = c & 0x1f; min = 0x80;
    } else if (c >= 0xe0 && c <= 0xef) {
        len = 3; cp = c & 0x0f; min = 0x800;
    } else if (c >= 0xf0 && c <= 0xf4) {
        len = 4; cp = c & 0x07; min = 0x10000;
    } else {
        return 0;
    }
    if (n < len) return 0;
    for (size_t k = 1; k < len; k++) {
        if ((b[k] & 0xc0) != 0x80) return 0;
        cp = (cp << 6) | (b[k] & 0x3f);
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return 0;
    return len;
}

size_t utf8_valid_prefix(const void *s, size_t n) {
    const uint8_t *b = s;
    size_t i = 0;
    while (i < n) {
        if (b[i] < 0x80) { /* ASCII runs are the common case */
            i++;
            continue;
        }
        size_t k = utf8_char_len(b + i, n - i);
        if (!k) return i;
        i += k;
    }
    return n;
}

size_t utf8_cut(const void *s, size_t len, size_t max) {
    const uint8_t *b = s;
    if (len <= max) return len;
    size_t k = max;
    while (k > 0 && (b[k] & 0xc0) == 0x80) k--;
    return k;
}
