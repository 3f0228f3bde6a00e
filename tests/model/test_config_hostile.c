/* tests/model/test_config_hostile.c - hand-made hostile config.json, adapter_config.json and
 * llama2.c headers, one per rule: numbers out of range (huge, negative, zero, fractional, strings),
 * sizes whose products overflow or exceed memory, floats that overflow a float, non-UTF-8
 * text, escaped NULs, deep nesting, bytes after the object, unsupported settings. Each must
 * be refused with one message naming the file and the field. */
#include "testutil.h"
#include "core/error.h"
#include "core/file.h"
#include "model/lora_peft.h"
#include "model/model.h"

#define BASE "\"hidden_size\":64,\"intermediate_size\":172,\"num_hidden_layers\":5,\"num_attention_heads\":8,\"vocab_size\":512"

/* parses text (exact-size copy): must fail naming the file and holding `want` */
static void hf_refuse(const char *text, const char *want) {
    size_t n = strlen(text);
    char *copy = malloc(n ? n : 1);
    memcpy(copy, text, n);
    ModelConfig c;
    err_clear();
    int rc = hf_config_parse(&c, copy, n, "dir/config.json");
    free(copy);
    if (rc == 0) fail_msg("accepted %s (wanted an error with \"%s\")", text, want);
    if (!strstr(err_msg(), "dir/config.json") || !strstr(err_msg(), want))
        fail_msg("message \"%s\": wanted one naming the file and holding \"%s\"", err_msg(), want);
}

/* the base config with field `key` set to the JSON text `value` (NULL: left out) */
static void hf_with(const char *key, const char *value, const char *want) {
    static const char *const base[][2] = {{"hidden_size", "64"}, {"intermediate_size", "172"}, {"num_hidden_layers", "5"},
                                          {"num_attention_heads", "8"}, {"vocab_size", "512"}};
    char text[4096];
    size_t k = (size_t)sprintf(text, "{");
    int found = 0;
    for (int i = 0; i < 5; i++) {
        const char *v = base[i][1];
        if (!strcmp(base[i][0], key)) found = 1, v = value;
        if (v) k += (size_t)snprintf(text + k, sizeof text - k, "%s\"%s\":%s", k > 1 ? "," : "", base[i][0], v);
    }
    if (!found) snprintf(text + k, sizeof text - k, ",\"%s\":%s", key, value);
    strcat(text, "}");
    hf_refuse(text, want);
}

