/* core/error.h - one thread-local "last error" message.
 *
 * Convention for the whole library: a function that can fail returns int
 * (0 = ok, -1 = error) or a pointer (NULL = error) and, on failure, has called
 * err_set() with a message naming the file, the field and what was expected,
 * e.g.  "model.safetensors: tensor 'x': data offsets [10, 4] are reversed".
 * The CLI prints  "muscle: error: <message>"  and exits non-zero.
 */
#ifndef MUSCLE_CORE_ERROR_H
#define MUSCLE_CORE_ERROR_H

#include <stdarg.h>

#if defined(__GNUC__)
#define MU_PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define MU_PRINTF(a, b)
#endif

/* Sets the message (printf-style). Always returns -1 so callers can write
 * `return err_set("...")`. */
int err_set(const char *fmt, ...) MU_PRINTF(1, 2);
int err_setv(const char *fmt, va_list ap);
/* Prepends "prefix: " to the current message (adds context on the way up). */
int err_prefix(const char *fmt, ...) MU_PRINTF(1, 2);
/* The current message ("" when none). */
const char *err_msg(void);
void err_clear(void);

#endif
