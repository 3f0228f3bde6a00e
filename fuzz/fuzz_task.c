/* fuzz/fuzz_task.c - libFuzzer harness for the task module: the loader on arbitrary
 * bytes (JSONL and JSON-array layouts, every format forced or detected, skip_bad on and
 * off), then the default prompt, formatting and tokenization of what loaded, and the
 * template engine on a template taken from the input. Input: one mode byte (bit 0:
 * skip_bad; bits 1-6: the format, modulo TASK_FMT_COUNT, 0 = detect; bit 7: at most 3
 * choices) then the file's bytes. Build and run: fuzz/run_files.sh SECONDS task.
 *
 * The Llama 2 tokenizer is read from $MUSCLE_SHARED (default ../shared); without it the
 * tokenization step is skipped. Invariants checked: success means n > 0 and every instance
 * well formed; failure leaves the set empty with a message.
 */
#include "core/error.h"
#include "task/task.h"
#include "tokenizer/tokenizer.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static Tokenizer *g_tok;

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc;
    (void)argv;
    const char *root = getenv("MUSCLE_SHARED");
    char path[4096];
    snprintf(path, sizeof path, "%s/models/llama2-tokenizer/llama2_tokenizer.model", root ? root : "../shared");
    g_tok = tok_load(path);
    return 0;
}

#define CHECK(c)                                                                                   \
    do {                                                                                           \
        if (!(c)) {                                                                                \
            fprintf(stderr, "invariant failed: %s (%s:%d)\n", #c, __FILE__, __LINE__);           \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

static void exercise(const TaskSet *ts) {
    CHECK(ts->n > 0);
    TaskPrompt p;
    if (task_prompt_default(&p, ts) != 0) return;
    CHECK(task_prompt_check(&p, ts) == 0);
    int lim = ts->n < 8 ? ts->n : 8;
    for (int i = 0; i < lim; i++) {
        if (ts->kind == TASK_MC) {
            const TaskMC *m = &ts->mc[i];
            CHECK(m->id && m->context && m->n_choices >= 2 && m->label >= -1 && m->label < m->n_choices);
            for (int c = 0; c < m->n_choices; c++) CHECK(m->choices[c]);
            TaskMCText t;
            if (task_mc_format(ts, i, &p, &t) != 0) continue;
            CHECK(t.n_choices == m->n_choices);
            if (g_tok) {
                TaskMCTokens k;
                if (task_mc_tokenize_text(g_tok, &t, 16, &k) == 0) {
                    int mx = 0;
                    for (int c = 0; c < k.n_choices; c++) mx = k.n_cont[c] > mx ? k.n_cont[c] : mx;
                    CHECK(k.n_ctx >= 1 && k.n_ctx + mx <= 16);
                    int *ids;
                    uint8_t *mask;
                    int n;
                    if (task_mc_train_seq(&k, 0, &ids, &mask, &n) == 0) {
                        CHECK(n == k.n_ctx + k.n_cont[0]);
                        free(ids);
                        free(mask);
                    }
                    task_mc_tokens_free(&k);
                }
            }
            task_mc_text_free(&t);
        } else {
            const TaskGen *g = &ts->gen[i];
            CHECK(g->id && g->prompt && g->target && g->answer);
            TaskGenText t;
            if (task_gen_format(ts, i, &p, &t) != 0) continue;
            if (g_tok) {
                TaskGenTokens k;
                if (task_gen_tokenize_text(g_tok, &t, 16, &k) == 0) {
                    CHECK(k.n_prompt >= 1 && k.n_prompt + k.n_target <= 16);
                    task_gen_tokens_free(&k);
                }
            }
            task_gen_text_free(&t);
        }
    }
    int *tr, *va, ntr, nva;
    if (task_split(ts->n, 0.2, 1, &tr, &ntr, &va, &nva) == 0) {
        TaskSet sub;
        if (task_set_subset(ts, va, nva, &sub) == 0) task_set_free(&sub);
        free(tr);
        free(va);
    }
    task_prompt_free(&p);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    uint8_t mode = data[0];
    data++;
    size--;
    TaskLoadOptions o;
    task_load_options_default(&o);
    o.skip_bad = mode & 1;
    o.format = (mode >> 1) % TASK_FMT_COUNT;
    o.max_choices = (mode & 0x80) ? 3 : 64;
    TaskSet ts;
    err_clear();
    if (task_set_parse(&ts, data, size, "fuzz", &o) == 0) {
        exercise(&ts);
        task_set_free(&ts);
    } else {
        CHECK(ts.n == 0 && ts.mc == NULL && ts.gen == NULL && err_msg()[0]);
    }
    /* the template engine on the input as a template */
    if (size < 512) {
        char *tmpl = malloc(size + 1);
        memcpy(tmpl, data, size);
        tmpl[size] = 0;
        const char *names[] = {"a", "goal", "choice"};
        const char *values[] = {"1", "{x}", ""};
        char *s = task_template_format(tmpl, names, values, 3, "t");
        CHECK((s != NULL) == (task_template_check(tmpl, names, 3, "t") == 0));
        free(s);
        free(tmpl);
    }
    return 0;
}
