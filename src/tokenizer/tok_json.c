/* tokenizer/tok_json.c - Hugging Face tokenizer.json (Llama kind) loader and encoder. */
#include "tokenizer/tok_internal.h"

#include "core/error.h"

#include <stdlib.h>

Tokenizer *tok_load_json_mem(const uint8_t *d, size_t size, const char *name, const char *path) {
    (void)d; (void)size; (void)path;
    err_set("%s: tokenizer.json: not implemented yet", name);
    return NULL;
}

int tok_json_encode(const Tokenizer *t, const char *text, size_t len, TokBuf *ids) {
    (void)t; (void)text; (void)len; (void)ids;
    return err_set("tokenizer.json: not implemented yet");
}

void tok_json_free(Tokenizer *t) { (void)t; }
