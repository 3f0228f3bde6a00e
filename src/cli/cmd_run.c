/* cli/cmd_run.c - commands that run a model: info, tokenize, generate, score. */
#include "cli.h"
#include "core/error.h"
#include "kernel/matmul.h"
#include "model/forward.h"
#include "model/generate.h"
#include "update/bundle.h"
#include "gen_prompts.h"

#include <cJSON.h>
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------------- */
/* shared: loading a model, its tokenizer and an adapter (update/bundle.h)    */

typedef struct {
    const char *model, *tokenizer, *adapter;
    int bf16;
} ModelArgs;

static int load_model(const ModelArgs *a, ModelBundle *b) {
    BundleSpec s = {.model = a->model, .tokenizer = a->tokenizer, .adapter = a->adapter, .bf16 = a->bf16};
    return model_bundle_load(b, &s);
}

/* ------------------------------------------------------------------------- */
/* info                                                                       */

static const char *info_help =
    "usage: muscle info MODEL [--tokenizer T] [--json]\n"
    "       muscle info --cpu\n"
    "Prints the architecture, parameter count, tensor types and tokenizer of MODEL.\n"
    "--cpu: which instruction set and implementation each kind of matrix product uses\n"
    "on this CPU (MUSCLE_KERNEL caps the level; MUSCLE_DNNL=0|1 forces the bf16 engine).\n";

int cmd_info(int argc, char **argv) {
    ModelArgs a = {0};
    int json = 0, cpu = 0;
    static struct option opts[] = {{"tokenizer", 1, 0, 't'}, {"json", 0, 0, 'j'}, {"cpu", 0, 0, 'c'}, {"help", 0, 0, 'h'}, {0, 0, 0, 0}};
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "t:jh", opts, NULL)) != -1) {
        if (c == 't') a.tokenizer = optarg;
        else if (c == 'j') json = 1;
        else if (c == 'c') cpu = 1;
        else if (c == 'h') { fputs(info_help, stdout); return 0; }
        else return cli_usage_error("info", "bad option");
    }
    if (cpu) {
        if (optind != argc) return cli_usage_error("info", "--cpu takes no MODEL");
        char rep[2048];
        kmm_dispatch_report(rep, sizeof rep);
        fputs(rep, stdout);
        return 0;
    }
    if (optind != argc - 1) return cli_usage_error("info", "expected one MODEL");
    a.model = argv[optind];
    ModelBundle b;
    BundleSpec bs = {.model = a.model, .tokenizer = a.tokenizer, .tok = BUNDLE_TOK_OPTIONAL};
    if (model_bundle_load(&b, &bs) != 0) return cli_fail();
    const Model *mp = &b.model;
    const Tokenizer *t = b.tok;
    char tokinfo[300];
    if (t) snprintf(tokinfo, sizeof tokinfo, "%s, %d pieces, bos %d, eos %d", tok_kind(t), tok_vocab_size(t), tok_bos_id(t), tok_eos_id(t));
    else snprintf(tokinfo, sizeof tokinfo, "none (%s)", b.tok_error);
    const ModelConfig *k = &mp->cfg;
    uint64_t np = model_param_count(mp);
    if (json) { /* through cJSON: names and kinds come from files */
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "format", model_format_name(mp->format));
        cJSON_AddStringToObject(o, "family", k->arch->model_type);
        const struct { const char *key; int v; } ints[] = {{"dim", k->dim}, {"hidden_dim", k->hidden_dim}, {"n_layers", k->n_layers},
                                                          {"n_heads", k->n_heads}, {"n_kv_heads", k->n_kv_heads},
                                                          {"head_dim", k->head_dim}, {"vocab_size", k->vocab_size},
                                                          {"seq_len", k->seq_len}};
        for (size_t i = 0; i < sizeof ints / sizeof ints[0]; i++) cJSON_AddNumberToObject(o, ints[i].key, ints[i].v);
        /* float settings as their shortest spelling (1e-05, not the float's 9.99999974737875e-06) */
        char num[32];
        snprintf(num, sizeof num, "%g", (double)k->rope_theta);
        cJSON_AddNumberToObject(o, "rope_theta", strtod(num, NULL));
        snprintf(num, sizeof num, "%g", (double)k->norm_eps);
        cJSON_AddNumberToObject(o, "norm_eps", strtod(num, NULL));
        cJSON_AddBoolToObject(o, "tied", k->tied);
        cJSON_AddStringToObject(o, "rope", k->rope == ROPE_HALF ? "half" : "interleaved");
        cJSON_AddNumberToObject(o, "params", (double)np);
        cJSON_AddStringToObject(o, "stored_type", dtype_name(mp->stored_type));
        if (t) cJSON_AddStringToObject(o, "tokenizer", tok_kind(t));
        else cJSON_AddNullToObject(o, "tokenizer");
        char *js = cJSON_PrintUnformatted(o);
        cJSON_Delete(o);
        if (!js) {
            model_bundle_free(&b);
            err_set("out of memory");
            return cli_fail();
        }
        puts(js);
        free(js);
    } else {
        printf("model:       %s\n", a.model);
        printf("format:      %s\n", model_format_name(mp->format));
        printf("arch:        %s, dim %d, hidden %d, %d layers, %d heads (%d kv heads, head dim %d)\n", k->arch->model_type, k->dim,
               k->hidden_dim,
               k->n_layers, k->n_heads, k->n_kv_heads, k->head_dim);
        printf("vocab:       %d, context %d\n", k->vocab_size, k->seq_len);
        printf("rope:        %s pairs, theta %g; %s eps %g\n", k->rope == ROPE_HALF ? "half-split" : "interleaved",
               (double)k->rope_theta, k->arch->norm == ARCH_NORM_LAYER ? "layernorm" : "rmsnorm", (double)k->norm_eps);
        printf("classifier:  %s\n", k->tied ? "tied to the embedding" : "separate");
        printf("parameters:  %llu (%.2fM)\n", (unsigned long long)np, (double)np / 1e6);
        printf("tensors:     %s\n", dtype_name(mp->stored_type));
        printf("tokenizer:   %s\n", tokinfo);
    }
    model_bundle_free(&b);
    return 0;
}

