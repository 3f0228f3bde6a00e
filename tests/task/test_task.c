/* tests/task/test_task.c - the task module against an independent Python reference.
 *
 * tests/fixtures/task/expected.json is written by tests/fixtures/task/make_fixtures.py
 * (/usr/bin/python3: json + python3-sentencepiece): record counts of every real file in
 * ../shared/data and of the handwritten samples beside it, a few records field by field, the
 * default prompts' strings and the lm-evaluation-harness _encode_pair ids on the Llama 2
 * tokenizer, plus boundary pairs (merges across the context/continuation boundary, moved
 * trailing whitespace, truncation).
 */
#include "testutil.h"
#include "core/error.h"
#include "core/file.h"
#include "task/task.h"
#include "tokenizer/tokenizer.h"

#include <cJSON.h>

#include "core/rng.h"

#define EXPECTED "tests/fixtures/task/expected.json"
#define FIX "tests/fixtures/task/"
#define L2_MODEL "models/llama2-tokenizer/llama2_tokenizer.model"

static cJSON *g_expected;
static Tokenizer *g_tok;

static int setup(void **state) {
    (void)state;
    char *text = file_read_all(EXPECTED, NULL, 0);
    if (!text) {
        fprintf(stderr, "cannot read %s: %s\n", EXPECTED, err_msg());
        return -1;
    }
    g_expected = cJSON_Parse(text);
    free(text);
    if (!g_expected) return -1;
    const char *root = getenv("MUSCLE_SHARED");
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", root ? root : "../shared", L2_MODEL);
    g_tok = tok_load(path);
    if (!g_tok) fprintf(stderr, "cannot load %s: %s\n", path, err_msg());
    return 0;
}

static int teardown(void **state) {
    (void)state;
    cJSON_Delete(g_expected);
    tok_free(g_tok);
    return 0;
}

static const Tokenizer *tok(void) {
    if (!g_tok) fail_msg("the Llama 2 tokenizer is missing (../shared/%s)", L2_MODEL);
    return g_tok;
}

/* ---- helpers -------------------------------------------------------------------------------- */

static const char *js(const cJSON *o, const char *k) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    if (!cJSON_IsString(v)) fail_msg("expected.json: '%s' is not a string", k);
    return v->valuestring;
}

static int ji(const cJSON *o, const char *k) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    if (!cJSON_IsNumber(v)) fail_msg("expected.json: '%s' is not a number", k);
    return v->valueint;
}

static void check_str(const char *what, const char *got, const char *want) {
    if (!got || strcmp(got, want) != 0) {
        print_error("%s:\n  got  [%s]\n  want [%s]\n", what, got ? got : "(null)", want);
        fail();
    }
}

static void check_ids(const char *what, const int *got, int n, const cJSON *want) {
    int m = cJSON_GetArraySize(want);
    int same = n == m;
    for (int i = 0; same && i < n; i++) same = got[i] == cJSON_GetArrayItem(want, i)->valueint;
    if (!same) {
        print_error("%s: got %d ids:", what, n);
        for (int i = 0; i < n; i++) print_error(" %d", got[i]);
        print_error("\n  want %d:", m);
        for (int i = 0; i < m; i++) print_error(" %d", cJSON_GetArrayItem(want, i)->valueint);
        print_error("\n");
        fail();
    }
}

static int parse(TaskSet *ts, const char *text, const char *name, const TaskLoadOptions *o) {
    return task_set_parse(ts, text, strlen(text), name, o);
}

/* Parses text and expects failure with a message containing `want`. */
static void expect_err(const char *text, size_t len, const char *name, const TaskLoadOptions *o,
                       const char *want) {
    TaskSet ts;
    err_clear();
    int rc = task_set_parse(&ts, text, len, name, o);
    if (rc == 0) {
        print_error("parsing %s succeeded (n=%d), expected an error with \"%s\"\n", name, ts.n, want);
        task_set_free(&ts);
        fail();
    }
    if (!strstr(err_msg(), want)) {
        print_error("error \"%s\" lacks \"%s\"\n", err_msg(), want);
        fail();
    }
    assert_int_equal(ts.n, 0);
    assert_null(ts.mc);
    task_set_free(&ts);
}
#define EXPECT_ERR(text, o, want) expect_err(text, sizeof(text) - 1, "t.jsonl", o, want)

/* ---- every real file and sample, against the Python reference ------------------------------ */

static void check_record_fields(const TaskSet *ts, const char *const *fields, const cJSON *want) {
    int nk = cJSON_GetArraySize(want);
    assert_int_equal(ts->n_fields, nk);
    for (const cJSON *f = want->child; f; f = f->next) {
        int k = 0;
        while (k < ts->n_fields && strcmp(ts->field_names[k], f->string) != 0) k++;
        if (k == ts->n_fields) fail_msg("field '%s' missing from the set", f->string);
        check_str(f->string, fields[k], f->valuestring);
    }
}

