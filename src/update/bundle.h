/* update/bundle.h - a model ready to run: the base model, its tokenizer and an optional
 * LoRA adapter, loaded in one call by every command (run, eval, finetune, pretrain,
 * and the old teacher of compatibility training).
 *
 * The memory cap of --max-memory (model_set_memory_limit, set once by the CLI) applies
 * to every model_load, so a bundle honours it; `bf16` computes with bf16 base weights.
 * Loading order: model, tokenizer, adapter; on any error everything loaded is freed,
 * the bundle is zeroed and err_msg() says why (prefixed by the spec's labels). */
#ifndef MUSCLE_UPDATE_BUNDLE_H
#define MUSCLE_UPDATE_BUNDLE_H

#include "model/generate.h"
#include "model/lora.h"
#include "model/model.h"

typedef enum {
    BUNDLE_TOK_REQUIRED = 0, /* no tokenizer found: an error */
    BUNDLE_TOK_OPTIONAL,     /* no tokenizer found: tok NULL, tok_error says why */
    BUNDLE_TOK_NONE,         /* not loaded (a teacher model that shares the student's) */
} BundleTokenizer;

typedef struct {
    const char *model;       /* file or folder (model_load) */
    const char *tokenizer;   /* NULL: the one beside / inside the model */
    const char *adapter;     /* PEFT folder, or NULL */
    int bf16;                /* compute with bf16 base weights */
    int writable;            /* own fp32 copies of every weight (full training) */
    BundleTokenizer tok;
    const char *model_label, *adapter_label; /* e.g. "--old-model": prefix of their errors (NULL: none) */
} BundleSpec;

typedef struct {
    Model model;
    Tokenizer *tok;          /* NULL with BUNDLE_TOK_NONE, or OPTIONAL and not found */
    char *tok_path;          /* the tokenizer's file (NULL when embedded in the model) */
    char tok_error[256];     /* BUNDLE_TOK_OPTIONAL: why there is none */
    LoraAdapter adapter;
    int have_adapter;
} ModelBundle;

int model_bundle_load(ModelBundle *b, const BundleSpec *s);
/* The adapter to run with (NULL when none was loaded). */
const LoraAdapter *model_bundle_adapter(const ModelBundle *b);
/* Copies the tokenizer's file into dir under its usual name (tokenizer.model,
 * tokenizer.json or tokenizer.bin); needs tok_path. */
int model_bundle_copy_tokenizer(const ModelBundle *b, const char *dir);
void model_bundle_free(ModelBundle *b);

#endif
