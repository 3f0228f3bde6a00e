/* model/model_tokenizer.c - finding the tokenizer that belongs to a model. */
#include "generate.h"
#include "core/error.h"

#include <dirent.h>
#include <stdlib.h>
#include <string.h>

static int fits(const Model *m, Tokenizer *t, const char *what) {
    int tv = tok_vocab_size(t), mv = m->cfg.vocab_size;
    /* A model may pad its vocabulary (Hugging Face checkpoints round it up, e.g. to a
     * multiple of 64): up to 127 unused rows are accepted. A tokenizer with more pieces
     * than the model has rows would produce ids the model cannot read. */
    if (tv > mv || mv - tv >= 128) {
        err_set("%s: tokenizer has %d pieces but the model %s has a vocabulary of %d: they do not belong together",
                what, tv, m->path, mv);
        return 0;
    }
    return 1;
}

Tokenizer *model_tokenizer_load(const Model *m, const char *path) {
    Tokenizer *t = NULL;
    if (path) {
        t = tok_load(path);
        if (!t) return NULL;
        if (!fits(m, t, path)) { tok_free(t); return NULL; }
        return t;
    }
    if (m->tokenizer) {
        t = m->tokenizer;
        return t;
    }
    const char *names[] = {"tokenizer.json", "tokenizer.model", "tokenizer.bin"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        char *p = file_join(m->dir, names[i]);
        if (p && file_exists(p)) {
            t = tok_load(p);
            if (t && !fits(m, t, p)) { tok_free(t); t = NULL; }
            free(p);
            return t;
        }
        free(p);
    }
    /* llama2.c habit: tok512.bin, tok105.model ... beside the checkpoint; take the
     * first (sorted) that loads and fits */
    struct dirent **ents = NULL;
    int n = scandir(m->dir, &ents, NULL, alphasort);
    char firsterr[512] = "";
    for (int i = 0; i < n && !t; i++) {
        const char *nm = ents[i]->d_name;
        size_t l = strlen(nm);
        int cand = !strncmp(nm, "tok", 3) && ((l > 4 && !strcmp(nm + l - 4, ".bin")) || (l > 6 && !strcmp(nm + l - 6, ".model")));
        if (cand) {
            char *p = file_join(m->dir, nm);
            Tokenizer *c = p ? tok_load(p) : NULL;
            if (c && fits(m, c, p)) t = c;
            else {
                if (c) tok_free(c);
                if (!firsterr[0]) snprintf(firsterr, sizeof firsterr, "%s", err_msg());
            }
            free(p);
        }
    }
    for (int i = 0; i < n; i++) free(ents[i]);
    free(ents);
    if (!t) {
        if (firsterr[0]) err_set("%s", firsterr);
        else err_set("%s: no tokenizer found beside the model (tokenizer.json, tokenizer.model, tokenizer.bin, tok*.bin): name one with --tokenizer", m->path);
    }
    return t;
}

void model_tokenizer_free(const Model *m, Tokenizer *t) {
    if (t && t != m->tokenizer) tok_free(t);
}
