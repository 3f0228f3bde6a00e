/* eval/eval.c - `muscle eval`: a task file through the model, predictions out. */
#include "eval.h"
#include "mc.h"
#include "core/dist.h"
#include "core/error.h"
#include "core/file.h"
#include "core/progress.h"
#include "core/strbuf.h"
#include "metrics/answer.h"
#include "metrics/rouge.h"
#include "model/generate_batch.h"

#include <cJSON.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

void eval_options_default(EvalOptions *o) {
    memset(o, 0, sizeof *o);
    o->max_tokens = 128;
    o->top_p = 1.0f;
    o->seed = 42;
    o->rouge_stem = 1;
    o->max_batch = 8;
}

static void progress_cb(void *ctx, int done, int total) {
    (void)total;
    progress_update(ctx, done, NULL);
}

/* Appends one JSON object as a line. */
static int write_line(AtomicFile *af, cJSON *o) {
    char *s = cJSON_PrintUnformatted(o);
    if (!s) return err_set("out of memory");
    int rc = file_atomic_write(af, s, strlen(s));
    if (rc == 0) rc = file_atomic_write(af, "\n", 1);
    free(s);
    return rc;
}

/* Appends one JSON object as a line to b (a rank's share of the predictions, kept in memory
 * and gathered by rank 0). */
static int buf_line(StrBuf *b, cJSON *o) {
    char *s = cJSON_PrintUnformatted(o);
    if (!s) return err_set("out of memory");
    int rc = strbuf_puts(b, s) != 0 || strbuf_put(b, "\n", 1) != 0;
    free(s);
    return rc ? err_set("out of memory: %zu bytes of predictions", b->n) : 0;
}

/* The instance id as JSON: a number when the text is an integer, else a string. */
static cJSON *id_json(const char *id) {
    char *end;
    long long v = strtoll(id, &end, 10);
    if (*id && !*end && (id[0] != '0' || !id[1]) && llabs(v) < (1LL << 53)) return cJSON_CreateNumber((double)v);
    return cJSON_CreateString(id);
}

/* ------------------------------------------------------------------------- */
/* multiple choice                                                            */

static int eval_mc(const Model *m, const TaskSet *ts, const TaskPrompt *p, const Tokenizer *t, const EvalOptions *o,
                   AtomicFile *af, EvalSummary *sum) {
    int n = ts->n, rc = 0;
    TaskMCTokens *tk = NULL;
    if (task_mc_tokenize(ts, p, t, m->cfg.seq_len, &tk) != 0) return -1;
    McItem *items = calloc((size_t)n, sizeof *items);
    McResult *res = calloc((size_t)n, sizeof *res);
    double *ll = NULL;
    int *nt = NULL, *gr = NULL;
    long nch = 0;
    for (int i = 0; i < n; i++) nch += tk[i].n_choices;
    ll = calloc((size_t)nch, sizeof *ll);
    nt = calloc((size_t)nch, sizeof *nt);
    gr = calloc((size_t)nch, sizeof *gr);
    if (!items || !res || !ll || !nt || !gr) { rc = err_set("out of memory"); goto done; }
    long k = 0;
    for (int i = 0; i < n; i++) {
        items[i].ctx = tk[i].ctx;
        items[i].n_ctx = tk[i].n_ctx;
        items[i].n_choices = tk[i].n_choices;
        items[i].choice = (const int *const *)tk[i].cont;
        items[i].choice_len = tk[i].n_cont;
        res[i].loglik = ll + k;
        res[i].n_tokens = nt + k;
        res[i].is_greedy = gr + k;
        k += tk[i].n_choices;
        sum->tokens += eval_mc_row_len(&items[i]);
    }
    Progress pr;
    progress_init(&pr, "eval", "items", n, o->quiet);
    McOptions mo = {o->max_batch, 0, o->lora, progress_cb, &pr, dist_rank(), dist_size()};
    double t0 = progress_now();
    if (eval_mc_score(m, items, n, res, &mo) != 0) { rc = -1; goto done; }
    /* MPI ranks: each scored its batches (zeros elsewhere): the sums are every item's numbers */
    if (dist_allreduce_sum_f64(ll, (size_t)nch) != 0 || dist_allreduce_sum_int(nt, (size_t)nch) != 0 ||
        dist_allreduce_sum_int(gr, (size_t)nch) != 0) { rc = -1; goto done; }
    sum->seconds = progress_now() - t0;
    progress_finish(&pr);
    int correct = 0, correct_norm = 0, labeled = 0;
    for (int i = 0; i < n && rc == 0; i++) {
        TaskMCText txt;
        if (task_mc_format(ts, i, p, &txt) != 0) { rc = -1; break; }
        int best = 0, bestn = 0;
        double bn = -INFINITY;
        for (int c = 0; c < tk[i].n_choices; c++) {
            if (res[i].loglik[c] > res[i].loglik[best]) best = c;
            size_t bytes = strlen(txt.conts[c]);
            double v = res[i].loglik[c] / (double)(bytes ? bytes : 1);
            if (v > bn) { bn = v; bestn = c; }
        }
        int label = ts->mc[i].label;
        if (label >= 0) {
            labeled++;
            correct += best == label;
            correct_norm += bestn == label;
        }
        if (af) {
            cJSON *j = cJSON_CreateObject();
            cJSON_AddItemToObject(j, "id", id_json(ts->mc[i].id));
            cJSON_AddNumberToObject(j, "prediction", best);
            cJSON_AddNumberToObject(j, "prediction_norm", bestn);
            if (label >= 0) {
                cJSON_AddBoolToObject(j, "correct", best == label);
                cJSON_AddBoolToObject(j, "correct_norm", bestn == label);
                cJSON_AddNumberToObject(j, "target", label);
            }
            /* the instance's text, so a report shows what flipped (report_render.c) */
            cJSON_AddStringToObject(j, "text", txt.context);
            cJSON *chs = cJSON_AddArrayToObject(j, "choices");
            for (int c = 0; c < tk[i].n_choices; c++) cJSON_AddItemToArray(chs, cJSON_CreateString(txt.conts[c]));
            cJSON *lp = cJSON_AddArrayToObject(j, "choice_logprobs");
            cJSON *ntok = cJSON_AddArrayToObject(j, "choice_tokens");
            for (int c = 0; c < tk[i].n_choices; c++) {
                cJSON_AddItemToArray(lp, cJSON_CreateNumber(res[i].loglik[c]));
                cJSON_AddItemToArray(ntok, cJSON_CreateNumber(res[i].n_tokens[c]));
            }
            rc = write_line(af, j);
            cJSON_Delete(j);
        }
        task_mc_text_free(&txt);
    }
    sum->n_labeled = labeled;
    sum->acc = labeled ? (double)correct / labeled : NAN;
    sum->acc_norm = labeled ? (double)correct_norm / labeled : NAN;
done:
    free(items);
    free(res);
    free(ll);
    free(nt);
    free(gr);
    task_mc_tokens_free_all(tk, n);
    return rc;
}

