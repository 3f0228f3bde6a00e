/* model/generate.c - prefill the prompt in chunks of GEN_PREFILL_TOKENS, then one token at a time. */
#include "generate.h"
#include "forward.h"
#include "sample.h"
#include "core/error.h"
#include "core/utf8.h"

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

int gen_check(const Model *m, int n_prompt, const GenOptions *o) {
    const ModelConfig *c = &m->cfg;
    if (n_prompt < 1) return err_set("generate: the prompt needs at least one token (BOS)");
    if (n_prompt > c->seq_len) return err_set("generate: prompt of %d tokens is longer than the context (%d)", n_prompt, c->seq_len);
    if (o->max_tokens < 0) return err_set("generate: max tokens %d: expected >= 0", o->max_tokens);
    return 0;
}

int gen_seq_init(GenSeq *q, const Model *m, const Tokenizer *t, const GenOptions *o, const int *prompt, int n_prompt) {
    memset(q, 0, sizeof *q);
    q->o = o;
    q->t = t;
    q->eos = m->cfg.eos_id;
    q->bos = m->cfg.bos_id;
    q->hist = malloc(((size_t)n_prompt + (size_t)o->max_tokens + 1) * sizeof *q->hist);
    if (!q->hist) return err_set("out of memory");
    memcpy(q->hist, prompt, (size_t)n_prompt * sizeof *q->hist);
    q->nh = q->n_prompt = n_prompt;
    for (int i = 0; i < o->n_stops; i++) {
        size_t l = strlen(o->stops[i]);
        if (l > q->maxstop) q->maxstop = l;
    }
    return 0;
}

void gen_seq_free(GenSeq *q) {
    free(q->hist);
    strbuf_free(&q->text);
    memset(q, 0, sizeof *q);
}

/* Emits text[from..to) as valid UTF-8 (invalid bytes as U+FFFD, utf8_sanitize). */
static int emit_clean(GenEmit emit, void *ctx, const char *text, size_t n) {
    char small[256], *buf = n * 3 <= sizeof small ? small : malloc(n * 3);
    if (!buf) return 0;
    size_t m = utf8_sanitize(text, n, buf);
    int stop = m ? emit(ctx, buf, m) : 0;
    if (buf != small) free(buf);
    return stop;
}

int gen_seq_push(GenSeq *q, int next, GenEmit emit, void *ctx) {
    const GenOptions *o = q->o;
    if (!o->ignore_eos && (next == q->eos || next == q->bos)) {
        q->stopped_by = GEN_STOP_EOS;
        return 1;
    }
    char bytes[8];
    size_t plen = 0;
    const char *piece = tok_decode_piece(q->t, q->hist[q->nh - 1], next, bytes, &plen);
    q->hist[q->nh++] = next;
    StrBuf *tb = &q->text;
    size_t before = tb->n;
    if (piece && plen && strbuf_put(tb, piece, plen) != 0) return err_set("out of memory");
    /* stop strings: search the region the new piece could complete */
    if (o->n_stops) {
        size_t from = before > q->maxstop ? before - q->maxstop : 0;
        size_t cut = (size_t)-1;
        for (int i = 0; i < o->n_stops; i++) {
            size_t sl = strlen(o->stops[i]);
            if (!sl) continue;
            for (size_t j = from; j + sl <= tb->n; j++)
                if (!memcmp(tb->p + j, o->stops[i], sl)) {
                    if (j < cut) cut = j;
                    break;
                }
        }
        if (cut != (size_t)-1) {
            tb->n = cut;
            if (tb->p) tb->p[cut] = 0;
            q->stopped_by = GEN_STOP_STRING;
            return 1;
        }
    }
    /* emit what can no longer become part of a stop string */
    size_t hold = q->maxstop ? q->maxstop - 1 : 0;
    size_t safe = tb->n > hold ? tb->n - hold : 0;
    if (safe > q->emitted) safe -= utf8_incomplete_tail(tb->p + q->emitted, safe - q->emitted); /* a character still coming */
    if (emit && safe > q->emitted) {
        int stop = emit_clean(emit, ctx, tb->p + q->emitted, safe - q->emitted);
        q->emitted = safe;
        if (stop) {
            q->stopped_by = GEN_STOP_EMIT;
            return 1;
        }
    }
    if (q->nh - q->n_prompt >= o->max_tokens) {
        q->stopped_by = GEN_STOP_MAX_TOKENS;
        return 1;
    }
    return 0;
}

