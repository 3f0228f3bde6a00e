/* model/sample.c - next-token choice. */
#include "sample.h"
#include "core/error.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

int sampler_init(Sampler *s, int vocab, float temperature, float top_p, int no_repeat_ngram, uint64_t seed) {
    memset(s, 0, sizeof *s);
    if (!(temperature >= 0.0f)) return err_set("temperature %g: expected >= 0", (double)temperature);
    if (!(top_p > 0.0f)) return err_set("top-p %g: expected > 0", (double)top_p);
    if (no_repeat_ngram < 0) return err_set("no-repeat n-gram size %d: expected >= 0", no_repeat_ngram);
    s->temperature = temperature;
    s->top_p = top_p;
    s->no_repeat_ngram = no_repeat_ngram;
    s->vocab = vocab;
    rng_seed(&s->rng, seed);
    s->idx = malloc((size_t)vocab * sizeof *s->idx);
    s->prob = malloc((size_t)vocab * sizeof *s->prob);
    if (!s->idx || !s->prob) {
        sampler_free(s);
        return err_set("out of memory");
    }
    return 0;
}

void sampler_free(Sampler *s) {
    free(s->idx);
    free(s->prob);
    memset(s, 0, sizeof *s);
}

void ngram_block(float *logits, int vocab, const int *h, int nh, int n) {
    if (n <= 0 || nh < n - 1) return;
    if (n == 1) {
        for (int i = 0; i < nh; i++)
            if (h[i] >= 0 && h[i] < vocab) logits[h[i]] = -INFINITY;
        return;
    }
    const int *prefix = h + nh - (n - 1);
    for (int start = 0; start + n <= nh; start++) {
        if (memcmp(h + start, prefix, (size_t)(n - 1) * sizeof(int)) == 0) {
            int t = h[start + n - 1];
            if (t >= 0 && t < vocab) logits[t] = -INFINITY;
        }
    }
}

static int cmp_desc(const void *a, const void *b, void *ctx) {
    const float *p = ctx;
    float x = p[*(const int *)a], y = p[*(const int *)b];
    if (x > y) return -1;
    if (x < y) return 1;
    return *(const int *)a - *(const int *)b;
}

int sampler_pick(Sampler *s, float *logits, const int *history, int n_history) {
    int V = s->vocab;
    if (s->no_repeat_ngram > 0) ngram_block(logits, V, history, n_history, s->no_repeat_ngram);
    if (s->temperature == 0.0f) {
        int best = 0;
        for (int i = 1; i < V; i++)
            if (logits[i] > logits[best]) best = i;
        return best;
    }
    float mx = -INFINITY;
    for (int i = 0; i < V; i++) mx = logits[i] > mx ? logits[i] : mx;
    double sum = 0.0;
    for (int i = 0; i < V; i++) {
        s->prob[i] = expf((logits[i] - mx) / s->temperature);
        sum += s->prob[i];
    }
    for (int i = 0; i < V; i++) s->prob[i] = (float)(s->prob[i] / sum);
    float r = rng_f32(&s->rng);
    if (s->top_p >= 1.0f) {
        float cdf = 0.0f;
        for (int i = 0; i < V; i++) {
            cdf += s->prob[i];
            if (r < cdf) return i;
        }
        return V - 1;
    }
    /* nucleus: smallest set of most likely tokens whose mass exceeds top_p */
    int n = 0;
    float cutoff = (1.0f - s->top_p) / (float)(V > 1 ? V - 1 : 1);
    for (int i = 0; i < V; i++)
        if (s->prob[i] >= cutoff) s->idx[n++] = i;
    qsort_r(s->idx, (size_t)n, sizeof(int), cmp_desc, s->prob);
    float cum = 0.0f;
    int last = n - 1;
    for (int i = 0; i < n; i++) {
        cum += s->prob[s->idx[i]];
        if (cum > s->top_p) { last = i; break; }
    }
    float rr = r * cum, cdf = 0.0f;
    for (int i = 0; i <= last; i++) {
        cdf += s->prob[s->idx[i]];
        if (rr < cdf) return s->idx[i];
    }
    return s->idx[last];
}
