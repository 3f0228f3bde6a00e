/* task/task_convert.c - one converter per record format (task_formats.c has the table that
 * names them), from a parsed JSON object to a TaskMC / TaskGen instance.
 *
 * Converters write messages without the "file:line: " prefix (the loader adds it), naming
 * the field and what was expected: "field 'label': expected 0 or 1, got 3".
 */
#include "task/task_field.h"
#include "task/task_internal.h"

#include "core/error.h"

#include <cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

/* ---- text helpers (HellaSwag) -------------------------------------------------------------- */

/* Appends s with every occurrence of `from` replaced by `to` (non-overlapping, left to right,
 * as Python's str.replace). */
static void replace_all(StrBuf *b, const char *s, size_t n, const char *from, const char *to) {
    size_t fl = strlen(from), tl = strlen(to), i = 0;
    while (i < n) {
        if (n - i >= fl && memcmp(s + i, from, fl) == 0) {
            strbuf_put(b, to, tl);
            i += fl;
        } else {
            strbuf_put(b, s + i, 1);
            i++;
        }
    }
}

/* lm-evaluation-harness hellaswag preprocess(): strip; " [title]" -> ". "; drop every
 * "[...]" (shortest, not across a newline: re.sub("\\[.*?\\]", "")); "  " -> " ". */
static char *hellaswag_preprocess(TaskArena *a, const char *s) {
    size_t n = strlen(s), b, e;
    task_py_strip(s, n, &b, &e);
    StrBuf t1 = {0}, t2 = {0}, t3 = {0};
    replace_all(&t1, s + b, e - b, " [title]", ". ");
    for (size_t i = 0; i < t1.n; i++) {
        if (t1.p[i] == '[') {
            size_t j = i + 1;
            while (j < t1.n && t1.p[j] != ']' && t1.p[j] != '\n') j++;
            if (j < t1.n && t1.p[j] == ']') {
                i = j;
                continue;
            }
        }
        strbuf_put(&t2, t1.p + i, 1);
    }
    if (t2.n || t2.p) replace_all(&t3, t2.p, t2.n, "  ", " ");
    char *out = NULL;
    if (!t1.oom && !t2.oom && !t3.oom) out = task_arena_strndup(a, t3.p ? t3.p : "", t3.n);
    else err_set("out of memory");
    free(t1.p);
    free(t2.p);
    free(t3.p);
    return out;
}

/* Python str.capitalize() (3.8+): first code point title-cased, the rest lower-cased (simple
 * one-to-one case mappings of utf8proc; Python's few one-to-many mappings are not done). */
static int py_capitalize(StrBuf *b, const char *s) {
    const utf8proc_uint8_t *u = (const utf8proc_uint8_t *)s;
    utf8proc_ssize_t n = (utf8proc_ssize_t)strlen(s), i = 0;
    int first = 1;
    while (i < n) {
        utf8proc_int32_t cp;
        utf8proc_ssize_t k = utf8proc_iterate(u + i, n - i, &cp);
        if (k <= 0) return err_set("invalid UTF-8");
        utf8proc_int32_t m = first ? utf8proc_totitle(cp) : utf8proc_tolower(cp);
        utf8proc_uint8_t enc[4];
        utf8proc_ssize_t el = utf8proc_encode_char(m, enc);
        strbuf_put(b, enc, (size_t)el);
        first = 0;
        i += k;
    }
    return b->oom ? err_set("out of memory") : 0;
}

/* ---- converters ----------------------------------------------------------------------------- */

static const char *const ID_KEYS[] = {"id"};

int conv_native_mc(const TaskRec *r, const cJSON *o, TaskMC *m) {
    if (task_field_id(r, o, ID_KEYS, 1, &m->id) || task_field_str(r, o, "context", &m->context) ||
        task_field_str_array(r, o, "choices", &m->choices, &m->n_choices) ||
        task_field_label(o, "label", m->n_choices, 0, &m->label))
        return -1;
    m->fields = task_field_list_new(r, 0);
    return m->fields ? 0 : -1;
}

