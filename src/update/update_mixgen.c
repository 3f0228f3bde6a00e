/* update/update_mixgen.c - the inference-time mixture of generators (issue 18): what a
 * deployment running the old and the new task models side by side would get on a
 * generation task, the reference the sequence-level mixture methods are distilled from.
 *
 * For every a of UPDATE_MIXGEN_GRID, the test inputs are decoded greedily from
 *     p = (1 - a) * mean_k softmax(M2 seed k) + a * softmax(M1)
 * at every step (compat/compat_mixgen.h, one KV cache per model: model_generate_batch's
 * loop), as `muscle eval` decodes and scores M1 and M2 (the same prompts, token limit,
 * no-repeat n-grams, ROUGE/EM), into preds/mixgen-aA.jsonl; the report reads them beside
 * the methods (report_versus.c). A member of weight 0 is not run: at a = 0 with one seed
 * the file is M2's own predictions. In this process (rank 0), after the evaluations; a file
 * already there is kept (resumed runs). Not run across tokenizers (the models must share the
 * vocabulary to mix distributions over it): the report then has no mixture for the task. */
#include "update/update_impl.h"

#include "compat/compat_mixgen.h"
#include "compat/compat_xtok.h"
#include "core/error.h"
#include "eval/eval.h"
#include "model/lora_peft.h"
#include "update/bundle.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const double update_mixgen_grid[UPDATE_MIXGEN_N] = {0.0, 0.3, 0.5};

char *update_mixgen_preds(double a) { return update_pathf("preds/mixgen-a%.1f.jsonl", a); }

int update_mixgen_steps(const UpdateSpec *u) { return u->kind == TASK_GEN ? UPDATE_MIXGEN_N : 0; }

/* Decodes and scores the test set at weight a into path (rank 0). */
static int mixgen_eval(const UpdateSpec *u, ModelBundle *b1, ModelBundle *b2, LoraAdapter *ad, double a, const char *path) {
    long K = u->seeds;
    CompatMember *mem = calloc((size_t)K + 1, sizeof *mem);
    if (!mem) return err_set("out of memory");
    for (long k = 0; k < K; k++) mem[k] = (CompatMember){&b2->model, &ad[k], (1.0 - a) / (double)K, "M2"};
    mem[K] = (CompatMember){&b1->model, model_bundle_adapter(b1), a, "M1"};
    EvalOptions o;
    eval_options_default(&o);
    o.task_path = u->test;
    int rc = u->format ? task_format_from_name(u->format, &o.format) : 0;
    o.prompt_file = u->prompt_file;
    o.prompt_tmpl = u->prompt;
    o.answer_tmpl = u->answer;
    o.limit = u->limit.text ? (int)u->limit.v : 0;
    o.max_tokens = (int)update_gen_max_tokens(u);
    o.no_repeat_ngram = UPDATE_GEN_NO_REPEAT_NGRAM;
    o.quiet = u->quiet;
    CompatMixHook h;
    if (rc == 0 && compat_mix_hook_init(&h, mem, (int)K + 1, o.no_repeat_ngram) == 0) {
        o.gen_hook = &h.hook;
        EvalSummary s;
        rc = eval_run(&b2->model, b2->tok, &o, path, &s);
        if (rc == 0 && !u->quiet) fprintf(stderr, "muscle update: the mixture at a = %.1f: ROUGE-1 %.4f, exact match %.4f\n", a, s.rouge1, s.exact_match);
        compat_mix_hook_free(&h);
    } else {
        rc = -1;
    }
    free(mem);
    return rc;
}

int update_mixgen(UpdateRun *r) {
    const UpdateSpec *u = r->u;
    int n = update_mixgen_steps(u), todo = 0;
    if (!n) return 0;
    char *path[UPDATE_MIXGEN_N] = {0}, *what[UPDATE_MIXGEN_N] = {0};
    int rc = 0;
    for (int g = 0; g < n && rc == 0; g++) {
        char *rel = update_mixgen_preds(update_mixgen_grid[g]);
        path[g] = rel ? update_pathf("%s/%s", u->out, rel) : NULL;
        what[g] = update_pathf("the inference-time mixture (1-a) mean(M2 seeds) + a M1 at a = %.1f (decoding the test set)", update_mixgen_grid[g]);
        free(rel);
        if (!path[g] || !what[g]) rc = err_set("out of memory");
        else todo += !update_exists(path[g]);
    }
    ModelBundle b1, b2;
    memset(&b1, 0, sizeof b1);
    memset(&b2, 0, sizeof b2);
    LoraAdapter *ad = calloc((size_t)u->seeds, sizeof *ad);
    long n_ad = 0;
    int same = 1;
    if (rc == 0 && !ad) rc = err_set("out of memory");
    if (rc == 0 && todo) {
        BundleSpec s1 = {.model = u->old_model, .adapter = u->old_adapter, .bf16 = u->bf16, .tok = BUNDLE_TOK_OPTIONAL,
                         .model_label = "--old-model", .adapter_label = "--old-adapter"};
        BundleSpec s2 = {.model = u->new_model, .bf16 = u->bf16, .model_label = "--new-model"};
        if (model_bundle_load(&b1, &s1) != 0 || model_bundle_load(&b2, &s2) != 0) rc = -1;
        same = rc == 0 && (!b1.tok || compat_tok_same(b1.tok, b2.tok)) && b1.model.cfg.vocab_size == b2.model.cfg.vocab_size;
        for (long k = 1; rc == 0 && same && k <= u->seeds; k++) {
            char *dir = update_new_adapter(u, k);
            if (!dir) rc = err_set("out of memory");
            else if (lora_load_peft(&ad[k - 1], &b2.model.cfg, dir) != 0) rc = err_prefix("%s", dir);
            else n_ad++;
            free(dir);
        }
        if (rc == 0 && !same)
            fprintf(stderr, "muscle update: no inference-time mixture of generators: M1 and M2 do not share a tokenizer\n");
    }
    for (int g = 0; g < n; g++) {
        if (rc != 0 || !same) {
            r->step++;
            continue;
        }
        if (!update_exists(path[g])) {
            r->step++;
            fprintf(stderr, "muscle update: [%d/%d] %s\n", r->step, r->n_steps, what[g]);
            rc = mixgen_eval(u, &b1, &b2, ad, update_mixgen_grid[g], path[g]);
            if (rc != 0) err_prefix("the inference-time mixture at a = %.1f", update_mixgen_grid[g]);
        } else {
            r->step++;
            if (!u->quiet) fprintf(stderr, "muscle update: [%d/%d] %s: done before\n", r->step, r->n_steps, what[g]);
        }
    }
    for (long k = 0; k < n_ad; k++) lora_free(&ad[k]);
    free(ad);
    if (todo) {
        model_bundle_free(&b1);
        model_bundle_free(&b2);
    }
    for (int g = 0; g < n; g++) {
        free(path[g]);
        free(what[g]);
    }
    return rc != 0 ? update_fail() : 0;
}
