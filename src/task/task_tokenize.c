/* task/task_tokenize.c - the tokenized form, following lm-evaluation-harness _encode_pair:
 *
 *     n_spaces = len(context) - len(context.rstrip())       (moved to the continuation)
 *     whole_enc   = encode(context + continuation)
 *     context_enc = encode(context)
 *     continuation_enc = whole_enc[len(context_enc):]
 *
 * with BOS in front of both encodings (our models are trained with it; SentencePiece never
 * merges across BOS, so the tail is the same as without). When the tokenizer merges across
 * the boundary, context_enc is not a prefix of whole_enc; the harness still takes the tail,
 * and so do we: the engine scores ctx + cont, exactly the ids the harness feeds its model.
 */
#include "task/task_internal.h"

#include "core/error.h"

#include <stdlib.h>
#include <string.h>

void task_mc_tokens_free(TaskMCTokens *t) {
    if (!t) return;
    free(t->ctx);
    for (int c = 0; c < t->n_choices && t->cont; c++) free(t->cont[c]);
    free(t->cont);
    free(t->n_cont);
    memset(t, 0, sizeof *t);
}

void task_gen_tokens_free(TaskGenTokens *t) {
    if (!t) return;
    free(t->prompt);
    free(t->target);
    memset(t, 0, sizeof *t);
}

void task_mc_tokens_free_all(TaskMCTokens *t, int n) {
    if (!t) return;
    for (int i = 0; i < n; i++) task_mc_tokens_free(&t[i]);
    free(t);
}

void task_gen_tokens_free_all(TaskGenTokens *t, int n) {
    if (!t) return;
    for (int i = 0; i < n; i++) task_gen_tokens_free(&t[i]);
    free(t);
}

/* ids of text[0..n) with BOS (when the tokenizer has one). */
static int encode(const Tokenizer *tok, const char *s, size_t n, int **ids, int *n_ids) {
    return tok_encode(tok, s, n, tok_bos_id(tok) >= 0, 0, ids, n_ids);
}

/* ids(context) and the tail of ids(context + cont) after them. ctx_len excludes the moved
 * trailing whitespace. */
static int encode_pair_tail(const Tokenizer *tok, const char *ctx, size_t ctx_full, int n_ctx,
                            const char *cont, int **tail, int *n_tail) {
    size_t cl = strlen(cont);
    char *whole = malloc(ctx_full + cl + 1);
    if (!whole) return err_set("out of memory");
    memcpy(whole, ctx, ctx_full);
    memcpy(whole + ctx_full, cont, cl + 1);
    int *w = NULL, nw = 0;
    int rc = encode(tok, whole, ctx_full + cl, &w, &nw);
    free(whole);
    if (rc != 0) return -1;
    int nt = nw > n_ctx ? nw - n_ctx : 0;
    int *t = malloc((size_t)(nt + 1) * sizeof *t);
    if (!t) {
        free(w);
        return err_set("out of memory");
    }
    if (nt) memcpy(t, w + n_ctx, (size_t)nt * sizeof *t);
    free(w);
    *tail = t;
    *n_tail = nt;
    return 0;
}

/* Drops `drop` tokens from the front of ids (after BOS when has_bos). */
static void drop_front(int *ids, int *n, int drop, int has_bos) {
    int keep0 = has_bos ? 1 : 0;
    memmove(ids + keep0, ids + keep0 + drop, (size_t)(*n - keep0 - drop) * sizeof *ids);
    *n -= drop;
}

