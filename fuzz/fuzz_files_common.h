/* fuzz/fuzz_files_common.h - what the configuration harnesses (fuzz_hf_config.c,
 * fuzz_adapter_config.c) share: an invariant check that names the error message, an
 * exact-size copy of the input, and a private scratch folder. */
#ifndef FUZZ_FILES_COMMON_H
#define FUZZ_FILES_COMMON_H

#include "core/error.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define FUZZ_CHECK(c)                                                                              \
    do {                                                                                           \
        if (!(c)) {                                                                                \
            fprintf(stderr, "invariant failed: %s (%s:%d): %s\n", #c, __FILE__, __LINE__, err_msg()); \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

/* The input in a buffer of exactly its size: ASan sees any read past the end. */
static char *fuzz_copy(const uint8_t *data, size_t size) {
    char *text = malloc(size ? size : 1);
    if (!text) abort();
    if (size) memcpy(text, data, size);
    return text;
}

/* dir (n bytes) becomes a new private folder NAME.XXXXXX in $FUZZ_TMPDIR, else /dev/shm when
 * writable, else /tmp; aborts when it cannot be made. */
static void fuzz_tmpdir_make(char *dir, size_t n, const char *name) {
    const char *t = getenv("FUZZ_TMPDIR");
    if (!t) t = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
    snprintf(dir, n, "%s/%s.XXXXXX", t, name);
    if (!mkdtemp(dir)) {
        perror(dir);
        abort();
    }
}

#endif
