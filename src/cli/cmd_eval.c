/* cli/cmd_eval.c - `muscle eval`: a model (and adapter) on a task file -> predictions + summary. */
#include "cli.h"
#include "core/dist.h"
#include "core/error.h"
#include "eval/eval.h"
#include "model/generate.h"
#include "model/lora_peft.h"

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
    "  --no-stem             ROUGE without Porter stemming\n"
    "  --batch N             multiple choice: packed rows per forward pass (default 8);\n"
    "                        generation: sequences decoded together (default: 16, fewer for large models)\n"
    "  --bf16                compute with bf16 weights\n"
    "  --quiet               no progress\n";

int cmd_eval(int argc, char **argv) {
    const char *model = NULL, *adapter = NULL, *tokp = NULL, *out = NULL, *fmt = NULL;
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
        {0, 0, 0, 0}};
    optind = 1;
    while ((c = getopt_long(argc, argv, "m:a:t:k:o:f:p:A:F:l:Sn:T:P:s:x:r:Nb:Bqh", opts, NULL)) != -1) {
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
        case 'q': o.quiet = 1; break;
        case 'h': fputs(eval_help, stdout); return 0;
        default: return cli_usage_error("eval", "bad option");
        }
    }
    if (!model) return cli_usage_error("eval", "--model is required");
    if (!o.task_path) return cli_usage_error("eval", "--task is required");
    if (optind != argc) return cli_usage_error("eval", "unexpected argument '%s'", argv[optind]);
    if (fmt && task_format_from_name(fmt, &o.format) != 0) return cli_fail();
    o.stops = stops;
    o.n_stops = nstops;
    Model m;
    ModelLoadOptions lo = {bf16 ? KW_BF16 : KW_F32, 0};
    if (model_load(&m, model, &lo) != 0) return cli_fail();
    Tokenizer *t = model_tokenizer_load(&m, tokp);
    LoraAdapter lora;
    memset(&lora, 0, sizeof lora);
    int rc = t ? 0 : -1;
    if (rc == 0 && adapter) {
        rc = lora_load_peft(&lora, &m.cfg, adapter);
        if (rc == 0) o.lora = &lora;
    }
    EvalSummary s;
    if (rc == 0) rc = eval_run(&m, t, &o, out, &s);
    if (rc == 0 && dist_rank() == 0) { /* MPI ranks: rank 0 reports for the job */
        printf("{\"task\":\"%s\",\"format\":\"%s\",\"kind\":\"%s\",\"n\":%d,\"skipped\":%d", o.task_path,
               task_format_name(s.format), s.kind == TASK_MC ? "multiple_choice" : "generation", s.n, s.n_skipped);
        if (s.kind == TASK_MC) {
            if (s.n_labeled) printf(",\"acc\":%.6f,\"acc_norm\":%.6f,\"labeled\":%d", s.acc, s.acc_norm, s.n_labeled);
            else printf(",\"acc\":null,\"acc_norm\":null,\"labeled\":0");
        } else {
            printf(",\"exact_match\":%.6f,\"rouge1\":%.6f,\"rouge2\":%.6f,\"rougeL\":%.6f", s.exact_match, s.rouge1, s.rouge2, s.rougeL);
        }
        printf(",\"model\":\"%s\",\"adapter\":%s%s%s,\"preds\":%s%s%s,\"seconds\":%.3f,\"tokens_per_s\":%.1f}\n", model,
               adapter ? "\"" : "", adapter ? adapter : "null", adapter ? "\"" : "", out ? "\"" : "", out ? out : "null",
               out ? "\"" : "", s.seconds, s.tokens_per_s);
    }
    if (adapter) lora_free(&lora);
    if (t) model_tokenizer_free(&m, t);
    model_free(&m);
    return rc == 0 ? 0 : cli_fail();
}
