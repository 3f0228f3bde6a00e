/* update/bundle.c - model + tokenizer + adapter in one call (bundle.h). */
#include "update/bundle.h"

#include "core/error.h"
#include "core/file.h"
#include "model/lora_peft.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int model_bundle_load(ModelBundle *b, const BundleSpec *s) {
    memset(b, 0, sizeof *b);
    ModelLoadOptions lo = {s->bf16 ? KW_BF16 : KW_F32, s->writable};
    if (model_load(&b->model, s->model, &lo) != 0)
        return s->model_label ? err_prefix("%s %s", s->model_label, s->model) : -1;
    if (s->tok != BUNDLE_TOK_NONE) {
        b->tok = model_tokenizer_load_ex(&b->model, s->tokenizer, &b->tok_path);
        if (!b->tok && s->tok == BUNDLE_TOK_REQUIRED) {
            model_bundle_free(b);
            return -1;
        }
        if (!b->tok) snprintf(b->tok_error, sizeof b->tok_error, "%s", err_msg());
    }
    if (s->adapter) {
        if (lora_load_peft(&b->adapter, &b->model.cfg, s->adapter) != 0) {
            int rc = s->adapter_label ? err_prefix("%s %s", s->adapter_label, s->adapter) : -1;
            model_bundle_free(b);
            return rc;
        }
        b->have_adapter = 1;
        if (lora_check(&b->adapter, &b->model) != 0) { /* shapes and targets fit this model */
            err_prefix("%s does not fit %s", s->adapter, s->model);
            model_bundle_free(b);
            return -1;
        }
    }
    return 0;
}

const LoraAdapter *model_bundle_adapter(const ModelBundle *b) {
    return b->have_adapter ? &b->adapter : NULL;
}

int model_bundle_copy_tokenizer(const ModelBundle *b, const char *dir) {
    const char *kind = tok_kind(b->tok);
    const char *name = !strcmp(kind, "sentencepiece") ? "tokenizer.model" : !strcmp(kind, "tokenizer.json") ? "tokenizer.json" : "tokenizer.bin";
    size_t n;
    char *bytes = file_read_all(b->tok_path, &n, 0);
    char *dst = file_join(dir, name);
    int rc = (bytes && dst) ? file_write_all_atomic(dst, bytes, n) : -1;
    free(bytes);
    free(dst);
    return rc;
}

void model_bundle_free(ModelBundle *b) {
    if (b->have_adapter) lora_free(&b->adapter);
    if (b->tok) model_tokenizer_free(&b->model, b->tok);
    free(b->tok_path);
    model_free(&b->model);
    memset(b, 0, sizeof *b);
}
