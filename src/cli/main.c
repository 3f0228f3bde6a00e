/* cli/main.c - `muscle COMMAND ...`: dispatch, shared option helpers. */
#include "cli.h"
#include "core/num.h"
#include "core/cpu.h"
#include "core/dist.h"
#include "core/error.h"
#include "model/model.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *usage =
    "usage: muscle COMMAND [options]   (muscle COMMAND --help for each)\n"
    "\n"
    "commands:\n"
    "  info MODEL            architecture, parameter count, tensor types, tokenizer\n"
    "  tokenize              text -> token ids\n"
    "  generate              text generation (greedy or sampled) with a KV cache\n"
    "  score                 per-token log-probabilities of a text, as JSON\n"
    "  convert IN OUT        write a model as a Hugging Face safetensors folder\n"
    "  eval                  evaluate a model (+ adapter) on a task file: predictions + summary\n"
    "  compare OLD NEW       negative flips and other update metrics of two prediction files\n"
    "  pretrain              full-parameter training (new model or continued pretraining)\n"
    "  finetune              train a LoRA adapter (PEFT folder) on a frozen base model;\n"
    "                        --compat: a compatibility adapter (MUSCLE and baselines)\n"
    "  update                a base-model update end to end: adapters, compatibility\n"
    "                        adapters, evaluation, comparison, report\n"
    "  report MANIFEST       M1, M2 and compatibility methods over seeds: report.json/.md/.html\n"
    "  gate REPORT.json      exit 1 when an update flips more than allowed (release pipelines)\n"
    "  export WHAT           an adapter or model for other engines: gguf-lora, gguf, merged\n"
    "\n"
    "--max-memory SIZE (e.g. 800M, 2G), on any command, refuses models larger than SIZE.\n"
    "MODEL is a llama2.c checkpoint, a Hugging Face folder (config.json + safetensors)\n"
    "or a GGUF file; the format is read from the content.\n";

int cli_fail(void) {
    if (dist_size() > 1 && dist_rank() > 0) fprintf(stderr, "muscle: error: rank %d: %s\n", dist_rank(), err_msg());
    else fprintf(stderr, "muscle: error: %s\n", err_msg());
    return 1;
}

int cli_usage_error(const char *cmd, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "muscle %s: ", cmd);
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, " (see muscle %s --help)\n", cmd);
    va_end(ap);
    return 2;
}

int cli_usage_fail(const char *cmd, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fputs("muscle: error: ", stderr);
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, " (see muscle %s --help)\n", cmd);
    va_end(ap);
    return 2;
}

int cli_parse_int(const char *opt, const char *s, long lo, long hi, long *out) {
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < lo || v > hi) {
        fprintf(stderr, "muscle: error: %s '%s': expected an integer in %ld..%ld\n", opt, s, lo, hi);
        return -1;
    }
    *out = v;
    return 0;
}

int cli_parse_float(const char *opt, const char *s, double *out) {
    double v;
    size_t n = num_parse_decimal(s, &v);
    if (n == 0 || s[n]) {
        fprintf(stderr, "muscle: error: %s '%s': expected a number (decimal, like 0.5 or 1e-3)\n", opt, s);
        return -1;
    }
    *out = v;
    return 0;
}

int main(int argc, char **argv) {
    cpu_blas_fixup(argv);
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
        fputs(usage, argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    cpu_flush_denormals();
    /* --max-memory SIZE (anywhere on the line, any command): cap on model memory */
    for (int i = 1; i + 1 < argc; i++) {
        if (strcmp(argv[i], "--max-memory") != 0) continue;
        char *end;
        double v = strtod(argv[i + 1], &end), mul = 1;
        if (*end == 'K' || *end == 'k') mul = 1e3, end++;
        else if (*end == 'M' || *end == 'm') mul = 1e6, end++;
        else if (*end == 'G' || *end == 'g') mul = 1e9, end++;
        if (*end == 'B') end++;
        if (end == argv[i + 1] || *end || !(v > 0)) {
            fprintf(stderr, "muscle: error: --max-memory '%s': expected a size such as 800M or 2G\n", argv[i + 1]);
            return 2;
        }
        model_set_memory_limit((uint64_t)(v * mul));
        memmove(argv + i, argv + i + 2, (size_t)(argc - i - 2) * sizeof *argv);
        argc -= 2;
        argv[argc] = NULL;
        break;
    }
    const char *cmd = argv[1];
    struct { const char *name; int (*fn)(int, char **); } cmds[] = {
        {"info", cmd_info}, {"tokenize", cmd_tokenize}, {"generate", cmd_generate},
        {"score", cmd_score}, {"convert", cmd_convert}, {"compare", cmd_compare}, {"eval", cmd_eval},
        {"pretrain", cmd_pretrain}, {"finetune", cmd_finetune},
        {"update", cmd_update},
        {"report", cmd_report}, {"gate", cmd_gate},
        {"export", cmd_export},
    };
    /* the commands that run distributed when started by an MPI launcher (docs/distributed.md);
     * the others run as one plain process on each rank */
    int dist = !strcmp(cmd, "pretrain") || !strcmp(cmd, "finetune") || !strcmp(cmd, "eval") || !strcmp(cmd, "update");
    for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++) {
        if (strcmp(cmd, cmds[i].name)) continue;
        if (dist && dist_init(NULL, NULL) != 0) return cli_fail();
        int rc = cmds[i].fn(argc - 1, argv + 1);
        if (dist) dist_free(rc);
        return rc;
    }
    fprintf(stderr, "muscle: unknown command '%s'\n%s", cmd, usage);
    return 2;
}