int conv_native_gen(const TaskRec *r, const cJSON *o, TaskGen *g) {
    if (task_field_id(r, o, ID_KEYS, 1, &g->id) || task_field_str(r, o, "prompt", &g->prompt) ||
        task_field_str(r, o, "target", &g->target) || task_field_str_opt(r, o, "answer", NULL, &g->answer))
        return -1;
    if (!g->answer) g->answer = g->target;
    g->fields = task_field_list_new(r, 0);
    return g->fields ? 0 : -1;
}

int conv_hellaswag(const TaskRec *r, const cJSON *o, TaskMC *m) {
    static const char *const keys[] = {"id", "ind"};
    const char *act, *ca, *cb;
    if (task_field_id(r, o, keys, 2, &m->id) || task_field_str(r, o, "activity_label", &act) ||
        task_field_str(r, o, "ctx_a", &ca) || task_field_str(r, o, "ctx_b", &cb) ||
        task_field_str_array(r, o, "endings", &m->choices, &m->n_choices) ||
        task_field_label(o, "label", m->n_choices, 1, &m->label))
        return -1;
    /* query = preprocess(activity_label + ": " + ctx_a + " " + ctx_b.capitalize()) */
    StrBuf b = {0};
    strbuf_puts(&b, act);
    strbuf_puts(&b, ": ");
    strbuf_puts(&b, ca);
    strbuf_puts(&b, " ");
    if (py_capitalize(&b, cb) != 0) {
        free(b.p);
        return err_prefix("field 'ctx_b'");
    }
    if (b.oom) {
        free(b.p);
        return err_set("out of memory");
    }
    m->context = hellaswag_preprocess(r->arena, b.p);
    free(b.p);
    if (!m->context) return -1;
    for (int i = 0; i < m->n_choices; i++) {
        m->choices[i] = hellaswag_preprocess(r->arena, m->choices[i]);
        if (!m->choices[i]) return -1;
    }
    m->fields = task_field_list_new(r, 4);
    if (!m->fields) return -1;
    m->fields[0] = m->context;
    m->fields[1] = act;
    m->fields[2] = ca;
    m->fields[3] = cb;
    return 0;
}

int conv_piqa(const TaskRec *r, const cJSON *o, TaskMC *m) {
    const char **ch = task_arena_alloc(r->arena, 2 * sizeof *ch);
    if (!ch || task_field_id(r, o, ID_KEYS, 1, &m->id) || task_field_str(r, o, "goal", &m->context) ||
        task_field_str(r, o, "sol1", &ch[0]) || task_field_str(r, o, "sol2", &ch[1]) ||
        task_field_label(o, "label", 2, 0, &m->label))
        return -1;
    m->choices = ch;
    m->n_choices = 2;
    m->fields = task_field_list_new(r, 1);
    if (!m->fields) return -1;
    m->fields[0] = m->context;
    return 0;
}

/* A choice label of ARC: a string, or a number written as text. */
static int arc_label_text(const cJSON *v, char *buf, size_t cap) {
    if (cJSON_IsString(v)) {
        snprintf(buf, cap, "%s", v->valuestring);
        return 0;
    }
    if (cJSON_IsNumber(v)) return task_field_number_text(v, buf, cap);
    return -1;
}