static void check_file(const cJSON *fe) {
    const char *rel = js(fe, "path");
    int shared = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(fe, "shared"));
    char path[4096];
    snprintf(path, sizeof path, "%s", shared ? shared_path(rel) : rel);
    TaskSet ts;
    if (task_set_load(&ts, path, NULL) != 0) fail_msg("%s: %s", path, err_msg());
    int mc = !strcmp(js(fe, "kind"), "mc");
    check_str("format", task_format_name(ts.format), js(fe, "format"));
    assert_int_equal(ts.kind, mc ? TASK_MC : TASK_GEN);
    assert_int_equal(ts.n, ji(fe, "count"));
    assert_int_equal(ts.n_unlabeled, ji(fe, "n_unlabeled"));
    assert_int_equal(ts.n_skipped, 0);
    TaskPrompt p;
    assert_int_equal(task_prompt_default(&p, &ts), 0);
    assert_int_equal(task_prompt_check(&p, &ts), 0);
    const cJSON *recs = cJSON_GetObjectItemCaseSensitive(fe, "records");
    for (const cJSON *r = recs->child; r; r = r->next) {
        int i = ji(r, "index");
        char what[512];
        snprintf(what, sizeof what, "%s record %d", rel, i);
        assert_in_range(i, 0, ts.n - 1);
        const cJSON *text = cJSON_GetObjectItemCaseSensitive(r, "text");
        const cJSON *toks = cJSON_GetObjectItemCaseSensitive(r, "tokens");
        if (mc) {
            const TaskMC *m = &ts.mc[i];
            check_str(what, m->id, js(r, "id"));
            assert_int_equal(m->line, ji(r, "line"));
            check_str(what, m->context, js(r, "context"));
            const cJSON *ch = cJSON_GetObjectItemCaseSensitive(r, "choices");
            assert_int_equal(m->n_choices, cJSON_GetArraySize(ch));
            for (int c = 0; c < m->n_choices; c++) check_str(what, m->choices[c], cJSON_GetArrayItem(ch, c)->valuestring);
            assert_int_equal(m->label, ji(r, "label"));
            check_record_fields(&ts, m->fields, cJSON_GetObjectItemCaseSensitive(r, "fields"));
            /* default prompt */
            TaskMCText t;
            if (task_mc_format(&ts, i, &p, &t) != 0) fail_msg("%s: %s", what, err_msg());
            check_str(what, t.context, js(text, "context"));
            const cJSON *conts = cJSON_GetObjectItemCaseSensitive(text, "conts");
            assert_int_equal(t.n_choices, cJSON_GetArraySize(conts));
            for (int c = 0; c < t.n_choices; c++) check_str(what, t.conts[c], cJSON_GetArrayItem(conts, c)->valuestring);
            assert_int_equal(t.label, m->label);
            /* harness tokenization */
            TaskMCTokens k;
            if (task_mc_tokenize_text(tok(), &t, 0, &k) != 0) fail_msg("%s: %s", what, err_msg());
            check_ids(what, k.ctx, k.n_ctx, cJSON_GetObjectItemCaseSensitive(toks, "ctx"));
            const cJSON *cont = cJSON_GetObjectItemCaseSensitive(toks, "cont");
            for (int c = 0; c < k.n_choices; c++) check_ids(what, k.cont[c], k.n_cont[c], cJSON_GetArrayItem(cont, c));
            assert_int_equal(k.n_dropped, 0);
            task_mc_tokens_free(&k);
            task_mc_text_free(&t);
            /* LLM-Adapters: the options' texts parsed from the instruction */
            const cJSON *texts = cJSON_GetObjectItemCaseSensitive(r, "choice_texts");
            if (cJSON_IsNull(texts) || !texts) {
                assert_null(m->choice_texts);
            } else {
                assert_non_null(m->choice_texts);
                for (int c = 0; c < m->n_choices; c++)
                    check_str(what, m->choice_texts[c], cJSON_GetArrayItem(texts, c)->valuestring);
            }
            /* ... and the harness's PIQA/ARC prompt on them */
            const cJSON *alt = cJSON_GetObjectItemCaseSensitive(r, "alt_text");
            if (alt) {
                TaskPrompt q = {0};
                assert_int_equal(task_prompt_set(&q, "Question: {question}\nAnswer:", " {choice_text}"), 0);
                assert_int_equal(task_prompt_check(&q, &ts), 0);
                if (task_mc_format(&ts, i, &q, &t) != 0) fail_msg("%s: %s", what, err_msg());
                check_str(what, t.context, js(alt, "context"));
                const cJSON *ac = cJSON_GetObjectItemCaseSensitive(alt, "conts");
                for (int c = 0; c < t.n_choices; c++) check_str(what, t.conts[c], cJSON_GetArrayItem(ac, c)->valuestring);
                const cJSON *atk = cJSON_GetObjectItemCaseSensitive(r, "alt_tokens");
                if (task_mc_tokenize_text(tok(), &t, 0, &k) != 0) fail_msg("%s: %s", what, err_msg());
                check_ids(what, k.ctx, k.n_ctx, cJSON_GetObjectItemCaseSensitive(atk, "ctx"));
                for (int c = 0; c < k.n_choices; c++)
                    check_ids(what, k.cont[c], k.n_cont[c], cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(atk, "cont"), c));
                task_mc_tokens_free(&k);
                task_mc_text_free(&t);
                task_prompt_free(&q);
            }
        } else {
            const TaskGen *g = &ts.gen[i];
            check_str(what, g->id, js(r, "id"));
            assert_int_equal(g->line, ji(r, "line"));
            check_str(what, g->prompt, js(r, "prompt"));
            check_str(what, g->target, js(r, "target"));
            check_str(what, g->answer, js(r, "answer"));
            check_record_fields(&ts, g->fields, cJSON_GetObjectItemCaseSensitive(r, "fields"));
            TaskGenText t;
            if (task_gen_format(&ts, i, &p, &t) != 0) fail_msg("%s: %s", what, err_msg());
            check_str(what, t.prompt, js(text, "prompt"));
            check_str(what, t.target, js(text, "target"));
            TaskGenTokens k;
            if (task_gen_tokenize_text(tok(), &t, 0, &k) != 0) fail_msg("%s: %s", what, err_msg());
            check_ids(what, k.prompt, k.n_prompt, cJSON_GetObjectItemCaseSensitive(toks, "prompt"));
            check_ids(what, k.target, k.n_target, cJSON_GetObjectItemCaseSensitive(toks, "target"));
            task_gen_tokens_free(&k);
            task_gen_text_free(&t);
        }
    }
    task_prompt_free(&p);
    task_set_free(&ts);
}

static void test_files_against_reference(void **state) {
    (void)state;
    const cJSON *files = cJSON_GetObjectItemCaseSensitive(g_expected, "files");
    assert_true(cJSON_GetArraySize(files) >= 28);
    for (const cJSON *f = files->child; f; f = f->next) check_file(f);
}

/* The counts of the real files, written out (also in expected.json): a reader of this file
 * sees what ../shared holds. */
static void test_real_counts(void **state) {
    (void)state;
    struct {
        const char *rel, *format;
        int n;
    } f[] = {{"data/commonsense/piqa/test.json", "llm-adapters", 1838},
             {"data/commonsense/ARC-Easy/test.json", "llm-adapters", 2376},
             {"data/commonsense/ARC-Easy/train.json", "llm-adapters", 2251},
             {"data/commonsense/ARC-Challenge/test.json", "llm-adapters", 1172},
             {"data/commonsense/ARC-Challenge/train.json", "llm-adapters", 1119},
             {"data/commonsense/openbookqa/test.json", "llm-adapters", 500},
             {"data/commonsense/openbookqa/train.json", "llm-adapters", 4957},
             {"data/commonsense/social_i_qa/test.json", "llm-adapters", 1954},
             {"data/commonsense/winogrande/test.json", "llm-adapters", 1267},
             {"data/gsm8k/test.jsonl", "gsm8k", 1319},
             {"data/gsm8k/train.jsonl", "gsm8k", 7473},
             {"data/debian/debian-section.train.jsonl", "native-mc", 10000},
             {"data/debian/debian-section.validation.jsonl", "native-mc", 1000},
             {"data/debian/debian-section.test.jsonl", "native-mc", 2000},
             {"data/debian/debian-sum.train.jsonl", "native-gen", 10000},
             {"data/debian/debian-sum.validation.jsonl", "native-gen", 1000},
             {"data/debian/debian-sum.test.jsonl", "native-gen", 2000}};
    for (size_t i = 0; i < sizeof f / sizeof *f; i++) {
        TaskSet ts;
        if (task_set_load(&ts, shared_path(f[i].rel), NULL) != 0) fail_msg("%s", err_msg());
        assert_int_equal(ts.n, f[i].n);
        check_str(f[i].rel, task_format_name(ts.format), f[i].format);
        task_set_free(&ts);
    }
}

/* ---- _encode_pair boundary cases ------------------------------------------------------------ */

