/* fuzz/fuzz_manifest.c - libFuzzer harness for report manifests (report/report.h,
 * report_load_manifest): the bytes as DIR/manifest.json. Invariants: success means every
 * name, title and path is valid UTF-8 without control characters (they reach report.*
 * and the terminal) and every task has its files; failure leaves a message.
 * Build and run: fuzz/run_files.sh SECONDS manifest. */
#include "fuzz_files_common.h"
#include "core/utf8.h"
#include "report/report.h"

static int printable(const char *s) {
    if (!s) return 1;
    size_t n = strlen(s);
    if (utf8_valid_prefix(s, n) != n) return 0;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f) return 0;
    return 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static char dir[256], path[300];
    if (!dir[0]) {
        fuzz_tmpdir_make(dir, sizeof dir, "fuzz_manifest");
        snprintf(path, sizeof path, "%s/manifest.json", dir);
    }
    FILE *f = fopen(path, "wb");
    if (!f) abort();
    if (size) fwrite(data, 1, size, f);
    fclose(f);
    ReportInput in;
    err_clear();
    if (report_load_manifest(&in, path) == 0) {
        FUZZ_CHECK(printable(in.title));
        for (int t = 0; t < in.n_tasks; t++) {
            const ReportTask *k = &in.tasks[t];
            FUZZ_CHECK(printable(k->name) && k->old_preds && printable(k->new_model.name));
            for (int m = 0; m < k->n_methods; m++) FUZZ_CHECK(printable(k->methods[m].name));
        }
        report_input_free(&in);
    } else {
        FUZZ_CHECK(err_msg()[0]);
    }
    return 0;
}