/* ------------------------------------------------------------------------- */
/* generation                                                                 */

/* Scores instance i's generated text against its reference (met: exact match, ROUGE-1,
 * -2, -L) and adds its line to out (when not NULL). */
static int gen_score(const TaskSet *ts, int i, int np, long cut, const GenResult *r, const EvalOptions *o, StrBuf *out, double *met,
                     EvalSummary *sum) {
    const TaskGen *inst = &ts->gen[i];
    RougeResult rr;
    int rc = rouge_compute(inst->target, r->text, o->rouge_stem, &rr);
    if (rc == 0) {
        int ok = task_format_answer_rule(ts->format) == TASK_ANSWER_GSM8K ? answer_gsm8k_match(r->text, inst->answer)
                                                                           : answer_exact_match(r->text, inst->answer);
        met[0] = ok;
        met[1] = rr.rouge1.f1;
        met[2] = rr.rouge2.f1;
        met[3] = rr.rougeL.f1;
        sum->tokens += np + r->n_ids;
        if (out) {
            cJSON *j = cJSON_CreateObject();
            cJSON_AddItemToObject(j, "id", id_json(inst->id));
            cJSON_AddStringToObject(j, "prediction", r->text);
            cJSON_AddBoolToObject(j, "correct", ok);
            cJSON_AddNumberToObject(j, "score", rr.rouge1.f1);
            cJSON_AddNumberToObject(j, "rouge1", rr.rouge1.f1);
            cJSON_AddNumberToObject(j, "rouge2", rr.rouge2.f1);
            cJSON_AddNumberToObject(j, "rougeL", rr.rougeL.f1);
            cJSON_AddStringToObject(j, "target", inst->target);
            cJSON_AddStringToObject(j, "text", inst->prompt); /* the instance's input, for the report */
            if (cut > 0) cJSON_AddNumberToObject(j, "prompt_cut_bytes", (double)cut); /* --fit-with: its first bytes not read */
            rc = buf_line(out, j);
            cJSON_Delete(j);
        }
    }
    return rc;
}

const int *eval_prompt_fit(const int *prompt, int *np, int limit, int *buf) {
    if (*np <= limit) return prompt;
    buf[0] = prompt[0]; /* too long for the context: keep BOS and the most recent tokens */
    memmove(buf + 1, prompt + *np - (limit - 1), (size_t)(limit - 1) * sizeof *buf);
    *np = limit;
    return buf;
}

