/* update/update_mixgen.c - the inference-time mixture of generators (issue 18): what a
 * deployment running the old and the new task models side by side would get on a
 * generation task, the reference the sequence-level mixture methods are distilled from.
 *
 * For a weight a, the inputs are decoded greedily from
 *     p = (1 - a) * mean_k softmax(M2 seed k) + a * softmax(M1)
 * at every step (compat/compat_mixgen.h, one KV cache per model: model_generate_batch's
 * loop), as `muscle eval` decodes and scores M1 and M2 (the same prompts, token limit,
 * no-repeat n-grams, ROUGE/EM), in this process (rank 0; the other ranks count the steps):
 *   - test split, a in update_mixgen_grid, after the evaluations: preds/mixgen-aA.jsonl,
 *     read by the report beside the methods (report_versus.c);
 *   - validation split (--task-val given and a mixture preset in the run), a in
 *     update_mixval_grid, after the new adapters: preds/mixgen-aA.val.jsonl, and the choice
 *     of a for the mixture presets: among the a whose mean score on validation is at least
 *     M2's (mean over the seeds) - tolerance (0.005, finetune's --mixture-tol default), the
 *     lowest score NFR against M1 (ties: the smaller a); none: the best score. The sweep and
 *     the choice go to preds/mixgen.val.json (the report shows them in the method's settings).
 * A member of weight 0 is not run: at a = 0 with one seed the file is M2's own predictions.
 * A file already there is kept (resumed runs). Not run across tokenizers (the models must
 * share the vocabulary to mix distributions over it). */
#include "update/update_impl.h"

#include "compat/compat_loss.h"
#include "compat/compat_mixgen.h"
#include "compat/compat_xtok.h"
#include "core/dist.h"
#include "core/error.h"
#include "core/file.h"
#include "eval/eval.h"
#include "metrics/compat.h"
#include "model/lora_peft.h"
#include "update/bundle.h"

#include <cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const double update_mixgen_grid[UPDATE_MIXGEN_N] = {0.0, 0.3, 0.5};
#define MIXVAL_N 5
static const double update_mixval_grid[MIXVAL_N] = {0.1, 0.2, 0.3, 0.4, 0.5}; /* the choice level's (compat_ensemble.c) */

char *update_mixgen_preds(double a, const char *sfx) { return update_pathf("preds/mixgen-a%.1f%s.jsonl", a, sfx); }

int update_mixgen_steps(const UpdateSpec *u) { return u->kind == TASK_GEN ? UPDATE_MIXGEN_N : 0; }

int update_mixval_applies(const UpdateSpec *u, const UpdateMethod *m) {
    const UpdatePreset *p = m->preset;
    return u->kind == TASK_GEN && p && !p->ce_only && p->weight == UPDATE_WEIGHT_NONE && p->method == COMPAT_MIXTURE;
}

static int mixval_needed(const UpdateSpec *u) {
    if (u->kind != TASK_GEN || !u->val) return 0;
    for (int i = 0; i < u->n_methods; i++)
        if (update_mixval_applies(u, &u->methods[i])) return 1;
    return 0;
}

int update_mixval_steps(const UpdateSpec *u) { return mixval_needed(u) ? (int)(1 + u->seeds) + MIXVAL_N : 0; }

