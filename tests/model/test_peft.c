/* tests/model/test_peft.c - LoRA adapters as PEFT folders: written, read back exactly,
 * the forward pass unchanged, the layout checked by Python, and the effect checked
 * against the PyTorch reference running the base the Hugging Face way. */
#include "testutil.h"
#include "core/error.h"
#include "core/rng.h"
#include "model/forward.h"
#include "model/lora_peft.h"

#include <math.h>
#include <sys/stat.h>

static const int IDS[] = {1, 403, 261, 378, 426, 271, 9, 359, 409, 268, 281, 267, 501, 15, 0, 33, 511, 2, 100, 200};
#define NIDS (int)(sizeof IDS / sizeof IDS[0])

static void logprobs(const Model *m, const LoraAdapter *a, float *out) {
    RunState s;
    assert_int_equal(runstate_init(&s, m, 1, NIDS, NIDS, 0), 0);
    if (a) assert_int_equal(runstate_set_lora(&s, a), 0);
    assert_int_equal(model_forward(&s, IDS, 1, NIDS, 0), 0);
    logsoftmax_rows(s.logits, NIDS, m->cfg.vocab_size);
    for (int t = 1; t < NIDS; t++) out[t] = s.logits[(size_t)(t - 1) * m->cfg.vocab_size + IDS[t]];
    runstate_free(&s);
}

static void random_adapter(LoraAdapter *a, const Model *m, unsigned targets, int rslora) {
    assert_int_equal(lora_init(a, &m->cfg, 4, 8.0f, rslora, targets), 0);
    Rng r;
    rng_seed(&r, 77);
    for (size_t i = 0; i < a->n_floats; i++) a->data[i] = 0.05f * rng_normal(&r);
}

static void roundtrip(unsigned targets, int rslora) {
    Model m;
    if (model_load(&m, shared_path("models/stories260K/stories260K.bin"), NULL) != 0) fail_msg("%s", err_msg());
    LoraAdapter a, b;
    random_adapter(&a, &m, targets, rslora);
    const char *dir = test_tmpdir();
    char ad[512], base[512], cj[512], cmd[2048];
    snprintf(ad, sizeof ad, "%s/adapter", dir);
    snprintf(base, sizeof base, "%s/base", dir);
    snprintf(cj, sizeof cj, "%s/c.json", dir);
    LoraMeta meta[] = {{"muscle.test", "yes"}};
    assert_int_equal(lora_save_peft(&a, &m.cfg, ad, "stories260K", meta, 1), 0);
    if (lora_load_peft(&b, &m.cfg, ad) != 0) fail_msg("%s", err_msg());
    assert_int_equal(b.rank, a.rank);
    assert_int_equal(b.targets, a.targets);
    assert_int_equal(b.rslora, a.rslora);
    assert_true(b.scaling == a.scaling);
    assert_int_equal(b.n_floats, a.n_floats);
    assert_memory_equal(b.data, a.data, a.n_floats * sizeof(float)); /* permutations undone exactly */
    char *mv = lora_peft_meta(ad, "muscle.test");
    assert_non_null(mv);
    assert_string_equal(mv, "yes");
    free(mv);
    float la[NIDS], lb[NIDS], l0[NIDS];
    logprobs(&m, &a, la);
    logprobs(&m, &b, lb);
    logprobs(&m, NULL, l0);
    assert_memory_equal(la + 1, lb + 1, (NIDS - 1) * sizeof(float));
    double moved = 0;
    for (int t = 1; t < NIDS; t++) moved = fmax(moved, fabs(la[t] - l0[t]));
    assert_true(moved > 1e-3); /* the adapter does something */
    /* PyTorch: base as a Hugging Face folder + the PEFT files, run the HF way */
    assert_int_equal(model_save_hf(&m, base, DT_F32), 0);
    FILE *f = fopen(cj, "w");
    fprintf(f, "{\"ids\":[");
    for (int t = 0; t < NIDS; t++) fprintf(f, t ? ",%d" : "%d", IDS[t]);
    fprintf(f, "],\"logprobs\":[null");
    for (int t = 1; t < NIDS; t++) fprintf(f, ",%.9g", (double)la[t]);
    fprintf(f, "]}\n");
    fclose(f);
    snprintf(cmd, sizeof cmd, "/usr/bin/python3 tools/ref/peft_check.py %s %s %s", base, ad, cj);
    assert_int_equal(system(cmd), 0);
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    assert_int_equal(system(cmd), 0);
    lora_free(&a);
    lora_free(&b);
    model_free(&m);
}