/* Across tokenizers (o->fit_tok): instances lo..hi's prompts cut in text to fit this
 * model's limit and the other model's, re-tokenized from the cut text. */
static int fit_prompts_text(const TaskSet *ts, const TaskPrompt *p, const Tokenizer *t, int limit, const EvalOptions *o, long lo,
                            long hi, TaskGenTokens *tk, long *cutb) {
    const Tokenizer *toks[2] = {t, o->fit_tok};
    int limits[2] = {limit, o->fit_context - o->max_tokens};
    if (limits[1] < 2) return err_set("--max-tokens %d leaves no room for a prompt in the other model's context of %d", o->max_tokens, o->fit_context);
    for (long i = lo; i < hi; i++) {
        TaskGenText txt;
        TaskGenTokens cut;
        size_t start = 0;
        if (task_gen_format(ts, (int)i, p, &txt) != 0) return -1;
        int rc = task_prompt_cut_text(txt.prompt, toks, limits, 2, &start);
        cutb[i - lo] = (long)start;
        if (rc == 0 && start > 0) {
            TaskGenText c = {txt.prompt + start, txt.target};
            rc = task_gen_tokenize_text(t, &c, 0, &cut);
            if (rc == 0) {
                free(tk[i].prompt);
                tk[i].prompt = cut.prompt;
                tk[i].n_prompt = cut.n_prompt;
                cut.prompt = NULL;
                task_gen_tokens_free(&cut);
            }
        }
        task_gen_text_free(&txt);
        if (rc != 0) return err_prefix("%s:%d: instance '%s'", ts->path, ts->gen[i].line, ts->gen[i].id);
    }
    return 0;
}

/* MPI ranks: rank r generates the instances of dist_shard's block r (batched: up to
 * o->gen_batch at a time, model/generate_batch.h); rank 0 gathers the
 * lines (in input order) and writes them; the metrics are summed in input order. */
static int eval_gen(const Model *m, const TaskSet *ts, const TaskPrompt *p, const Tokenizer *t, const EvalOptions *o,
                    int want_lines, AtomicFile *af, EvalSummary *sum) {
    int n = ts->n, rc = 0;
    TaskGenTokens *tk = NULL;
    int ctx = m->cfg.seq_len;
    if (o->gen_hook && model_generate_hook_ctx(o->gen_hook) < ctx) ctx = model_generate_hook_ctx(o->gen_hook);
    int limit = ctx - o->max_tokens;
    if (limit < 2) return err_set("--max-tokens %d leaves no room for a prompt in the model's context of %d", o->max_tokens, ctx);
    if (task_gen_tokenize(ts, p, t, 0, &tk) != 0) return -1;
    double *met = calloc((size_t)n * 4, sizeof *met);
    long lo, hi;
    dist_shard(n, dist_rank(), dist_size(), &lo, &hi);
    long *cutb = calloc((size_t)(hi > lo ? hi - lo : 1), sizeof *cutb); /* bytes cut in text (--fit-with) */
    if (!cutb || (o->fit_tok && fit_prompts_text(ts, p, t, limit, o, lo, hi, tk, cutb) != 0)) {
        if (!cutb) err_set("out of memory");
        free(cutb);
        free(met);
        task_gen_tokens_free_all(tk, n);
        return -1;
    }
    int nmine = (int)(hi - lo);
    GenRequest *req = calloc((size_t)(nmine ? nmine : 1), sizeof *req);
    GenResult *res = calloc((size_t)(nmine ? nmine : 1), sizeof *res);
    if (!met || !req || !res) { free(cutb); free(met); free(req); free(res); task_gen_tokens_free_all(tk, n); return err_set("out of memory"); }
    StrBuf lines = {0};
    GenOptions g;
    gen_options_default(&g);
    g.max_tokens = o->max_tokens;
    g.temperature = o->temperature;
    g.top_p = o->top_p;
    g.no_repeat_ngram = o->no_repeat_ngram;
    g.stops = (const char *const *)p->stops;
    g.n_stops = p->n_stops;
    g.lora = o->lora;
    g.kv_bf16 = o->kv_bf16;
    /* the prompts (fitted in place: BOS and the latest tokens), each instance its own
     * sampling stream (from the seed and its index: the same on any rank and width) */
    int max_len = 1;
    for (int i = (int)lo; i < hi; i++) {
        int np = tk[i].n_prompt;
        eval_prompt_fit(tk[i].prompt, &np, limit, tk[i].prompt);
        req[i - lo] = (GenRequest){tk[i].prompt, np, gen_seed(o->seed, i)};
        if (np + o->max_tokens > max_len) max_len = np + o->max_tokens;
    }
    if (max_len > ctx) max_len = ctx;
    int width = o->gen_batch > 0 ? o->gen_batch : o->gen_hook ? 0 : gen_batch_width_default(m, max_len, nmine);
    Progress pr;
    progress_init(&pr, "eval", "items", hi - lo, o->quiet);
    GenProgress gp = {&pr, 0};
    double t0 = progress_now();
    if (nmine) rc = o->gen_hook ? model_generate_batch_hook(o->gen_hook, t, req, nmine, &g, width, gen_progress_done, &gp, res)
                                : model_generate_batch(m, t, req, nmine, &g, width, gen_progress_done, &gp, res);
    for (int i = (int)lo; rc == 0 && i < hi; i++)
        rc = gen_score(ts, i, req[i - lo].n_prompt, cutb[i - lo], &res[i - lo], o, want_lines ? &lines : NULL, met + (size_t)i * 4, sum);
    for (int i = 0; i < nmine; i++) gen_result_free(&res[i]);
    free(res);
    free(req);
    free(cutb);
    sum->seconds = progress_now() - t0;
    if (rc == 0) progress_finish(&pr);
    /* an error on one rank stops the job (dist_free aborts it): no collective after it */
    int64_t tokens = sum->tokens;
    if (rc == 0 && dist_active()) rc = dist_allreduce_sum_f64(met, (size_t)n * 4) || dist_allreduce_sum_i64(&tokens, 1) ? -1 : 0;
    sum->tokens = (long)tokens;
    if (rc == 0 && want_lines) {
        char *all = NULL;
        size_t n_all = 0;
        rc = dist_gather_bytes(lines.p, lines.n, &all, &n_all);
        if (rc == 0 && af) rc = file_atomic_write(af, all, n_all);
        free(all);
    }
    double tot[4] = {0, 0, 0, 0};
    for (int i = 0; i < n; i++)
        for (int k = 0; k < 4; k++) tot[k] += met[(size_t)i * 4 + k];
    sum->exact_match = tot[0] / n;
    sum->rouge1 = tot[1] / n;
    sum->rouge2 = tot[2] / n;
    sum->rougeL = tot[3] / n;
    strbuf_free(&lines);
    free(met);
    task_gen_tokens_free_all(tk, n);
    return rc;
}