/* ------------------------------------------------------------------------- */
/* tokenize                                                                   */

static const char *tokenize_help =
    "usage: muscle tokenize --tokenizer T [--bos] [--eos] --text S\n"
    "Prints the token ids of S, space-separated. T is a tokenizer file (tokenizer.model,\n"
    "tokenizer.json, llama2.c tokenizer.bin) or a model whose tokenizer to use.\n";

int cmd_tokenize(int argc, char **argv) {
    const char *tp = NULL, *text = NULL;
    int bos = 0, eos = 0, c;
    static struct option opts[] = {{"tokenizer", 1, 0, 't'}, {"text", 1, 0, 's'}, {"bos", 0, 0, 'b'},
                                   {"eos", 0, 0, 'e'}, {"help", 0, 0, 'h'}, {0, 0, 0, 0}};
    optind = 1;
    while ((c = getopt_long(argc, argv, "t:s:beh", opts, NULL)) != -1) {
        if (c == 't') tp = optarg;
        else if (c == 's') text = optarg;
        else if (c == 'b') bos = 1;
        else if (c == 'e') eos = 1;
        else if (c == 'h') { fputs(tokenize_help, stdout); return 0; }
        else return cli_usage_error("tokenize", "bad option");
    }
    if (!tp) return cli_usage_error("tokenize", "--tokenizer is required");
    if (!text) return cli_usage_error("tokenize", "--text is required");
    if (optind != argc) return cli_usage_error("tokenize", "unexpected argument '%s'", argv[optind]);
    Tokenizer *t = tok_load(tp);
    ModelBundle b;
    int have_model = 0;
    if (!t) {
        /* maybe a model: use its tokenizer */
        char first[1024];
        snprintf(first, sizeof first, "%s", err_msg());
        BundleSpec bs = {.model = tp, .tok = BUNDLE_TOK_OPTIONAL};
        if (model_bundle_load(&b, &bs) != 0) {
            err_set("%s", first); /* not a model either: the tokenizer's error */
            return cli_fail();
        }
        if (!b.tok) {
            err_set("%s", b.tok_error);
            model_bundle_free(&b);
            return cli_fail();
        }
        have_model = 1;
        t = b.tok;
    }
    int *ids = NULL, n = 0;
    if (tok_encode(t, text, strlen(text), bos, eos, &ids, &n) != 0) return cli_fail();
    for (int i = 0; i < n; i++) printf(i ? " %d" : "%d", ids[i]);
    printf("\n");
    free(ids);
    if (have_model) model_bundle_free(&b);
    else tok_free(t);
    return 0;
}

/* ------------------------------------------------------------------------- */
/* generate                                                                   */

