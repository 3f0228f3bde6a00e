/* bench/bench_decode.c - decoding throughput: single-stream greedy decoding (model_generate)
 * and batched generation (model_generate_batch) at a given width, plus the scoring rate
 * of the same model (the share batched generation reaches), on a GGUF file; and the
 * random-weight "15M" / "110M" GGUF files that bench/decode.sh gives both muscle and
 * llama.cpp (a made-up 32000-entry vocabulary: <unk> <s> </s>, 256 byte pieces, then
 * "t<id>"). Prints one JSON line per measurement.
 *   bench_decode --make-gguf PATH --shape 15M|110M --dtype fp32|bf16
 *   bench_decode --model PATH [--bf16] --task single|batch|score|kernels|step [--width W] [--tokens N] [--iters N]
 *                [--context P] [--kv-bf16]
 * --task step: one decoding step of `width` rows (model_forward_rows, n = 1) at positions
 * P.. (--context, default 32; --kv-bf16: bf16 caches), milliseconds a step (best of --iters
 * runs of --tokens steps), and the same step's weight products alone (the layers' and the
 * classifier's kmm_xwt at m = width, in the step's order) for the share of a step the rest
 * takes; and those products once more with each weight in cache (every product timed right
 * after a run of itself), for the share the weight stream from memory costs.
 */
#include "core/cpu.h"
#include "core/error.h"
#include "io/gguf.h"
#include "model/forward.h"
#include "model/generate_batch.h"
#include "kernel/matmul_impl.h"
#include "core/dtype.h"

#include <cblas.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static double wall_s(void) { return now_s(); }

static double cpu_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static double wall_s(void);

/* --task kernels: one thread's CPU time per product of the model's weights (layer 0's
 * wq, w1, w2 and the classifier) at m rows on the small-m kernels (kernel/matmul_impl.h;
 * fp32, or bf16 with avx512bf16), as GB/s of weights read and GFLOP/s. */
static void kernels(const Model *md) {
    const KWeight *ws[4] = {&md->layers[0].wq, &md->layers[0].w1, &md->layers[0].w2, &md->wcls};
    const char *names[4] = {"wq", "w1", "w2", "wcls"};
    int ms[5] = {1, 4, 16, 64, 0};
    for (int wi = 0; wi < 4; wi++) {
        const KWeight *w = ws[wi];
        int n = w->n, k = w->k;
        float *x = malloc(sizeof(float) * 64 * k), *y = malloc(sizeof(float) * 64 * n);
        uint16_t *xb = malloc(2 * 64 * (size_t)k);
        KPanel kp = {0};
        double tp = wall_s();
        if (w->type == KW_F32 && kpanel_init(&kp, w) != 0) { fprintf(stderr, "bench_decode: no panel copy\n"); exit(1); }
        if (w->type == KW_F32)
            printf("{\"task\":\"kernel\",\"w\":\"%s\",\"impl\":\"panel copy\",\"n\":%d,\"k\":%d,\"ms\":%.2f}\n", names[wi], n, k,
                   (wall_s() - tp) * 1e3);
        for (int i = 0; i < 64 * k; i++) { x[i] = (float)((i * 7919) % 1000) / 1000.0f - 0.5f; xb[i] = f32_to_bf16(x[i]); }
        for (int mi = 0; ms[mi]; mi++) {
            int m = ms[mi];
            /* fp32: the panel kernel (kpanel_avx512.c, one thread's share = all panels), the dot-product kernel, and
             * OpenBLAS sgemm at the same shape (one thread each) */
            for (int impl = 0; impl < (w->type == KW_F32 ? 3 : 1); impl++) {
                double best = 1e30;
                for (int rep = 0; rep < 5; rep++) {
                    double t0 = cpu_s();
                    int it = 0;
                    do {
                        if (w->type != KW_F32) kmm_small_bf16_avx512bf16(w->bf16, k, xb, m, y, n, 0.0f, 0, n);
                        else if (impl == 0) kmm_panel_f32_avx512(kp.p, n, k, x, m, y, n, 0.0f, 0, (n + 15) / 16);
                        else if (impl == 1) kmm_small_f32_avx512(w->f32, k, x, m, y, n, 0.0f, 0, n);
                        else cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, m, n, k, 1.0f, x, k, w->f32, k, 0.0f, y, n);
                        it++;
                    } while (cpu_s() - t0 < 0.05);
                    double t = (cpu_s() - t0) / it;
                    if (t < best) best = t;
                }
                static const char *impls[3] = {"panel", "dot", "sgemm"};
                double bytes = (double)n * k * (w->type == KW_F32 ? 4 : 2);
                printf("{\"task\":\"kernel\",\"w\":\"%s\",\"type\":\"%s\",\"impl\":\"%s\",\"m\":%d,\"n\":%d,\"k\":%d,\"us\":%.1f,\"GBps\":%.1f,\"GFLOPs\":%.1f}\n",
                       names[wi], w->type == KW_F32 ? "fp32" : "bf16", w->type == KW_F32 ? impls[impl] : "small", m, n, k,
                       best * 1e6, bytes / best * 1e-9, 2.0 * m * n * k / best * 1e-9);
            }
        }
        free(x);
        free(y);
        free(xb);
        kpanel_free(&kp);
    }
}

