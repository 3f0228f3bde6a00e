/* fuzz/fuzz_hf_config.c - libFuzzer harness for a Hugging Face config.json
 * (hf_config_parse, src/model/load_hf.c). Input: the file's bytes.
 * Oracles besides the sanitizers: a failure leaves a message naming the file; a success
 * gives a configuration model_config_check accepts (of a known family, arch.h), whose parameter count does not
 * overflow, and which model_save_hf_config writes back and hf_config_read reads again
 * into the same configuration (written in a private folder of $FUZZ_TMPDIR, /dev/shm or
 * /tmp, removed at exit).
 * Build and run: fuzz/run_files.sh SECONDS hf_config. */
#include "fuzz_files_common.h"
#include "core/error.h"
#include "core/file.h"
#include "model/model.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char hf_dir[512];

static void hf_cleanup(void) {
    char p[600];
    snprintf(p, sizeof p, "%s/config.json", hf_dir);
    unlink(p);
    rmdir(hf_dir);
}

static void hf_init(void) {
    if (hf_dir[0]) return;
    fuzz_tmpdir_make(hf_dir, sizeof hf_dir, "fuzz_hf_config");
    atexit(hf_cleanup);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    hf_init();
    char *text = fuzz_copy(data, size);
    ModelConfig c;
    err_clear();
    if (hf_config_parse(&c, text, size, "fuzz/config.json") != 0) {
        FUZZ_CHECK(strstr(err_msg(), "fuzz/config.json") != NULL);
        free(text);
        return 0;
    }
    free(text);
    FUZZ_CHECK(model_config_check(&c, "parsed") == 0);
    FUZZ_CHECK(c.head_dim > 0 && c.n_heads % c.n_kv_heads == 0 && c.arch != NULL && c.rope_dims == c.head_dim);
    FUZZ_CHECK(c.sliding_window >= 0 && c.sliding_window < c.seq_len && c.rope_scaling != ROPE_SCALING_TABLE);
    FUZZ_CHECK(isfinite(c.norm_eps) && isfinite(c.rope_theta) && c.bos_id >= 0 && c.eos_id >= 0);
    Model m;
    memset(&m, 0, sizeof m);
    m.cfg = c;
    uint64_t np = model_param_count(&m);
    FUZZ_CHECK(np >= (uint64_t)c.vocab_size * (uint64_t)c.dim && np < (1ull << 62));
    /* written back and read again: the same configuration */
    FUZZ_CHECK(model_save_hf_config(&c, hf_dir, DT_F32) == 0);
    ModelConfig d;
    FUZZ_CHECK(hf_config_read(&d, hf_dir) == 0);
    FUZZ_CHECK(d.dim == c.dim && d.hidden_dim == c.hidden_dim && d.n_layers == c.n_layers && d.n_heads == c.n_heads &&
             d.n_kv_heads == c.n_kv_heads && d.head_dim == c.head_dim && d.vocab_size == c.vocab_size &&
             d.seq_len == c.seq_len && d.rope_theta == c.rope_theta && d.norm_eps == c.norm_eps && d.tied == c.tied &&
             d.rope == c.rope && d.bos_id == c.bos_id && d.eos_id == c.eos_id);
    /* the family's description and values (model/arch.h) */
    FUZZ_CHECK(d.arch == c.arch && d.bias == c.bias && d.qk_norm == c.qk_norm && d.sliding_window == c.sliding_window &&
               d.rope_dims == c.rope_dims && d.rope_scaling == c.rope_scaling && d.rope_factor == c.rope_factor &&
               d.rope_low_freq == c.rope_low_freq && d.rope_high_freq == c.rope_high_freq && d.rope_orig_ctx == c.rope_orig_ctx);
    return 0;
}