static void test_encode_pairs(void **state) {
    (void)state;
    const cJSON *pairs = cJSON_GetObjectItemCaseSensitive(g_expected, "pairs");
    assert_true(cJSON_GetArraySize(pairs) >= 10);
    for (const cJSON *e = pairs->child; e; e = e->next) {
        const cJSON *conts = cJSON_GetObjectItemCaseSensitive(e, "conts");
        TaskMCText t = {0};
        t.context = (char *)js(e, "context");
        t.n_choices = cJSON_GetArraySize(conts);
        t.conts = calloc((size_t)t.n_choices, sizeof *t.conts);
        for (int c = 0; c < t.n_choices; c++) t.conts[c] = cJSON_GetArrayItem(conts, c)->valuestring;
        t.label = 0;
        TaskMCTokens k;
        char what[256];
        snprintf(what, sizeof what, "pair \"%s\"", t.context);
        if (task_mc_tokenize_text(tok(), &t, ji(e, "max_len"), &k) != 0) fail_msg("%s: %s", what, err_msg());
        check_ids(what, k.ctx, k.n_ctx, cJSON_GetObjectItemCaseSensitive(e, "ctx"));
        const cJSON *cont = cJSON_GetObjectItemCaseSensitive(e, "cont");
        for (int c = 0; c < k.n_choices; c++) check_ids(what, k.cont[c], k.n_cont[c], cJSON_GetArrayItem(cont, c));
        assert_int_equal(k.n_dropped, ji(e, "n_dropped"));
        assert_int_equal(k.ctx[0], tok_bos_id(tok()));
        task_mc_tokens_free(&k);
        free(t.conts);
    }
    const cJSON *gp = cJSON_GetObjectItemCaseSensitive(g_expected, "gen_pairs");
    for (const cJSON *e = gp->child; e; e = e->next) {
        TaskGenText t = {(char *)js(e, "prompt"), (char *)js(e, "target")};
        TaskGenTokens k;
        if (task_gen_tokenize_text(tok(), &t, ji(e, "max_len"), &k) != 0) fail_msg("%s", err_msg());
        check_ids(t.prompt, k.prompt, k.n_prompt, cJSON_GetObjectItemCaseSensitive(e, "prompt_ids"));
        check_ids(t.prompt, k.target, k.n_target, cJSON_GetObjectItemCaseSensitive(e, "target_ids"));
        assert_int_equal(k.n_dropped, ji(e, "n_dropped"));
        assert_int_equal(k.target[k.n_target - 1], tok_eos_id(tok()));
        task_gen_tokens_free(&k);
    }
    /* "don" + "e" is one piece "▁done": the harness would score an empty continuation (log-
     * likelihood 0, a sure win); we refuse it, naming the choice */
    char *conts[] = {"'t", "e"};
    TaskMCText t = {"don", conts, 2, 0};
    TaskMCTokens k;
    assert_int_equal(task_mc_tokenize_text(tok(), &t, 0, &k), -1);
    assert_non_null(strstr(err_msg(), "choice 1: the continuation \"e\" gives no tokens after the context's"));
}

/* ---- whole-set tokenization, truncation, training sequences -------------------------------- */

static void test_set_tokenize(void **state) {
    (void)state;
    TaskSet ts;
    assert_int_equal(task_set_load(&ts, FIX "hellaswag.jsonl", NULL), 0);
    TaskPrompt p;
    assert_int_equal(task_prompt_default(&p, &ts), 0);
    TaskMCTokens *all;
    assert_int_equal(task_mc_tokenize(&ts, &p, tok(), 0, &all), 0);
    for (int i = 0; i < ts.n; i++) { /* same as one at a time */
        TaskMCText t;
        TaskMCTokens k;
        assert_int_equal(task_mc_format(&ts, i, &p, &t), 0);
        assert_int_equal(task_mc_tokenize_text(tok(), &t, 0, &k), 0);
        assert_int_equal(k.n_ctx, all[i].n_ctx);
        assert_memory_equal(k.ctx, all[i].ctx, (size_t)k.n_ctx * sizeof(int));
        for (int c = 0; c < k.n_choices; c++) {
            assert_int_equal(k.n_cont[c], all[i].n_cont[c]);
            assert_memory_equal(k.cont[c], all[i].cont[c], (size_t)k.n_cont[c] * sizeof(int));
        }
        assert_int_equal(all[i].label, ts.mc[i].label);
        task_mc_tokens_free(&k);
        task_mc_text_free(&t);
    }
    /* the answer-token mask: context 0, the label's continuation 1 */
    int *ids, n;
    uint8_t *mask;
    const TaskMCTokens *k0 = &all[0];
    assert_int_equal(task_mc_train_seq(k0, k0->label, &ids, &mask, &n), 0);
    assert_int_equal(n, k0->n_ctx + k0->n_cont[k0->label]);
    for (int i = 0; i < n; i++) {
        assert_int_equal(mask[i], i >= k0->n_ctx);
        assert_int_equal(ids[i], i < k0->n_ctx ? k0->ctx[i] : k0->cont[k0->label][i - k0->n_ctx]);
    }
    free(ids);
    free(mask);
    assert_int_equal(task_mc_train_seq(&all[2], all[2].label, &ids, &mask, &n), -1); /* unknown label */
    assert_non_null(strstr(err_msg(), "choice -1 out of range"));

    /* truncation: every choice fits in max_len, BOS kept, the context's oldest tokens dropped */
    TaskMCTokens *cut;
    int max_len = 24;
    assert_int_equal(task_mc_tokenize(&ts, &p, tok(), max_len, &cut), 0);
    for (int i = 0; i < ts.n; i++) {
        int mx = 0;
        for (int c = 0; c < cut[i].n_choices; c++) mx = cut[i].n_cont[c] > mx ? cut[i].n_cont[c] : mx;
        assert_true(cut[i].n_ctx + mx <= max_len);
        assert_int_equal(cut[i].n_dropped, all[i].n_ctx - cut[i].n_ctx);
        assert_int_equal(cut[i].ctx[0], tok_bos_id(tok()));
        int d = cut[i].n_dropped;
        assert_memory_equal(cut[i].ctx + 1, all[i].ctx + 1 + d, (size_t)(cut[i].n_ctx - 1) * sizeof(int));
    }
    task_mc_tokens_free_all(cut, ts.n);
    /* too small: the error names file, line and instance */
    err_clear();
    assert_int_equal(task_mc_tokenize(&ts, &p, tok(), 6, &cut), -1);
    assert_null(cut);
    assert_non_null(strstr(err_msg(), "hellaswag.jsonl:1: instance '4'"));
    assert_non_null(strstr(err_msg(), "leaves no room for the context"));
    task_mc_tokens_free_all(all, ts.n);
    task_prompt_free(&p);
    task_set_free(&ts);

    /* generation: target + EOS, mask on the target */
    assert_int_equal(task_set_load(&ts, FIX "samsum.json", NULL), 0);
    assert_int_equal(task_prompt_default(&p, &ts), 0);
    TaskGenTokens *g;
    assert_int_equal(task_gen_tokenize(&ts, &p, tok(), 0, &g), 0);
    assert_int_equal(task_gen_train_seq(&g[1], &ids, &mask, &n), 0);
    assert_int_equal(n, g[1].n_prompt + g[1].n_target);
    assert_int_equal(ids[n - 1], tok_eos_id(tok()));
    assert_int_equal(ids[0], tok_bos_id(tok()));
    for (int i = 0; i < n; i++) assert_int_equal(mask[i], i >= g[1].n_prompt);
    free(ids);
    free(mask);
    TaskGenTokens *gc;
    assert_int_equal(task_gen_tokenize(&ts, &p, tok(), 20, &gc), 0);
    for (int i = 0; i < ts.n; i++) {
        assert_true(gc[i].n_prompt + gc[i].n_target <= 20);
        assert_int_equal(gc[i].n_target, g[i].n_target);
        assert_int_equal(gc[i].n_dropped, g[i].n_prompt - gc[i].n_prompt);
    }
    task_gen_tokens_free_all(gc, ts.n);
    task_gen_tokens_free_all(g, ts.n);
    /* kinds must match */
    assert_int_equal(task_mc_tokenize(&ts, &p, tok(), 0, &all), -1);
    assert_non_null(strstr(err_msg(), "not a multiple-choice task"));
    TaskMCText t;
    assert_int_equal(task_mc_format(&ts, 0, &p, &t), -1);
    task_prompt_free(&p);
    task_set_free(&ts);
}