int task_mc_tokenize_text(const Tokenizer *tok, const TaskMCText *txt, int max_len, TaskMCTokens *out) {
    memset(out, 0, sizeof *out);
    if (txt->n_choices < 1) return err_set("no choices to tokenize");
    int has_bos = tok_bos_id(tok) >= 0;
    size_t full = strlen(txt->context);
    size_t ctx_len = full - task_py_rstrip_len(txt->context, full);
    if (!has_bos && ctx_len == 0) return err_set("empty context and the tokenizer has no BOS");
    out->n_choices = txt->n_choices;
    out->label = txt->label;
    out->cont = calloc((size_t)txt->n_choices, sizeof *out->cont);
    out->n_cont = calloc((size_t)txt->n_choices, sizeof *out->n_cont);
    if (!out->cont || !out->n_cont) {
        task_mc_tokens_free(out);
        return err_set("out of memory");
    }
    if (encode(tok, txt->context, ctx_len, &out->ctx, &out->n_ctx) != 0) {
        task_mc_tokens_free(out);
        return -1;
    }
    int max_cont = 0;
    for (int c = 0; c < txt->n_choices; c++) {
        if (encode_pair_tail(tok, txt->context, full, out->n_ctx, txt->conts[c], &out->cont[c],
                             &out->n_cont[c]) != 0) {
            task_mc_tokens_free(out);
            return -1;
        }
        if (out->n_cont[c] == 0) {
            task_mc_tokens_free(out);
            return err_set("choice %d: the continuation \"%.40s\" gives no tokens after the context's",
                           c, txt->conts[c]);
        }
        if (out->n_cont[c] > max_cont) max_cont = out->n_cont[c];
    }
    if (max_len > 0 && out->n_ctx + max_cont > max_len) {
        int drop = out->n_ctx + max_cont - max_len;
        if (out->n_ctx - drop < 1) {
            int n_ctx = out->n_ctx;
            task_mc_tokens_free(out);
            return err_set("the longest continuation (%d tokens) leaves no room for the context "
                           "(%d tokens) within max_len %d",
                           max_cont, n_ctx, max_len);
        }
        drop_front(out->ctx, &out->n_ctx, drop, has_bos);
        out->n_dropped = drop;
    }
    return 0;
}

int task_gen_tokenize_text(const Tokenizer *tok, const TaskGenText *txt, int max_len, TaskGenTokens *out) {
    memset(out, 0, sizeof *out);
    int has_bos = tok_bos_id(tok) >= 0, eos = tok_eos_id(tok);
    size_t full = strlen(txt->prompt);
    size_t pl = full - task_py_rstrip_len(txt->prompt, full);
    if (!has_bos && pl == 0) return err_set("empty prompt and the tokenizer has no BOS");
    if (encode(tok, txt->prompt, pl, &out->prompt, &out->n_prompt) != 0) return -1;
    int *t = NULL, nt = 0;
    if (encode_pair_tail(tok, txt->prompt, full, out->n_prompt, txt->target, &t, &nt) != 0) {
        task_gen_tokens_free(out);
        return -1;
    }
    if (eos >= 0) t[nt++] = eos; /* encode_pair_tail leaves room for one more */
    out->target = t;
    out->n_target = nt;
    if (max_len > 0 && out->n_prompt + nt > max_len) {
        int drop = out->n_prompt + nt - max_len;
        if (out->n_prompt - drop < 1) {
            int np = out->n_prompt;
            task_gen_tokens_free(out);
            return err_set("the target (%d tokens with EOS) leaves no room for the prompt (%d "
                           "tokens) within max_len %d",
                           nt, np, max_len);
        }
        drop_front(out->prompt, &out->n_prompt, drop, has_bos);
        out->n_dropped = drop;
    }
    return 0;
}

/* One instance of either kind into out (a TaskMCTokens or a TaskGenTokens). */
static int mc_one(const TaskSet *ts, int i, const TaskPrompt *p, const Tokenizer *tok, int max_len, void *out) {
    TaskMCText txt;
    if (task_mc_format(ts, i, p, &txt) != 0) return -1;
    int rc = task_mc_tokenize_text(tok, &txt, max_len, out);
    task_mc_text_free(&txt);
    if (rc != 0) err_prefix("%s:%d: instance '%s'", ts->path, ts->mc[i].line, ts->mc[i].id);
    return rc;
}

static int gen_one(const TaskSet *ts, int i, const TaskPrompt *p, const Tokenizer *tok, int max_len, void *out) {
    TaskGenText txt;
    if (task_gen_format(ts, i, p, &txt) != 0) return -1;
    int rc = task_gen_tokenize_text(tok, &txt, max_len, out);
    task_gen_text_free(&txt);
    if (rc != 0) err_prefix("%s:%d: instance '%s'", ts->path, ts->gen[i].line, ts->gen[i].id);
    return rc;
}

