/* metrics/answer.c - GSM8K answer extraction and normalized exact match. */
#include "answer.h"

#include "core/error.h"

#include <stdlib.h>
#include <string.h>

static int is_digit(char c) { return c >= '0' && c <= '9'; }
static int is_alnum(char c) { return is_digit(c) || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
static int is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f'; }

typedef struct {
    size_t start, end; /* digits (with commas, optional fraction) in [start, end) */
    int negative;
} Num;

/* Finds the next number at or after *pos in s[0..len); 1 found, 0 none. */
static int next_number(const char *s, size_t len, size_t *pos, Num *out) {
    for (size_t i = *pos; i < len; i++) {
        if (!is_digit(s[i])) continue;
        size_t j = i;
        while (j < len && (is_digit(s[j]) || s[j] == ',')) j++;
        if (j + 1 < len && s[j] == '.' && is_digit(s[j + 1])) {
            j++;
            while (j < len && is_digit(s[j])) j++;
        }
        size_t k = i; /* sign: '-' or "-$" right before, not after a letter or digit */
        if (k > 0 && s[k - 1] == '$') k--;
        out->negative = k > 0 && s[k - 1] == '-' && (k == 1 || !is_alnum(s[k - 2]));
        out->start = i;
        out->end = j;
        *pos = j;
        return 1;
    }
    return 0;
}

static int canonical(const char *s, const Num *n, char *out, size_t cap) {
    /* integer digits without commas and leading zeros; fraction without trailing zeros */
    size_t i = n->start, o = 0;
    char ibuf[64], fbuf[64];
    size_t il = 0, fl = 0;
    int toolong = 0;
    while (i < n->end && s[i] != '.') {
        if (is_digit(s[i])) {
            if (il == 0 && s[i] == '0') { i++; continue; }
            if (il < sizeof ibuf) ibuf[il++] = s[i];
            else toolong = 1;
        }
        i++;
    }
    if (i < n->end && s[i] == '.') {
        for (i++; i < n->end; i++) {
            if (fl < sizeof fbuf) fbuf[fl++] = s[i];
            else toolong = 1;
        }
    }
    while (fl > 0 && fbuf[fl - 1] == '0') fl--;
    if (il == 0) ibuf[il++] = '0';
    int zero = il == 1 && ibuf[0] == '0' && fl == 0;
    size_t need = (n->negative && !zero) + il + (fl ? fl + 1 : 0) + 1;
    if (toolong || need > cap)
        return err_set("gsm8k answer: the number '%.40s' is longer than %zu characters", s + n->start, cap ? cap - 1 : 0);
    if (n->negative && !zero) out[o++] = '-';
    memcpy(out + o, ibuf, il);
    o += il;
    if (fl) {
        out[o++] = '.';
        memcpy(out + o, fbuf, fl);
        o += fl;
    }
    out[o] = 0;
    return 1;
}

int answer_gsm8k_extract(const char *text, char *out, size_t cap) {
    if (cap) out[0] = 0;
    size_t len = strlen(text), pos;
    Num n;
    const char *mark = strstr(text, "####");
    if (mark) {
        pos = (size_t)(mark - text) + 4;
        if (next_number(text, len, &pos, &n)) return canonical(text, &n, out, cap);
    }
    int found = 0;
    Num last;
    pos = 0;
    while (next_number(text, len, &pos, &n)) {
        last = n;
        found = 1;
    }
    return found ? canonical(text, &last, out, cap) : 0;
}

int answer_gsm8k_match(const char *prediction, const char *target) {
    char a[160], b[160];
    if (answer_gsm8k_extract(prediction, a, sizeof a) != 1) return 0;
    if (answer_gsm8k_extract(target, b, sizeof b) != 1) return 0;
    return strcmp(a, b) == 0;
}

char *answer_normalize(const char *text) {
    size_t len = strlen(text);
    char *out = malloc(len + 1);
    if (!out) {
        err_set("answer: out of memory");
        return NULL;
    }
    size_t o = 0;
    int pending = 0;
    for (size_t i = 0; i < len; i++) {
        if (is_space(text[i])) {
            pending = o > 0;
            continue;
        }
        if (pending) out[o++] = ' ';
        pending = 0;
        out[o++] = text[i];
    }
    out[o] = 0;
    return out;
}

int answer_exact_match(const char *prediction, const char *target) {
    char *a = answer_normalize(prediction), *b = answer_normalize(target);
    int eq = a && b && strcmp(a, b) == 0;
    free(a);
    free(b);
    return eq;
}
