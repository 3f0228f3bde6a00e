/* cli/cmd_eval.c - `muscle eval`: a model (and adapter) on a task file -> predictions + summary. */
#include "cli.h"
#include "core/file.h"
#include "core/dist.h"
#include "core/error.h"
#include "compat/compat_xtok.h"
#include "eval/eval.h"
#include "model/generate.h"
#include "update/bundle.h"

#include <cJSON.h>

#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *eval_help =
    "usage: muscle eval --model M [--adapter A] --task FILE [--out PREDS.jsonl] [options]\n"
    "Evaluates M (+ adapter A) on a task file. Multiple choice: each choice's summed\n"
    "log-likelihood as a continuation of the context, prediction = argmax (accuracy and\n"
    "length-normalised accuracy). Generation: greedy decoding, exact match after answer\n"
    "extraction and ROUGE-1/2/L. One JSON line per instance goes to PREDS; a summary JSON\n"
    "to stdout; progress to stderr.\n"
    "  --tokenizer T         tokenizer file (default: beside the model)\n"
    "  --format NAME         task format (default: detected): native-mc, native-gen, hellaswag,\n"
    "                        piqa, arc, boolq, race, gsm8k, dialogsum, llm-adapters\n"
    "  --prompt TEMPLATE     prompt/context template, e.g. 'Question: {question}\\nAnswer:'\n"
    "  --answer TEMPLATE     continuation template, e.g. ' {choice}' or ' {target}'\n"
    "  --prompt-file F       JSON with \"prompt\", \"answer\", \"stop\"\n"
    "  --limit N             first N instances only\n"
    "  --skip-bad            skip (and count) records that do not fit the format\n"
    "  --max-tokens N        generation: new tokens at most (default 128)\n"
    "  --temperature X --top-p P --seed N   sampling (default greedy)\n"
    "  --stop S              extra stop string (repeatable)\n"
    "  --no-repeat-ngram N   generation: never repeat an N-gram\n"
    "  --kv-bf16             generation: KV cache in bf16 (half its memory; ids may differ\n"
    "                        from the fp32 cache at near-ties)\n"
    "  --no-stem             ROUGE without Porter stemming\n"
    "  --fit-with M2         generation across tokenizers: when M2's tokenizer differs, a prompt\n"
    "                        too long for either model is cut in text (at a word start) to fit\n"
    "                        both contexts, so both read the same text (loads M2)\n"
    "  --batch N             multiple choice: packed rows per forward pass (default 8);\n"
    "                        generation: sequences decoded together (default: 16, fewer for large models)\n"
    "  --bf16                compute with bf16 weights\n"
    "  --quiet               no progress\n";

/* A number printed with a fixed precision (as it always was), or null when not finite. */
static void add_fixed(cJSON *j, const char *key, const char *fmt, double v) {
    char buf[64];
    if (!isfinite(v)) {
        cJSON_AddNullToObject(j, key);
        return;
    }
    snprintf(buf, sizeof buf, fmt, v);
    cJSON_AddRawToObject(j, key, buf);
}

static void add_str_or_null(cJSON *j, const char *key, const char *v) {
    if (v) cJSON_AddStringToObject(j, key, v);
    else cJSON_AddNullToObject(j, key);
}

/* The summary line on stdout: one JSON object (strings escaped by cJSON). */
static int print_summary(const EvalOptions *o, const EvalSummary *s, const char *model, const char *adapter, const char *out,
                         const ModelBundle *b) {
    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "task", o->task_path);
    cJSON_AddStringToObject(j, "format", task_format_name(s->format));
    cJSON_AddStringToObject(j, "kind", s->kind == TASK_MC ? "multiple_choice" : "generation");
    cJSON_AddNumberToObject(j, "n", s->n);
    cJSON_AddNumberToObject(j, "skipped", s->n_skipped);
    if (s->kind == TASK_MC) {
        add_fixed(j, "acc", "%.6f", s->n_labeled ? s->acc : NAN);
        add_fixed(j, "acc_norm", "%.6f", s->n_labeled ? s->acc_norm : NAN);
        cJSON_AddNumberToObject(j, "labeled", s->n_labeled);
    } else {
        add_fixed(j, "exact_match", "%.6f", s->exact_match);
        add_fixed(j, "rouge1", "%.6f", s->rouge1);
        add_fixed(j, "rouge2", "%.6f", s->rouge2);
        add_fixed(j, "rougeL", "%.6f", s->rougeL);
    }
    cJSON_AddStringToObject(j, "model", model);
    /* the base's family and tokenizer (the report of an update across tokenizers names both) */
    char base[160];
    snprintf(base, sizeof base, "%s, dim %d, %d layers; %s tokenizer, %d pieces", b->model.cfg.arch->model_type, b->model.cfg.dim,
             b->model.cfg.n_layers, tok_kind(b->tok), tok_vocab_size(b->tok));
    cJSON_AddStringToObject(j, "base", base);
    add_str_or_null(j, "adapter", adapter);
    add_str_or_null(j, "preds", out);
    add_fixed(j, "seconds", "%.3f", s->seconds);
    add_fixed(j, "tokens_per_s", "%.1f", s->tokens_per_s);
    char *text = cJSON_PrintUnformatted(j);
    cJSON_Delete(j);
    if (!text) return err_set("out of memory");
    puts(text);
    free(text);
    return 0;
}