static void test_hf_config(void **state) {
    (void)state;
    ModelConfig c;
    const char *ok = "{" BASE "}";
    assert_int_equal(hf_config_parse(&c, ok, strlen(ok), "ok"), 0);
    assert_int_equal(c.head_dim, 8);
    assert_int_equal(c.n_kv_heads, 8);
    /* the families' own keys, as their real configs write them */
    const char *l31 = "{" BASE ",\"model_type\":\"llama\",\"eos_token_id\":[5,6,7],\"bos_token_id\":4,\"rope_scaling\":"
                      "{\"factor\":8.0,\"low_freq_factor\":1.0,\"high_freq_factor\":4.0,\"original_max_position_embeddings\":8192,"
                      "\"rope_type\":\"llama3\"},\"head_dim\":16,\"attention_bias\":false,\"mlp_bias\":true}";
    assert_int_equal(hf_config_parse(&c, l31, strlen(l31), "l31"), 0);
    assert_int_equal(c.eos_id, 5);
    assert_int_equal(c.head_dim, 16);
    assert_int_equal(c.rope_scaling, ROPE_SCALING_LLAMA3);
    assert_int_equal(c.bias, LIN_MLP);
    const char *mis = "{" BASE ",\"model_type\":\"mistral\",\"sliding_window\":64,\"max_position_embeddings\":256}";
    assert_int_equal(hf_config_parse(&c, mis, strlen(mis), "mis"), 0);
    assert_int_equal(c.sliding_window, 64);
    const char *mis_long = "{" BASE ",\"model_type\":\"mistral\",\"sliding_window\":4096,\"max_position_embeddings\":256}";
    assert_int_equal(hf_config_parse(&c, mis_long, strlen(mis_long), "mis"), 0);
    assert_int_equal(c.sliding_window, 0); /* not shorter than the context: no window */
    const char *q2 = "{" BASE ",\"model_type\":\"qwen2\",\"use_sliding_window\":false,\"sliding_window\":32}";
    assert_int_equal(hf_config_parse(&c, q2, strlen(q2), "q2"), 0);
    assert_int_equal(c.bias, LIN_QKV);
    assert_int_equal(c.sliding_window, 0);
    const char *q3 = "{" BASE ",\"model_type\":\"qwen3\",\"head_dim\":16}";
    assert_int_equal(hf_config_parse(&c, q3, strlen(q3), "q3"), 0);
    assert_int_equal(c.qk_norm, 1);
    assert_int_equal(c.bias, 0);
    /* the JSON itself */
    hf_refuse("", "not valid JSON");
    hf_refuse("{" BASE, "not valid JSON");
    hf_refuse("[1]", "expected a JSON object");
    hf_refuse("{" BASE "} {}", "unexpected bytes after the JSON object");
    hf_with("x", "\"caf\xe9\"", "not valid UTF-8");          /* Latin-1, not UTF-8 */
    hf_with("x", "\"\xed\xa0\x80\"", "not valid UTF-8");     /* a surrogate */
    hf_with("x", "\"\xc0\x80\"", "not valid UTF-8");         /* overlong NUL */
    hf_with("model_type", "\"llama\\u0000x\"", "escaped NUL");
    char deep[400];
    size_t k = (size_t)sprintf(deep, "{" BASE ",\"x\":");
    for (int i = 0; i < 40; i++) deep[k++] = '[';
    for (int i = 0; i < 40; i++) deep[k++] = ']';
    strcpy(deep + k, "}");
    hf_refuse(deep, "nested deeper than 32 levels");
    /* integers: missing, huge, negative, fractional, a string, null where required */
    hf_with("vocab_size", NULL, "field 'vocab_size' is missing");
    hf_refuse("{" BASE ",\"hidden_size\":32}", "key 'hidden_size' appears twice");
    hf_with("num_hidden_layers", "1e300", "field 'num_hidden_layers': expected a non-negative integer");
    hf_with("vocab_size", "-1", "field 'vocab_size': expected a non-negative integer");
    hf_with("intermediate_size", "172.5", "field 'intermediate_size': expected a non-negative integer");
    hf_with("num_attention_heads", "\"8\"", "field 'num_attention_heads': expected a non-negative integer");
    hf_with("hidden_size", "null", "field 'hidden_size' is missing");
    hf_with("eos_token_id", "[]", "field 'eos_token_id'");      /* a list (Llama 3.1) must hold an id */
    hf_with("eos_token_id", "[\"2\"]", "field 'eos_token_id'");
    /* zero and out-of-range sizes (the limits of model_config_check) */
    hf_with("hidden_size", "0", "dim 0");
    hf_with("num_attention_heads", "0", "num_attention_heads 0");
    hf_with("num_hidden_layers", "0", "n_layers 0");
    hf_with("vocab_size", "0", "vocab_size 0");
    hf_with("hidden_size", "131072", "dim 131072");
    hf_with("vocab_size", "999999999", "vocab_size 999999999");
    hf_with("num_hidden_layers", "1025", "n_layers 1025");
    hf_with("max_position_embeddings", "0", "seq_len 0");
    /* shapes that do not fit together */
    hf_with("hidden_size", "60", "not a multiple of num_attention_heads");
    hf_with("num_key_value_heads", "3", "not a multiple of n_kv_heads");
    hf_with("num_key_value_heads", "16", "n_kv_heads 16");
    hf_with("head_dim", "7", "head_dim 7: expected an even number");
    hf_with("hidden_size", "72", "head_dim 9: expected an even number");
    /* floats: overflow a float, zero, negative, a string */
    hf_with("rope_theta", "1e39", "field 'rope_theta': expected a number within the range of a float");
    hf_with("rope_theta", "-10000", "field 'rope_theta': expected a positive number");
    hf_with("rms_norm_eps", "0", "field 'rms_norm_eps': expected a positive number");
    hf_with("rms_norm_eps", "1e-300", "field 'rms_norm_eps': expected a positive number"); /* 0 as a float */
    hf_with("rms_norm_eps", "2", "norm epsilon 2");
    hf_with("rope_theta", "\"1e4\"", "field 'rope_theta'");
    /* unsupported settings */
    hf_with("model_type", "\"gpt2\"", "field 'model_type': 'gpt2' is not supported (expected one of llama, mistral, qwen2, qwen3, phi, gemma)");
    hf_with("model_type", "7", "field 'model_type': expected a string");
    hf_with("rope_scaling", "{\"type\":\"yarn\",\"factor\":2}", "field 'rope_scaling.type': 'yarn' is not supported");
    hf_with("rope_scaling", "{\"rope_type\":\"dynamic\",\"factor\":2}", "field 'rope_scaling.rope_type': 'dynamic' is not supported");
    hf_with("rope_scaling", "[]", "field 'rope_scaling': expected an object");
    hf_with("rope_scaling", "{\"factor\":2}", "field 'rope_scaling.rope_type'");
    hf_with("rope_scaling", "{\"rope_type\":\"linear\"}", "field 'rope_scaling.factor' is missing");
    hf_with("rope_scaling", "{\"rope_type\":\"linear\",\"factor\":0.5}", "field 'rope_scaling.factor' 0.5: expected >= 1");
    hf_with("rope_scaling", "{\"rope_type\":\"llama3\",\"factor\":8,\"low_freq_factor\":4,\"high_freq_factor\":1}",
            "field 'rope_scaling.high_freq_factor'");
    hf_with("rope_scaling", "{\"rope_type\":\"llama3\",\"factor\":8,\"original_max_position_embeddings\":-3}",
            "field 'original_max_position_embeddings'");
    hf_with("hidden_act", "\"gelu\"", "field 'hidden_act': expected \"silu\"");
    hf_with("attention_bias", "1", "field 'attention_bias': expected true or false");
    hf_with("sliding_window", "-5", "field 'sliding_window': expected a non-negative integer");
    hf_with("partial_rotary_factor", "0.1", "field 'partial_rotary_factor' 0.1 leaves 0 rotated dimensions of 8");
    hf_with("partial_rotary_factor", "2", "field 'partial_rotary_factor' 2: expected at most 1");
    hf_refuse("{" BASE ",\"model_type\":\"qwen2\",\"attention_bias\":true}", "field 'attention_bias': not a qwen2 config key");
    hf_refuse("{" BASE ",\"model_type\":\"qwen3\",\"use_sliding_window\":true}", "field 'use_sliding_window' is true");
    hf_with("tie_word_embeddings", "\"yes\"", "tie_word_embeddings");
    /* Phi and Gemma: their activations, Phi's q/k LayerNorm */
    hf_refuse("{" BASE ",\"model_type\":\"phi\",\"hidden_act\":\"silu\"}", "field 'hidden_act': expected \"gelu_new\" or");
    hf_refuse("{" BASE ",\"model_type\":\"phi\",\"qk_layernorm\":true}", "field 'qk_layernorm' is true");
    hf_refuse("{" BASE ",\"model_type\":\"phi\",\"attention_bias\":true}", "field 'attention_bias': not a phi config key");
    hf_refuse("{" BASE ",\"model_type\":\"gemma\",\"hidden_activation\":\"gelu\"}", "field 'hidden_activation': expected \"gelu_pytorch_tanh\"");
    hf_refuse("{" BASE ",\"model_type\":\"gemma\",\"hidden_act\":\"relu\"}", "field 'hidden_act': expected \"gelu_pytorch_tanh\" or \"gelu\"");
    /* a hostile model_type is cut in the message */
    char longtype[800];
    sprintf(longtype, "{" BASE ",\"model_type\":\"%0500d\"}", 7);
    hf_refuse(longtype, "...' is not supported");
    assert_true(strlen(err_msg()) < 200);
}

