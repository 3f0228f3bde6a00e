/* tests/tokenizer/test_tok_bpe_gguf_model.c - a GGUF model whose metadata carries a byte-level
 * BPE tokenizer (tokenizer.ggml.model "gpt2", tokens, token_type, merges, pre) loads with that
 * tokenizer through model_load (src/model/load_gguf.c), and it encodes as the tokenizer.json it
 * was made from. The model is ../shared's tiny-random GGUF with its tokenizer.* keys replaced by
 * those of tests/tokenizer/regress/json/tiny-bytelevel.json (bpe_agreement.sh checks the same
 * GGUF path against transformers.js on real files). */
#include "testutil.h"

#include "core/error.h"
#include "io/gguf.h"
#include "model/model.h"
#include "tiny_bytelevel.h"
#include "tokenizer/tokenizer.h"

#include <stdlib.h>
#include <string.h>

static void test_gguf_model_tokenizer(void **state) {
    (void)state;
    const char *src_path = shared_path("models/tiny-random-gguf/llama-2-tiny-random.gguf");
    GgufFile g;
    assert_int_equal(gguf_open(&g, src_path), 0);
    Tokenizer *j = tok_load(TINY);
    assert_non_null(j);
    TinyArrays a;
    tiny_arrays(j, &a);
    GgufWriter w;
    gguf_writer_init(&w);
    for (size_t i = 0; i < g.n_kvs; i++)
        if (strncmp(g.kvs[i].key, "tokenizer.", 10) != 0) assert_int_equal(gguf_writer_copy_kv(&w, &g.kvs[i]), 0);
    gguf_writer_set_string(&w, "tokenizer.ggml.model", "gpt2");
    gguf_writer_set_string(&w, "tokenizer.ggml.pre", "llama-bpe");
    gguf_writer_set_str_array(&w, "tokenizer.ggml.tokens", a.pieces, a.lens64, (uint64_t)a.n);
    gguf_writer_set_array(&w, "tokenizer.ggml.token_type", GGUF_TYPE_INT32, a.types, (uint64_t)a.n);
    gguf_writer_set_str_array(&w, "tokenizer.ggml.merges", TINY_MERGES, NULL, TINY_N_MERGES);
    gguf_writer_set_u32(&w, "tokenizer.ggml.bos_token_id", (uint32_t)tok_find(j, "<|x|>", 5));
    for (size_t i = 0; i < g.n_tensors; i++) {
        const GgufTensor *t = &g.tensors[i];
        assert_int_equal(gguf_writer_add_tensor(&w, t->name, t->ggml_type, t->ndim, t->ne, t->data), 0);
    }
    char path[512];
    snprintf(path, sizeof path, "%s/bpe-model.gguf", test_tmpdir());
    assert_int_equal(gguf_writer_write(&w, path), 0);
    gguf_writer_free(&w);

    Model m;
    if (model_load(&m, path, NULL) != 0) fail_msg("model_load: %s", err_msg());
    assert_non_null(m.tokenizer);
    assert_int_equal(tok_bos_id(m.tokenizer), tok_find(j, "<|x|>", 5));
    static const char *texts[] = {"hello world", "  Hello  world\n\n\tHELLO'S it's 12345 <|x|>hello<|x|>", "\xf0\x9f\xa4\xb7"};
    for (size_t k = 0; k < sizeof texts / sizeof texts[0]; k++) {
        int *x, nx, *y, ny;
        assert_int_equal(tok_encode(j, texts[k], strlen(texts[k]), 0, 0, &x, &nx), 0);
        assert_int_equal(tok_encode(m.tokenizer, texts[k], strlen(texts[k]), 1, 0, &y, &ny), 0);
        assert_int_equal(ny, nx + 1);
        assert_memory_equal(x, y + 1, sizeof *x * (size_t)nx);
        char *s = tok_decode(m.tokenizer, y + 1, ny - 1, NULL);
        assert_string_equal(s, texts[k]);
        free(s);
        free(x);
        free(y);
    }
    model_free(&m);
    remove(path);
    tiny_arrays_free(&a);
    tok_free(j);
    gguf_close(&g);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_gguf_model_tokenizer),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
