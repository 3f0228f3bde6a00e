/* core/num.h - numbers typed by people (command-line options): strict decimal only. */
#ifndef MUSCLE_CORE_NUM_H
#define MUSCLE_CORE_NUM_H

#include <stddef.h>

/* Parses the longest strict decimal number at the start of s ([+-]digits[.digits][e[+-]digits],
 * at least one digit; no spaces, hex, inf or nan: strtod's other forms are refused) into *out.
 * Returns the bytes read, 0 when s does not start with one or the value is not finite. */
size_t num_parse_decimal(const char *s, double *out);

#endif