/* a folder whose config declares a model far larger than memory: refused before loading,
 * with the numbers; sizes whose products would overflow 32 bits are counted in 64 */
static void test_hf_config_memory(void **state) {
    (void)state;
    const char *dir = test_tmpdir();
    char p[600];
    snprintf(p, sizeof p, "%s/config.json", dir);
    const char *big = "{\"hidden_size\":65536,\"intermediate_size\":262144,\"num_hidden_layers\":1024,"
                      "\"num_attention_heads\":64,\"vocab_size\":4194304}";
    assert_int_equal(file_write_all_atomic(p, big, strlen(big)), 0);
    Model m;
    assert_int_equal(model_load(&m, dir, NULL), -1);
    assert_non_null(strstr(err_msg(), "refused before loading"));
    assert_non_null(strstr(err_msg(), "parameters")); /* ~2.6e13 parameters, more than 2^32 */
    unlink(p);
    rmdir(dir);
}

static void ac_refuse(const char *text, const char *want) {
    size_t n = strlen(text);
    char *copy = malloc(n ? n : 1);
    memcpy(copy, text, n);
    LoraPeftConfig pc;
    err_clear();
    int rc = lora_peft_config_parse(&pc, copy, n, "ad/adapter_config.json");
    free(copy);
    if (rc == 0) fail_msg("accepted %s (wanted an error with \"%s\")", text, want);
    if (!strstr(err_msg(), "ad/adapter_config.json") || !strstr(err_msg(), want))
        fail_msg("message \"%s\": wanted one naming the file and holding \"%s\"", err_msg(), want);
    assert_int_equal(pc.rank, 0);
}