/* ------------------------------------------------------------------------- */

int eval_run(const Model *m, const Tokenizer *t, const EvalOptions *o, const char *out_path, EvalSummary *sum) {
    memset(sum, 0, sizeof *sum);
    EvalOptions quiet_opts = *o;
    if (dist_rank() > 0) { /* MPI ranks: rank 0 shows the progress and writes the file */
        quiet_opts.quiet = 1;
        o = &quiet_opts;
    }
    TaskSet ts, sub;
    TaskLoadOptions lo;
    task_load_options_default(&lo);
    lo.format = o->format;
    lo.skip_bad = o->skip_bad;
    if (task_set_load(&ts, o->task_path, &lo) != 0) return -1;
    if (o->limit > 0 && o->limit < ts.n) {
        int *idx = malloc((size_t)o->limit * sizeof *idx);
        if (!idx) { task_set_free(&ts); return err_set("out of memory"); }
        for (int i = 0; i < o->limit; i++) idx[i] = i;
        int rc = task_set_subset(&ts, idx, o->limit, &sub);
        free(idx);
        sub.n_skipped = ts.n_skipped;
        task_set_free(&ts);
        if (rc) return -1;
        ts = sub;
    }
    if (ts.n == 0) {
        task_set_free(&ts);
        return err_set("%s: no instances to evaluate", o->task_path);
    }
    sum->kind = ts.kind;
    sum->format = ts.format;
    sum->n = ts.n;
    sum->n_skipped = ts.n_skipped;
    TaskPrompt p;
    memset(&p, 0, sizeof p);
    int rc = task_prompt_setup(&p, &ts, o->prompt_file, o->prompt_tmpl, o->answer_tmpl, o->stops, o->n_stops);
    AtomicFile af;
    int have_af = 0;
    if (rc == 0 && out_path && dist_rank() == 0) {
        rc = file_atomic_open(&af, out_path);
        have_af = rc == 0;
    }
    if (rc == 0) rc = ts.kind == TASK_MC ? eval_mc(m, &ts, &p, t, o, have_af ? &af : NULL, sum)
                                         : eval_gen(m, &ts, &p, t, o, out_path != NULL, have_af ? &af : NULL, sum);
    if (have_af) {
        if (rc == 0) rc = file_atomic_commit(&af);
        else file_atomic_abort(&af);
    }
    sum->tokens_per_s = sum->seconds > 0 ? (double)sum->tokens / sum->seconds : 0;
    task_prompt_free(&p);
    task_set_free(&ts);
    return rc;
}
