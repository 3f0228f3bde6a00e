/* model/model_tokenizer.c - finding the tokenizer that belongs to a model. */
#include "generate.h"
#include "core/error.h"

#include <dirent.h>
#include <stdlib.h>
#include <string.h>

static int fits(const Model *m, Tokenizer *t, const char *what) {
    int tv = tok_vocab_size(t), mv = m->cfg.vocab_size;
    /* A model may pad its vocabulary past its tokenizer's pieces: Hugging Face checkpoints
     * round it up (Qwen2.5: 151936 rows for 151665 pieces, 271 unused; Phi-2: 51200 for
     * 50295, 905 unused). Accepted: up to max(127, V / 32) unused rows (3%), which still
     * refuses every pairing of two different families' tokenizers and models (their sizes
     * differ by far more). A tokenizer with more pieces than the model has rows would
     * produce ids the model cannot read. */
    int slack = mv / 32 > 127 ? mv / 32 : 127;
    if (tv > mv || mv - tv > slack) {
        err_set("%s: tokenizer has %d pieces but the model %s has a vocabulary of %d: they do not belong together",
                what, tv, m->path, mv);
        return 0;
    }
    return 1;
}

static int is_candidate(const char *nm) {
    size_t l = strlen(nm);
    return !strncmp(nm, "tok", 3) && ((l > 4 && !strcmp(nm + l - 4, ".bin")) || (l > 6 && !strcmp(nm + l - 6, ".model")) ||
                                      (l > 5 && !strcmp(nm + l - 5, ".json")));
}

/* Tries a path: the tokenizer when it loads and fits, else NULL (message set). */
static Tokenizer *try_path(const Model *m, const char *p) {
    Tokenizer *t = tok_load(p);
    if (t && !fits(m, t, p)) {
        tok_free(t);
        t = NULL;
    }
    return t;
}

Tokenizer *model_tokenizer_load_ex(const Model *m, const char *path, char **found) {
    if (found) *found = NULL;
    if (path) {
        Tokenizer *t = try_path(m, path);
        if (t && found) *found = strdup(path);
        return t;
    }
    if (m->tokenizer) return m->tokenizer;
    /* the canonical names first, then llama2.c habits (tok512.bin, tok105.model ...):
     * the first in sorted order that loads and fits */
    const char *names[] = {"tokenizer.json", "tokenizer.model", "tokenizer.bin"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        char *p = file_join(m->dir, names[i]);
        if (p && file_exists(p)) {
            Tokenizer *t = try_path(m, p);
            if (t && found) *found = p;
            else free(p);
            return t;
        }
        free(p);
    }
    struct dirent **ents = NULL;
    int n = scandir(m->dir, &ents, NULL, alphasort);
    char firsterr[512] = "";
    Tokenizer *t = NULL;
    for (int i = 0; i < n; i++) {
        if (!t && is_candidate(ents[i]->d_name)) {
            char *p = file_join(m->dir, ents[i]->d_name);
            t = p ? try_path(m, p) : NULL;
            if (!t && !firsterr[0]) snprintf(firsterr, sizeof firsterr, "%s", err_msg());
            if (t && found) *found = p;
            else free(p);
        }
        free(ents[i]);
    }
    free(ents);
    if (!t) {
        if (firsterr[0]) err_set("%s", firsterr);
        else err_set("%s: no tokenizer found beside the model (tokenizer.json, tokenizer.model, tokenizer.bin, tok*.bin): name one with --tokenizer", m->path);
    }
    return t;
}

Tokenizer *model_tokenizer_load(const Model *m, const char *path) { return model_tokenizer_load_ex(m, path, NULL); }

void model_tokenizer_free(const Model *m, Tokenizer *t) {
    if (t && t != m->tokenizer) tok_free(t);
}
