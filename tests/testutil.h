/* tests/testutil.h - shared helpers for the C tests (cmocka). */
#ifndef MUSCLE_TESTUTIL_H
#define MUSCLE_TESTUTIL_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Path of a file under ../shared (or $MUSCLE_SHARED). Fails the test with a clear
 * message when it is missing: the tests never download anything. Returns a static buffer. */
static inline const char *shared_path(const char *rel) {
    static char buf[4096];
    const char *root = getenv("MUSCLE_SHARED");
    snprintf(buf, sizeof buf, "%s/%s", root ? root : "../shared", rel);
    if (access(buf, R_OK) != 0) {
        print_error("missing reference file %s (../shared must sit beside the checkout)\n", buf);
        fail();
    }
    return buf;
}

/* A fresh temporary directory for a test (under $TMPDIR or /tmp). */
static inline const char *test_tmpdir(void) {
    static char buf[256];
    const char *t = getenv("TMPDIR");
    snprintf(buf, sizeof buf, "%s/muscle-test-XXXXXX", t ? t : "/tmp");
    if (!mkdtemp(buf)) fail_msg("mkdtemp failed");
    return buf;
}

#endif
