/* core/error.c - thread-local last-error message. */
#include "error.h"

#include <stdio.h>
#include <string.h>

#define ERR_CAP 1024
static _Thread_local char err_buf[ERR_CAP];

int err_setv(const char *fmt, va_list ap) {
    vsnprintf(err_buf, sizeof err_buf, fmt, ap);
    return -1;
}

int err_set(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    err_setv(fmt, ap);
    va_end(ap);
    return -1;
}

int err_prefix(const char *fmt, ...) {
    char pre[ERR_CAP], old[ERR_CAP];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(pre, sizeof pre, fmt, ap);
    va_end(ap);
    memcpy(old, err_buf, sizeof old);
    size_t n = strlen(pre);
    if (n > ERR_CAP - 3) n = ERR_CAP - 3;
    memcpy(err_buf, pre, n);
    err_buf[n] = ':';
    err_buf[n + 1] = ' ';
    size_t m = strlen(old);
    if (m > ERR_CAP - n - 3) m = ERR_CAP - n - 3;
    memcpy(err_buf + n + 2, old, m);
    err_buf[n + 2 + m] = 0;
    return -1;
}

const char *err_msg(void) { return err_buf; }
void err_clear(void) { err_buf[0] = 0; }