int conv_arc(const TaskRec *r, const cJSON *o, TaskMC *m) {
    if (task_field_id(r, o, ID_KEYS, 1, &m->id)) return -1;
    const cJSON *q, *ch = NULL, *key;
    if (task_field_get(o, "question", 1, &q) || task_field_get(o, "answerKey", 1, &key)) return -1;
    int n = 0;
    const char **texts = NULL, **labels = NULL;
    if (cJSON_IsObject(q)) {
        /* original AI2 layout: question {stem, choices [{text, label}]} */
        if (task_field_str(r, q, "stem", &m->context) != 0) return err_prefix("field 'question'");
        if (task_field_get(q, "choices", 1, &ch) != 0) return err_prefix("field 'question'");
        if (!cJSON_IsArray(ch))
            return err_set("field 'question.choices': expected an array of {text, label}, got %s",
                           task_field_kind(ch));
        n = cJSON_GetArraySize(ch);
        if (n < 2 || n > r->opt->max_choices)
            return err_set("field 'question.choices': expected 2 to %d choices, got %d",
                           r->opt->max_choices, n);
        texts = task_arena_alloc(r->arena, (size_t)n * sizeof *texts);
        labels = task_arena_alloc(r->arena, (size_t)n * sizeof *labels);
        if (!texts || !labels) return -1;
        int i = 0;
        for (const cJSON *c = ch->child; c; c = c->next, i++) {
            if (!cJSON_IsObject(c))
                return err_set("field 'question.choices': item %d: expected an object, got %s", i,
                               task_field_kind(c));
            if (task_field_str(r, c, "text", &texts[i]) != 0)
                return err_prefix("field 'question.choices': item %d", i);
            const cJSON *lv;
            char buf[64];
            if (task_field_get(c, "label", 1, &lv) != 0) return err_prefix("field 'question.choices': item %d", i);
            if (arc_label_text(lv, buf, sizeof buf) != 0)
                return err_set("field 'question.choices': item %d: field 'label': expected a string, got %s",
                               i, task_field_kind(lv));
            if (!(labels[i] = task_arena_strdup(r->arena, buf))) return -1;
        }
    } else if (cJSON_IsString(q)) {
        /* Hugging Face ai2_arc layout: question "...", choices {text: [...], label: [...]} */
        if (task_field_copy(r, "field 'question'", q->valuestring, &m->context) != 0) return -1;
        if (task_field_get(o, "choices", 1, &ch) != 0) return -1;
        if (!cJSON_IsObject(ch))
            return err_set("field 'choices': expected an object {text: [...], label: [...]}, got %s",
                           task_field_kind(ch));
        int nl;
        if (task_field_str_array(r, ch, "text", &texts, &n) != 0) return err_prefix("field 'choices'");
        const cJSON *lv;
        if (task_field_get(ch, "label", 1, &lv) != 0) return err_prefix("field 'choices'");
        if (!cJSON_IsArray(lv) || (nl = cJSON_GetArraySize(lv)) != n)
            return err_set("field 'choices.label': expected an array of %d labels (one per text)", n);
        labels = task_arena_alloc(r->arena, (size_t)n * sizeof *labels);
        if (!labels) return -1;
        int i = 0;
        for (const cJSON *c = lv->child; c; c = c->next, i++) {
            char buf[64];
            if (arc_label_text(c, buf, sizeof buf) != 0)
                return err_set("field 'choices.label': item %d: expected a string, got %s", i,
                               task_field_kind(c));
            if (!(labels[i] = task_arena_strdup(r->arena, buf))) return -1;
        }
    } else {
        return err_set("field 'question': expected a string or an object {stem, choices}, got %s",
                       task_field_kind(q));
    }
    for (int i = 0; i < n; i++)
        for (int j = 0; j < i; j++)
            if (strcmp(labels[i], labels[j]) == 0)
                return err_set("field 'choices': label \"%.20s\" appears twice", labels[i]);
    m->choices = texts;
    m->n_choices = n;
    m->label = -1;
    char kb[64];
    if (cJSON_IsNull(key) || (cJSON_IsString(key) && !key->valuestring[0])) {
        m->label = -1;
    } else if (arc_label_text(key, kb, sizeof kb) == 0) {
        for (int i = 0; i < n; i++)
            if (strcmp(labels[i], kb) == 0) m->label = i;
        if (m->label < 0) {
            char all[160] = "";
            size_t an = 0;
            for (int i = 0; i < n && an + 24 < sizeof all; i++)
                an += (size_t)snprintf(all + an, sizeof all - an, "%s%.16s", i ? ", " : "", labels[i]);
            return err_set("field 'answerKey': expected one of the choice labels (%s), got \"%.20s\"",
                           all, kb);
        }
    } else {
        return err_set("field 'answerKey': expected a string, got %s", task_field_kind(key));
    }
    m->fields = task_field_list_new(r, 1);
    if (!m->fields) return -1;
    m->fields[0] = m->context;
    return 0;
}