int gen_seq_finish(GenSeq *q, GenEmit emit, void *ctx, double seconds, GenResult *res) {
    memset(res, 0, sizeof *res);
    StrBuf *tb = &q->text;
    if (emit && tb->n > q->emitted) emit_clean(emit, ctx, tb->p + q->emitted, tb->n - q->emitted);
    /* the text as Hugging Face decodes it: a sequence cut by max_tokens or invalid bytes
     * from byte-fallback tokens become U+FFFD (res->ids keeps the exact tokens) */
    size_t n = tb->n;
    char *text = strbuf_take(tb);
    if (text && utf8_valid_prefix(text, n) != n) {
        char *clean = malloc(n * 3 + 1);
        if (clean) {
            n = utf8_sanitize(text, n, clean);
            clean[n] = 0;
        }
        free(text);
        text = clean;
    }
    res->seconds = seconds;
    res->stopped_by = q->stopped_by;
    res->n_ids = q->nh - q->n_prompt;
    res->ids = malloc((size_t)(res->n_ids + 1) * sizeof(int));
    res->text = text;
    if (!res->ids || !res->text) {
        gen_result_free(res);
        gen_seq_free(q);
        return err_set("out of memory");
    }
    memcpy(res->ids, q->hist + q->n_prompt, (size_t)res->n_ids * sizeof(int));
    res->text_len = n;
    gen_seq_free(q);
    return 0;
}

int model_generate(const Model *m, const Tokenizer *t, const int *prompt, int n_prompt,
                   const GenOptions *o, GenEmit emit, void *ctx, GenResult *res) {
    memset(res, 0, sizeof *res);
    const ModelConfig *c = &m->cfg;
    if (gen_check(m, n_prompt, o) != 0) return -1;
    int total = n_prompt + o->max_tokens;
    if (total > c->seq_len) total = c->seq_len;
    RunState s;
    int chunk = n_prompt < GEN_PREFILL_TOKENS ? n_prompt : GEN_PREFILL_TOKENS;
    if (runstate_init(&s, m, 1, total, chunk, RS_KEEP_NONE | (o->kv_bf16 ? RS_KV_BF16 : 0)) != 0) return -1;
    s.attn_rows = 1; /* the bits of model_generate_batch's rows */
    if (runstate_panels_build(&s) != 0 || (o->lora && runstate_set_lora(&s, o->lora) != 0)) {
        runstate_free(&s);
        return -1;
    }
    Sampler sp;
    if (sampler_init(&sp, c->vocab_size, o->temperature, o->top_p, o->no_repeat_ngram, o->seed) != 0) {
        runstate_free(&s);
        return -1;
    }
    GenSeq q;
    if (gen_seq_init(&q, m, t, o, prompt, n_prompt) != 0) {
        sampler_free(&sp);
        runstate_free(&s);
        return -1;
    }
    int rc = 0;
    double t0 = now_s();
    int last = 1; /* tokens in the last prefill call */
    for (int p = 0; rc == 0 && p < n_prompt; p += chunk) {
        last = n_prompt - p < chunk ? n_prompt - p : chunk;
        int lrow = last - 1; /* the logits of the prompt's last token only */
        s.logit_rows = &lrow;
        s.n_logit_rows = p + last == n_prompt;
        if (model_forward(&s, prompt + p, 1, last, p) != 0) rc = -1;
        s.logit_rows = NULL;
    }
    float *logits = s.logits;
    int pos = n_prompt;
    while (rc == 0 && o->max_tokens > 0) {
        int next = sampler_pick(&sp, logits, q.hist, q.nh);
        int end = gen_seq_push(&q, next, emit, ctx);
        if (end) {
            if (end < 0) rc = -1;
            break;
        }
        if (pos >= total) { q.stopped_by = GEN_STOP_CONTEXT; break; }
        if (model_forward(&s, &next, 1, 1, pos) != 0) { rc = -1; break; }
        logits = s.logits;
        pos++;
    }
    if (rc == 0) rc = gen_seq_finish(&q, emit, ctx, now_s() - t0, res);
    else gen_seq_free(&q);
    sampler_free(&sp);
    runstate_free(&s);
    return rc;
}