/* A whole real file through the parallel path (debian-section test, 2000 instances). */
static void test_real_set_tokenize(void **state) {
    (void)state;
    TaskSet ts;
    assert_int_equal(task_set_load(&ts, shared_path("data/debian/debian-section.test.jsonl"), NULL), 0);
    TaskPrompt p;
    assert_int_equal(task_prompt_default(&p, &ts), 0);
    TaskMCTokens *all;
    assert_int_equal(task_mc_tokenize(&ts, &p, tok(), 512, &all), 0);
    const cJSON *files = cJSON_GetObjectItemCaseSensitive(g_expected, "files");
    for (const cJSON *f = files->child; f; f = f->next) {
        if (strcmp(js(f, "path"), "data/debian/debian-section.test.jsonl") != 0) continue;
        for (const cJSON *r = cJSON_GetObjectItemCaseSensitive(f, "records")->child; r; r = r->next) {
            int i = ji(r, "index");
            const cJSON *toks = cJSON_GetObjectItemCaseSensitive(r, "tokens");
            check_ids("debian ctx", all[i].ctx, all[i].n_ctx, cJSON_GetObjectItemCaseSensitive(toks, "ctx"));
            for (int c = 0; c < all[i].n_choices; c++)
                check_ids("debian cont", all[i].cont[c], all[i].n_cont[c],
                          cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(toks, "cont"), c));
        }
    }
    task_mc_tokens_free_all(all, ts.n);
    task_prompt_free(&p);
    task_set_free(&ts);
}

/* ---- loading: layouts and errors -------------------------------------------------------------- */

#define NATIVE(id, label) "{\"id\": \"" id "\", \"context\": \"c\", \"choices\": [\"x\", \"y\"], \"label\": " label "}"
#define PIQA(label) "{\"goal\": \"g\", \"sol1\": \"a\", \"sol2\": \"b\", \"label\": " label "}"

static void test_layouts(void **state) {
    (void)state;
    TaskSet ts;
    /* CRLF lines, blank lines, a byte order mark */
    const char *crlf = "\xEF\xBB\xBF" NATIVE("a", "0") "\r\n\r\n  \n" NATIVE("b", "1") "\r\n";
    assert_int_equal(parse(&ts, crlf, "crlf.jsonl", NULL), 0);
    assert_int_equal(ts.n, 2);
    assert_int_equal(ts.mc[1].line, 4);
    check_str("id", ts.mc[1].id, "b");
    task_set_free(&ts);
    /* a JSON array, records spread over lines: each remembers its first line */
    const char *arr = "\n[\n  " NATIVE("a", "0") ",\n\n  {\"id\": 7,\n \"context\": \"c\", \"choices\": [\"x\", \"y\"],\n \"label\": null}\n]\n";
    assert_int_equal(parse(&ts, arr, "arr.json", NULL), 0);
    assert_int_equal(ts.n, 2);
    assert_int_equal(ts.mc[0].line, 3);
    assert_int_equal(ts.mc[1].line, 5);
    check_str("numeric id", ts.mc[1].id, "7");
    assert_int_equal(ts.mc[1].label, -1);
    assert_int_equal(ts.n_unlabeled, 1);
    task_set_free(&ts);
    /* no id: the record index */
    assert_int_equal(parse(&ts, PIQA("0") "\n" PIQA("1") "\n", "p.jsonl", NULL), 0);
    check_str("index id", ts.mc[1].id, "1");
    task_set_free(&ts);
    /* forced format by name */
    TaskLoadOptions o;
    task_load_options_default(&o);
    assert_int_equal(task_format_from_name("samsum", &o.format), 0);
    assert_int_equal(o.format, TASK_FMT_DIALOGSUM);
    assert_int_equal(task_format_from_name("piqa", &o.format), 0);
    assert_int_equal(parse(&ts, PIQA("1") "\n", "p.jsonl", &o), 0);
    assert_int_equal(ts.format, TASK_FMT_PIQA);
    task_set_free(&ts);
    EXPECT_ERR(NATIVE("a", "0") "\n", &o, "t.jsonl:1: field 'goal': missing (the record has: id, context, choices, label)");
    assert_int_equal(task_format_from_name("squad", &o.format), -1);
    assert_non_null(strstr(err_msg(), "unknown task format 'squad'"));
    for (int f = 1; f < TASK_FMT_COUNT; f++) {
        TaskFormat back;
        assert_int_equal(task_format_from_name(task_format_name((TaskFormat)f), &back), 0);
        assert_int_equal(back, f);
    }
    /* a missing file */
    assert_int_equal(task_set_load(&ts, FIX "no-such-file.jsonl", NULL), -1);
    assert_non_null(strstr(err_msg(), "no-such-file.jsonl: cannot open"));
}