static const char *generate_help =
    "usage: muscle generate --model MODEL [options]\n"
    "Prints only the generated text. With no prompt, generation starts from BOS.\n"
    "  --tokenizer T        tokenizer file (default: found beside the model)\n"
    "  --prompt S           text to continue\n"
    "  --prompts FILE       many prompts (one JSON string or {\"prompt\", \"id\"} a line), decoded\n"
    "                       together; prints one JSON line per prompt (index, id, text, n_tokens,\n"
    "                       stopped_by); sampling: prompt i from its own stream of --seed\n"
    "  --batch N            with --prompts: sequences decoded together (default 16, fewer for large models)\n"
    "  --out FILE           with --prompts: write the JSON lines there (atomically)\n"
    "  --quiet              with --prompts: no progress on stderr\n"
    "  --max-tokens N       new tokens at most (default 256)\n"
    "  --temperature X      0 = greedy (default 0)\n"
    "  --top-p P            nucleus sampling (default 1 = off)\n"
    "  --seed N             sampling seed (default 42)\n"
    "  --stop S             stop before the first occurrence of S (repeatable)\n"
    "  --no-repeat-ngram N  never repeat an N-gram\n"
    "  --kv-bf16            keep the KV cache in bf16 (half its memory; ids may differ\n"
    "                       from the fp32 cache at near-ties)\n"
    "  --ignore-eos         keep going past EOS/BOS\n"
    "  --adapter DIR        apply a PEFT LoRA adapter folder\n"
    "  --bf16               compute with bf16 weights\n"
    "  --stats              print tokens/s to stderr\n";

static int emit_stdout(void *ctx, const char *s, size_t n) {
    (void)ctx;
    fwrite(s, 1, n, stdout);
    fflush(stdout);
    return 0;
}

int cmd_generate(int argc, char **argv) {
    ModelArgs a = {0};
    GenOptions g;
    gen_options_default(&g);
    const char *prompt = NULL, *prompts = NULL, *out = NULL;
    const char *stops[16];
    int nstops = 0, stats = 0, c, width = 0, quiet = 0;
    long lv;
    double dv;
    static struct option opts[] = {
        {"model", 1, 0, 'm'}, {"tokenizer", 1, 0, 't'}, {"prompt", 1, 0, 'p'}, {"max-tokens", 1, 0, 'n'},
        {"temperature", 1, 0, 'T'}, {"top-p", 1, 0, 'P'}, {"seed", 1, 0, 's'}, {"stop", 1, 0, 'S'},
        {"no-repeat-ngram", 1, 0, 'r'}, {"ignore-eos", 0, 0, 'E'}, {"bf16", 0, 0, 'B'}, {"stats", 0, 0, 'x'},
        {"adapter", 1, 0, 'a'}, {"help", 0, 0, 'h'}, {"prompts", 1, 0, 'F'}, {"batch", 1, 0, 'b'}, {"out", 1, 0, 'o'},
        {"quiet", 0, 0, 'q'}, {"kv-bf16", 0, 0, 'K'}, {0, 0, 0, 0}};
    optind = 1;
    while ((c = getopt_long(argc, argv, "m:t:p:n:T:P:s:S:r:EBxa:hF:b:o:qK", opts, NULL)) != -1) {
        switch (c) {
        case 'm': a.model = optarg; break;
        case 't': a.tokenizer = optarg; break;
        case 'a': a.adapter = optarg; break;
        case 'p': prompt = optarg; break;
        case 'F': prompts = optarg; break;
        case 'b': if (cli_parse_int("--batch", optarg, 1, 4096, &lv)) return 2; width = (int)lv; break;
        case 'o': out = optarg; break;
        case 'q': quiet = 1; break;
        case 'n': if (cli_parse_int("--max-tokens", optarg, 0, 1 << 24, &lv)) return 2; g.max_tokens = (int)lv; break;
        case 'T':
            if (cli_parse_float("--temperature", optarg, &dv)) return 2;
            if (dv < 0) return cli_usage_fail("generate", "--temperature '%s': expected 0 (greedy) or more", optarg);
            g.temperature = (float)dv;
            break;
        case 'P':
            if (cli_parse_float("--top-p", optarg, &dv)) return 2;
            if (dv <= 0 || dv > 1) return cli_usage_fail("generate", "--top-p '%s': expected a number in (0, 1]", optarg);
            g.top_p = (float)dv;
            break;
        case 's': if (cli_parse_int("--seed", optarg, 0, 0x7fffffffL, &lv)) return 2; g.seed = (uint64_t)lv; break;
        case 'S': if (nstops == 16) return cli_usage_error("generate", "at most 16 --stop strings"); stops[nstops++] = optarg; break;
        case 'r': if (cli_parse_int("--no-repeat-ngram", optarg, 0, 64, &lv)) return 2; g.no_repeat_ngram = (int)lv; break;
        case 'E': g.ignore_eos = 1; break;
        case 'B': a.bf16 = 1; break;
        case 'K': g.kv_bf16 = 1; break;
        case 'x': stats = 1; break;
        case 'h': fputs(generate_help, stdout); return 0;
        default: return cli_usage_error("generate", "bad option");
        }
    }
    if (!a.model) return cli_usage_error("generate", "--model is required");
    if (optind != argc) return cli_usage_error("generate", "unexpected argument '%s'", argv[optind]);
    if (prompts && prompt) return cli_usage_error("generate", "--prompt and --prompts exclude each other");
    if (!prompts && (width || out)) return cli_usage_error("generate", "--batch and --out go with --prompts");
    g.stops = stops;
    g.n_stops = nstops;
    ModelBundle b;
    if (load_model(&a, &b) != 0) return cli_fail();
    Model *mp = &b.model;
    Tokenizer *t = b.tok;
    g.lora = model_bundle_adapter(&b);
    if (prompts) {
        int rc = gen_prompts_run(mp, t, &g, prompts, width, out, quiet);
        model_bundle_free(&b);
        return rc == 0 ? 0 : cli_fail();
    }
    int *ids = NULL, n = 0;
    if (prompt) {
        if (tok_encode(t, prompt, strlen(prompt), tok_bos_id(t) >= 0, 0, &ids, &n) != 0) return cli_fail();
    } else {
        if (mp->cfg.bos_id < 0) {
            err_set("generate: no --prompt, and the model has no BOS token to start from: give a --prompt");
            model_bundle_free(&b);
            return cli_fail();
        }
        ids = malloc(sizeof *ids);
        ids[0] = mp->cfg.bos_id;
        n = 1;
    }
    GenResult r;
    int rc = model_generate(mp, t, ids, n, &g, emit_stdout, NULL, &r);
    if (rc == 0) {
        printf("\n");
        if (stats) fprintf(stderr, "generated %d tokens in %.3f s: %.1f tokens/s\n", r.n_ids, r.seconds, r.n_ids / (r.seconds > 0 ? r.seconds : 1));
        gen_result_free(&r);
    }
    free(ids);
    model_bundle_free(&b);
    return rc == 0 ? 0 : cli_fail();
}