/* Decodes and scores `task` at weight a into path. */
static int mixgen_eval(const UpdateSpec *u, const char *task, ModelBundle *b1, ModelBundle *b2, LoraAdapter *ad, double a, const char *path) {
    long K = u->seeds;
    CompatMember *mem = calloc((size_t)K + 1, sizeof *mem);
    if (!mem) return err_set("out of memory");
    for (long k = 0; k < K; k++) mem[k] = (CompatMember){&b2->model, &ad[k], (1.0 - a) / (double)K, "M2"};
    mem[K] = (CompatMember){&b1->model, model_bundle_adapter(b1), a, "M1"};
    EvalOptions o;
    eval_options_default(&o);
    o.task_path = task;
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

/* The mixture on `task` at grid[0..n) into preds/mixgen-aA<sfx>.jsonl (rank 0). */
static int mixgen_split(UpdateRun *r, const char *task, const char *sfx, const char *sname, const double *grid, int n) {
    const UpdateSpec *u = r->u;
    if (dist_rank() != 0) { /* the other ranks count the steps */
        r->step += n;
        return 0;
    }
    char *path[MIXVAL_N] = {0}, *what[MIXVAL_N] = {0};
    int rc = 0, todo = 0;
    for (int g = 0; g < n && rc == 0; g++) {
        char *rel = update_mixgen_preds(grid[g], sfx);
        path[g] = rel ? update_pathf("%s/%s", u->out, rel) : NULL;
        what[g] = update_pathf("the inference-time mixture (1-a) mean(M2 seeds) + a M1 at a = %.1f (decoding the %s split)", grid[g], sname);
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
        r->step++;
        if (rc != 0 || !same) continue;
        if (!update_exists(path[g])) {
            fprintf(stderr, "muscle update: [%d/%d] %s\n", r->step, r->n_steps, what[g]);
            rc = mixgen_eval(u, task, &b1, &b2, ad, grid[g], path[g]);
            if (rc != 0) err_prefix("the inference-time mixture at a = %.1f", grid[g]);
        } else if (!u->quiet) {
            fprintf(stderr, "muscle update: [%d/%d] %s: done before\n", r->step, r->n_steps, what[g]);
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

int update_mixgen(UpdateRun *r) {
    if (!update_mixgen_steps(r->u)) return 0;
    return mixgen_split(r, r->u->test, "", "test", update_mixgen_grid, UPDATE_MIXGEN_N);
}

/* Rank 0: the choice of a from the validation files, into preds/mixgen.val.json. */
static int mixval_choose(const UpdateSpec *u) {
    char *old = update_pathf("%s/preds/old.val.jsonl", u->out), *out = update_pathf("%s/preds/mixgen.val.json", u->out);
    double acc[MIXVAL_N], nfr[MIXVAL_N], m2 = 0.0, a2, n2;
    int rc = old && out ? 0 : err_set("out of memory");
    char *first = update_pathf("%s/preds/mixgen-a%.1f.val.jsonl", u->out, update_mixval_grid[0]);
    int none = first && !update_exists(first); /* across tokenizers: no mixture, the presets' own a */
    free(first);
    if (none) {
        free(old);
        free(out);
        return 0;
    }
    for (long k = 1; rc == 0 && k <= u->seeds; k++) {
        char *p = update_pathf("%s/preds/new-s%ld.val.jsonl", u->out, k);
        rc = update_pair_stats(u, old, p, &a2, &n2);
        m2 += a2 / (double)u->seeds;
        free(p);
    }
    for (int g = 0; rc == 0 && g < MIXVAL_N; g++) {
        char *rel = update_mixgen_preds(update_mixval_grid[g], ".val"), *p = rel ? update_pathf("%s/%s", u->out, rel) : NULL;
        rc = p ? update_pair_stats(u, old, p, &acc[g], &nfr[g]) : err_set("out of memory");
        free(rel);
        free(p);
    }
    CompatConfig cc;
    compat_config_default(&cc);
    int bi = rc == 0 ? compat_choose_on_val(acc, nfr, MIXVAL_N, m2, cc.mixture_tol, COMPAT_VAL_MOST_ACCURATE) : 0;
    cJSON *j = rc == 0 ? cJSON_CreateObject() : NULL;
    if (j) {
        cJSON_AddNumberToObject(j, "chosen_a", update_mixval_grid[bi]);
        cJSON_AddNumberToObject(j, "tolerance", cc.mixture_tol);
        cJSON_AddNumberToObject(j, "m2_val_score", m2);
        cJSON *pts = cJSON_AddArrayToObject(j, "points");
        for (int g = 0; g < MIXVAL_N; g++) {
            cJSON *e = cJSON_CreateObject();
            cJSON_AddNumberToObject(e, "a", update_mixval_grid[g]);
            cJSON_AddNumberToObject(e, "val_score", acc[g]);
            cJSON_AddNumberToObject(e, "val_nfr", nfr[g]);
            cJSON_AddItemToArray(pts, e);
        }
        char *txt = cJSON_Print(j);
        rc = txt ? file_write_all_atomic(out, txt, strlen(txt)) : err_set("out of memory");
        free(txt);
        cJSON_Delete(j);
        if (rc == 0 && !u->quiet) {
            fprintf(stderr, "muscle update: mixture weight on the validation split (M2's score %.4f, tolerance %g):", m2, cc.mixture_tol);
            for (int g = 0; g < MIXVAL_N; g++)
                fprintf(stderr, "%s a %.1f score %.4f NFR %.4f%s", g ? ";" : "", update_mixval_grid[g], acc[g], nfr[g], g == bi ? " (chosen)" : "");
            fprintf(stderr, "\n");
        }
    } else if (rc == 0) {
        rc = err_set("out of memory");
    }
    free(old);
    free(out);
    return rc;
}

int update_mixval_read(const UpdateSpec *u, double *a, char **sweep) {
    *a = -1.0;
    if (sweep) *sweep = NULL;
    char *p = update_pathf("%s/preds/mixgen.val.json", u->out);
    int present = 0;
    cJSON *j = update_read_json(p, &present);
    const cJSON *c = cJSON_GetObjectItemCaseSensitive(j, "chosen_a"), *pts = cJSON_GetObjectItemCaseSensitive(j, "points");
    int rc = 0;
    if (present && !cJSON_IsNumber(c)) rc = err_set("%s: expected \"chosen_a\" (a file of muscle update)", p);
    else if (cJSON_IsNumber(c)) *a = c->valuedouble;
    if (rc == 0 && sweep && cJSON_IsNumber(c)) {
        const cJSON *m2 = cJSON_GetObjectItemCaseSensitive(j, "m2_val_score");
        char *s = update_pathf("a = %.1f chosen on validation, used instead of --mixture-weight (score / score NFR %%: M2 %.2f;", c->valuedouble, cJSON_IsNumber(m2) ? 100 * m2->valuedouble : 0.0);
        for (const cJSON *e = pts ? pts->child : NULL; s && e; e = e->next) {
            const cJSON *ea = cJSON_GetObjectItemCaseSensitive(e, "a"), *es = cJSON_GetObjectItemCaseSensitive(e, "val_score"),
                        *en = cJSON_GetObjectItemCaseSensitive(e, "val_nfr");
            if (!cJSON_IsNumber(ea) || !cJSON_IsNumber(es) || !cJSON_IsNumber(en)) continue;
            char *t = update_pathf("%s a=%.1f %.2f/%.2f", s, ea->valuedouble, 100 * es->valuedouble, 100 * en->valuedouble);
            free(s);
            s = t;
        }
        *sweep = s ? update_pathf("%s)", s) : NULL;
        free(s);
    }
    cJSON_Delete(j);
    free(p);
    return rc;
}

int update_mixval(UpdateRun *r) {
    const UpdateSpec *u = r->u;
    if (!mixval_needed(u)) return 0;
    /* M1 and M2 on the validation split, under the names the interpolation sweeps use */
    int rc = update_phase_end(update_eval_m1_m2(r, 0));
    if (rc != 0) return rc;
    rc = update_phase_end(mixgen_split(r, u->val, ".val", "validation", update_mixval_grid, MIXVAL_N));
    if (rc == 0 && dist_rank() == 0 && mixval_choose(u) != 0) rc = update_fail();
    return update_phase_end(rc);
}