static void test_errors(void **state) {
    (void)state;
    /* the message of the brief: file, line, field, expected, got */
    char buf[4096] = "";
    for (int i = 0; i < 16; i++) strcat(buf, PIQA("1") "\n");
    strcat(buf, PIQA("3") "\n");
    expect_err(buf, strlen(buf), "piqa.jsonl", NULL, "piqa.jsonl:17: field 'label': expected 0 or 1, got 3");

    EXPECT_ERR("", NULL, "t.jsonl: empty file (no records)");
    EXPECT_ERR(" \n\n\t", NULL, "t.jsonl: empty file (no records)");
    EXPECT_ERR("[]", NULL, "t.jsonl: no records");
    EXPECT_ERR("[ \n ]\n", NULL, "t.jsonl: no records");
    EXPECT_ERR("hello", NULL, "t.jsonl:1: expected JSON lines");
    /* bad JSON */
    EXPECT_ERR(NATIVE("a", "0") "\n{\"id\": \"b\", \"context\": \"c\"\n", NULL, "t.jsonl:2: unterminated object");
    EXPECT_ERR("{\"id\": tru, \"context\": \"c\"}\n", NULL, "t.jsonl:1: invalid JSON at offset 7");
    EXPECT_ERR("{\"a\": [1}\n", NULL, "t.jsonl:1: unexpected '}'");
    EXPECT_ERR(NATIVE("a", "0") " x\n", NULL, "t.jsonl:1: unexpected text after the JSON object");
    EXPECT_ERR(NATIVE("a", "0") "\n[1, 2]\n", NULL, "t.jsonl:2: expected a JSON object (a record)");
    EXPECT_ERR("{\"context\": \"a\\u0000b\", \"choices\": [\"x\", \"y\"], \"label\": 0}", NULL, "\\u0000 inside a string");
    EXPECT_ERR("{\"context\": \"a\tb\", \"choices\": [\"x\", \"y\"], \"label\": 0}", NULL, "control character inside a string");
    char deep[200] = "{\"a\": ";
    for (int i = 0; i < 40; i++) strcat(deep, "[");
    expect_err(deep, strlen(deep), "t.jsonl", NULL, "t.jsonl:1: nested more than 32 levels deep");
    /* JSON arrays */
    EXPECT_ERR("[" NATIVE("a", "0") ",]", NULL, "t.jsonl:1: expected a record after ','");
    EXPECT_ERR("[" NATIVE("a", "0") "\n", NULL, "t.jsonl:2: unterminated JSON array");
    EXPECT_ERR("[" NATIVE("a", "0") "] x", NULL, "t.jsonl:1: unexpected text after the JSON array");
    EXPECT_ERR("[" NATIVE("a", "0") " " NATIVE("b", "0") "]", NULL, "expected ',' or ']' after a record");
    EXPECT_ERR("[1]", NULL, "t.jsonl:1: array item: expected a JSON object");
    EXPECT_ERR("[\n" NATIVE("a", "0") ",\n\n" NATIVE("b", "5") "]", NULL, "t.jsonl:4: field 'label': expected 0 or 1, got 5");
    /* unknown format */
    EXPECT_ERR("{\"foo\": 1, \"bar\": 2}\n", NULL, "t.jsonl:1: cannot tell the record format from its fields (foo, bar)");
    /* missing field, wrong types, ranges */
    EXPECT_ERR("{\"goal\": \"g\", \"sol1\": \"a\", \"label\": 0}", NULL, "t.jsonl:1: field 'sol2': missing (the record has: goal, sol1, label)");
    EXPECT_ERR("{\"goal\": 5, \"sol1\": \"a\", \"sol2\": \"b\", \"label\": 0}", NULL, "field 'goal': expected a string, got a number");
    EXPECT_ERR(NATIVE("a", "\"0\""), NULL, "field 'label': expected 0 or 1, got a string");
    EXPECT_ERR(NATIVE("a", "1.5"), NULL, "field 'label': expected 0 or 1, got 1.5");
    EXPECT_ERR(NATIVE("a", "-2"), NULL, "field 'label': expected 0 or 1, got -2");
    EXPECT_ERR("{\"context\": \"c\", \"choices\": [\"x\"], \"label\": 0}", NULL, "field 'choices': expected 2 to 64 choices, got 1");
    EXPECT_ERR("{\"context\": \"c\", \"choices\": \"x\", \"label\": 0}", NULL, "field 'choices': expected an array of strings, got a string");
    EXPECT_ERR("{\"context\": \"c\", \"choices\": [\"x\", 2], \"label\": 0}", NULL, "field 'choices': item 1: expected a string, got a number");
    EXPECT_ERR("{\"context\": \"c\", \"context\": \"d\", \"choices\": [\"x\", \"y\"], \"label\": 0}", NULL, "field 'context': appears twice");
    EXPECT_ERR("{\"id\": [1], \"context\": \"c\", \"choices\": [\"x\", \"y\"], \"label\": 0}", NULL, "field 'id': expected a string or a number, got an array");
    {
        char many[8192] = "{\"context\": \"c\", \"label\": 0, \"choices\": [";
        for (int i = 0; i < 65; i++) strcat(many, i ? ", \"x\"" : "\"x\"");
        strcat(many, "]}");
        expect_err(many, strlen(many), "t.jsonl", NULL, "t.jsonl:1: field 'choices': expected 2 to 64 choices, got 65");
        TaskLoadOptions o;
        task_load_options_default(&o);
        o.max_choices = 65;
        TaskSet ts;
        assert_int_equal(parse(&ts, many, "t.jsonl", &o), 0);
        assert_int_equal(ts.mc[0].n_choices, 65);
        task_set_free(&ts);
    }
    /* formats' own rules */
    EXPECT_ERR("{\"activity_label\": \"a\", \"ctx_a\": \"b\", \"ctx_b\": \"c\", \"endings\": [\"1\", \"2\", \"3\", \"4\"], \"label\": \"x\"}",
               NULL, "field 'label': expected 0 to 3, got \"x\"");
    EXPECT_ERR("{\"activity_label\": \"a\", \"ctx_a\": \"b\", \"ctx_b\": \"c\", \"endings\": [\"1\", \"2\", \"3\", \"4\"], \"label\": \"4\"}",
               NULL, "field 'label': expected 0 to 3, got \"4\"");
    EXPECT_ERR("{\"id\": \"q\", \"question\": {\"stem\": \"s\", \"choices\": [{\"text\": \"a\", \"label\": \"A\"}, {\"text\": \"b\", \"label\": \"B\"}]}, \"answerKey\": \"F\"}",
               NULL, "field 'answerKey': expected one of the choice labels (A, B), got \"F\"");
    EXPECT_ERR("{\"id\": \"q\", \"question\": {\"stem\": \"s\", \"choices\": [{\"text\": \"a\", \"label\": \"A\"}, {\"text\": \"b\", \"label\": \"A\"}]}, \"answerKey\": \"A\"}",
               NULL, "label \"A\" appears twice");
    EXPECT_ERR("{\"id\": \"q\", \"question\": {\"stem\": \"s\", \"choices\": [{\"text\": \"a\"}, {\"text\": \"b\", \"label\": \"B\"}]}, \"answerKey\": \"A\"}",
               NULL, "field 'question.choices': item 0: field 'label': missing");
    EXPECT_ERR("{\"id\": \"q\", \"question\": \"s\", \"choices\": {\"text\": [\"a\", \"b\"], \"label\": [\"A\"]}, \"answerKey\": \"A\"}",
               NULL, "field 'choices.label': expected an array of 2 labels");
    EXPECT_ERR("{\"question\": \"q\", \"passage\": \"p\", \"answer\": \"yes\"}", NULL, "field 'answer': expected true or false, got a string");
    EXPECT_ERR("{\"question\": \"q\", \"passage\": \"p\"}", NULL, "field 'answer': missing, and no 'label' either");
    EXPECT_ERR("{\"article\": \"a\", \"question\": \"q\", \"options\": [\"1\", \"2\", \"3\", \"4\"], \"answer\": \"E\"}",
               NULL, "field 'answer': expected a letter A to D, got \"E\"");
    EXPECT_ERR("{\"question\": \"q\", \"answer\": \"it is 5\"}", NULL, "field 'answer': expected a final line '#### <number>'");
    EXPECT_ERR("{\"question\": \"q\", \"answer\": \"it is 5\\n####  \"}", NULL, "field 'answer': nothing after '####'");
    EXPECT_ERR("{\"dialogue\": \"d\", \"summary\": 3}", NULL, "field 'summary': expected a string, got a number");
    EXPECT_ERR("{\"instruction\": \"q\\n\\nAnswer format: solution1/solution2\", \"input\": \"\", \"output\": \"o\", \"answer\": \"solution3\"}",
               NULL, "field 'answer': expected one of solution1/solution2, got \"solution3\"");
    EXPECT_ERR("{\"instruction\": \"q\\n\\nAnswer format: a/b\", \"output\": \"o\"}", NULL, "field 'answer': missing");
    EXPECT_ERR("{\"instruction\": \"q\\n\\nAnswer format: a/b\", \"output\": \"o\", \"answer\": \"a\"}\n"
               "{\"instruction\": \"what is 2+2\", \"output\": \"4\", \"answer\": \"4\"}\n",
               NULL, "t.jsonl:2: field 'instruction': no 'Answer format:' line, but the records before are multiple choice");
    EXPECT_ERR("{\"instruction\": \"q\\n\\nAnswer format: a/b\\nmore text\", \"output\": \"o\", \"answer\": \"a\"}",
               NULL, "'Answer format:' is not on the last line");
    EXPECT_ERR("{\"instruction\": \"q Answer format: a//b\", \"output\": \"o\", \"answer\": \"a\"}", NULL, "option 2 is empty");
    /* non-UTF-8 (a stray byte, an overlong form, a surrogate) names the line */
    EXPECT_ERR(NATIVE("a", "0") "\n{\"context\": \"caf\xe9\", \"choices\": [\"x\", \"y\"], \"label\": 0}\n", NULL,
               "t.jsonl:2: invalid UTF-8 (byte 0xe9 at offset 16 of the record)");
    EXPECT_ERR("{\"context\": \"\xc0\xaf\", \"choices\": [\"x\", \"y\"], \"label\": 0}\n", NULL, "t.jsonl:1: invalid UTF-8");
    EXPECT_ERR("{\"context\": \"\xed\xa0\x80\", \"choices\": [\"x\", \"y\"], \"label\": 0}\n", NULL, "t.jsonl:1: invalid UTF-8");
    EXPECT_ERR("[\n\n{\"context\": \"\xff\", \"choices\": [\"x\", \"y\"], \"label\": 0}]", NULL, "t.jsonl:3: invalid UTF-8");
    EXPECT_ERR("{\"context\": \"\\ud800\", \"choices\": [\"x\", \"y\"], \"label\": 0}\n", NULL, "t.jsonl:1: invalid JSON");
}

