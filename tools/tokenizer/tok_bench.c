/* tools/tokenizer/tok_bench.c - encode/decode throughput on a corpus.
 * Built and run by tools/tokenizer/bench.sh (under flock /tmp/muscle-bench.lock).
 * Usage: tok_bench CORPUS TOKENIZER...
 * For each tokenizer: encode line by line, encode the whole text as one string, decode it
 * back; best of 3 runs each; prints tokens/s and MB/s. */
#include "core/error.h"
#include "core/file.h"
#include "tokenizer/tokenizer.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: %s CORPUS TOKENIZER...\n", argv[0]);
        return 2;
    }
    size_t n;
    char *text = file_read_all(argv[1], &n, 0);
    if (!text) {
        fprintf(stderr, "%s\n", err_msg());
        return 1;
    }
    printf("corpus %s: %zu bytes\n", argv[1], n);
    for (int a = 2; a < argc; a++) {
        double t0 = now();
        Tokenizer *t = tok_load(argv[a]);
        double load = now() - t0;
        if (!t) {
            fprintf(stderr, "%s\n", err_msg());
            return 1;
        }
        double best_lines = 1e30, best_whole = 1e30, best_dec = 1e30;
        long tok_lines = 0;
        int n_whole = 0;
        for (int rep = 0; rep < 3; rep++) {
            t0 = now();
            long cnt = 0;
            for (size_t i = 0; i < n;) {
                char *nl = memchr(text + i, '\n', n - i);
                size_t e = nl ? (size_t)(nl - text) : n;
                int *ids, m;
                if (tok_encode(t, text + i, e - i, 0, 0, &ids, &m) != 0) return 1;
                cnt += m;
                free(ids);
                i = e + 1;
            }
            double dt = now() - t0;
            if (dt < best_lines) best_lines = dt;
            tok_lines = cnt;
            int *ids;
            t0 = now();
            if (tok_encode(t, text, n, 0, 0, &ids, &n_whole) != 0) return 1;
            dt = now() - t0;
            if (dt < best_whole) best_whole = dt;
            t0 = now();
            char *back = tok_decode(t, ids, n_whole, NULL);
            dt = now() - t0;
            if (dt < best_dec) best_dec = dt;
            free(back);
            free(ids);
        }
        printf("%-60s %-14s load %6.1f ms | by line: %8ld tokens %6.2f Mtok/s %6.1f MB/s | whole text: %8d tokens "
               "%6.2f Mtok/s | decode %6.1f Mtok/s\n",
               argv[a], tok_kind(t), 1e3 * load, tok_lines, (double)tok_lines / best_lines / 1e6,
               (double)n / best_lines / 1e6, n_whole, (double)n_whole / best_whole / 1e6,
               (double)n_whole / best_dec / 1e6);
        tok_free(t);
    }
    free(text);
    return 0;
}