static void test_all_targets(void **st) { (void)st; roundtrip(LORA_TARGETS_ALL, 0); }
static void test_qkvo_rslora(void **st) {
    (void)st;
    roundtrip(LORA_BIT(LORA_Q) | LORA_BIT(LORA_K) | LORA_BIT(LORA_V) | LORA_BIT(LORA_O), 1);
}

static void test_bad_folders(void **st) {
    (void)st;
    Model m;
    if (model_load(&m, shared_path("models/stories260K/stories260K.bin"), NULL) != 0) fail_msg("%s", err_msg());
    LoraAdapter a;
    const char *dir = test_tmpdir();
    char p[600];
    assert_int_equal(lora_load_peft(&a, &m.cfg, dir), -1); /* no config */
    assert_non_null(strstr(err_msg(), "adapter_config.json"));
    snprintf(p, sizeof p, "%s/adapter_config.json", dir);
    FILE *f = fopen(p, "w");
    fputs("{\"peft_type\":\"LORA\",\"r\":4,\"lora_alpha\":8,\"target_modules\":[\"q_proj\",\"lm_head\"]}", f);
    fclose(f);
    assert_int_equal(lora_load_peft(&a, &m.cfg, dir), -1);
    assert_non_null(strstr(err_msg(), "lm_head"));
    f = fopen(p, "w");
    fputs("{\"peft_type\":\"LORA\",\"r\":4,\"lora_alpha\":8,\"target_modules\":[\"q_proj\"]}", f);
    fclose(f);
    assert_int_equal(lora_load_peft(&a, &m.cfg, dir), -1); /* no safetensors */
    assert_non_null(strstr(err_msg(), "adapter_model.safetensors"));
    /* a saved adapter of rank 4 read as another model's (wrong shapes) */
    LoraAdapter r;
    random_adapter(&r, &m, LORA_BIT(LORA_Q), 0);
    assert_int_equal(lora_save_peft(&r, &m.cfg, dir, "x", NULL, 0), 0);
    ModelConfig other = m.cfg;
    other.dim = 128;
    other.head_dim = 16;
    assert_int_equal(lora_load_peft(&a, &other, dir), -1);
    assert_non_null(strstr(err_msg(), "shape"));
    lora_free(&r);
    model_free(&m);
}

/* ---- adapters that cannot be what they claim (issue 17, defect 4) ---- */

