/* cli/gen_prompts.h - `muscle generate --prompts FILE` (gen_prompts.c). */
#ifndef MUSCLE_CLI_GEN_PROMPTS_H
#define MUSCLE_CLI_GEN_PROMPTS_H

#include "model/generate.h"

/* Every prompt of the file (one JSON string, or object with "prompt" and optional "id",
 * a line) through the batched generator, `width` at a time (0: default), instance i
 * sampling from gen_seed(g->seed, i); JSON lines in input order to out_path (written
 * atomically; NULL: stdout). 0, or -1 (err_set) naming the file and line of bad input. */
int gen_prompts_run(const Model *m, const Tokenizer *t, const GenOptions *g, const char *path, int width, const char *out_path,
                    int quiet);

#endif
