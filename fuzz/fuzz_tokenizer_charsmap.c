/* fuzz/fuzz_tokenizer_charsmap.c - libFuzzer harness for the precompiled normalization
 * charsmap reader (darts-clone double array + strings) of SentencePiece models, fuzzed on
 * its own because a real charsmap (~240 kB) is far beyond the loader harness's max_len.
 * Input: a raw precompiled_charsmap blob. Build and run: fuzz/run_tokenizer.sh SECONDS charsmap */
#include "tokenizer/tok_internal.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static const char text[] = "\xef\xac\x81 \xef\xbc\xa1\xe2\x91\xa0 \xc2\xbd\t\x01 e\xcc\x81 \xe3\x80\x80x"
                               "\xed\x9f\xbf\xea\xb0\x80\xe1\x84\x80\xe1\x85\xa1 ABC abc \xff";
    TokCharsMap cm;
    if (tok_charsmap_init(&cm, data, size, "fuzz") < 0) return 0;
    for (size_t i = 0; i < sizeof text - 1; i++) {
        const char *out;
        size_t len;
        size_t m = tok_charsmap_match(&cm, text + i, sizeof text - 1 - i, &out, &len);
        if (m > sizeof text - 1 - i) abort();
        if (m && (out < cm.norm || out + len > cm.norm + cm.norm_size)) abort();
    }
    tok_charsmap_free(&cm);
    return 0;
}
