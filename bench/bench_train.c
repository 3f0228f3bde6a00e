/* bench/bench_train.c - training throughput of the trainer (train/trainer.h) on
 * random-weight models of the "15M" and "110M" shapes: one optimizer step = forward +
 * backward + AdamW on a batch of 4 x 256 random tokens, as bench/torch/bench_torch.py
 * measures PyTorch (AdamW lr 1e-4, weight decay 0.01, no clipping, mean cross-entropy).
 * Tasks: lora8_qkvo (rank 8, alpha 16 on q,k,v,o), lora16_all (rank 16, alpha 32 on every
 * linear layer), full (every weight). dtype: LoRA: the base weights (fp32 or bf16; the
 * adapter and its optimizer state stay fp32); full: fp32, or bf16 = mixed precision
 * (`pretrain --bf16`, train/mixed.h: fp32 masters and AdamW state, bf16 copies for the
 * products).
 * Prints one JSON line per measurement with bench_torch.py's fields: tokens_per_s is
 * tokens / mean time of the timed steps (after one warm-up step), peak_rss_mb from getrusage,
 * minflt_per_step the minor page faults per timed step (memory touched fresh every step:
 * per-call buffers the allocator maps and unmaps).
 * MUSCLE_PERF_CTL=FIFO (bench/train_profile.sh: perf record --control fifo:FIFO -D -1):
 * writes "enable" to FIFO after the warm-up step and "disable" after the timed steps, so a
 * profile holds the timed steps only (not the random initialisation, not the planning).
 * MUSCLE_KMM_TIMES=1: adds "bf16_secs_per_step", the bf16 products' time by kind per timed
 * step (kernel/matmul.h, kmm_times_get).
 *   bench_train --shape 15M|110M --dtype fp32|bf16 --task lora8_qkvo|lora16_all|full
 *               [--iters N] [--batch B] [--seq T] [--recompute]
 */
#include "core/cpu.h"
#include "core/error.h"
#include "bench_family.h"
#include "core/rng.h"
#include "train/trainer.h"
#include "kernel/matmul.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