int cmd_eval(int argc, char **argv) {
    const char *model = NULL, *adapter = NULL, *tokp = NULL, *out = NULL, *fmt = NULL, *fit_with = NULL;
    EvalOptions o;
    eval_options_default(&o);
    const char *stops[16];
    int nstops = 0, bf16 = 0, c;
    long lv;
    double dv;
    static struct option opts[] = {
        {"model", 1, 0, 'm'}, {"adapter", 1, 0, 'a'}, {"tokenizer", 1, 0, 't'}, {"task", 1, 0, 'k'}, {"out", 1, 0, 'o'},
        {"format", 1, 0, 'f'}, {"prompt", 1, 0, 'p'}, {"answer", 1, 0, 'A'}, {"prompt-file", 1, 0, 'F'},
        {"limit", 1, 0, 'l'}, {"skip-bad", 0, 0, 'S'}, {"max-tokens", 1, 0, 'n'}, {"temperature", 1, 0, 'T'},
        {"top-p", 1, 0, 'P'}, {"seed", 1, 0, 's'}, {"stop", 1, 0, 'x'}, {"no-repeat-ngram", 1, 0, 'r'},
        {"no-stem", 0, 0, 'N'}, {"batch", 1, 0, 'b'}, {"bf16", 0, 0, 'B'}, {"quiet", 0, 0, 'q'}, {"help", 0, 0, 'h'},
        {"fit-with", 1, 0, 'W'}, {"kv-bf16", 0, 0, 'K'},
        {0, 0, 0, 0}};
    optind = 1;
    while ((c = getopt_long(argc, argv, "m:a:t:k:o:f:p:A:F:l:Sn:T:P:s:x:r:Nb:BqhW:K", opts, NULL)) != -1) {
        switch (c) {
        case 'm': model = optarg; break;
        case 'a': adapter = optarg; break;
        case 't': tokp = optarg; break;
        case 'k': o.task_path = optarg; break;
        case 'o': out = optarg; break;
        case 'f': fmt = optarg; break;
        case 'p': o.prompt_tmpl = optarg; break;
        case 'A': o.answer_tmpl = optarg; break;
        case 'F': o.prompt_file = optarg; break;
        case 'l': if (cli_parse_int("--limit", optarg, 1, 1L << 30, &lv)) return 2; o.limit = (int)lv; break;
        case 'S': o.skip_bad = 1; break;
        case 'n': if (cli_parse_int("--max-tokens", optarg, 1, 1 << 20, &lv)) return 2; o.max_tokens = (int)lv; break;
        case 'T': if (cli_parse_float("--temperature", optarg, &dv) || dv < 0) return 2; o.temperature = (float)dv; break;
        case 'P': if (cli_parse_float("--top-p", optarg, &dv) || dv <= 0 || dv > 1) return 2; o.top_p = (float)dv; break;
        case 's': if (cli_parse_int("--seed", optarg, 0, 0x7fffffffL, &lv)) return 2; o.seed = (uint64_t)lv; break;
        case 'x': if (nstops == 16) return cli_usage_error("eval", "at most 16 --stop strings"); stops[nstops++] = optarg; break;
        case 'r': if (cli_parse_int("--no-repeat-ngram", optarg, 0, 64, &lv)) return 2; o.no_repeat_ngram = (int)lv; break;
        case 'N': o.rouge_stem = 0; break;
        case 'b': if (cli_parse_int("--batch", optarg, 1, 1024, &lv)) return 2; o.max_batch = o.gen_batch = (int)lv; break;
        case 'B': bf16 = 1; break;
        case 'K': o.kv_bf16 = 1; break;
        case 'q': o.quiet = 1; break;
        case 'W': fit_with = optarg; break;
        case 'h': fputs(eval_help, stdout); return 0;
        default: return cli_usage_error("eval", "bad option");
        }
    }
    if (!model) return cli_usage_error("eval", "--model is required");
    if (!o.task_path) return cli_usage_error("eval", "--task is required");
    if (optind != argc) return cli_usage_error("eval", "unexpected argument '%s'", argv[optind]);
    if (out && (file_same(out, o.task_path) || (o.prompt_file && file_same(out, o.prompt_file))))
        return cli_usage_fail("eval", "--out %s is an input of this run: give another file", out);
    if (fmt && task_format_from_name(fmt, &o.format) != 0) return cli_fail();
    o.stops = stops;
    o.n_stops = nstops;
    ModelBundle b;
    BundleSpec bs = {.model = model, .tokenizer = tokp, .adapter = adapter, .bf16 = bf16};
    if (model_bundle_load(&b, &bs) != 0) return cli_fail();
    o.lora = model_bundle_adapter(&b);
    ModelBundle fb; /* --fit-with: the other model's tokenizer and context */
    memset(&fb, 0, sizeof fb);
    if (fit_with) {
        BundleSpec fs = {.model = fit_with, .model_label = "--fit-with", .tok = BUNDLE_TOK_OPTIONAL};
        if (model_bundle_load(&fb, &fs) != 0) {
            model_bundle_free(&b);
            return cli_fail();
        }
        if (fb.tok && !compat_tok_same(b.tok, fb.tok)) { /* one tokenizer (or none beside it): the token cut */
            o.fit_tok = fb.tok;
            o.fit_context = fb.model.cfg.seq_len;
        }
    }
    EvalSummary s;
    int rc = eval_run(&b.model, b.tok, &o, out, &s);
    if (fit_with) model_bundle_free(&fb);
    if (rc == 0 && dist_rank() == 0) rc = print_summary(&o, &s, model, adapter, out, &b); /* MPI ranks: rank 0 reports for the job */
    model_bundle_free(&b);
    return rc == 0 ? 0 : cli_fail();
}
