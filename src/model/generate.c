/* model/generate.c - prefill the prompt in one chunk, then one token at a time. */
#include "generate.h"
#include "forward.h"
#include "sample.h"
#include "core/error.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

void gen_options_default(GenOptions *o) {
    memset(o, 0, sizeof *o);
    o->max_tokens = 256;
    o->temperature = 0.0f;
    o->top_p = 1.0f;
    o->seed = 42;
}

void gen_result_free(GenResult *r) {
    free(r->text);
    free(r->ids);
    memset(r, 0, sizeof *r);
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* text buffer */
typedef struct { char *p; size_t n, cap; } Buf;
static int buf_add(Buf *b, const char *s, size_t n) {
    if (b->n + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 256;
        while (cap < b->n + n + 1) cap *= 2;
        char *p = realloc(b->p, cap);
        if (!p) return err_set("out of memory");
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->n, s, n);
    b->n += n;
    b->p[b->n] = 0;
    return 0;
}

int model_generate(const Model *m, const Tokenizer *t, const int *prompt, int n_prompt,
                   const GenOptions *o, GenEmit emit, void *ctx, GenResult *res) {
    memset(res, 0, sizeof *res);
    const ModelConfig *c = &m->cfg;
    if (n_prompt < 1) return err_set("generate: the prompt needs at least one token (BOS)");
    if (n_prompt > c->seq_len) return err_set("generate: prompt of %d tokens is longer than the context (%d)", n_prompt, c->seq_len);
    if (o->max_tokens < 0) return err_set("generate: max tokens %d: expected >= 0", o->max_tokens);
    int total = n_prompt + o->max_tokens;
    if (total > c->seq_len) total = c->seq_len;
    RunState s;
    if (runstate_init(&s, m, 1, total, n_prompt, 0) != 0) return -1;
    if (o->lora && runstate_set_lora(&s, o->lora) != 0) {
        runstate_free(&s);
        return -1;
    }
    Sampler sp;
    if (sampler_init(&sp, c->vocab_size, o->temperature, o->top_p, o->no_repeat_ngram, o->seed) != 0) {
        runstate_free(&s);
        return -1;
    }
    int *hist = malloc((size_t)(total + 1) * sizeof *hist);
    if (!hist) {
        sampler_free(&sp);
        runstate_free(&s);
        return err_set("out of memory");
    }
    memcpy(hist, prompt, (size_t)n_prompt * sizeof *hist);
    int nh = n_prompt;
    size_t maxstop = 0;
    for (int i = 0; i < o->n_stops; i++) {
        size_t l = strlen(o->stops[i]);
        if (l > maxstop) maxstop = l;
    }
    Buf text = {0};
    size_t emitted = 0;
    int rc = 0;
    double t0 = now_s();
    if (model_forward(&s, prompt, 1, n_prompt, 0) != 0) rc = -1;
    float *logits = s.logits + (size_t)(n_prompt - 1) * c->vocab_size;
    int pos = n_prompt;
    res->stopped_by = GEN_STOP_MAX_TOKENS;
    while (rc == 0 && nh - n_prompt < o->max_tokens) {
        int next = sampler_pick(&sp, logits, hist, nh);
        if (!o->ignore_eos && (next == c->eos_id || next == c->bos_id)) {
            res->stopped_by = GEN_STOP_EOS;
            break;
        }
        char bytes[8];
        size_t plen = 0;
        const char *piece = tok_decode_piece(t, hist[nh - 1], next, bytes, &plen);
        hist[nh++] = next;
        size_t before = text.n;
        if (piece && plen && buf_add(&text, piece, plen) != 0) { rc = -1; break; }
        /* stop strings: search the region the new piece could complete */
        if (o->n_stops) {
            size_t from = before > maxstop ? before - maxstop : 0;
            size_t cut = (size_t)-1;
            for (int i = 0; i < o->n_stops; i++) {
                size_t sl = strlen(o->stops[i]);
                if (!sl) continue;
                for (size_t j = from; j + sl <= text.n; j++)
                    if (!memcmp(text.p + j, o->stops[i], sl)) {
                        if (j < cut) cut = j;
                        break;
                    }
            }
            if (cut != (size_t)-1) {
                text.n = cut;
                if (text.p) text.p[cut] = 0;
                res->stopped_by = GEN_STOP_STRING;
                break;
            }
        }
        /* emit what can no longer become part of a stop string */
        size_t safe = text.n > (maxstop ? maxstop - 1 : 0) ? text.n - (maxstop ? maxstop - 1 : 0) : 0;
        if (emit && safe > emitted) {
            if (emit(ctx, text.p + emitted, safe - emitted)) { emitted = safe; res->stopped_by = GEN_STOP_EMIT; break; }
            emitted = safe;
        }
        if (nh - n_prompt >= o->max_tokens) break;
        if (pos >= total) { res->stopped_by = GEN_STOP_CONTEXT; break; }
        if (model_forward(&s, &next, 1, 1, pos) != 0) { rc = -1; break; }
        logits = s.logits;
        pos++;
    }
    if (rc == 0 && emit && text.n > emitted) emit(ctx, text.p + emitted, text.n - emitted);
    res->seconds = now_s() - t0;
    if (rc == 0) {
        res->text = text.p ? text.p : calloc(1, 1);
        res->text_len = text.n;
        res->n_ids = nh - n_prompt;
        res->ids = malloc((size_t)(res->n_ids + 1) * sizeof(int));
        if (res->ids) memcpy(res->ids, hist + n_prompt, (size_t)res->n_ids * sizeof(int));
    } else {
        free(text.p);
    }
    free(hist);
    sampler_free(&sp);
    runstate_free(&s);
    return rc;
}