/* y = x W^T as the step computes it: on the run state's panel copy in slot i where it has
 * one, else kmm_xwt. */
static void step_product(const RunState *s, int i, const KWeight *w, const float *x, int W, float *y) {
    if (s->panels && s->panels[i].p) kmm_xwt_panel(&s->panels[i], x, W, y, 0.0f);
    else kmm_xwt(w, x, W, y, 0.0f);
}

/* --task step (see the top). */
static int step_bench(const Model *md, int W, int steps, int iters, int P, int kv16) {
    const ModelConfig *c = &md->cfg;
    const int V = c->vocab_size;
    RunState s;
    if (runstate_init(&s, md, W, P + steps + 1, 1, RS_KEEP_NONE | (kv16 ? RS_KV_BF16 : 0)) != 0) return -1;
    s.attn_rows = 1; /* generation's run state: its attention, and its panel copies where built */
    if (runstate_panels_build(&s) != 0) return -1;
    int *tok = malloc(sizeof(int) * W), *pos = malloc(sizeof(int) * W), *slot = malloc(sizeof(int) * W);
    for (int r = 0; r < W; r++) slot[r] = r;
    double best = 1e30, bestp = 1e30, bestc = 1e30, besth = 1e30;
    for (int it = 0; it <= iters; it++) {
        for (int p = 0; p < P; p++) { /* fill the caches to position P */
            for (int r = 0; r < W; r++) { tok[r] = 259 + (r * 7919 + p * 104729) % (V - 259); pos[r] = p; }
            if (model_forward_rows(&s, tok, pos, slot, W, 1) != 0) return -1;
        }
        double t0 = wall_s();
        for (int p = P; p < P + steps; p++) {
            for (int r = 0; r < W; r++) { tok[r] = 259 + (r * 7919 + p * 104729) % (V - 259); pos[r] = p; }
            if (model_forward_rows(&s, tok, pos, slot, W, 1) != 0) return -1;
        }
        double t = (wall_s() - t0) / steps;
        if (it && t < best) best = t;
        /* the products alone, in the step's order */
        int d = c->dim, hid = c->hidden_dim, big = hid > V ? hid : V;
        float *x = calloc((size_t)W * (hid > d ? hid : d), sizeof(float)), *y = calloc((size_t)W * big, sizeof(float));
        for (int i = 0; i < W * d; i++) x[i] = 0.01f * (float)(i % 97);
        t0 = wall_s();
        double tc = 0;
        for (int k = 0; k < steps; k++) {
            for (int l = 0; l < c->n_layers; l++)
                for (int t = 0; t < LORA_N_TARGETS; t++) { /* the slots run in the step's order */
                    const KWeight *w = lora_base_weight(md, l, (LoraTarget)t);
                    if (w) step_product(&s, l * LORA_N_TARGETS + t, w, x, W, y);
                }
            double t1 = wall_s();
            step_product(&s, c->n_layers * LORA_N_TARGETS, &md->wcls, x, W, y);
            tc += wall_s() - t1;
        }
        t = (wall_s() - t0) / steps;
        if (it && t < bestp) bestp = t;
        if (it && tc / steps < bestc) bestc = tc / steps;
        double th = 0; /* in cache: each product timed right after a run of itself */
        for (int l = 0; l <= c->n_layers; l++)
            for (int t = 0; t < (l < c->n_layers ? LORA_N_TARGETS : 1); t++) {
                const KWeight *w = l < c->n_layers ? lora_base_weight(md, l, (LoraTarget)t) : &md->wcls;
                if (!w) continue;
                step_product(&s, l * LORA_N_TARGETS + t, w, x, W, y);
                double t1 = wall_s();
                step_product(&s, l * LORA_N_TARGETS + t, w, x, W, y);
                th += wall_s() - t1;
            }
        if (it && th < besth) besth = th;
        free(x);
        free(y);
    }
    printf("{\"task\":\"step\",\"width\":%d,\"context\":%d,\"kv\":\"%s\",\"ms_step\":%.2f,\"ms_products\":%.2f,\"ms_products_in_cache\":%.2f,"
           "\"ms_classifier\":%.2f,\"ms_rest\":%.2f,\"tokens_per_s\":%.1f,\"threads\":%d}\n",
           W, P, kv16 ? "bf16" : "fp32", best * 1e3, bestp * 1e3, besth * 1e3, bestc * 1e3, (best - bestp) * 1e3, W / best, cpu_threads());
    free(tok);
    free(pos);
    free(slot);
    runstate_free(&s);
    return 0;
}