static void test_limits(void **state) {
    (void)state;
    TaskLoadOptions o;
    task_load_options_default(&o);
    assert_int_equal(o.max_choices, 64);
    assert_true(o.max_file_bytes == (size_t)1 << 30);
    o.max_file_bytes = 10;
    EXPECT_ERR(NATIVE("a", "0"), &o, "t.jsonl: file is 62 bytes, more than the limit of 10");
    TaskSet ts;
    assert_int_equal(task_set_load(&ts, FIX "piqa.jsonl", &o), -1);
    assert_non_null(strstr(err_msg(), "piqa.jsonl: file is 530 bytes, more than the limit of 10"));
    task_load_options_default(&o);
    o.max_record_bytes = 50;
    EXPECT_ERR(NATIVE("a", "0"), &o, "t.jsonl:1: record is 62 bytes, more than the limit of 50");
    EXPECT_ERR("[" NATIVE("a", "0") "]", &o, "t.jsonl:1: record is 62 bytes, more than the limit of 50");
    task_load_options_default(&o);
    o.max_text_bytes = 5;
    EXPECT_ERR("{\"context\": \"123456\", \"choices\": [\"x\", \"y\"], \"label\": 0}", &o,
               "field 'context': text of 6 bytes is longer than the limit of 5");
    EXPECT_ERR("{\"context\": \"c\", \"choices\": [\"x\", \"yyyyyy\"], \"label\": 0}", &o,
               "field 'choices': item 1: text of 6 bytes is longer than the limit of 5");
}

static void test_skip_bad(void **state) {
    (void)state;
    TaskLoadOptions o;
    task_load_options_default(&o);
    o.skip_bad = 1;
    const char *text = NATIVE("a", "0") "\n"
                       "{\"id\": \"b\", bad json}\n"
                       NATIVE("c", "7") "\n"
                       "{\"context\": \"caf\xe9\", \"choices\": [\"x\", \"y\"], \"label\": 0}\n"
                       NATIVE("d", "1") "\n"
                       "[1]\n"
                       "{\"context\": \"a\\u0000\", \"choices\": [\"x\", \"y\"], \"label\": 0}\n"
                       NATIVE("e", "-1") "\n";
    TaskSet ts;
    assert_int_equal(parse(&ts, text, "s.jsonl", &o), 0);
    assert_int_equal(ts.n, 3);
    assert_int_equal(ts.n_skipped, 5);
    assert_int_equal(ts.n_unlabeled, 1);
    check_str("id", ts.mc[1].id, "d");
    assert_int_equal(ts.mc[1].line, 5);
    assert_int_equal(ts.mc[2].line, 8);
    assert_non_null(ts.first_skip_msg);
    assert_non_null(strstr(ts.first_skip_msg, "s.jsonl:2: invalid JSON"));
    /* ids default to the record index, skipped records included */
    task_set_free(&ts);
    assert_int_equal(parse(&ts, "{\"goal\": 1, \"sol1\": \"a\"}\n" PIQA("0") "\n", "p.jsonl", &o), 0);
    assert_int_equal(ts.n_skipped, 1);
    check_str("index id", ts.mc[0].id, "1");
    task_set_free(&ts);
    /* all bad */
    EXPECT_ERR(NATIVE("a", "9") "\n" NATIVE("b", "9") "\n", &o,
               "t.jsonl: no valid records (2 skipped; the first: t.jsonl:1: field 'label': expected 0 or 1, got 9)");
    /* file-level problems are not skippable */
    EXPECT_ERR("[" NATIVE("a", "0") ",]", &o, "expected a record after ','");
    EXPECT_ERR("{\"foo\": 1}\n" NATIVE("a", "0") "\n", &o, "cannot tell the record format");
    /* a bad element inside an array is skippable when the array's structure holds */
    assert_int_equal(parse(&ts, "[" NATIVE("a", "0") ", " NATIVE("b", "3") ", " NATIVE("c", "1") "]", "a.json", &o), 0);
    assert_int_equal(ts.n, 2);
    assert_int_equal(ts.n_skipped, 1);
    task_set_free(&ts);
    /* LLM-Adapters: a bad first record does not fix the set's kind */
    assert_int_equal(parse(&ts,
                           "{\"instruction\": \"q\\nAnswer format: a/b\", \"output\": \"o\", \"answer\": \"c\"}\n"
                           "{\"instruction\": \"what is 2+2\", \"output\": \"4\", \"answer\": 4}\n",
                           "l.jsonl", &o),
                     0);
    assert_int_equal(ts.kind, TASK_GEN);
    assert_int_equal(ts.n, 1);
    check_str("answer", ts.gen[0].answer, "4");
    task_set_free(&ts);
}

/* ---- templates ------------------------------------------------------------------------------ */

static void test_templates(void **state) {
    (void)state;
    const char *names[] = {"goal", "id", "x_1"};
    const char *values[] = {"open a jar", "7", "X"};
    char *s = task_template_format("Question: {goal}\nAnswer:", names, values, 3, "prompt template");
    check_str("simple", s, "Question: open a jar\nAnswer:");
    free(s);
    s = task_template_format("{{literal}} {id}{x_1}{{{goal}}}}}", names, values, 3, NULL);
    check_str("escapes", s, "{literal} 7X{open a jar}}");
    free(s);
    s = task_template_format("", names, values, 3, NULL);
    check_str("empty", s, "");
    free(s);
    s = task_template_format("no fields at all", NULL, NULL, 0, NULL);
    check_str("plain", s, "no fields at all");
    free(s);
    struct {
        const char *t, *err;
    } bad[] = {{"Question: {gaol}\nAnswer:", "prompt template \"Question: {gaol}\\nAnswer:\": unknown field 'gaol' (known: goal, id, x_1)"},
               {"a } b", "single '}' at offset 2"},
               {"a {goal", "unterminated field at offset 2"},
               {"{go al}", "bad field name at offset 0"},
               {"{}", "empty field name '{}' at offset 0"},
               {"{goal.x}", "bad field name"}};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        assert_null(task_template_format(bad[i].t, names, values, 3, "prompt template"));
        if (!strstr(err_msg(), bad[i].err)) fail_msg("template %s: error \"%s\" lacks \"%s\"", bad[i].t, err_msg(), bad[i].err);
        assert_int_equal(task_template_check(bad[i].t, names, 3, "prompt template"), -1);
    }
    assert_int_equal(task_template_check("{goal} {id}", names, 3, NULL), 0);
    s = task_template_unescape("Q: {goal}\\nA:\\t\\\\ \\x");
    check_str("unescape", s, "Q: {goal}\nA:\t\\ \\x");
    free(s);
}

