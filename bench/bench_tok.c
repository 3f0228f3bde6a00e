/* bench/bench_tok.c - tokenizer encoding speed: every line of a text file encoded on its own
 * (as bench/tok_bpe.sh asks transformers.js to), one thread.
 *   build/bench_tok TOKENIZER FILE   -> prints "tokens seconds"
 */
#include "core/error.h"
#include "core/file.h"
#include "tokenizer/tokenizer.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: bench_tok TOKENIZER FILE\n");
        return 2;
    }
    Tokenizer *t = tok_load(argv[1]);
    size_t n;
    char *txt = t ? file_read_all(argv[2], &n, 1u << 30) : NULL;
    if (!t || !txt) {
        fprintf(stderr, "bench_tok: %s\n", err_msg());
        return 1;
    }
    struct timespec a, b;
    clock_gettime(CLOCK_MONOTONIC, &a);
    long tokens = 0;
    for (char *p = txt, *end = txt + n; p <= end;) {
        char *nl = memchr(p, '\n', (size_t)(end - p));
        if (!nl) nl = end;
        int *ids, k;
        if (tok_encode(t, p, (size_t)(nl - p), 0, 0, &ids, &k) != 0) {
            fprintf(stderr, "bench_tok: %s\n", err_msg());
            return 1;
        }
        tokens += k;
        free(ids);
        p = nl + 1;
    }
    clock_gettime(CLOCK_MONOTONIC, &b);
    printf("%ld %.6f\n", tokens, (double)(b.tv_sec - a.tv_sec) + 1e-9 * (double)(b.tv_nsec - a.tv_nsec));
    free(txt);
    tok_free(t);
    return 0;
}