static int die(void) {
    fprintf(stderr, "bench_decode: %s\n", err_msg());
    return 1;
}

/* The random model of a shape as a GGUF file (llama architecture, q/k as stored). */
static int make_gguf(const char *path, const char *shape, const char *dtype) {
    ModelConfig c = {0};
    if (!strcmp(shape, "110M")) {
        c.dim = 768; c.n_layers = 12; c.n_heads = 12; c.n_kv_heads = 12; c.hidden_dim = 2048;
    } else {
        c.dim = 288; c.n_layers = 6; c.n_heads = 6; c.n_kv_heads = 6; c.hidden_dim = 768;
    }
    c.vocab_size = 32000; c.seq_len = 1024; c.rope_theta = 10000; c.norm_eps = 1e-5f; c.tied = 0;
    c.bos_id = 1; c.eos_id = 2;
    ModelLoadOptions o = {KW_F32, 0};
    Model m;
    if (model_init_random(&m, &c, &o, 1234) != 0) return die();
    uint32_t ty = !strcmp(dtype, "bf16") ? GGML_TYPE_BF16 : GGML_TYPE_F32;
    GgufWriter w;
    gguf_writer_init(&w);
    gguf_writer_set_string(&w, "general.architecture", "llama");
    gguf_writer_set_string(&w, "general.name", shape);
    gguf_writer_set_u32(&w, "general.file_type", ty == GGML_TYPE_BF16 ? 32 : 0);
    gguf_writer_set_u32(&w, "llama.context_length", (uint32_t)c.seq_len);
    gguf_writer_set_u32(&w, "llama.embedding_length", (uint32_t)c.dim);
    gguf_writer_set_u32(&w, "llama.block_count", (uint32_t)c.n_layers);
    gguf_writer_set_u32(&w, "llama.feed_forward_length", (uint32_t)c.hidden_dim);
    gguf_writer_set_u32(&w, "llama.attention.head_count", (uint32_t)c.n_heads);
    gguf_writer_set_u32(&w, "llama.attention.head_count_kv", (uint32_t)c.n_kv_heads);
    gguf_writer_set_u32(&w, "llama.rope.dimension_count", (uint32_t)(c.dim / c.n_heads));
    gguf_writer_set_f32(&w, "llama.rope.freq_base", c.rope_theta);
    gguf_writer_set_f32(&w, "llama.attention.layer_norm_rms_epsilon", c.norm_eps);
    int V = c.vocab_size;
    char **toks = malloc((size_t)V * sizeof *toks);
    float *scores = calloc((size_t)V, sizeof *scores);
    int32_t *types = malloc((size_t)V * sizeof *types);
    for (int i = 0; i < V; i++) {
        char b[32];
        if (i < 3) snprintf(b, sizeof b, "%s", i == 0 ? "<unk>" : i == 1 ? "<s>" : "</s>");
        else if (i < 259) snprintf(b, sizeof b, "<0x%02X>", i - 3);
        else snprintf(b, sizeof b, "t%d", i);
        toks[i] = strdup(b);
        types[i] = i == 0 ? 2 : i < 3 ? 3 : i < 259 ? 6 : 1;
        scores[i] = i < 259 ? 0.0f : -(float)i;
    }
    gguf_writer_set_string(&w, "tokenizer.ggml.model", "llama");
    gguf_writer_set_str_array(&w, "tokenizer.ggml.tokens", (const char *const *)toks, NULL, (uint64_t)V);
    gguf_writer_set_array(&w, "tokenizer.ggml.scores", GGUF_TYPE_FLOAT32, scores, (uint64_t)V);
    gguf_writer_set_array(&w, "tokenizer.ggml.token_type", GGUF_TYPE_INT32, types, (uint64_t)V);
    gguf_writer_set_u32(&w, "tokenizer.ggml.bos_token_id", 1);
    gguf_writer_set_u32(&w, "tokenizer.ggml.eos_token_id", 2);
    gguf_writer_set_u32(&w, "tokenizer.ggml.unknown_token_id", 0);
    uint64_t ne[2];
    ne[0] = (uint64_t)c.dim; ne[1] = (uint64_t)V;
    gguf_writer_add_tensor_f32(&w, "token_embd.weight", ty, 2, ne, m.tok_emb.f32);
    gguf_writer_add_tensor_f32(&w, "output.weight", ty, 2, ne, m.wcls.f32);
    uint64_t nd[1] = {(uint64_t)c.dim};
    gguf_writer_add_tensor_f32(&w, "output_norm.weight", GGML_TYPE_F32, 1, nd, m.rms_final);
    char (*names)[64] = malloc((size_t)c.n_layers * 9 * 64);
    for (int l = 0; l < c.n_layers; l++) {
        const LayerWeights *L = &m.layers[l];
        struct { const char *n; const KWeight *w; const float *v; } t[9] = {
            {"attn_q", &L->wq, NULL}, {"attn_k", &L->wk, NULL}, {"attn_v", &L->wv, NULL}, {"attn_output", &L->wo, NULL},
            {"ffn_gate", &L->w1, NULL}, {"ffn_up", &L->w3, NULL}, {"ffn_down", &L->w2, NULL},
            {"attn_norm", NULL, L->rms_att}, {"ffn_norm", NULL, L->rms_ffn}};
        for (int k = 0; k < 9; k++) {
            char *nm = names[l * 9 + k];
            snprintf(nm, 64, "blk.%d.%s.weight", l, t[k].n);
            if (t[k].w) {
                uint64_t e2[2] = {(uint64_t)t[k].w->k, (uint64_t)t[k].w->n};
                gguf_writer_add_tensor_f32(&w, nm, ty, 2, e2, t[k].w->f32);
            } else {
                gguf_writer_add_tensor_f32(&w, nm, GGML_TYPE_F32, 1, nd, t[k].v);
            }
        }
    }
    int rc = gguf_writer_write(&w, path);
    gguf_writer_free(&w);
    for (int i = 0; i < V; i++) free(toks[i]);
    free(toks);
    free(scores);
    free(types);
    free(names);
    model_free(&m);
    return rc ? die() : 0;
}