#define T "\"target_modules\":[\"q_proj\",\"v_proj\"]"

static void test_adapter_config(void **state) {
    (void)state;
    LoraPeftConfig pc;
    const char *ok = "{\"peft_type\":\"LORA\",\"r\":8,\"lora_alpha\":16," T "}";
    assert_int_equal(lora_peft_config_parse(&pc, ok, strlen(ok), "ok"), 0);
    assert_int_equal(pc.rank, 8);
    assert_int_equal(pc.targets, LORA_BIT(LORA_Q) | LORA_BIT(LORA_V));
    /* the JSON itself */
    ac_refuse("{\"r\":8,", "not valid JSON");
    ac_refuse("\"LORA\"", "expected a JSON object");
    ac_refuse("{\"r\":8,\"lora_alpha\":16," T ",\"r\":64}", "key 'r' appears twice");
    ac_refuse("{\"r\":8,\"lora_alpha\":16," T "}x", "unexpected bytes");
    ac_refuse("{\"r\":8,\"lora_alpha\":16," T ",\"base_model_name_or_path\":\"\xff\"}", "not valid UTF-8");
    ac_refuse("{\"r\":8,\"lora_alpha\":16,\"target_modules\":[\"q_proj\\u0000\"]}", "escaped NUL");
    char deep[300];
    size_t k = (size_t)sprintf(deep, "{\"r\":8,\"lora_alpha\":16," T ",\"loftq_config\":");
    for (int i = 0; i < 33; i++) deep[k++] = '{', deep[k++] = '"', deep[k++] = 'a', deep[k++] = '"', deep[k++] = ':';
    deep[k++] = '1';
    for (int i = 0; i < 33; i++) deep[k++] = '}';
    strcpy(deep + k, "}");
    ac_refuse(deep, "nested deeper than 32 levels");
    /* rank: missing, 0, huge, fractional, a string */
    ac_refuse("{\"lora_alpha\":16," T "}", "field 'r'");
    ac_refuse("{\"r\":0,\"lora_alpha\":16," T "}", "field 'r': expected an integer from 1 to 65536");
    ac_refuse("{\"r\":65537,\"lora_alpha\":16," T "}", "field 'r'");
    ac_refuse("{\"r\":1e300,\"lora_alpha\":16," T "}", "field 'r'");
    ac_refuse("{\"r\":7.5,\"lora_alpha\":16," T "}", "field 'r'");
    ac_refuse("{\"r\":\"8\",\"lora_alpha\":16," T "}", "field 'r'");
    /* alpha: missing, 0, negative, overflowing a float, rounding to 0 as a float */
    ac_refuse("{\"r\":8," T "}", "field 'lora_alpha'");
    ac_refuse("{\"r\":8,\"lora_alpha\":0," T "}", "field 'lora_alpha'");
    ac_refuse("{\"r\":8,\"lora_alpha\":-16," T "}", "field 'lora_alpha'");
    ac_refuse("{\"r\":8,\"lora_alpha\":1e39," T "}", "field 'lora_alpha': expected a positive number within the range of a float");
    ac_refuse("{\"r\":8,\"lora_alpha\":1e-50," T "}", "field 'lora_alpha'");
    /* targets: a regular expression, empty, unknown, not a string */
    ac_refuse("{\"r\":8,\"lora_alpha\":16,\"target_modules\":\".*proj\"}", "regular expressions are not supported");
    ac_refuse("{\"r\":8,\"lora_alpha\":16,\"target_modules\":[]}", "field 'target_modules' is empty");
    ac_refuse("{\"r\":8,\"lora_alpha\":16,\"target_modules\":[\"lm_head\"]}", "'lm_head' is not one of");
    ac_refuse("{\"r\":8,\"lora_alpha\":16,\"target_modules\":[3]}", "'?' is not one of");
    ac_refuse("{\"r\":8,\"lora_alpha\":16}", "field 'target_modules'");
    /* settings muscle does not run */
    ac_refuse("{\"peft_type\":\"PREFIX_TUNING\",\"r\":8,\"lora_alpha\":16," T "}", "field 'peft_type'");
    ac_refuse("{\"r\":8,\"lora_alpha\":16," T ",\"fan_in_fan_out\":true}", "fan_in_fan_out");
    ac_refuse("{\"r\":8,\"lora_alpha\":16," T ",\"bias\":\"all\"}", "field 'bias'");
    ac_refuse("{\"r\":8,\"lora_alpha\":16," T ",\"rank_pattern\":{\"q_proj\":4}}", "rank_pattern");
    ac_refuse("{\"r\":8,\"lora_alpha\":16," T ",\"alpha_pattern\":[1]}", "alpha_pattern");
    ac_refuse("{\"r\":8,\"lora_alpha\":16," T ",\"use_rslora\":1}", "use_rslora");
}

