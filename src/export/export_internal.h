/* export/export_internal.h - what the export files share (not a public header). */
#ifndef MUSCLE_EXPORT_INTERNAL_H
#define MUSCLE_EXPORT_INTERNAL_H

#include "io/gguf.h"
#include "tokenizer/tokenizer.h"

/* The vocabulary as llama.cpp's converter writes it (tokenizer.ggml.*; export_gguf_vocab.c):
 * model "llama" (SentencePiece kind: tokens, scores, token_type) or, for a byte-level BPE
 * tokenizer, "gpt2" (tokens, token_type, merges "left right" in rank order, pre = the
 * llama.cpp name of its pre-tokenizer). Ids the tokenizer leaves empty or does not reach, up
 * to n_vocab (the model's), are "[PADi]" of type UNUSED, as the converter pads them.
 * BOS/EOS/UNK/PAD ids; add_bos_token exactly when there is a BOS (muscle adds it then). The
 * writer copies every value. 0 / -1 + err_set naming path. */
int export_gguf_vocab(GgufWriter *w, const Tokenizer *t, int n_vocab, const char *path);

#endif
