/* cli/cmd_export.c - `muscle export`: adapters and models for other engines (docs/export.md). */
#include "cli.h"
#include "core/error.h"
#include "core/file.h"
#include "export/export.h"
#include "model/generate.h"
#include "model/lora_peft.h"

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
static int copy_tokenizer(const Tokenizer *t, const char *found, const char *dir) {
    const char *kind = tok_kind(t);
    const char *name = !strcmp(kind, "sentencepiece") ? "tokenizer.model" : !strcmp(kind, "tokenizer.json") ? "tokenizer.json" : "tokenizer.bin";
    size_t n;
    char *bytes = file_read_all(found, &n, 0);
    char *dst = file_join(dir, name);
    int rc = (bytes && dst) ? file_write_all_atomic(dst, bytes, n) : -1;
    free(bytes);
    free(dst);
    return rc;
}

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
    Model m;
    ModelLoadOptions lo = {KW_F32, what == EX_MERGED};
    LoraAdapter lora;
    memset(&lora, 0, sizeof lora);
    Tokenizer *t = NULL;
    char *found = NULL;
    int rc = -1, have_model = 0, have_lora = 0;
    if (model_load(&m, model, &lo) != 0) goto done;
    have_model = 1;
    if (adapter) {
        if (lora_load_peft(&lora, &m.cfg, adapter) != 0) goto done;
        have_lora = 1;
        if (lora_check(&lora, &m) != 0) {
            err_prefix("%s does not fit %s", adapter, model);
            goto done;
        }
    }
    switch (what) {
    case EX_GGUF_LORA:
        rc = export_lora_gguf(&lora, &m, out, adapter);
        break;
    case EX_GGUF:
        t = model_tokenizer_load_ex(&m, tokp, &found);
        if (!t) {
            err_prefix("%s: llama.cpp needs the vocabulary (name the tokenizer with --tokenizer)", out);
            break;
        }
        rc = export_model_gguf(&m, t, out, dtype, model);
        break;
    case EX_MERGED:
        t = model_tokenizer_load_ex(&m, tokp, &found);
        rc = export_merged_hf(&m, &lora, dir.tmp, dtype);
        if (rc == 0 && found) rc = copy_tokenizer(t, found, dir.tmp);
        else if (rc == 0 && !quiet)
            fprintf(stderr, "muscle export: note: no tokenizer file copied into %s (%s)\n", out,
                    t ? "the tokenizer is embedded in the model file" : err_msg());
        if (rc == 0) rc = file_atomic_dir_commit(&dir);
        break;
    }
    if (rc == 0 && !quiet) fprintf(stderr, "muscle export: wrote %s\n", out);
done:
    if (what == EX_MERGED && rc != 0) file_atomic_dir_abort(&dir);
    free(found);
    if (t) model_tokenizer_free(&m, t);
    if (have_lora) lora_free(&lora);
    if (have_model) model_free(&m);
    return rc == 0 ? 0 : cli_fail();
}
