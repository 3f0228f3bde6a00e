/* tokenizer/tok_bpe_gguf.c - byte-level BPE from GGUF metadata (tokenizer.ggml.model "gpt2").
 *
 * The arrays come from the caller (the tokenizer does not read GGUF itself): tokens, their
 * token_type, merges ("left right" in rank order) and tokenizer.ggml.pre, whose name picks the
 * pre-tokenizer regexes as llama.cpp's llama-vocab.cpp does. Each regex is one Isolated Split
 * step, applied in order, then ByteLevel without its own regex: the same pipeline a
 * tokenizer.json of that family describes. CONTROL and USER_DEFINED tokens are matched in the
 * text first (as tokenizer.json's added tokens with normalized false).
 */
#include "tokenizer/tok_internal.h"

#include "core/error.h"

#include <stdlib.h>
#include <string.h>

/* The regexes as tokenizer.json writes them (tok_bpe.c rewrites (?i:) and \s as
 * transformers.js does). */
#define RE_GPT2 "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+"
#define RE_LLAMA3                                                                                                 \
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|" \
    "\\s+(?!\\S)|\\s+"
#define RE_QWEN2                                                                                                \
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|" \
    "\\s+(?!\\S)|\\s+"

typedef struct {
    const char *names;  /* '|'-separated tokenizer.ggml.pre values; the first is what export writes */
    int ignore_merges;  /* llama.cpp sets it for the Llama 3 names */
    int nfc;            /* the family's tokenizer.json normalizes to NFC (llama.cpp does not) */
    int gpt2_bytelevel; /* last step: ByteLevel with its own GPT-2 regex (use_regex true) */
    const char *re[4];  /* Split steps before it, in order */
    const char *json_re0; /* re[0] as tok_json.c registers the family's own step, when it differs
                           * (SmolLM's Digits individual_digits: [0-9]; llama.cpp: \p{N}) */
} PreEntry;

static const PreEntry PRE[] = {
    {"llama-bpe|llama3|llama-v3|falcon3|falcon-h1|pixtral|midm-2.0|lfm2", 1, 0, 0, {RE_LLAMA3}, NULL},
    {"smaug-bpe|dbrx|chatglm-bpe", 0, 0, 0, {RE_LLAMA3}, NULL},
    {"qwen2|qwen2.5|qwen-2.5|deepseek-r1-qwen|stablelm2|hunyuan", 0, 1, 0, {RE_QWEN2}, NULL},
    {"gpt-2|phi-2|mpt|olmo|jais|trillion|granite-docling|jina-es|jina-de|jina-v2-es|jina-v2-de|jina-v2-code|roberta-bpe",
     0, 0, 1, {NULL}, NULL},
    {"smollm|starcoder|refact|command-r|codeshell|exaone|minerva-7b", 0, 0, 1, {"\\p{N}"}, "[0-9]"},
    {"default", 0, 0, 0, {"[\\p{P}\\$\\+<=>\\^~\\|]+", RE_GPT2, "\\p{N}+", "[0-9][0-9][0-9]"}, NULL},
};

static const PreEntry *pre_find(const char *pre) {
    if (!pre || !*pre) pre = "default";
    size_t n = strlen(pre);
    for (size_t i = 0; i < sizeof PRE / sizeof PRE[0]; i++)
        for (const char *p = PRE[i].names; p;) {
            const char *bar = strchr(p, '|');
            size_t l = bar ? (size_t)(bar - p) : strlen(p);
            if (l == n && memcmp(p, pre, n) == 0) return &PRE[i];
            p = bar ? bar + 1 : NULL;
        }
    return NULL;
}

Tokenizer *tok_init_bpe_from_vocab(int n, const char *const *pieces, const uint32_t *piece_lens, const int32_t *types,
                                   int n_merges, const char *const *merges, const uint32_t *merge_lens, const char *pre,
                                   int bos_id, int eos_id) {
    const char *name = "gguf vocabulary";
    if (n <= 0 || n > TOK_MAX_VOCAB || !pieces || n_merges < 0 || (n_merges && !merges)) {
        err_set("%s: %d tokens, %d merges: expected 1..%d tokens and the arrays", name, n, n_merges, TOK_MAX_VOCAB);
        return NULL;
    }
    const PreEntry *pe = pre_find(pre);
    if (!pe) {
        err_set("%s: field 'tokenizer.ggml.pre': '%s' is not supported (expected llama-bpe, qwen2, smollm, gpt-2, "
                "default or another name llama.cpp maps to those regexes)",
                name, pre);
        return NULL;
    }
    int32_t *normal = NULL; /* no token_type: every token normal */
    if (!types && (normal = malloc(sizeof *normal * (size_t)n)))
        for (int i = 0; i < n; i++) normal[i] = TOK_NORMAL;
    Tokenizer *t = tok_init_from_vocab(n, pieces, piece_lens, NULL, types ? types : normal, bos_id, eos_id, -1);
    free(normal);
    if (!t) return NULL;
    t->unk = t->hf_unk = -1;
    t->byte_fallback = 0;
    t->hf_ignore_merges = pe->ignore_merges;
    for (int r = 0; r < n_merges; r++) {
        const char *m = merges[r] ? merges[r] : "";
        size_t ml = merge_lens ? merge_lens[r] : strlen(m);
        const char *sp = ml > 1 ? memchr(m + 1, ' ', ml - 1) : NULL; /* llama.cpp: find(' ', 1) */
        if (!sp) {
            err_set("%s: field 'tokenizer.ggml.merges[%d]': expected \"left right\", got '%.*s'", name, r,
                    (int)(ml < 40 ? ml : 40), m);
            goto fail;
        }
        size_t la = (size_t)(sp - m);
        if (tok_json_add_merge(t, m, la, sp + 1, ml - la - 1, r, name) < 0) goto fail;
    }
    if (!(t->bpe = tok_bpe_new())) {
        err_set("%s: out of memory", name);
        goto fail;
    }
    for (int k = 0; k < 4 && pe->re[k]; k++)
        if (tok_bpe_add_split(t->bpe, pe->re[k], strlen(pe->re[k]), 1, TOK_BPE_ISOLATED, 0, name) < 0) goto fail;
    if (tok_bpe_add_bytelevel(t->bpe, 0, pe->gpt2_bytelevel, name) < 0) goto fail;
    if (pe->nfc) {
        if (!(t->hf_norm = calloc(1, sizeof *t->hf_norm))) {
            err_set("%s: out of memory", name);
            goto fail;
        }
        t->hf_norm[0].kind = HF_NFC;
        t->n_hf_norm = 1;
    }
    for (int i = 0; i < n; i++) {
        int ty = t->type[i];
        if (ty != TOK_CONTROL && ty != TOK_USER_DEFINED) continue;
        size_t len;
        const char *p = tok_piece(t, i, &len);
        if (tok_bpe_add_token(t->bpe, i, p, len, ty == TOK_CONTROL, 0, 0, 0) < 0) {
            err_prefix("%s", name);
            goto fail;
        }
    }
    if (tok_bpe_finish(t, name) < 0) goto fail;
    return t;
fail:
    tok_free(t);
    return NULL;
}

