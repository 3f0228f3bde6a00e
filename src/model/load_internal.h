/* model/load_internal.h - private to the format loaders (model/load_*.c, model_random.c)
 * and to tests that build models by hand: weight handles, ownership, and the one
 * table-driven loop that reads a block's tensors by the family's names (load_tensors.c). */
#ifndef MUSCLE_MODEL_LOAD_INTERNAL_H
#define MUSCLE_MODEL_LOAD_INTERNAL_H

#include "model.h"

void *model_alloc(Model *m, size_t bytes);                  /* owned by the model, zeroed */
/* Makes a matrix weight of [n, k] from stored data of type t (F32/F16/BF16/Q8_0),
 * mapping it without a copy when the type matches the compute type (and the model is not
 * writable: full training owns fp32 copies). */
int model_make_weight(Model *m, KWeight *w, DType t, const void *data, int n, int k);
/* The same, always into an owned buffer when copy != 0 (data may then be freed). */
int model_make_weight_copy(Model *m, KWeight *w, DType t, const void *data, int n, int k, int copy);
/* An fp32 vector (norm weights, biases) from stored data. */
float *model_make_vector(Model *m, DType t, const void *data, size_t n);
/* Once every tensor is set: the tied classifier takes the embedding's handle, and
 * ROPE_SCALING_TABLE models must have their divisors. */
int model_finish(Model *m);

int model_load_llama2c(Model *m, const char *path, const ModelLoadOptions *o);
int model_load_hf(Model *m, const char *dir, const ModelLoadOptions *o);
int model_load_gguf(Model *m, const char *path, const ModelLoadOptions *o);

/* ---- table-driven tensor loading (load_tensors.c) ---- */

/* A stored tensor as a format reader found it: PyTorch shape order [out, in]. */
typedef struct {
    DType dtype;
    const void *data;
    int ndim;
    int64_t shape[2];
    size_t row_bytes;  /* bytes of one row of shape[1] elements (Q8_0 blocks included) */
} SrcTensor;

typedef struct {
    void *ctx;
    const char *path;       /* named in messages */
    int gguf;               /* GGUF names (arch->gguf_*) instead of Hugging Face ones */
    int qk_half;            /* q/k rows stored in half-split order: un-permute them */
    /* 0 found, 1 absent, -1 error set (unsupported type) */
    int (*find)(void *ctx, const char *name, SrcTensor *t);
} TensorSource;

/* Reads every tensor of m->cfg (set and checked) by the family's names: embedding
 * (or, tied with no embedding stored, the classifier), each layer's norms, linears,
 * biases and q/k norms, final norm, classifier. */
int model_load_tensors(Model *m, const TensorSource *src);

/* Rows of a q or k matrix [heads*hd, k] (or elements of a bias/norm when row = element):
 * half-split row h*hd + s*rd/2 + i holds interleaved row h*hd + 2i + s (i < rd/2; rows
 * past rope_dims stay). to_half: the other way. dst and src must not overlap. */
void model_qk_permute(void *dst, const void *src, int heads, int hd, int rd, size_t row_bytes, int to_half);

#endif
