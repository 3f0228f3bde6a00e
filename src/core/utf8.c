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

/* Bytes at the start of s[0..n) that begin a character and are a valid prefix of one
 * (WHATWG "maximal subpart"): 1 for a lone invalid byte, up to len-1 for a cut one. */
static size_t maximal_subpart(const uint8_t *b, size_t n) {
    uint8_t c = b[0], lo = 0x80, hi = 0xbf;
    size_t len;
    if (c >= 0xc2 && c <= 0xdf) len = 2;
    else if (c >= 0xe0 && c <= 0xef) {
        len = 3;
        if (c == 0xe0) lo = 0xa0;
        if (c == 0xed) hi = 0x9f;
    } else if (c >= 0xf0 && c <= 0xf4) {
        len = 4;
        if (c == 0xf0) lo = 0x90;
        if (c == 0xf4) hi = 0x8f;
    } else {
        return 1;
    }
    size_t k = 1;
    for (; k < len && k < n; k++) {
        uint8_t x = b[k];
        if (k == 1 ? (x < lo || x > hi) : (x & 0xc0) != 0x80) break;
    }
    return k;
}

size_t utf8_sanitize(const void *s, size_t n, char *out) {
    const uint8_t *b = s;
    size_t i = 0, o = 0;
    while (i < n) {
        size_t k = b[i] < 0x80 ? 1 : utf8_char_len(b + i, n - i);
        if (k) {
            for (size_t j = 0; j < k; j++) out[o++] = (char)b[i + j];
            i += k;
        } else {
            out[o++] = (char)0xef;
            out[o++] = (char)0xbf;
            out[o++] = (char)0xbd;
            i += maximal_subpart(b + i, n - i);
        }
    }
    return o;
}

size_t utf8_incomplete_tail(const void *s, size_t n) {
    const uint8_t *b = s;
    for (size_t k = 1; k <= 3 && k <= n; k++) {
        uint8_t c = b[n - k];
        if ((c & 0xc0) == 0x80) continue; /* a continuation byte: look further back */
        if (c < 0xc2 || c > 0xf4) return 0;
        size_t len = c <= 0xdf ? 2 : c <= 0xef ? 3 : 4;
        /* cut short, and what is there is a valid start */
        return k < len && maximal_subpart(b + n - k, k) == k ? k : 0;
    }
    return 0;
}