/* 1 when t's pipeline is the entry's: its Split regexes in order (isolated, not inverted),
 * then ByteLevel without a prefix space (its own regex as the entry says), the same
 * normalizer (NFC or none) and ignore_merges. */
static int pre_matches(const Tokenizer *t, const PreEntry *pe) {
    TokBpeStepInfo s;
    int k = 0;
    for (; k < 4 && pe->re[k]; k++) {
        if (tok_bpe_step_info(t->bpe, k, &s) != 0 || s.bytelevel || !s.is_regex || s.removed || s.invert) return 0;
        if (strcmp(s.pattern, pe->re[k]) != 0 && !(k == 0 && pe->json_re0 && !strcmp(s.pattern, pe->json_re0))) return 0;
    }
    if (tok_bpe_step_info(t->bpe, k, &s) != 0 || !s.bytelevel || s.add_prefix_space || s.use_regex != pe->gpt2_bytelevel)
        return 0;
    if (tok_bpe_step_info(t->bpe, k + 1, &s) == 0) return 0;
    int nfc = t->n_hf_norm == 1 && t->hf_norm[0].kind == HF_NFC;
    if (t->n_hf_norm != nfc || nfc != pe->nfc) return 0;
    return (t->hf_ignore_merges != 0) == pe->ignore_merges;
}

int tok_gguf_pre(const Tokenizer *t, char *name, size_t cap) {
    if (!t->bpe) return err_set("not a byte-level BPE tokenizer");
    for (size_t i = 0; i < sizeof PRE / sizeof PRE[0]; i++) {
        if (!pre_matches(t, &PRE[i])) continue;
        const char *bar = strchr(PRE[i].names, '|');
        size_t l = bar ? (size_t)(bar - PRE[i].names) : strlen(PRE[i].names);
        if (l >= cap) return err_set("out of memory");
        memcpy(name, PRE[i].names, l);
        name[l] = 0;
        return 0;
    }
    return err_set("its pre-tokenizer (normalizer, Split regexes, ByteLevel) is none of those llama.cpp names "
                   "(llama-bpe, qwen2, gpt-2, smollm and their aliases): llama.cpp would split the text differently");
}

int tok_merges(const Tokenizer *t, int32_t **pairs) {
    *pairs = NULL;
    const TokPairMap *m = &t->merges;
    if (!m->slot || !m->count) return 0;
    /* ranks are positions in the file; a pair given twice keeps its last rank (tok_pairmap_put),
     * leaving a gap: list by rank, gaps dropped (the same order, so the same merges) */
    int32_t max_rank = -1;
    for (uint64_t j = 0; j <= m->mask; j++)
        if (m->slot[j].key != UINT64_MAX && m->slot[j].rank > max_rank) max_rank = m->slot[j].rank;
    int64_t *at = malloc(sizeof *at * ((size_t)max_rank + 1));
    int32_t *out = malloc(sizeof *out * 2 * (size_t)m->count);
    if (!at || !out) {
        free(at);
        free(out);
        return err_set("out of memory");
    }
    for (int32_t r = 0; r <= max_rank; r++) at[r] = -1;
    for (uint64_t j = 0; j <= m->mask; j++)
        if (m->slot[j].key != UINT64_MAX) at[m->slot[j].rank] = (int64_t)j;
    int n = 0;
    for (int32_t r = 0; r <= max_rank; r++) {
        if (at[r] < 0) continue;
        uint64_t key = m->slot[at[r]].key;
        out[2 * n] = (int32_t)(key >> 32);
        out[2 * n + 1] = (int32_t)(key & 0xffffffffu);
        n++;
    }
    free(at);
    *pairs = out;
    return n;
}
