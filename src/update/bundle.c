/* update/bundle.c - model + tokenizer + adapter in one call (bundle.h). */
#include "update/bundle.h"

#include "core/error.h"
#include "core/file.h"
#include "model/lora_peft.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The last component of a path or hub name ("a/b/" -> "b"), into buf. */
static const char *last_component(const char *p, char *buf, size_t cap) {
    snprintf(buf, cap, "%s", p);
    size_t n = strlen(buf);
    while (n > 1 && buf[n - 1] == '/') buf[--n] = 0;
    const char *s = strrchr(buf, '/');
    return s ? s + 1 : buf;
}

/* Does the adapter's base_model_name_or_path name this model? The same path (or file),
 * or the same last component (a hub name "org/Llama-2-7b" against a folder Llama-2-7b;
 * a folder against the model file inside it). */
static int base_matches(const char *base, const char *model) {
    if (!strcmp(base, model)) return 1;
    char *rb = realpath(base, NULL), *rm = realpath(model, NULL);
    int same = rb && rm && !strcmp(rb, rm);
    free(rb);
    free(rm);
    if (same) return 1;
    char b1[4096], m1[4096], m2[4096];
    const char *lb = last_component(base, b1, sizeof b1), *lm = last_component(model, m1, sizeof m1);
    char *dir = file_dirname(model);
    const char *ld = dir ? last_component(dir, m2, sizeof m2) : "";
    same = !strcmp(lb, lm) || !strcmp(lb, ld);
    free(dir);
    return same;
}

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
        char *base = lora_peft_base_name(s->adapter);
        if (base && !base_matches(base, s->model)) /* one line, not an error: a copied or renamed model is fine */
            fprintf(stderr, "muscle: warning: %s was trained on '%.200s' (base_model_name_or_path), not on %.200s\n", s->adapter, base, s->model);
        free(base);
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
