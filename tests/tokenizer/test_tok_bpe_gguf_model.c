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
#include "tokenizer/tokenizer.h"

#include <stdlib.h>
#include <string.h>

#define TINY "tests/tokenizer/regress/json/tiny-bytelevel.json"

static void test_gguf_model_tokenizer(void **state) {
    (void)state;
    const char *src_path = shared_path("models/tiny-random-gguf/llama-2-tiny-random.gguf");
    GgufFile g;
    assert_int_equal(gguf_open(&g, src_path), 0);
    Tokenizer *j = tok_load(TINY);
    assert_non_null(j);
    int n = tok_vocab_size(j);
    const char **pieces = calloc((size_t)n, sizeof *pieces);
    uint64_t *lens = calloc((size_t)n, sizeof *lens);
    int32_t *types = calloc((size_t)n, sizeof *types);
    for (int i = 0; i < n; i++) {
        size_t l;
        pieces[i] = tok_piece(j, i, &l);
        lens[i] = l;
        types[i] = tok_type(j, i);
    }
    static const char *merges[] = {"h e", "l l", "he ll", "hell o", "\xc4\xa0 w", "\xc4\xa0w o", "r l", "\xc4\xa0wo rl",
                                   "\xc4\xa0worl d", "\xc4\xa0 \xc4\xa0", "\xc4\xa0 h", "\xc4\xa0h ello"};
    GgufWriter w;
    gguf_writer_init(&w);
    for (size_t i = 0; i < g.n_kvs; i++)
        if (strncmp(g.kvs[i].key, "tokenizer.", 10) != 0) assert_int_equal(gguf_writer_copy_kv(&w, &g.kvs[i]), 0);
    gguf_writer_set_string(&w, "tokenizer.ggml.model", "gpt2");
    gguf_writer_set_string(&w, "tokenizer.ggml.pre", "llama-bpe");
    gguf_writer_set_str_array(&w, "tokenizer.ggml.tokens", pieces, lens, (uint64_t)n);
    gguf_writer_set_array(&w, "tokenizer.ggml.token_type", GGUF_TYPE_INT32, types, (uint64_t)n);
    gguf_writer_set_str_array(&w, "tokenizer.ggml.merges", merges, NULL, sizeof merges / sizeof merges[0]);
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
        int *a, na, *b, nb;
        assert_int_equal(tok_encode(j, texts[k], strlen(texts[k]), 0, 0, &a, &na), 0);
        assert_int_equal(tok_encode(m.tokenizer, texts[k], strlen(texts[k]), 1, 0, &b, &nb), 0);
        assert_int_equal(nb, na + 1);
        assert_memory_equal(a, b + 1, sizeof *a * (size_t)na);
        char *s = tok_decode(m.tokenizer, b + 1, nb - 1, NULL);
        assert_string_equal(s, texts[k]);
        free(s);
        free(a);
        free(b);
    }
    model_free(&m);
    remove(path);
    free(pieces);
    free(lens);
    free(types);
    tok_free(j);
    gguf_close(&g);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_gguf_model_tokenizer),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
