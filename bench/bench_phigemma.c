/* bench/bench_phigemma.c - Phi and Gemma blocks against the Llama path at the same shapes,
 * in one process, interleaved (llama, phi, gemma, llama, ...), best of --repeats: scoring
 * (forward of B x T, all positions' logits), a LoRA training step (rank 8 on every linear the
 * family has, forward + backward) and a full training step (forward + backward of every
 * weight), random-weight "15M" shape (d 288, 6 layers, 6 heads, intermediate 768, vocab 512).
 * Gemma here: head_dim 48, one kv head (multi-query), GeGLU, (1 + w) norms, sqrt(d) scale;
 * Phi: LayerNorm with bias, parallel block, GELU fc1/fc2 (no gate: 2/3 of the MLP's work),
 * partial rotary 0.5, biases everywhere. Prints one JSON line per measurement.
 *   bench_phigemma [--repeats N] [--batch B] [--seq T] */
#include "core/cpu.h"
#include "core/error.h"
#include "model/backward.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void family_config(ModelConfig *c, const char *fam) {
    memset(c, 0, sizeof *c);
    c->dim = 288; c->n_layers = 6; c->n_heads = 6; c->n_kv_heads = 6; c->hidden_dim = 768;
    c->vocab_size = 512; c->seq_len = 512; c->rope_theta = 10000.0f; c->norm_eps = 1e-5f;
    c->arch = arch_from_model_type(fam);
    c->bias = c->arch->bias;
    if (!strcmp(fam, "phi")) c->rope_dims = c->dim / c->n_heads / 2;
    if (!strcmp(fam, "gemma")) { c->head_dim = 48; c->n_kv_heads = 1; c->norm_offset = 1.0f; }
}

int main(int argc, char **argv) {
    int repeats = 3, B = 4, T = 256;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--repeats")) repeats = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--batch")) B = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--seq")) T = atoi(argv[i + 1]);
        else { fprintf(stderr, "unknown option %s\n", argv[i]); return 2; }
    }
    cpu_blas_fixup(argv);
    cpu_flush_denormals();
    const char *fams[3] = {"llama", "phi", "gemma"};
    double best[3][3] = {{0}};
    int *tok = malloc((size_t)B * T * sizeof *tok), *tgt = malloc((size_t)B * T * sizeof *tgt);
    for (int i = 0; i < B * T; i++) { tok[i] = (i * 7 + 3) % 512; tgt[i] = (i * 7 + 10) % 512; }
    for (int r = 0; r < repeats; r++)
        for (int f = 0; f < 3; f++) {
            ModelConfig c;
            family_config(&c, fams[f]);
            ModelLoadOptions o = {KW_F32, 1};
            Model m;
            if (model_init_random(&m, &c, &o, 1) != 0) { fprintf(stderr, "%s\n", err_msg()); return 1; }
            RunState s;
            ModelGrads g;
            LoraAdapter a, ag;
            double loss;
            if (runstate_init(&s, &m, B, T, T, RS_KEEP_ALL) != 0 || model_grads_init(&g, &m) != 0 ||
                lora_init(&a, &m.cfg, 8, 16.0f, 0, LORA_TARGETS_ALL) != 0 || lora_init_like(&ag, &a) != 0) {
                fprintf(stderr, "%s\n", err_msg());
                return 1;
            }
            double t0 = now_s();
            model_forward(&s, tok, B, T, 0);
            double t1 = now_s();
            model_loss(&s, tok, tgt, NULL, B, T, 0, &loss, NULL);
            model_backward(&s, &g, NULL);
            double t2 = now_s();
            runstate_set_lora(&s, &a);
            double t3 = now_s();
            model_loss(&s, tok, tgt, NULL, B, T, 0, &loss, NULL);
            model_backward(&s, NULL, &ag);
            double t4 = now_s();
            double tps[3] = {B * T / (t1 - t0), B * T / (t4 - t3), B * T / (t2 - t1)};
            for (int k = 0; k < 3; k++) if (tps[k] > best[f][k]) best[f][k] = tps[k];
            lora_free(&a); lora_free(&ag); model_grads_free(&g); runstate_free(&s); model_free(&m);
        }
    static const char *const task[3] = {"score", "lora8_all", "full"};
    for (int f = 0; f < 3; f++)
        for (int k = 0; k < 3; k++)
            printf("{\"family\":\"%s\",\"task\":\"%s\",\"batch\":%d,\"seq\":%d,\"tokens_per_s\":%.1f,\"vs_llama\":%.3f}\n", fams[f],
                   task[k], B, T, best[f][k], best[f][k] / best[0][k]);
    free(tok); free(tgt);
    return 0;
}