/* ------------------------------------------------------------------------- */
/* score                                                                      */

static const char *score_help =
    "usage: muscle score --model MODEL [--tokenizer T] [--adapter DIR] [--bf16] --text S\n"
    "Prints JSON: the token ids of S (with BOS) and each token's log-probability\n"
    "given those before it (null for the first).\n";

int cmd_score(int argc, char **argv) {
    ModelArgs a = {0};
    const char *text = NULL;
    int c;
    static struct option opts[] = {{"model", 1, 0, 'm'}, {"tokenizer", 1, 0, 't'}, {"text", 1, 0, 's'}, {"bf16", 0, 0, 'B'},
                                   {"adapter", 1, 0, 'a'}, {"help", 0, 0, 'h'}, {0, 0, 0, 0}};
    optind = 1;
    while ((c = getopt_long(argc, argv, "m:t:s:Ba:h", opts, NULL)) != -1) {
        if (c == 'm') a.model = optarg;
        else if (c == 't') a.tokenizer = optarg;
        else if (c == 's') text = optarg;
        else if (c == 'B') a.bf16 = 1;
        else if (c == 'a') a.adapter = optarg;
        else if (c == 'h') { fputs(score_help, stdout); return 0; }
        else return cli_usage_error("score", "bad option");
    }
    if (!a.model) return cli_usage_error("score", "--model is required");
    if (!text) return cli_usage_error("score", "--text is required");
    if (optind != argc) return cli_usage_error("score", "unexpected argument '%s'", argv[optind]);
    ModelBundle b;
    if (load_model(&a, &b) != 0) return cli_fail();
    Model *mp = &b.model;
    Tokenizer *t = b.tok;
    int *ids = NULL, n = 0;
    if (tok_encode(t, text, strlen(text), tok_bos_id(t) >= 0, 0, &ids, &n) != 0) return cli_fail();
    if (n > mp->cfg.seq_len) {
        err_set("--text: %d tokens are more than the model's context of %d", n, mp->cfg.seq_len);
        return cli_fail();
    }
    RunState s;
    if (runstate_init(&s, mp, 1, n, n, 0) != 0 || (b.have_adapter && runstate_set_lora(&s, &b.adapter) != 0) ||
        model_forward(&s, ids, 1, n, 0) != 0)
        return cli_fail();
    int V = mp->cfg.vocab_size;
    logsoftmax_rows(s.logits, n, V);
    double total = 0;
    printf("{\"tokens\":[");
    for (int i = 0; i < n; i++) printf(i ? ",%d" : "%d", ids[i]);
    printf("],\"logprobs\":[null");
    for (int i = 1; i < n; i++) {
        float lp = s.logits[(size_t)(i - 1) * V + ids[i]];
        total += lp;
        if (isfinite(lp)) printf(",%.9g", (double)lp);
        else printf(",null"); /* JSON has no NaN or infinity */
    }
    if (isfinite(total)) printf("],\"total_logprob\":%.9g,\"n_tokens\":%d}\n", total, n);
    else printf("],\"total_logprob\":null,\"n_tokens\":%d}\n", n);
    runstate_free(&s);
    free(ids);
    model_bundle_free(&b);
    return 0;
}