int main(int argc, char **argv) {
    const char *shape = "15M", *dtype = "fp32", *task = "lora8_qkvo", *family = "llama";
    int iters = 3, B = 4, T = 256, recompute = 0;
    for (int i = 1; i < argc; i++) {
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(argv[i], "--recompute")) { recompute = 1; continue; }
        if (!v) { fprintf(stderr, "option %s needs a value\n", argv[i]); return 2; }
        if (!strcmp(argv[i], "--shape")) shape = v;
        else if (!strcmp(argv[i], "--dtype")) dtype = v;
        else if (!strcmp(argv[i], "--task")) task = v;
        else if (!strcmp(argv[i], "--iters")) iters = atoi(v);
        else if (!strcmp(argv[i], "--family")) family = v;
        else if (!strcmp(argv[i], "--batch")) B = atoi(v);
        else if (!strcmp(argv[i], "--seq")) T = atoi(v);
        else { fprintf(stderr, "unknown option %s\n", argv[i]); return 2; }
        i++;
    }
    int full = !strcmp(task, "full"), rank = !strcmp(task, "lora16_all") ? 16 : 8;
    unsigned targets = !strcmp(task, "lora16_all") ? LORA_TARGETS_ALL
                                                   : LORA_BIT(LORA_Q) | LORA_BIT(LORA_K) | LORA_BIT(LORA_V) | LORA_BIT(LORA_O);
    if (!full && strcmp(task, "lora8_qkvo") && strcmp(task, "lora16_all")) { fprintf(stderr, "unknown task %s\n", task); return 2; }
    int bf16 = !strcmp(dtype, "bf16");
    cpu_blas_fixup(argv);
    cpu_flush_denormals();
    ModelConfig c = {0};
    if (!strcmp(shape, "110M")) {
        c.dim = 768; c.n_layers = 12; c.n_heads = 12; c.n_kv_heads = 12; c.hidden_dim = 2048;
    } else {
        c.dim = 288; c.n_layers = 6; c.n_heads = 6; c.n_kv_heads = 6; c.hidden_dim = 768;
    }
    c.vocab_size = 32000; c.seq_len = 1024; c.rope_theta = 10000; c.norm_eps = 1e-5f; c.tied = 1;
    c.bos_id = 1; c.eos_id = 2;
    if (bench_family_apply(&c, family) != 0) { fprintf(stderr, "unknown --family %s\n", family); return 2; }
    ModelLoadOptions lo = {bf16 && !full ? KW_BF16 : KW_F32, full};
    Model m;
    if (model_init_random(&m, &c, &lo, 1234) != 0) { fprintf(stderr, "%s\n", err_msg()); return 1; }
    LoraAdapter a, *ap = NULL;
    if (!full) {
        if (lora_init(&a, &m.cfg, rank, 2.0f * rank, 0, targets) != 0) { fprintf(stderr, "%s\n", err_msg()); return 1; }
        lora_reset_peft(&a, 1);
        ap = &a;
    }
    /* random tokens, a fresh window every step */
    size_t n = (size_t)B * T * (iters + 2) + 1;
    int *ids = malloc(n * sizeof *ids);
    Rng r;
    rng_seed(&r, 7);
    for (size_t i = 0; i < n; i++) ids[i] = 3 + (int)(rng_u32(&r) % (uint32_t)(c.vocab_size - 3));
    TrainData d;
    if (data_stream_open(&d, ids, n, NULL, 0, T) != 0) { fprintf(stderr, "%s\n", err_msg()); return 1; }
    TrainOptions o;
    train_options_default(&o, full ? TRAIN_FULL : TRAIN_LORA);
    o.batch = B;
    o.grad_accum = 1;
    o.steps = iters + 1;
    o.lr = 1e-4;
    o.warmup = 0;
    o.schedule = LR_CONSTANT;
    o.adamw.weight_decay = 0.01;
    o.no_decay_norms = 0;
    o.clip = 0;
    o.recompute = recompute;
    o.bf16 = full && bf16;
    o.quiet = 1;
    Trainer t;
    if (trainer_init(&t, &m, ap, &d, &o, NULL) != 0) { fprintf(stderr, "%s\n", err_msg()); return 1; }
    double total = 0, secs[64];
    const char *ctl = getenv("MUSCLE_PERF_CTL");
    FILE *perf = ctl && *ctl ? fopen(ctl, "w") : NULL;
    struct rusage ru;
    long flt0 = 0;
    double kt0[KMM_TIME_COUNT] = {0}, kt1[KMM_TIME_COUNT];
    for (int it = 0; it <= iters; it++) {
        if (it == 1) {
            getrusage(RUSAGE_SELF, &ru);
            flt0 = ru.ru_minflt;
            kmm_times_get(kt0);
            if (perf) fputs("enable\n", perf), fflush(perf);
        }
        if (trainer_step(&t) != 0) { fprintf(stderr, "%s\n", err_msg()); return 1; }
        if (it) {
            total += t.step_seconds;
            if (it - 1 < 64) secs[it - 1] = t.step_seconds;
        }
    }
    if (perf) fputs("disable\n", perf), fclose(perf);
    getrusage(RUSAGE_SELF, &ru);
    const double flt = iters > 0 ? (double)(ru.ru_minflt - flt0) / iters : 0;
    printf("{\"impl\":\"muscle\",\"family\":\"%s\",\"shape\":\"%s\",\"dtype\":\"%s\",\"task\":\"%s\",\"tokens_per_s\":%.2f,\"peak_rss_mb\":%.1f,"
           "\"threads\":%d,\"batch\":%d,\"seq\":%d,\"trainable_params\":%zu,\"recompute\":%s,\"sec_per_iter\":[",
           family, shape, dtype, task, (double)B * T * iters / total, ru.ru_maxrss / 1024.0, cpu_threads(), B, T,
           train_spans_total(t.spans, t.n_spans), recompute ? "true" : "false");
    for (int i = 0; i < iters && i < 64; i++) printf(i ? ",%.4f" : "%.4f", secs[i]);
    printf("],\"minflt_per_step\":%.0f,", flt);
    const char *kt = getenv("MUSCLE_KMM_TIMES");
    if (kt && !strcmp(kt, "1") && iters > 0) {
        kmm_times_get(kt1);
        printf("\"bf16_secs_per_step\":{");
        for (int i = 0; i < KMM_TIME_COUNT; i++) printf("%s\"%s\":%.4f", i ? "," : "", kmm_time_name(i), (kt1[i] - kt0[i]) / iters);
        printf("},");
    }
    printf("\"loss\":%.6f}\n", t.loss);
    trainer_free(&t);
    data_free(&d);
    free(ids);
    if (ap) lora_free(ap);
    model_free(&m);
    return 0;
}
