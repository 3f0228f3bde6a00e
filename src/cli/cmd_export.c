/* cli/cmd_export.c - `muscle export`: adapters and models for other engines (docs/export.md). */
#include "cli.h"
#include "core/error.h"
#include "core/file.h"
#include "export/export.h"
#include "model/generate.h"
#include "update/bundle.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *export_help =
    "usage: muscle export WHAT --model BASE [--adapter DIR] --out PATH [options]\n"
    "Writes an adapter or a model for another engine. WHAT:\n"
    "  gguf-lora   the PEFT adapter DIR (task or compatibility adapter, trained on BASE)\n"
    "              as a GGUF LoRA adapter for llama.cpp (llama-cli --lora PATH)\n"
    "  gguf        BASE (and its tokenizer) as a GGUF model for llama.cpp; with --adapter,\n"
    "              the adapter is NOT merged (use merged + convert for that)\n"
    "  merged      BASE with the adapter folded into the weights (W + scaling B A at fp32,\n"
    "              then one cast to --dtype) as a Hugging Face folder, with the tokenizer\n"
    "options:\n"
    "  --dtype f32|f16|bf16  weights of gguf and merged (default f32)\n"
    "  --tokenizer T         the tokenizer file (default: found beside BASE)\n"
    "  --force               replace an existing merged folder\n"
    "  --quiet               no note on stderr\n";

typedef enum { EX_GGUF_LORA, EX_GGUF, EX_MERGED } ExportWhat;

/* Copies the tokenizer file muscle found for the model into the merged folder. */
int cmd_export(int argc, char **argv) {
    const char *model = NULL, *adapter = NULL, *out = NULL, *tokp = NULL, *dt = "f32";
    int force = 0, quiet = 0, c;
    static struct option opts[] = {{"model", 1, 0, 'm'}, {"adapter", 1, 0, 'a'}, {"out", 1, 0, 'o'},
                                   {"dtype", 1, 0, 'd'}, {"tokenizer", 1, 0, 't'}, {"force", 0, 0, 'f'},
                                   {"quiet", 0, 0, 'q'}, {"help", 0, 0, 'h'},     {0, 0, 0, 0}};
    optind = 1;
    while ((c = getopt_long(argc, argv, "m:a:o:d:t:fqh", opts, NULL)) != -1) {
        switch (c) {
        case 'm': model = optarg; break;
        case 'a': adapter = optarg; break;
        case 'o': out = optarg; break;
        case 'd': dt = optarg; break;
        case 't': tokp = optarg; break;
        case 'f': force = 1; break;
        case 'q': quiet = 1; break;
        case 'h': fputs(export_help, stdout); return 0;
        default: return cli_usage_error("export", "bad option");
        }
    }
    if (argc - optind != 1) return cli_usage_error("export", "expected WHAT: gguf-lora, gguf or merged");
    const char *what_s = argv[optind];
    ExportWhat what;
    if (!strcmp(what_s, "gguf-lora")) what = EX_GGUF_LORA;
    else if (!strcmp(what_s, "gguf")) what = EX_GGUF;
    else if (!strcmp(what_s, "merged")) what = EX_MERGED;
    else return cli_usage_error("export", "WHAT '%s': expected gguf-lora, gguf or merged", what_s);
    if (!model) return cli_usage_error("export", "--model BASE is required");
    if (!out) return cli_usage_error("export", "--out PATH is required");
    if (what != EX_GGUF && !adapter) return cli_usage_error("export", "%s needs --adapter DIR (a PEFT folder)", what_s);
    DType dtype = DT_COUNT;
    if (!strcmp(dt, "f32")) dtype = DT_F32;
    else if (!strcmp(dt, "f16")) dtype = DT_F16;
    else if (!strcmp(dt, "bf16")) dtype = DT_BF16;
    else return cli_usage_error("export", "--dtype '%s': expected f32, f16 or bf16", dt);

    AtomicDir dir;
    if (what == EX_MERGED && file_atomic_dir_open(&dir, out, force) != 0) return cli_fail();
    /* the vocabulary: required in a GGUF model, copied into a merged folder when there is
     * a file of it, not needed by a GGUF adapter */
    BundleSpec bs = {.model = model, .tokenizer = tokp, .adapter = adapter, .writable = what == EX_MERGED,
                     .tok = what == EX_GGUF ? BUNDLE_TOK_REQUIRED : what == EX_MERGED ? BUNDLE_TOK_OPTIONAL : BUNDLE_TOK_NONE};
    ModelBundle b;
    int rc = model_bundle_load(&b, &bs);
    if (rc != 0) {
        if (what == EX_GGUF) err_prefix("%s: llama.cpp needs the vocabulary (name the tokenizer with --tokenizer)", out);
        if (what == EX_MERGED) file_atomic_dir_abort(&dir);
        return cli_fail();
    }
    switch (what) {
    case EX_GGUF_LORA:
        rc = export_lora_gguf(&b.adapter, &b.model, out, adapter);
        break;
    case EX_GGUF:
        rc = export_model_gguf(&b.model, b.tok, out, dtype, model);
        if (rc == 0 && !quiet && b.model.cfg.sliding_window > 0 && !strcmp(export_gguf_arch(&b.model), "llama"))
            fprintf(stderr, "muscle export: note: %s.attention.sliding_window = %d is written, but llama.cpp's llama "
                            "graph ignores it: beyond %d tokens llama.cpp attends to the whole context\n",
                    export_gguf_arch(&b.model), b.model.cfg.sliding_window, b.model.cfg.sliding_window);
        break;
    case EX_MERGED:
        rc = export_merged_hf(&b.model, &b.adapter, dir.tmp, dtype);
        if (rc == 0 && b.tok_path) rc = model_bundle_copy_tokenizer(&b, dir.tmp);
        else if (rc == 0 && !quiet)
            fprintf(stderr, "muscle export: note: no tokenizer file copied into %s (%s)\n", out,
                    b.tok ? "the tokenizer is embedded in the model file" : b.tok_error);
        if (rc == 0) rc = file_atomic_dir_commit(&dir);
        else file_atomic_dir_abort(&dir);
        break;
    }
    if (rc == 0 && !quiet) fprintf(stderr, "muscle export: wrote %s\n", out);
    model_bundle_free(&b);
    return rc == 0 ? 0 : cli_fail();
}