/* ------------------------------------------------------------------------- */
/* convert                                                                    */

static const char *convert_help =
    "usage: muscle convert IN OUT [--dtype f32|f16|bf16] [--tokenizer T] [--force]\n"
    "Writes model IN (any format) as a Hugging Face Llama folder OUT: config.json,\n"
    "model.safetensors (q/k rows in Hugging Face order) and the tokenizer file, copied\n"
    "under its usual name (tokenizer.model, tokenizer.json or tokenizer.bin).\n"
    "OUT appears complete or not at all: the files are written into a hidden folder beside\n"
    "it (.OUT.tmp-PID-XXXXXX), flushed, and the folder is renamed into place. An existing\n"
    "folder OUT that is not empty is refused unless --force, which replaces it as a whole\n"
    "(files in it that convert does not write are gone).\n";

int cmd_convert(int argc, char **argv) {
    const char *tp = NULL, *dt = "f32";
    int c, force = 0;
    static struct option opts[] = {{"dtype", 1, 0, 'd'}, {"tokenizer", 1, 0, 't'}, {"force", 0, 0, 'f'}, {"help", 0, 0, 'h'}, {0, 0, 0, 0}};
    optind = 1;
    while ((c = getopt_long(argc, argv, "d:t:fh", opts, NULL)) != -1) {
        if (c == 'd') dt = optarg;
        else if (c == 't') tp = optarg;
        else if (c == 'f') force = 1;
        else if (c == 'h') { fputs(convert_help, stdout); return 0; }
        else return cli_usage_error("convert", "bad option");
    }
    if (optind != argc - 2) return cli_usage_error("convert", "expected IN and OUT");
    DType d = !strcmp(dt, "f32") ? DT_F32 : !strcmp(dt, "f16") ? DT_F16 : !strcmp(dt, "bf16") ? DT_BF16 : DT_COUNT;
    if (d == DT_COUNT) return cli_usage_error("convert", "--dtype '%s': expected f32, f16 or bf16", dt);
    const char *in = argv[optind], *out = argv[optind + 1];
    AtomicDir dir; /* refuses an existing OUT before any work */
    if (file_atomic_dir_open(&dir, out, force) != 0) return cli_fail();
    ModelBundle b;
    BundleSpec bs = {.model = in, .tokenizer = tp, .tok = BUNDLE_TOK_OPTIONAL};
    if (model_bundle_load(&b, &bs) != 0) {
        file_atomic_dir_abort(&dir);
        return cli_fail();
    }
    int rc = model_save_hf(&b.model, dir.tmp, d);
    if (rc == 0 && b.tok_path) {
        rc = model_bundle_copy_tokenizer(&b, dir.tmp);
    } else if (rc == 0 && !b.tok) {
        fprintf(stderr, "muscle convert: note: no tokenizer written (%s)\n", b.tok_error);
    } else if (rc == 0) {
        fprintf(stderr, "muscle convert: note: the tokenizer is embedded in %s; name a tokenizer file with --tokenizer to copy one\n", in);
    }
    if (rc == 0) rc = file_atomic_dir_commit(&dir);
    else file_atomic_dir_abort(&dir);
    model_bundle_free(&b);
    return rc == 0 ? 0 : cli_fail();
}