static void mc_free_one(void *t) { task_mc_tokens_free(t); }
static void gen_free_one(void *t) { task_gen_tokens_free(t); }

/* Every instance of the set through one(), in parallel, into a calloc'd array of elem-byte
 * results. Messages are thread-local: after a parallel failure the first failing instance is
 * redone on the calling thread to produce its message there. */
static void *tokenize_all(const TaskSet *ts, const TaskPrompt *p, const Tokenizer *tok, int max_len, size_t elem,
                          int (*one)(const TaskSet *, int, const TaskPrompt *, const Tokenizer *, int, void *),
                          void (*free_one)(void *)) {
    if (task_prompt_check(p, ts) != 0) return NULL;
    char *a = calloc((size_t)(ts->n ? ts->n : 1), elem);
    if (!a) {
        err_set("out of memory");
        return NULL;
    }
    int bad = ts->n;
#pragma omp parallel for schedule(dynamic, 16) reduction(min : bad)
    for (int i = 0; i < ts->n; i++)
        if (one(ts, i, p, tok, max_len, a + (size_t)i * elem) != 0 && i < bad) bad = i;
    if (bad < ts->n) {
        union { TaskMCTokens mc; TaskGenTokens gen; } tmp;
        memset(&tmp, 0, sizeof tmp);
        if (one(ts, bad, p, tok, max_len, &tmp) == 0) {
            free_one(&tmp);
            err_set("%s: instance %d failed to tokenize in a worker thread", ts->path, bad);
        }
        for (int i = 0; i < ts->n; i++) free_one(a + (size_t)i * elem);
        free(a);
        return NULL;
    }
    return a;
}

int task_mc_tokenize(const TaskSet *ts, const TaskPrompt *p, const Tokenizer *tok, int max_len,
                     TaskMCTokens **out) {
    *out = NULL;
    if (ts->kind != TASK_MC) return err_set("%s: not a multiple-choice task", ts->path);
    *out = tokenize_all(ts, p, tok, max_len, sizeof **out, mc_one, mc_free_one);
    return *out ? 0 : -1;
}

int task_gen_tokenize(const TaskSet *ts, const TaskPrompt *p, const Tokenizer *tok, int max_len,
                      TaskGenTokens **out) {
    *out = NULL;
    if (ts->kind != TASK_GEN) return err_set("%s: not a generation task", ts->path);
    *out = tokenize_all(ts, p, tok, max_len, sizeof **out, gen_one, gen_free_one);
    return *out ? 0 : -1;
}

static int train_seq(const int *a, int na, const int *b, int nb, int **ids, uint8_t **mask, int *n) {
    *ids = malloc((size_t)(na + nb) * sizeof **ids);
    *mask = malloc((size_t)(na + nb));
    if (!*ids || !*mask) {
        free(*ids);
        free(*mask);
        *ids = NULL;
        *mask = NULL;
        return err_set("out of memory");
    }
    memcpy(*ids, a, (size_t)na * sizeof *a);
    memcpy(*ids + na, b, (size_t)nb * sizeof *b);
    memset(*mask, 0, (size_t)na);
    memset(*mask + na, 1, (size_t)nb);
    *n = na + nb;
    return 0;
}

int task_mc_train_seq(const TaskMCTokens *t, int choice, int **ids, uint8_t **mask, int *n) {
    if (choice < 0 || choice >= t->n_choices)
        return err_set("choice %d out of range (the instance has %d; label -1 means unknown)", choice,
                       t->n_choices);
    return train_seq(t->ctx, t->n_ctx, t->cont[choice], t->n_cont[choice], ids, mask, n);
}

int task_gen_train_seq(const TaskGenTokens *t, int **ids, uint8_t **mask, int *n) {
    return train_seq(t->prompt, t->n_prompt, t->target, t->n_target, ids, mask, n);
}
