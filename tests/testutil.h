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

/* Runs fn on every regular file of dir (not recursing, skipping names that start with
 * '.' and README*), each in a malloc'd buffer of its exact size so that ASan sees any
 * read past the end; returns how many. A missing folder counts 0 (fails the test when
 * `required`). Used to replay fuzzer inputs through the harness code of fuzz/. */
#include <dirent.h>
#include <sys/stat.h>
static inline int replay_dir(const char *dir, int (*fn)(const uint8_t *, size_t), int required) {
    DIR *d = opendir(dir);
    if (!d) {
        if (required) fail_msg("cannot open %s", dir);
        return 0;
    }
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.' || strncmp(e->d_name, "README", 6) == 0) continue;
        char p[4096];
        snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
        struct stat st;
        if (stat(p, &st) != 0 || !S_ISREG(st.st_mode)) continue;
        FILE *f = fopen(p, "rb");
        if (!f) fail_msg("cannot open %s", p);
        size_t len = (size_t)st.st_size;
        uint8_t *buf = malloc(len ? len : 1);
        if (len && fread(buf, 1, len, f) != len) fail_msg("cannot read %s", p);
        fclose(f);
        fn(buf, len);
        free(buf);
        n++;
    }
    closedir(d);
    return n;
}

#endif