static void test_prompts(void **state) {
    (void)state;
    TaskSet ts;
    assert_int_equal(task_set_load(&ts, FIX "piqa.jsonl", NULL), 0);
    TaskPrompt p;
    assert_int_equal(task_prompt_default(&p, &ts), 0);
    check_str("piqa prompt", p.prompt, "Question: {goal}\nAnswer:");
    check_str("piqa answer", p.answer, " {choice}");
    assert_int_equal(p.n_stops, 0);
    /* override; trailing whitespace of the context moves to the continuations */
    assert_int_equal(task_prompt_set(&p, "Goal: {goal} ({id})\nSolution: ", NULL), 0);
    assert_int_equal(task_prompt_set(&p, NULL, "{choice}"), 0);
    TaskMCText t;
    assert_int_equal(task_mc_format(&ts, 1, &p, &t), 0);
    check_str("ctx", t.context, "Goal: To open a stuck jar lid, (1)\nSolution:");
    check_str("cont", t.conts[1], " run the lid under hot water for a minute, then twist.");
    task_mc_text_free(&t);
    /* unknown fields: {choice} only in the choice template, names from the set */
    assert_int_equal(task_prompt_set(&p, "Q: {question}", NULL), 0);
    assert_int_equal(task_prompt_check(&p, &ts), -1);
    assert_non_null(strstr(err_msg(), "prompt template \"Q: {question}\": unknown field 'question' (known: id, context, goal)"));
    assert_int_equal(task_mc_format(&ts, 0, &p, &t), -1);
    assert_non_null(strstr(err_msg(), "piqa.jsonl:1: prompt template"));
    assert_int_equal(task_prompt_set(&p, "Q: {goal} {choice}", NULL), 0);
    assert_int_equal(task_prompt_check(&p, &ts), -1);
    assert_non_null(strstr(err_msg(), "unknown field 'choice'"));
    assert_int_equal(task_prompt_set(&p, "{context}", " {answer}"), 0);
    assert_int_equal(task_prompt_check(&p, &ts), -1);
    assert_non_null(strstr(err_msg(), "choice template \" {answer}\": unknown field 'answer'"));
    TaskMCTokens *k;
    assert_int_equal(task_mc_tokenize(&ts, &p, tok(), 0, &k), -1);
    task_prompt_free(&p);

    /* a prompt file */
    const char *dir = test_tmpdir();
    char path[512];
    snprintf(path, sizeof path, "%s/prompt.json", dir);
    const char *pj = "{\"prompt\": \"Goal: {goal}\\nBest solution:\", \"choice\": \" {choice}\", \"stop\": [\"\\n\", \"Goal:\"]}";
    assert_int_equal(file_write_all_atomic(path, pj, strlen(pj)), 0);
    assert_int_equal(task_prompt_default(&p, &ts), 0);
    assert_int_equal(task_prompt_load(&p, path), 0);
    check_str("loaded prompt", p.prompt, "Goal: {goal}\nBest solution:");
    check_str("loaded answer", p.answer, " {choice}");
    assert_int_equal(p.n_stops, 2);
    check_str("stop", p.stops[1], "Goal:");
    assert_int_equal(task_prompt_check(&p, &ts), 0);
    const char *bad = "{\"prompt\": \"x\", \"promt\": \"y\"}";
    assert_int_equal(file_write_all_atomic(path, bad, strlen(bad)), 0);
    assert_int_equal(task_prompt_load(&p, path), -1);
    assert_non_null(strstr(err_msg(), "unknown field 'promt'"));
    const char *bad2 = "{\"stop\": [\"\"]}";
    assert_int_equal(file_write_all_atomic(path, bad2, strlen(bad2)), 0);
    assert_int_equal(task_prompt_load(&p, path), -1);
    assert_non_null(strstr(err_msg(), "field 'stop': item 0: expected a non-empty string"));
    assert_int_equal(file_write_all_atomic(path, "[1", 2), 0);
    assert_int_equal(task_prompt_load(&p, path), -1);
    assert_non_null(strstr(err_msg(), "invalid JSON"));
    unlink(path);
    rmdir(dir);
    task_prompt_free(&p);
    task_set_free(&ts);

    /* defaults of the generation formats: stop strings */
    struct {
        const char *file, *prompt, *answer;
        int n_stops;
        const char *stop0;
    } d[] = {{"data/gsm8k/test.jsonl", "Question: {question}\nAnswer:", " {target}", 2, "Question:"},
             {"data/debian/debian-sum.test.jsonl", "{prompt}", " {target}", 1, "\n\n"},
             {"data/debian/debian-section.test.jsonl", "{context}", " {choice}", 0, NULL}};
    for (size_t i = 0; i < sizeof d / sizeof *d; i++) {
        assert_int_equal(task_set_load(&ts, shared_path(d[i].file), NULL), 0);
        assert_int_equal(task_prompt_default(&p, &ts), 0);
        check_str(d[i].file, p.prompt, d[i].prompt);
        check_str(d[i].file, p.answer, d[i].answer);
        assert_int_equal(p.n_stops, d[i].n_stops);
        if (d[i].stop0) check_str("stop", p.stops[0], d[i].stop0);
        task_prompt_free(&p);
        task_set_free(&ts);
    }
    /* {choice_text} where the options' texts could not be parsed ("true/false" has no
     * "True:" marker): an error for that record only */
    assert_int_equal(task_set_load(&ts, FIX "llm_adapters_mc_input.json", NULL), 0);
    assert_null(ts.mc[0].choice_texts);
    assert_non_null(ts.mc[1].choice_texts);
    assert_int_equal(task_prompt_default(&p, &ts), 0);
    assert_non_null(p.prompt_input);
    assert_int_equal(task_prompt_set(&p, "Q: {question}\nA:", " {choice_text}"), 0);
    assert_int_equal(task_prompt_check(&p, &ts), 0);
    assert_int_equal(task_mc_format(&ts, 1, &p, &t), 0);
    check_str("choice_text", t.conts[1], " 4");
    task_mc_text_free(&t);
    assert_int_equal(task_mc_format(&ts, 0, &p, &t), -1);
    assert_non_null(strstr(err_msg(), "llm_adapters_mc_input.json:2: choice template \" {choice_text}\": field 'choice_text' has no value for this record"));
    task_prompt_free(&p);
    task_set_free(&ts);

    assert_int_equal(task_set_load(&ts, FIX "samsum.json", NULL), 0);
    assert_int_equal(task_prompt_default(&p, &ts), 0);
    assert_int_equal(p.n_stops, 3);
    check_str("stop", p.stops[0], "Dialogue:");
    check_str("stop", p.stops[1], "Summary:");
    check_str("stop", p.stops[2], "\n\n");
    const char *stops[] = {"END"};
    assert_int_equal(task_prompt_set_stops(&p, stops, 1), 0);
    assert_int_equal(p.n_stops, 1);
    task_prompt_free(&p);
    task_set_free(&ts);
}

/* ---- split and subsets ---------------------------------------------------------------------- */

static void check_partition(const int *tr, int ntr, const int *va, int nva, int n) {
    char *seen = calloc((size_t)n + 1, 1);
    for (int i = 0; i < ntr; i++) {
        assert_in_range(tr[i], 0, n - 1);
        if (i) assert_true(tr[i] > tr[i - 1]);
        seen[tr[i]]++;
    }
    for (int i = 0; i < nva; i++) {
        assert_in_range(va[i], 0, n - 1);
        if (i) assert_true(va[i] > va[i - 1]);
        seen[va[i]]++;
    }
    for (int i = 0; i < n; i++) assert_int_equal(seen[i], 1);
    free(seen);
}

static void test_split(void **state) {
    (void)state;
    int *tr, *va, ntr, nva;
    assert_int_equal(task_split(10000, 0.2, 42, &tr, &ntr, &va, &nva), 0);
    assert_int_equal(ntr, 8000);
    assert_int_equal(nva, 2000);
    check_partition(tr, ntr, va, nva, 10000);
    int *tr2, *va2, n2, m2;
    assert_int_equal(task_split(10000, 0.2, 42, &tr2, &n2, &va2, &m2), 0);
    assert_memory_equal(va, va2, 2000 * sizeof(int)); /* deterministic */
    free(tr2);
    free(va2);
    assert_int_equal(task_split(10000, 0.2, 43, &tr2, &n2, &va2, &m2), 0);
    assert_true(memcmp(va, va2, 2000 * sizeof(int)) != 0); /* the seed matters */
    free(tr2);
    free(va2);
    free(tr);
    free(va);
    /* the same on every machine: a fixed reference of this implementation (xorshift64*,
     * splitmix64 seeding, Fisher-Yates with rejection sampling) */
    assert_int_equal(task_split(20, 0.2, 1234, &tr, &ntr, &va, &nva), 0);
    assert_int_equal(nva, 4);
    print_message("split(20, 0.2, 1234) validation: %d %d %d %d\n", va[0], va[1], va[2], va[3]);
    const int want[4] = {6, 7, 12, 13};
    assert_memory_equal(va, want, sizeof want);
    free(tr);
    free(va);
    /* small and edge cases */
    struct {
        int n;
        double f;
        int nva;
    } c[] = {{0, 0.2, 0}, {1, 0.2, 0}, {2, 0.2, 1}, {3, 0.2, 1}, {5, 0.2, 1}, {7, 0.2, 1},
             {8, 0.2, 2}, {10, 0.0, 0}, {10, 1.0, 10}, {10, 0.99, 9}, {10, 0.01, 1}, {1838, 0.2, 368}};
    for (size_t i = 0; i < sizeof c / sizeof *c; i++) {
        assert_int_equal(task_split(c[i].n, c[i].f, 7, &tr, &ntr, &va, &nva), 0);
        assert_int_equal(nva, c[i].nva);
        assert_int_equal(ntr, c[i].n - c[i].nva);
        check_partition(tr, ntr, va, nva, c[i].n);
        free(tr);
        free(va);
    }
    assert_int_equal(task_split(10, 1.5, 7, &tr, &ntr, &va, &nva), -1);
    assert_non_null(strstr(err_msg(), "not in [0, 1]"));
    assert_int_equal(task_split(-1, 0.2, 7, &tr, &ntr, &va, &nva), -1);
}