static void write_text(const char *dir, const char *name, const char *text) {
    char p[600];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    FILE *f = fopen(p, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

/* adapter_model.safetensors by hand: q_proj LoRA of every layer (zeros), layer 0's A of
 * dtype a0_dtype, and one extra tensor when `extra` is given. */
static void write_raw_st(const char *dir, const Model *m, const char *a0_dtype, const char *extra) {
    char hdr[16384], p[600];
    size_t off = 0, n = 0;
    n += (size_t)snprintf(hdr + n, sizeof hdr - n, "{");
    for (int l = 0; l < m->cfg.n_layers; l++)
        for (int w = 0; w < 2; w++) {
            long r0 = w ? (long)m->cfg.n_heads * m->cfg.head_dim : 4, r1 = w ? 4 : m->cfg.dim;
            size_t bytes = (size_t)(r0 * r1) * (l == 0 && !w && !strcmp(a0_dtype, "F16") ? 2 : 4);
            n += (size_t)snprintf(hdr + n, sizeof hdr - n, "%s\"base_model.model.model.layers.%d.self_attn.q_proj.lora_%c.weight\":"
                                  "{\"dtype\":\"%s\",\"shape\":[%ld,%ld],\"data_offsets\":[%zu,%zu]}", off ? "," : "", l, w ? 'B' : 'A',
                                  l == 0 && !w ? a0_dtype : "F32", r0, r1, off, off + bytes);
            off += bytes;
        }
    if (extra) {
        n += (size_t)snprintf(hdr + n, sizeof hdr - n, ",\"%s\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[%zu,%zu]}", extra, off, off + 16);
        off += 16;
    }
    n += (size_t)snprintf(hdr + n, sizeof hdr - n, "}");
    while (n % 8) hdr[n++] = ' ';
    snprintf(p, sizeof p, "%s/adapter_model.safetensors", dir);
    FILE *f = fopen(p, "wb");
    assert_non_null(f);
    uint64_t len = n;
    fwrite(&len, 8, 1, f);
    fwrite(hdr, 1, n, f);
    for (size_t i = 0; i < off; i++) fputc(0, f);
    fclose(f);
}

static void expect_refused(const Model *m, const char *dir, const char *what) {
    LoraAdapter a;
    if (lora_load_peft(&a, &m->cfg, dir) == 0) {
        lora_free(&a);
        fail_msg("accepted; expected an error naming '%s'", what);
    }
    if (!strstr(err_msg(), what)) fail_msg("'%s' does not name '%s'", err_msg(), what);
}

#define CFG_HEAD "{\"peft_type\":\"LORA\",\"r\":4,\"target_modules\":[\"q_proj\"],"

static void test_hostile_adapters(void **st) {
    (void)st;
    Model m;
    if (model_load(&m, shared_path("models/stories260K/stories260K.bin"), NULL) != 0) fail_msg("%s", err_msg());
    const char *dir = test_tmpdir();
    LoraAdapter r, a;
    random_adapter(&r, &m, LORA_BIT(LORA_Q), 0);
    /* non-finite weights: refused at load, naming the tensor */
    r.data[3] = NAN;
    assert_int_equal(lora_save_peft(&r, &m.cfg, dir, "x", NULL, 0), 0);
    expect_refused(&m, dir, "layers.0.self_attn.q_proj.lora_A.weight' holds NaN");
    r.data[3] = 0.01f;
    r.data[r.n_floats - 1] = INFINITY;
    assert_int_equal(lora_save_peft(&r, &m.cfg, dir, "x", NULL, 0), 0);
    expect_refused(&m, dir, "lora_B.weight' holds an infinity");
    r.data[r.n_floats - 1] = 0.01f;
    assert_int_equal(lora_save_peft(&r, &m.cfg, dir, "x", NULL, 0), 0);
    assert_int_equal(lora_load_peft(&a, &m.cfg, dir), 0); /* the same folder, finite: read */
    lora_free(&a);
    /* fields that would make PEFT's model another one */
    write_text(dir, "adapter_config.json", CFG_HEAD "\"lora_alpha\":1e30}");
    expect_refused(&m, dir, "lora_alpha");
    write_text(dir, "adapter_config.json", CFG_HEAD "\"lora_alpha\":8,\"use_dora\":true}");
    expect_refused(&m, dir, "use_dora");
    write_text(dir, "adapter_config.json", CFG_HEAD "\"lora_alpha\":8,\"modules_to_save\":[\"lm_head\"]}");
    expect_refused(&m, dir, "modules_to_save");
    write_text(dir, "adapter_config.json", CFG_HEAD "\"lora_alpha\":8,\"layers_to_transform\":[0,1]}");
    expect_refused(&m, dir, "layers_to_transform");
    write_text(dir, "adapter_config.json", CFG_HEAD "\"lora_alpha\":8,\"layers_to_transform\":1}");
    expect_refused(&m, dir, "layers_to_transform");
    write_text(dir, "adapter_config.json", CFG_HEAD "\"lora_alpha\":8,\"layers_pattern\":\"layers\"}");
    expect_refused(&m, dir, "layers_pattern");
    /* PEFT's own defaults are read */
    write_text(dir, "adapter_config.json", CFG_HEAD "\"lora_alpha\":8,\"use_dora\":false,\"modules_to_save\":null,"
                                          "\"layers_to_transform\":null,\"layers_pattern\":null}");
    assert_int_equal(lora_load_peft(&a, &m.cfg, dir), 0);
    lora_free(&a);
    /* tensors: an integer dtype, and a tensor muscle would not apply (a DoRA magnitude) */
    write_raw_st(dir, &m, "I32", NULL);
    expect_refused(&m, dir, "has dtype I32");
    write_raw_st(dir, &m, "F32", "base_model.model.model.layers.0.self_attn.q_proj.lora_magnitude_vector");
    expect_refused(&m, dir, "lora_magnitude_vector");
    write_raw_st(dir, &m, "F16", NULL); /* F16 is a float: read */
    assert_int_equal(lora_load_peft(&a, &m.cfg, dir), 0);
    lora_free(&a);
    lora_free(&r);
    model_free(&m);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_all_targets),
        cmocka_unit_test(test_qkvo_rslora),
        cmocka_unit_test(test_bad_folders),
        cmocka_unit_test(test_hostile_adapters),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
