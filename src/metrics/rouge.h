/* metrics/rouge.h - ROUGE-1, ROUGE-2, ROUGE-L as Google's `rouge_score` package computes them.
 *
 * Tokens (rouge_score's tokenize.py): the text is lowercased (Python str.lower),
 * every character outside [a-z0-9] becomes a separator, the rest is split into
 * tokens; with stemming, tokens longer than 3 characters go through the Porter
 * stemmer in NLTK's default mode (NLTK_EXTENSIONS), as rouge_score does.
 * Non-ASCII characters are separators, except the two whose Python lowercase is
 * ASCII: U+212A KELVIN SIGN -> "k", U+0130 -> "i" followed by a separator (Python
 * lowercases it to "i" + U+0307). Bytes that are not valid UTF-8 are separators.
 *
 * ROUGE-N: clipped n-gram overlap m = sum over the target's n-grams of
 * min(count in target, count in prediction); precision = m / max(#pred n-grams, 1),
 * recall = m / max(#target n-grams, 1). ROUGE-L: l = LCS length of the token lists,
 * precision = l / #pred tokens, recall = l / #target tokens (all 0 when either is
 * empty). F1 = 2*P*R / (P + R), 0 when P + R = 0. So an empty prediction or an
 * empty target scores 0 everywhere, as in rouge_score.
 */
#ifndef MUSCLE_METRICS_ROUGE_H
#define MUSCLE_METRICS_ROUGE_H

#include <stddef.h>

typedef struct {
    double precision, recall, f1;
} RougeScore;

typedef struct {
    RougeScore rouge1, rouge2, rougeL;
} RougeResult;

typedef struct {
    char **tok;   /* tok[i]: NUL-terminated, [a-z0-9]+ */
    size_t n;
    char *buf;    /* storage for the tokens */
} RougeTokens;

/* Tokenizes `len` bytes of UTF-8 text. Fails only when out of memory. */
int rouge_tokenize(const char *text, size_t len, int use_stemmer, RougeTokens *out);
void rouge_tokens_free(RougeTokens *t);

/* ROUGE-N (n >= 1) and ROUGE-L on token lists. */
int rouge_n(const RougeTokens *target, const RougeTokens *prediction, int n, RougeScore *out);
int rouge_l(const RougeTokens *target, const RougeTokens *prediction, RougeScore *out);

/* ROUGE-1, -2, -L of NUL-terminated texts. */
int rouge_compute(const char *target, const char *prediction, int use_stemmer, RougeResult *out);

/* NLTK's PorterStemmer().stem(word) (mode NLTK_EXTENSIONS) for a lowercase word of
 * [a-z0-9]. Writes the stem and a NUL to out (room for len + 1 bytes; a stem is
 * never longer than its word) and returns the stem's length. */
size_t rouge_porter_stem(const char *word, size_t len, char *out);

#endif