static void test_subset(void **state) {
    (void)state;
    TaskSet ts, sub;
    assert_int_equal(task_set_load(&ts, FIX "hellaswag.jsonl", NULL), 0);
    int idx[] = {2, 0};
    assert_int_equal(task_set_subset(&ts, idx, 2, &sub), 0);
    assert_int_equal(sub.n, 2);
    assert_int_equal(sub.n_unlabeled, 1);
    assert_int_equal(sub.format, TASK_FMT_HELLASWAG);
    TaskPrompt p;
    assert_int_equal(task_prompt_default(&p, &ts), 0);
    TaskMCText a, b;
    assert_int_equal(task_mc_format(&ts, 2, &p, &a), 0);
    task_set_free(&ts); /* the subset owns its strings */
    assert_int_equal(task_mc_format(&sub, 0, &p, &b), 0);
    check_str("subset ctx", b.context, a.context);
    for (int c = 0; c < a.n_choices; c++) check_str("subset cont", b.conts[c], a.conts[c]);
    assert_int_equal(sub.mc[0].line, 3);
    check_str("subset id", sub.mc[1].id, "4");
    check_str("subset field", sub.mc[1].fields[1], "Making a sandwich");
    task_mc_text_free(&a);
    task_mc_text_free(&b);
    int bad[] = {5};
    TaskSet s2;
    assert_int_equal(task_set_subset(&sub, bad, 1, &s2), -1);
    assert_non_null(strstr(err_msg(), "subset index 5 out of range"));
    task_prompt_free(&p);
    task_set_free(&sub);
    task_set_free(&sub); /* harmless twice */
}

/* The HellaSwag clean-up, spelled out (the reference values come from the harness's code). */
static void test_hellaswag_rules(void **state) {
    (void)state;
    TaskSet ts;
    assert_int_equal(task_set_load(&ts, FIX "hellaswag.jsonl", NULL), 0);
    check_str("ctx_b capitalized, rest lowered; [header] dropped; [title] -> '. '", ts.mc[1].context,
              "Home and Garden: How to water a cactus. Check the soil first. Push a finger into the soil. If it is dry");
    check_str("unclosed bracket kept", ts.mc[1].choices[2], ", pour a bucket of sand on it [unclosed bracket");
    check_str("no bracket across a newline", ts.mc[1].choices[3], ", sing to it [quietly\nat night] every day.");
    check_str("non-ASCII capitalize", ts.mc[2].context, "Skiing:  A woman stands at the top of a slope. Élan is énorme as she");
    check_str("double spaces once", ts.mc[0].choices[2], "paints the bread with a brush and a smile.");
    assert_int_equal(ts.mc[2].label, -1);
    assert_int_equal(ts.mc[1].label, 0);
    task_set_free(&ts);
}

/* Deterministic mutations of every sample (flipped, deleted, inserted bytes, cuts) through the
 * loader, formatting and tokenization: no crash (the ASan build checks memory), success means
 * n > 0, failure leaves an empty set and a message. fuzz/fuzz_task.c does the same
 * open-ended with libFuzzer. */
static void test_mutations(void **state) {
    (void)state;
    const char *files[] = {"hellaswag.jsonl", "piqa.jsonl", "arc.jsonl", "arc_hf.json", "boolq.jsonl",
                           "race.jsonl", "samsum.json", "dialogsum.jsonl", "llm_adapters_gen.json",
                           "llm_adapters_mc_input.json"};
    static const char *inserts[] = {"\"", "{", "}", "[", "]", ",", "\\u0000", "\xff", "\n", "####",
                                    "Answer format: a/b", "null", "1e999", "-1", "\"label\": 9, "};
    Rng r;
    rng_seed(&r, 2024);
    int ok = 0, bad = 0;
    for (size_t f = 0; f < sizeof files / sizeof *files; f++) {
        char path[256];
        snprintf(path, sizeof path, FIX "%s", files[f]);
        size_t n;
        char *orig = file_read_all(path, &n, 0);
        assert_non_null(orig);
        char *buf = malloc(n + 64);
        for (int it = 0; it < 120; it++) {
            size_t m = n;
            memcpy(buf, orig, n);
            int kind = (int)(rng_u32(&r) % 4);
            size_t at = rng_u32(&r) % n;
            if (kind == 0) buf[at] = (char)rng_u32(&r);
            else if (kind == 1) m = at;
            else if (kind == 2) {
                memmove(buf + at, buf + at + 1, n - at - 1);
                m = n - 1;
            } else {
                const char *ins = inserts[rng_u32(&r) % (sizeof inserts / sizeof *inserts)];
                size_t il = strlen(ins);
                memmove(buf + at + il, buf + at, n - at);
                memcpy(buf + at, ins, il);
                m = n + il;
            }
            TaskLoadOptions o;
            task_load_options_default(&o);
            o.skip_bad = it & 1;
            TaskSet ts;
            err_clear();
            if (task_set_parse(&ts, buf, m, "mut", &o) != 0) {
                assert_int_equal(ts.n, 0);
                assert_true(err_msg()[0] != 0);
                bad++;
                continue;
            }
            ok++;
            assert_true(ts.n > 0);
            TaskPrompt p;
            assert_int_equal(task_prompt_default(&p, &ts), 0);
            if (it % 4 > 1) { /* tokenizing is the slow part: half of them */
            } else if (ts.kind == TASK_MC) {
                TaskMCTokens *k;
                if (task_mc_tokenize(&ts, &p, tok(), 64, &k) == 0) task_mc_tokens_free_all(k, ts.n);
            } else {
                TaskGenTokens *k;
                if (task_gen_tokenize(&ts, &p, tok(), 64, &k) == 0) task_gen_tokens_free_all(k, ts.n);
            }
            task_prompt_free(&p);
            task_set_free(&ts);
        }
        free(buf);
        free(orig);
    }
    print_message("mutations: %d loaded, %d refused\n", ok, bad);
    assert_true(ok > 100 && bad > 100);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_files_against_reference),
        cmocka_unit_test(test_real_counts),
        cmocka_unit_test(test_encode_pairs),
        cmocka_unit_test(test_set_tokenize),
        cmocka_unit_test(test_real_set_tokenize),
        cmocka_unit_test(test_layouts),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_limits),
        cmocka_unit_test(test_skip_bad),
        cmocka_unit_test(test_templates),
        cmocka_unit_test(test_prompts),
        cmocka_unit_test(test_split),
        cmocka_unit_test(test_subset),
        cmocka_unit_test(test_hellaswag_rules),
        cmocka_unit_test(test_mutations),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