/* llama2.c: a 7-int header, then exactly the floats it implies */
static void l2c_refuse(const int32_t h[7], size_t extra_floats, const char *want) {
    const char *dir = test_tmpdir();
    char p[600];
    snprintf(p, sizeof p, "%s/model.bin", dir);
    size_t n = 28 + extra_floats * 4;
    uint8_t *b = calloc(1, n);
    memcpy(b, h, 28);
    assert_int_equal(file_write_all_atomic(p, b, n), 0);
    free(b);
    Model m;
    err_clear();
    if (model_load(&m, p, NULL) == 0) {
        model_free(&m);
        fail_msg("accepted a hostile llama2.c header (wanted an error with \"%s\")", want);
    }
    if (!strstr(err_msg(), p) || !strstr(err_msg(), want))
        fail_msg("message \"%s\": wanted one naming the file and holding \"%s\"", err_msg(), want);
    unlink(p);
    rmdir(dir);
}

static void test_llama2c_header(void **state) {
    (void)state;
    /* dim 8, hidden 16, 1 layer, 2 heads, 2 kv heads, vocab 4 (tied), seq 4: 712 floats
     * (emb 32, norms 8+8+8, wq wk wv wo 64 each, w1 w2 w3 128 each, freq_cis 16) */
    const int32_t ok[7] = {8, 16, 1, 2, 2, 4, 4};
    {
        const char *dir = test_tmpdir();
        char p[600];
        snprintf(p, sizeof p, "%s/model.bin", dir);
        size_t n = 28 + 4 * 712;
        uint8_t *b = calloc(1, n);
        memcpy(b, ok, 28);
        assert_int_equal(file_write_all_atomic(p, b, n), 0);
        free(b);
        Model m;
        if (model_load(&m, p, NULL) != 0) fail_msg("%s", err_msg());
        model_free(&m);
        unlink(p);
        rmdir(dir);
    }
    const size_t okf = 712;
    l2c_refuse(ok, okf - 1, "needs exactly");  /* one float short */
    l2c_refuse(ok, okf + 1, "needs exactly");  /* one float too many */
    int32_t h[7];
#define BAD(i, v, want)                   \
    do {                                  \
        memcpy(h, ok, sizeof h);          \
        h[i] = (v);                       \
        l2c_refuse(h, okf, want);         \
    } while (0)
    BAD(0, -8, "dim -8");
    BAD(0, 0, "dim 0");
    BAD(1, 0, "hidden_dim 0");
    BAD(2, -1, "n_layers -1");
    BAD(3, 0, "n_heads 0");
    BAD(3, 3, "n_heads 3 is not a multiple of n_kv_heads 2");
    BAD(4, 4, "n_kv_heads 4");
    BAD(5, 0, "vocab_size 0");
    BAD(5, INT32_MIN, "vocab_size 0"); /* -INT32_MIN does not exist */
    BAD(6, 0, "seq_len 0");
    BAD(6, INT32_MAX, "seq_len 2147483647");
    /* sizes each in range whose products overflow 32 bits: refused before reading, in 64-bit numbers */
    const int32_t huge[7] = {65536, 262144, 1024, 64, 64, 4194304, 4096};
    l2c_refuse(huge, 0, "refused before loading");
#undef BAD
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hf_config),
        cmocka_unit_test(test_hf_config_memory),
        cmocka_unit_test(test_adapter_config),
        cmocka_unit_test(test_llama2c_header),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
