/* metrics/answer.h - exact match after answer extraction (GSM8K) and plain normalized exact match.
 *
 * GSM8K: the answer of a text is the first number after its first "####" when there
 * is a number after one, else the last number in the whole text. A number is an
 * optional '-' (a sign only when no letter or digit stands right before it), an
 * optional '$', a digit, then digits and commas, then optionally '.' and digits
 * ("$1,234.50"; "-3"; "72." is 72; "10-20" is 10 and 20). It is canonicalised:
 * '$' and commas dropped, a trailing '.' dropped, trailing zeros of a fraction
 * dropped (with the point when nothing remains: "72.00" -> "72", "0.50" -> "0.5"),
 * leading zeros of the integer part dropped ("007" -> "7"), "-0" -> "0". Two
 * texts match when both have an answer and the canonical strings are equal.
 *
 * Plain: leading/trailing ASCII whitespace trimmed, every inner run of ASCII
 * whitespace collapsed to one space; then byte equality (case-sensitive).
 */
#ifndef MUSCLE_METRICS_ANSWER_H
#define MUSCLE_METRICS_ANSWER_H

#include <stddef.h>

/* Writes the canonical GSM8K answer of `text` to out (cap bytes with the NUL).
 * Returns 1 when found, 0 when the text has no number (out = ""), -1 when the
 * number does not fit in cap (err_set). */
int answer_gsm8k_extract(const char *text, char *out, size_t cap);

/* 1 when both texts have a GSM8K answer and they are equal, else 0. */
int answer_gsm8k_match(const char *prediction, const char *target);

/* malloc'd normalized copy (trimmed, whitespace runs collapsed); NULL when out of memory. */
char *answer_normalize(const char *text);

/* 1 when the normalized texts are equal, else 0. */
int answer_exact_match(const char *prediction, const char *target);

#endif
