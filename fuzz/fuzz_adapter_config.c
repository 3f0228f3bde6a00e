/* fuzz/fuzz_adapter_config.c - libFuzzer harness for a PEFT adapter_config.json
 * (lora_peft_config_parse and lora_load_peft, src/model/lora_peft.c). Input: the file's
 * bytes. At start a rank-2 adapter on every target of a tiny model (2 layers, dim 16,
 * 4 heads, 2 KV heads) is saved with lora_save_peft in a private folder of $FUZZ_TMPDIR
 * (/dev/shm or /tmp; removed at exit). Each input that parses replaces that folder's
 * adapter_config.json and the whole folder is loaded.
 * Oracles besides the sanitizers: a failure leaves a message naming the file and a zeroed
 * result; a success gives 1 <= r <= LORA_PEFT_MAX_RANK, a finite positive alpha (and
 * scaling), a non-empty set of known targets; the load succeeds exactly when r is 2 and
 * then gives back the saved values of every target named; otherwise it fails naming a
 * tensor's shape.
 * Build and run: fuzz/run_files.sh SECONDS adapter_config. */
#include "fuzz_files_common.h"
#include "core/error.h"
#include "core/file.h"
#include "model/lora.h"
#include "model/lora_peft.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char ac_dir[512];
static ModelConfig ac_cfg;
static LoraAdapter ac_ref; /* what the folder holds */

static void ac_cleanup(void) {
    const char *names[] = {"adapter_config.json", "adapter_model.safetensors"};
    for (int i = 0; i < 2; i++) {
        char p[600];
        snprintf(p, sizeof p, "%s/%s", ac_dir, names[i]);
        unlink(p);
    }
    rmdir(ac_dir);
    lora_free(&ac_ref);
}

static void ac_init(void) {
    if (ac_dir[0]) return;
    fuzz_tmpdir_make(ac_dir, sizeof ac_dir, "fuzz_adapter_config");
    atexit(ac_cleanup);
    ModelConfig c = {.dim = 16, .hidden_dim = 24, .n_layers = 2, .n_heads = 4, .n_kv_heads = 2, .head_dim = 4,
                     .vocab_size = 8, .seq_len = 16, .rope_theta = 10000.0f, .norm_eps = 1e-5f, .tied = 1,
                     .rope = ROPE_INTERLEAVED, .bos_id = 1, .eos_id = 2};
    ac_cfg = c;
    FUZZ_CHECK(lora_init(&ac_ref, &ac_cfg, 2, 4.0f, 0, LORA_TARGETS_ALL) == 0);
    for (size_t i = 0; i < ac_ref.n_floats; i++) ac_ref.data[i] = (float)((int)(i * 7919 % 201) - 100) / 64.0f;
    FUZZ_CHECK(lora_save_peft(&ac_ref, &ac_cfg, ac_dir, "fuzz", NULL, 0) == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    ac_init();
    char *text = fuzz_copy(data, size);
    LoraPeftConfig pc;
    err_clear();
    int rc = lora_peft_config_parse(&pc, text, size, "fuzz/adapter_config.json");
    free(text);
    if (rc != 0) {
        FUZZ_CHECK(strstr(err_msg(), "fuzz/adapter_config.json") != NULL);
        FUZZ_CHECK(pc.rank == 0 && pc.targets == 0);
        return 0;
    }
    FUZZ_CHECK(pc.rank >= 1 && pc.rank <= LORA_PEFT_MAX_RANK);
    FUZZ_CHECK(isfinite(pc.alpha) && pc.alpha > 0);
    FUZZ_CHECK(pc.targets != 0 && (pc.targets & ~LORA_TARGETS_ALL) == 0);
    /* the whole folder with this configuration */
    char p[600];
    snprintf(p, sizeof p, "%s/adapter_config.json", ac_dir);
    FUZZ_CHECK(file_write_all_atomic(p, data, size) == 0);
    LoraAdapter a;
    rc = lora_load_peft(&a, &ac_cfg, ac_dir);
    if (pc.rank != 2) {
        FUZZ_CHECK(rc == -1 && strstr(err_msg(), "shape") != NULL);
        return 0;
    }
    if (pc.targets != LORA_TARGETS_ALL) { /* the folder's weights cover all seven: the others are refused */
        FUZZ_CHECK(rc == -1 && strstr(err_msg(), "not a LoRA weight of target_modules") != NULL);
        return 0;
    }
    FUZZ_CHECK(rc == 0);
    FUZZ_CHECK(a.rank == 2 && a.targets == pc.targets && a.alpha == pc.alpha && a.rslora == pc.rslora);
    FUZZ_CHECK(isfinite(a.scaling));
    for (int l = 0; l < ac_cfg.n_layers; l++)
        for (int t = 0; t < LORA_N_TARGETS; t++) {
            const LoraMat *x = lora_mat(&a, l, (LoraTarget)t), *y = lora_mat(&ac_ref, l, (LoraTarget)t);
            FUZZ_CHECK((x != NULL) == ((pc.targets & LORA_BIT(t)) != 0));
            if (!x) continue;
            FUZZ_CHECK(x->in == y->in && x->out == y->out && x->rank == y->rank);
            FUZZ_CHECK(memcmp(x->A, y->A, (size_t)x->rank * x->in * sizeof(float)) == 0);
            FUZZ_CHECK(memcmp(x->B, y->B, (size_t)x->out * x->rank * sizeof(float)) == 0);
        }
    lora_free(&a);
    return 0;
}
