/* tests/kernel/bf16_fixture.h - the mixed-precision fixtures of tests/fixtures/kernel/
 * (made by tests/kernel/make_bf16_fixture.py and make_bf16_full_fixture.py), for
 * test_bf16_model.c and test_bf16_full.c. Header-only. */
#ifndef MUSCLE_TEST_BF16_FIXTURE_H
#define MUSCLE_TEST_BF16_FIXTURE_H

#include "model/torch_fixture.h"

#define KF_DIR "tests/fixtures/kernel/"

/* KF_DIR/name parsed; the script that makes it named when it is missing. */
static inline cJSON *kf_load(const char *name, const char *script) {
    char path[256];
    snprintf(path, sizeof path, KF_DIR "%s", name);
    size_t n;
    char *text = file_read_all(path, &n, 0);
    if (!text) fail_msg("%s (make it with tests/kernel/%s)", err_msg(), script);
    cJSON *j = cJSON_Parse(text);
    free(text);
    assert_non_null(j);
    return j;
}

/* j.kind.key, or the test fails naming it. */
static inline const cJSON *kf_get(const cJSON *j, const char *kind, const char *key) {
    const cJSON *o = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(j, kind), key);
    if (!o) fail_msg("fixture: no %s.%s", kind, key);
    return o;
}

#endif
