/* task/task_cut.c - a generation prompt cut in text, not in tokens, to fit the contexts of
 * several models with different tokenizers (task.h, task_prompt_cut_text). */
#include "task/task_internal.h"

#include "core/error.h"

#include <stdlib.h>
#include <string.h>

/* 1 when s[c..len) takes at most limits[k] tokens (BOS included, as task_gen_tokenize_text
 * encodes a prompt) under every toks[k]; -1 on an encoding error. */
static int fits(const char *s, size_t len, size_t c, const Tokenizer *const *toks, const int *limits, int n) {
    for (int k = 0; k < n; k++) {
        int *ids = NULL, m = 0;
        if (tok_encode(toks[k], s + c, len - c, tok_bos_id(toks[k]) >= 0, 0, &ids, &m) != 0) return -1;
        free(ids);
        if (m > limits[k]) return 0;
    }
    return 1;
}

static int is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f'; }

/* The first of the candidate cuts cand[0..nc) (increasing) where the text fits: binary
 * search (fewer tokens the later the cut). *idx = nc when none fits. */
static int first_fit(const char *s, size_t len, const size_t *cand, int nc, const Tokenizer *const *toks, const int *limits,
                     int n, int *idx) {
    int lo = 0, hi = nc;
    while (lo < hi) {
        int mid = lo + (hi - lo) / 2, f = fits(s, len, cand[mid], toks, limits, n);
        if (f < 0) return -1;
        if (f) hi = mid;
        else lo = mid + 1;
    }
    *idx = lo;
    return 0;
}

int task_prompt_cut_text(const char *prompt, const Tokenizer *const *toks, const int *limits, int n, size_t *start) {
    *start = 0;
    size_t full = strlen(prompt), len = full - task_py_rstrip_len(prompt, full);
    int f = fits(prompt, len, 0, toks, limits, n);
    if (f != 0) return f < 0 ? -1 : 0;
    size_t *cand = malloc((len ? len : 1) * sizeof *cand);
    if (!cand) return err_set("out of memory");
    /* first the starts of words (after whitespace), then, when a word alone is too long,
     * the starts of UTF-8 characters after the last word start */
    int nc = 0, idx = 0, rc = 0;
    for (size_t c = 1; c < len; c++)
        if (!is_space(prompt[c]) && is_space(prompt[c - 1])) cand[nc++] = c;
    rc = first_fit(prompt, len, cand, nc, toks, limits, n, &idx);
    if (rc == 0 && idx < nc) {
        *start = cand[idx];
    } else if (rc == 0) {
        size_t from = nc ? cand[nc - 1] : 0;
        nc = 0;
        for (size_t c = from + 1; c < len; c++)
            if (((unsigned char)prompt[c] & 0xC0) != 0x80) cand[nc++] = c;
        rc = first_fit(prompt, len, cand, nc, toks, limits, n, &idx);
        if (rc == 0 && idx < nc) *start = cand[idx];
        else if (rc == 0) rc = err_set("the prompt's last character alone is longer than a context (at most %d tokens)", limits[0]);
    }
    free(cand);
    return rc;
}
