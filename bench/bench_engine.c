/* bench/bench_engine.c - scoring and greedy-decoding throughput of the engine on
 * random-weight models of the "15M" and "110M" shapes, fp32 or bf16 weights.
 * Prints one JSON line per measurement (the same fields as bench/torch/bench_torch.py).
 *   bench_engine --shape 15M|110M --dtype fp32|bf16 --task score|decode|mc [--iters N]
 * mc: multiple-choice scoring through eval/mc.h (packed rows: a 216-token context and
 * 4 choices of 10 tokens, 32 items, batches of 4 rows = 1024 tokens a pass); tokens/s
 * counts the packed tokens, directly comparable with "score".
 */
#include "core/cpu.h"
#include "core/error.h"
#include "bench_family.h"
#include "model/forward.h"
#include "eval/mc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

int main(int argc, char **argv) {
    const char *shape = "15M", *dtype = "fp32", *task = "score", *family = "llama";
    int iters = 3, B = 4, T = 256, gen = 128;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--shape")) shape = argv[i + 1];
        else if (!strcmp(argv[i], "--dtype")) dtype = argv[i + 1];
        else if (!strcmp(argv[i], "--task")) task = argv[i + 1];
        else if (!strcmp(argv[i], "--iters")) iters = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--family")) family = argv[i + 1];
        else { fprintf(stderr, "unknown option %s\n", argv[i]); return 2; }
    }
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
    ModelLoadOptions o = {!strcmp(dtype, "bf16") ? KW_BF16 : KW_F32, 0};
    Model m;
    if (model_init_random(&m, &c, &o, 1234) != 0) { fprintf(stderr, "%s\n", err_msg()); return 1; }
    double best = 0;
    if (!strcmp(task, "score")) {
        RunState s;
        if (runstate_init(&s, &m, B, T, T, 0) != 0) { fprintf(stderr, "%s\n", err_msg()); return 1; }
        int *tok = malloc(sizeof(int) * B * T);
        for (int i = 0; i < B * T; i++) tok[i] = (i * 7919) % c.vocab_size;
        for (int it = 0; it <= iters; it++) { /* first one is warm-up */
            double t0 = now_s();
            model_forward(&s, tok, B, T, 0);
            logsoftmax_rows(s.logits, B * T, c.vocab_size);
            double tps = B * T / (now_s() - t0);
            if (it && tps > best) best = tps;
        }
        free(tok);
        runstate_free(&s);
    } else if (!strcmp(task, "mc")) {
        enum { NI = 32, NC = 4, CTX = 216, CL = 10 };
        static int ctx[NI][CTX], ch[NI][NC][CL];
        static const int *chp[NI][NC];
        static int lens[NC] = {CL, CL, CL, CL};
        McItem items[NI];
        McResult res[NI];
        static double ll[NI][NC];
        static int nt[NI][NC];
        for (int i = 0; i < NI; i++) {
            for (int t = 0; t < CTX; t++) ctx[i][t] = (i * 131 + t * 7919) % c.vocab_size;
            for (int k = 0; k < NC; k++) {
                for (int t = 0; t < CL; t++) ch[i][k][t] = (i * 17 + k * 1009 + t * 31) % c.vocab_size;
                chp[i][k] = ch[i][k];
            }
            items[i] = (McItem){ctx[i], CTX, NC, chp[i], lens};
            res[i] = (McResult){ll[i], nt[i], NULL};
        }
        McOptions mo = {.max_batch = 4};
        for (int it = 0; it <= iters; it++) {
            double t0 = now_s();
            if (eval_mc_score(&m, items, NI, res, &mo) != 0) { fprintf(stderr, "%s\n", err_msg()); return 1; }
            double tps = (double)NI * (CTX + NC * CL) / (now_s() - t0);
            if (it && tps > best) best = tps;
        }
    } else {
        RunState s;
        if (runstate_init(&s, &m, 1, gen + 1, 1, 0) != 0) { fprintf(stderr, "%s\n", err_msg()); return 1; }
        for (int it = 0; it <= iters; it++) {
            int tok = 1;
            double t0 = now_s();
            for (int pos = 0; pos < gen; pos++) {
                model_forward(&s, &tok, 1, 1, pos);
                int bi = 0;
                for (int i = 1; i < c.vocab_size; i++) if (s.logits[i] > s.logits[bi]) bi = i;
                tok = bi;
            }
            double tps = gen / (now_s() - t0);
            if (it && tps > best) best = tps;
        }
        runstate_free(&s);
    }
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    printf("{\"impl\":\"muscle\",\"family\":\"%s\",\"shape\":\"%s\",\"dtype\":\"%s\",\"task\":\"%s\",\"tokens_per_s\":%.1f,\"peak_rss_mb\":%.0f,\"threads\":%d}\n",
           family, shape, dtype, task, best, ru.ru_maxrss / 1024.0, cpu_threads());
    model_free(&m);
    return 0;
}
