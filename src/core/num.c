/* core/num.c - strict decimal numbers (num.h). */
#include "num.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>

static size_t digits(const char *s) {
    size_t n = 0;
    while (s[n] >= '0' && s[n] <= '9') n++;
    return n;
}

size_t num_parse_decimal(const char *s, double *out) {
    size_t i = 0;
    if (s[i] == '+' || s[i] == '-') i++;
    size_t d = digits(s + i);
    i += d;
    if (s[i] == '.') {
        size_t f = digits(s + i + 1);
        if (d == 0 && f == 0) return 0;
        i += 1 + f;
    } else if (d == 0) {
        return 0;
    }
    if (s[i] == 'e' || s[i] == 'E') {
        size_t j = i + 1;
        if (s[j] == '+' || s[j] == '-') j++;
        size_t e = digits(s + j);
        if (e) i = j + e;
    }
    /* strtod reads exactly these bytes (a prefix of its own grammar) */
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if ((size_t)(end - s) != i || !isfinite(v) || (errno == ERANGE && fabs(v) > 1)) return 0;
    *out = v;
    return i;
}