int main(int argc, char **argv) {
    const char *shape = "15M", *dtype = "fp32", *task = "single", *model = NULL, *make = NULL;
    int iters = 2, width = 1, tokens = 128, bf16 = 0, context = 32, kv16 = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--bf16")) { bf16 = 1; continue; }
        if (!strcmp(argv[i], "--kv-bf16")) { kv16 = 1; continue; }
        if (i + 1 >= argc) { fprintf(stderr, "option %s needs a value\n", argv[i]); return 2; }
        if (!strcmp(argv[i], "--shape")) shape = argv[++i];
        else if (!strcmp(argv[i], "--dtype")) dtype = argv[++i];
        else if (!strcmp(argv[i], "--task")) task = argv[++i];
        else if (!strcmp(argv[i], "--model")) model = argv[++i];
        else if (!strcmp(argv[i], "--make-gguf")) make = argv[++i];
        else if (!strcmp(argv[i], "--width")) width = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--tokens")) tokens = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--iters")) iters = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--context")) context = atoi(argv[++i]);
        else { fprintf(stderr, "unknown option %s\n", argv[i]); return 2; }
    }
    cpu_blas_fixup(argv);
    cpu_flush_denormals();
    if (make) return make_gguf(make, shape, dtype);
    if (!model) { fprintf(stderr, "--model or --make-gguf is required\n"); return 2; }
    /* fp32: weights in memory of their own, not an mmap of the file; bf16: not writable
     * (a writable model is fp32 whatever wtype says) */
    ModelLoadOptions o = {bf16 ? KW_BF16 : KW_F32, !bf16};
    Model m;
    if (model_load(&m, model, &o) != 0) return die();
    Tokenizer *t = model_tokenizer_load(&m, NULL);
    if (!t) return die();
    if (!strcmp(task, "kernels")) {
        if (kmm_level_cpu() < (bf16 ? KMM_AVX512BF16 : KMM_AVX512)) {
            fprintf(stderr, "bench_decode: --task kernels needs %s on this CPU\n", bf16 ? "avx512bf16" : "avx512");
            return 1;
        }
        kernels(&m);
        model_tokenizer_free(&m, t);
        model_free(&m);
        return 0;
    }
    if (!strcmp(task, "step")) {
        if (step_bench(&m, width, tokens, iters, context, kv16) != 0) return die();
        model_tokenizer_free(&m, t);
        model_free(&m);
        return 0;
    }
    int V = m.cfg.vocab_size;
    double best = 0, best_decode = 0; /* batch: tokens/s over the whole run, and after the prompts */
    GenOptions g;
    gen_options_default(&g);
    g.max_tokens = tokens;
    g.ignore_eos = 1;
    if (!strcmp(task, "single")) { /* BOS, then `tokens` greedy tokens: tokens/s after the prompt */
        int bos = m.cfg.bos_id;
        for (int it = 0; it <= iters; it++) {
            GenResult r;
            if (model_generate(&m, t, &bos, 1, &g, NULL, NULL, &r) != 0) return die();
            double tps = r.n_ids / r.seconds; /* n_ids forward passes (the prompt's gives the first) */
            if (it && tps > best) best = tps;
            gen_result_free(&r);
        }
    } else if (!strcmp(task, "batch")) {
        /* `width` prompts of 16 tokens, `tokens` new each, all at once: tokens/s over the whole
         * run (the run state, the panel copies and the prefill included), and the decoding rate
         * after the prompts, the single stream's measure: every sequence's time runs from the
         * first picks (after the whole prefill) to its end (GenResult.seconds), and its
         * n_ids - 1 tokens after the first took that many steps shared by all */
        int n = width, P = 16;
        int *ids = malloc((size_t)n * P * sizeof *ids);
        GenRequest *req = malloc((size_t)n * sizeof *req);
        GenResult *res = malloc((size_t)n * sizeof *res);
        for (int i = 0; i < n; i++) {
            ids[i * P] = m.cfg.bos_id;
            for (int k = 1; k < P; k++) ids[i * P + k] = 259 + (i * 7919 + k * 104729) % (V - 259);
            req[i] = (GenRequest){ids + i * P, P, (uint64_t)i};
        }
        for (int it = 0; it <= iters; it++) {
            double t0 = now_s(), last = 0;
            if (model_generate_batch(&m, t, req, n, &g, width, NULL, NULL, res) != 0) return die();
            double sec = now_s() - t0;
            long gen = 0, after = 0;
            for (int i = 0; i < n; i++) {
                gen += res[i].n_ids;
                after += res[i].n_ids - 1;
                if (res[i].seconds > last) last = res[i].seconds;
                gen_result_free(&res[i]);
            }
            double tps = gen / sec, dtps = last > 0 ? after / last : 0;
            if (it && tps > best) best = tps;
            if (it && dtps > best_decode) best_decode = dtps;
        }
        free(ids);
        free(req);
        free(res);
    } else { /* scoring: 4 x 256 tokens, all positions' log-probabilities */
        int B = 4, T = 256;
        RunState s;
        if (runstate_init(&s, &m, B, T, T, 0) != 0) return die();
        int *tok = malloc(sizeof(int) * B * T);
        for (int i = 0; i < B * T; i++) tok[i] = (i * 7919) % V;
        for (int it = 0; it <= iters; it++) {
            double t0 = now_s();
            model_forward(&s, tok, B, T, 0);
            logsoftmax_rows(s.logits, B * T, V);
            double tps = B * T / (now_s() - t0);
            if (it && tps > best) best = tps;
        }
        free(tok);
        runstate_free(&s);
    }
    printf("{\"impl\":\"muscle\",\"model\":\"%s\",\"weights\":\"%s\",\"task\":\"%s\",\"width\":%d,\"tokens_per_s\":%.1f,",
           model, bf16 ? "bf16" : "fp32", task, width, best);
    if (!strcmp(task, "batch")) printf("\"decode_tokens_per_s\":%.1f,", best_decode);
    printf("\"threads\":%d}\n", cpu_threads());
    model_tokenizer_free(&m, t);
    model_free(&m);
    return 0;
}
