/* fuzz/fuzz_preds.c - libFuzzer harness for prediction files (metrics/preds.h): muscle's
 * PREDS.jsonl, lm-evaluation-harness sample files, CSV and plain JSONL, detected or forced.
 * Input: one mode byte (bits 0-1: the format, 0 = detect; bits 2-3: the lm-eval metric:
 * default, acc_norm, exact_match,flexible-extract, rouge1) then the file's bytes.
 * Invariants: success means n > 0, every record has an id key and an outcome, and the file
 * matches itself (preds_match); failure leaves nothing and a message. Build and run:
 * fuzz/run_files.sh SECONDS preds. */
#include "fuzz_files_common.h"
#include "metrics/preds.h"

#include <math.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    static const char *metrics[] = {NULL, "acc_norm", "exact_match,flexible-extract", "rouge1"};
    PredsReadOptions o = {(PredsFormat)(data[0] & 3), metrics[(data[0] >> 2) & 3]};
    char *text = fuzz_copy(data + 1, size - 1);
    PredFile f;
    err_clear();
    if (preds_parse_buffer(&f, text, size - 1, "fuzz", &o) == 0) {
        FUZZ_CHECK(f.n > 0 && f.rec && f.format);
        for (size_t i = 0; i < f.n; i++) {
            FUZZ_CHECK(f.rec[i].key && f.rec[i].obj && f.rec[i].line >= 1);
            FUZZ_CHECK(f.rec[i].correct >= 0 || !isnan(f.rec[i].score));
            (void)preds_same_prediction(&f.rec[i], &f.rec[0]);
        }
        size_t *idx = NULL;
        FUZZ_CHECK(preds_match(&f, &f, &idx) == 0);
        for (size_t i = 0; i < f.n; i++) FUZZ_CHECK(idx[i] == i);
        free(idx);
        preds_free(&f);
    } else {
        FUZZ_CHECK(f.n == 0 && f.rec == NULL && err_msg()[0]);
    }
    free(text);
    return 0;
}