int conv_boolq(const TaskRec *r, const cJSON *o, TaskMC *m) {
    static const char *const keys[] = {"id", "idx"};
    const char *passage;
    if (task_field_id(r, o, keys, 2, &m->id) || task_field_str(r, o, "question", &m->context) ||
        task_field_str(r, o, "passage", &passage))
        return -1;
    const cJSON *ans;
    if (task_field_get(o, "answer", 0, &ans) != 0) return -1;
    if (ans) {
        if (!cJSON_IsBool(ans)) return err_set("field 'answer': expected true or false, got %s", task_field_kind(ans));
        m->label = cJSON_IsTrue(ans) ? 1 : 0;
    } else {
        const cJSON *lab;
        if (task_field_get(o, "label", 0, &lab) != 0) return -1;
        if (!lab) {
            char keysb[256];
            task_json_keys(o, keysb, sizeof keysb);
            return err_set("field 'answer': missing, and no 'label' either (the record has: %s)", keysb);
        }
        if (task_field_label(o, "label", 2, 0, &m->label) != 0) return -1;
    }
    const char **ch = task_arena_alloc(r->arena, 2 * sizeof *ch);
    if (!ch) return -1;
    ch[0] = "no"; /* string literals: the set never frees or writes them */
    ch[1] = "yes";
    m->choices = ch;
    m->n_choices = 2;
    m->fields = task_field_list_new(r, 2);
    if (!m->fields) return -1;
    m->fields[0] = m->context;
    m->fields[1] = passage;
    return 0;
}

int conv_race(const TaskRec *r, const cJSON *o, TaskMC *m) {
    static const char *const keys[] = {"id", "example_id"};
    const char *article;
    if (task_field_id(r, o, keys, 2, &m->id) || task_field_str(r, o, "article", &article) ||
        task_field_str(r, o, "question", &m->context) ||
        task_field_str_array(r, o, "options", &m->choices, &m->n_choices))
        return -1;
    const cJSON *a;
    if (task_field_get(o, "answer", 1, &a) != 0) return -1;
    char last = (char)('A' + m->n_choices - 1);
    if (cJSON_IsNull(a) || (cJSON_IsString(a) && !a->valuestring[0])) {
        m->label = -1;
    } else if (cJSON_IsString(a) && a->valuestring[0] >= 'A' && a->valuestring[0] <= last &&
               !a->valuestring[1]) {
        m->label = a->valuestring[0] - 'A';
    } else if (cJSON_IsString(a)) {
        return err_set("field 'answer': expected a letter A to %c, got \"%.20s\"", last, a->valuestring);
    } else {
        return err_set("field 'answer': expected a letter A to %c, got %s", last, task_field_kind(a));
    }
    m->fields = task_field_list_new(r, 2);
    if (!m->fields) return -1;
    m->fields[0] = article;
    m->fields[1] = m->context;
    return 0;
}

int conv_gsm8k(const TaskRec *r, const cJSON *o, TaskGen *g) {
    if (task_field_id(r, o, ID_KEYS, 1, &g->id) || task_field_str(r, o, "question", &g->prompt) ||
        task_field_str(r, o, "answer", &g->target))
        return -1;
    /* the reference is what follows the last "####", stripped */
    const char *h = NULL;
    for (const char *p = strstr(g->target, "####"); p; p = strstr(p + 1, "####")) h = p;
    if (!h) return err_set("field 'answer': expected a final line '#### <number>'");
    const char *s = h + 4;
    size_t b, e;
    task_py_strip(s, strlen(s), &b, &e);
    if (e == b) return err_set("field 'answer': nothing after '####'");
    g->answer = task_arena_strndup(r->arena, s + b, e - b);
    if (!g->answer) return -1;
    g->fields = task_field_list_new(r, 1);
    if (!g->fields) return -1;
    g->fields[0] = g->prompt;
    return 0;
}

/* Copies s with every "\r\n" turned into "\n". */
static const char *crlf_to_lf(TaskArena *a, const char *s) {
    if (!strchr(s, '\r')) return s;
    size_t n = strlen(s);
    char *d = task_arena_alloc(a, n + 1);
    if (!d) return NULL;
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '\r' && s[i + 1] == '\n') continue;
        d[k++] = s[i];
    }
    d[k] = 0;
    return d;
}

int conv_dialogsum(const TaskRec *r, const cJSON *o, TaskGen *g) {
    static const char *const keys[] = {"id", "fname"};
    const char *dlg;
    if (task_field_id(r, o, keys, 2, &g->id) || task_field_str(r, o, "dialogue", &dlg)) return -1;
    const cJSON *s;
    if (task_field_get(o, "summary", 0, &s) != 0) return -1;
    /* DialogSum's test split has summary1..3 instead of summary: the first is the target */
    if (task_field_str(r, o, s ? "summary" : "summary1", &g->target) != 0) return -1;
    if (!(g->prompt = crlf_to_lf(r->arena, dlg))) return -1;
    g->answer = g->target;
    g->fields = task_field_list_new(r, 1);
    if (!g->fields) return -1;
    g->fields[0] = g->prompt;
    return 0;
}

/* LLM-Adapters: multiple choice when the instruction's last line holds "Answer format: a/b/c".
 * Fills opts[] (arena) and returns the count, 0 when there is no such line, -1 on error. */
static int llma_options(const TaskRec *r, const char *ins, const char ***opts) {
    const char *tag = "Answer format:";
    const char *h = NULL;
    for (const char *p = strstr(ins, tag); p; p = strstr(p + 1, tag)) h = p;
    if (!h) return 0;
    const char *s = h + strlen(tag);
    if (strchr(s, '\n')) {
        size_t b, e;
        task_py_strip(s, strlen(s), &b, &e);
        if (memchr(s + b, '\n', e - b))
            return err_set("field 'instruction': 'Answer format:' is not on the last line");
    }
    int n = 1;
    for (const char *p = s; *p; p++) n += *p == '/';
    if (n < 2 || n > r->opt->max_choices)
        return err_set("field 'instruction': 'Answer format:' lists %d option%s, expected 2 to %d",
                       n, n == 1 ? "" : "s", r->opt->max_choices);
    const char **a = task_arena_alloc(r->arena, (size_t)n * sizeof *a);
    if (!a) return -1;
    const char *p = s;
    for (int i = 0; i < n; i++) {
        const char *q = strchr(p, '/');
        size_t len = q ? (size_t)(q - p) : strlen(p), b, e;
        task_py_strip(p, len, &b, &e);
        if (e == b) return err_set("field 'instruction': 'Answer format:' option %d is empty", i + 1);
        if (!(a[i] = task_arena_strndup(r->arena, p + b, e - b))) return -1;
        p = q ? q + 1 : p + len;
    }
    *opts = a;
    return n;
}

/* The capitalized option name and a colon: "solution1" -> "Solution1:". */
static void option_marker(const char *opt, char *buf, size_t cap) {
    snprintf(buf, cap, "%s:", opt);
    if (buf[0] >= 'a' && buf[0] <= 'z') buf[0] = (char)(buf[0] - 'a' + 'A');
}

/* The question and the options' texts of an LLM-Adapters instruction: the markers
 * "Solution1:", "Solution2:", ... are looked for in order before "Answer format:"; text i
 * runs from after marker i to marker i+1 (or "Answer format:"), stripped. The question is
 * what follows the first ": " of the instruction, up to the first marker (or "Answer format:",
 * or the end), stripped. *texts = NULL when some marker is missing. */
static int llma_texts(const TaskRec *r, const char *ins, const char *const *opts, int n,
                      const char **question, const char ***texts) {
    const char *tag = "Answer format:";
    const char *end = NULL;
    for (const char *p = strstr(ins, tag); p; p = strstr(p + 1, tag)) end = p;
    if (!end) end = ins + strlen(ins);
    *texts = NULL;
    const char *first = end;
    const char **a = NULL;
    if (n > 0) {
        a = task_arena_alloc(r->arena, (size_t)n * sizeof *a);
        if (!a) return -1;
        const char *from = ins;
        const char **at = malloc((size_t)n * sizeof *at);
        size_t *ml = malloc((size_t)n * sizeof *ml);
        if (!at || !ml) {
            free(at);
            free(ml);
            return err_set("out of memory");
        }
        int ok = 1;
        for (int i = 0; i < n && ok; i++) {
            char mk[96];
            option_marker(opts[i], mk, sizeof mk);
            const char *q = strstr(from, mk);
            if (!q || q >= end) ok = 0;
            else {
                at[i] = q;
                ml[i] = strlen(mk);
                from = q + ml[i];
            }
        }
        for (int i = 0; i < n && ok; i++) {
            const char *b0 = at[i] + ml[i], *e0 = i + 1 < n ? at[i + 1] : end;
            size_t b, e;
            task_py_strip(b0, (size_t)(e0 - b0), &b, &e);
            if (!(a[i] = task_arena_strndup(r->arena, b0 + b, e - b))) ok = -1;
        }
        if (ok == 1) {
            first = at[0];
            *texts = a;
        }
        free(at);
        free(ml);
        if (ok < 0) return -1;
    }
    const char *qs = ins;
    for (const char *p = ins; p + 1 < first; p++) {
        if (p[0] == ':' && p[1] == ' ') {
            qs = p + 2;
            break;
        }
    }
    size_t b, e;
    task_py_strip(qs, (size_t)(first - qs), &b, &e);
    *question = task_arena_strndup(r->arena, qs + b, e - b);
    return *question ? 0 : -1;
}

int conv_llm_adapters(const TaskRec *r, const cJSON *o, TaskKind *kind, TaskMC *m, TaskGen *g) {
    const char *id, *ins, *input, *out, *question = NULL;
    if (task_field_id(r, o, ID_KEYS, 1, &id) || task_field_str(r, o, "instruction", &ins) ||
        task_field_str_opt(r, o, "input", "", &input) || task_field_str(r, o, "output", &out))
        return -1;
    const char **opts = NULL, **texts = NULL;
    int n = llma_options(r, ins, &opts);
    if (n < 0) return -1;
    TaskKind k = n > 0 ? TASK_MC : TASK_GEN; /* *kind is set only when the record is good */
    if (*kind && *kind != k)
        return err_set(k == TASK_MC ? "field 'instruction': has an 'Answer format:' line, but the "
                                      "records before are generation (no such line)"
                                    : "field 'instruction': no 'Answer format:' line, but the "
                                      "records before are multiple choice");
    if (llma_texts(r, ins, opts, n, &question, &texts) != 0) return -1;
    const cJSON *a;
    if (task_field_get(o, "answer", k == TASK_MC, &a) != 0) return -1;
    char buf[64];
    const char *ans = NULL;
    if (a && cJSON_IsString(a)) ans = a->valuestring;
    else if (a && cJSON_IsNumber(a) && task_field_number_text(a, buf, sizeof buf) == 0) ans = buf;
    else if (a && !cJSON_IsNull(a))
        return err_set("field 'answer': expected a string, got %s", task_field_kind(a));
    const char **f = task_field_list_new(r, 3);
    if (!f) return -1;
    f[0] = ins;
    f[1] = input;
    f[2] = question;
    if (k == TASK_MC) {
        m->id = id;
        m->context = ins;
        m->choices = opts;
        m->choice_texts = texts;
        m->n_choices = n;
        m->fields = f;
        m->label = -1;
        if (!ans || !*ans) {
            m->label = -1;
        } else {
            for (int i = 0; i < n; i++)
                if (strcmp(opts[i], ans) == 0) m->label = i;
            if (m->label < 0) {
                char all[200] = "";
                size_t an = 0;
                for (int i = 0; i < n && an + 40 < sizeof all; i++)
                    an += (size_t)snprintf(all + an, sizeof all - an, "%s%.30s", i ? "/" : "", opts[i]);
                return err_set("field 'answer': expected one of %s, got \"%.40s\"", all, ans);
            }
        }
    } else {
        g->id = id;
        g->prompt = ins;
        g->target = out;
        g->fields = f;
        g->answer = out;
        if (ans && task_field_copy(r, "field 'answer'", ans, &g->answer) != 0) return -1;
    }
    *kind = k;
    return 0;
}

