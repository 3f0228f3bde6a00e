/* task/task_template.c - the template engine ("{field}", "{{" "}}" for braces), the default
 * prompt of every format, and formatting an instance into the harness's strings. */
#include "task/task_internal.h"

#include "core/error.h"
#include "core/file.h"

#include <cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- engine ------------------------------------------------------------------------------- */

/* The template shown in messages: quoted, escapes for control characters, cut at ~60 bytes. */
static void show(const char *t, char *buf, size_t cap) {
    size_t k = 0, i = 0;
    buf[k++] = '"';
    for (; t[i] && k + 8 < cap && i < 60; i++) {
        unsigned char c = (unsigned char)t[i];
        if (c == '\n') k += (size_t)snprintf(buf + k, cap - k, "\\n");
        else if (c == '\t') k += (size_t)snprintf(buf + k, cap - k, "\\t");
        else if (c == '"') k += (size_t)snprintf(buf + k, cap - k, "\\\"");
        else if (c < 0x20) k += (size_t)snprintf(buf + k, cap - k, "\\x%02x", c);
        else buf[k++] = (char)c;
    }
    while (i > 0 && k > 1 && ((unsigned char)t[i] & 0xC0) == 0x80) { /* never cut a character */
        i--;
        k--;
    }
    if (t[i]) k += (size_t)snprintf(buf + k, cap - k, "...");
    if (k + 2 <= cap) {
        buf[k++] = '"';
        buf[k] = 0;
    } else {
        buf[cap - 1] = 0;
    }
}

static int name_char(char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
}

/* Renders into *b (when b != NULL) or only checks. */
static int render(const char *t, const char *const *names, const char *const *values, int n,
                  const char *what, StrBuf *b) {
    if (!t) return err_set("%s: no template", what);
    size_t i = 0, lit = 0;
    char shown[128];
    while (t[i]) {
        if (t[i] == '{' && t[i + 1] == '{') {
            if (b) strbuf_put(b, t + lit, i + 1 - lit);
            i += 2;
            lit = i;
        } else if (t[i] == '}' && t[i + 1] == '}') {
            if (b) strbuf_put(b, t + lit, i + 1 - lit);
            i += 2;
            lit = i;
        } else if (t[i] == '}') {
            show(t, shown, sizeof shown);
            return err_set("%s %s: single '}' at offset %zu (write '}}' for a brace)", what, shown, i);
        } else if (t[i] == '{') {
            size_t j = i + 1;
            while (name_char(t[j])) j++;
            show(t, shown, sizeof shown);
            if (t[j] != '}') {
                if (!t[j]) return err_set("%s %s: unterminated field at offset %zu (write '{{' for a brace)", what, shown, i);
                return err_set("%s %s: bad field name at offset %zu (letters, digits and '_' "
                               "between braces; write '{{' for a brace)", what, shown, i);
            }
            if (j == i + 1) return err_set("%s %s: empty field name '{}' at offset %zu", what, shown, i);
            size_t len = j - i - 1;
            int k = 0;
            while (k < n && !(strlen(names[k]) == len && memcmp(names[k], t + i + 1, len) == 0)) k++;
            if (k == n) {
                char known[256];
                size_t kn = 0;
                known[0] = 0;
                for (int q = 0; q < n && kn + 40 < sizeof known; q++)
                    kn += (size_t)snprintf(known + kn, sizeof known - kn, "%s%s", q ? ", " : "", names[q]);
                return err_set("%s %s: unknown field '%.*s' (known: %s)", what, shown, (int)len,
                               t + i + 1, known);
            }
            if (b) {
                if (!values[k])
                    return err_set("%s %s: field '%s' has no value for this record", what, shown, names[k]);
                strbuf_put(b, t + lit, i - lit);
                strbuf_puts(b, values[k]);
            }
            i = j + 1;
            lit = i;
        } else {
            i++;
        }
    }
    if (b) {
        strbuf_put(b, t + lit, i - lit);
        if (b->oom) return err_set("out of memory");
    }
    return 0;
}

char *task_template_format(const char *tmpl, const char *const *names, const char *const *values,
                           int n, const char *what) {
    StrBuf b = {0};
    if (render(tmpl, names, values, n, what ? what : "template", &b) != 0) {
        free(b.p);
        return NULL;
    }
    char *s = strbuf_take(&b);
    if (!s) err_set("out of memory");
    return s;
}

int task_template_check(const char *tmpl, const char *const *names, int n, const char *what) {
    return render(tmpl, names, NULL, n, what ? what : "template", NULL);
}

char *task_template_unescape(const char *s) {
    size_t n = strlen(s);
    char *d = malloc(n + 1);
    if (!d) {
        err_set("out of memory");
        return NULL;
    }
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '\\' && i + 1 < n) {
            char c = s[i + 1];
            char r = c == 'n' ? '\n' : c == 't' ? '\t' : c == 'r' ? '\r' : c == '\\' ? '\\' : c == '"' ? '"' : 0;
            if (r) {
                d[k++] = r;
                i++;
                continue;
            }
        }
        d[k++] = s[i];
    }
    d[k] = 0;
    return d;
}

/* ---- prompts ------------------------------------------------------------------------------ */

void task_prompt_free(TaskPrompt *p) {
    if (!p) return;
    free(p->prompt);
    free(p->prompt_input);
    free(p->answer);
    for (int i = 0; i < p->n_stops; i++) free(p->stops[i]);
    free(p->stops);
    memset(p, 0, sizeof *p);
}

static int replace_str(char **dst, const char *s) {
    char *c = NULL;
    if (s && !(c = strdup(s))) return err_set("out of memory");
    free(*dst);
    *dst = c;
    return 0;
}

int task_prompt_set(TaskPrompt *p, const char *prompt, const char *answer) {
    if (prompt && replace_str(&p->prompt, prompt) != 0) return -1;
    if (answer && replace_str(&p->answer, answer) != 0) return -1;
    return 0;
}

int task_prompt_set_stops(TaskPrompt *p, const char *const *stops, int n) {
    if (n < 0 || (n > 0 && !stops)) return err_set("stop strings: bad count %d", n);
    char **a = n ? calloc((size_t)n, sizeof *a) : NULL;
    if (n && !a) return err_set("out of memory");
    for (int i = 0; i < n; i++) {
        if (!stops[i] || !stops[i][0] || !(a[i] = strdup(stops[i]))) {
            for (int j = 0; j < i; j++) free(a[j]);
            free(a);
            return stops[i] && stops[i][0] ? err_set("out of memory")
                                           : err_set("stop string %d is empty", i);
        }
    }
    for (int i = 0; i < p->n_stops; i++) free(p->stops[i]);
    free(p->stops);
    p->stops = a;
    p->n_stops = n;
    return 0;
}

int task_prompt_default(TaskPrompt *p, const TaskSet *ts) {
    memset(p, 0, sizeof *p);
    const TaskFormatDef *d = task_format_def(ts->format);
    const TaskTemplates *t = !d ? NULL : ts->kind == TASK_MC ? &d->tmpl_mc : &d->tmpl_gen;
    if (!t || !t->prompt)
        return err_set("%s: no default prompt for format '%s'", ts->path ? ts->path : "?",
                       task_format_name(ts->format));
    if (!(p->prompt = strdup(t->prompt)) || !(p->answer = strdup(t->answer)) ||
        (t->prompt_input && !(p->prompt_input = strdup(t->prompt_input))) ||
        task_prompt_set_stops(p, t->stops, task_list_count(t->stops)) != 0) {
        task_prompt_free(p);
        return err_set("out of memory");
    }
    return 0;
}

int task_prompt_load(TaskPrompt *p, const char *path) {
    size_t n;
    char *text = file_read_all(path, &n, (size_t)1 << 20);
    if (!text) return -1;
    if (utf8_valid_prefix((const uint8_t *)text, n) != n) {
        free(text);
        return err_set("%s: not valid UTF-8", path);
    }
    const char *end = NULL;
    cJSON *o = cJSON_ParseWithLengthOpts(text, n, &end, 0);
    if (!o || !cJSON_IsObject(o)) {
        size_t at = o ? 0 : (end && end >= text && end <= text + n ? (size_t)(end - text) : 0);
        cJSON_Delete(o);
        free(text);
        return o ? err_set("%s: expected a JSON object {\"prompt\": ..., \"answer\": ..., \"stop\": [...]}", path)
                 : err_set("%s: invalid JSON at offset %zu", path, at);
    }
    free(text);
    int rc = 0;
    for (const cJSON *c = o->child; c && rc == 0; c = c->next) {
        const char *k = c->string ? c->string : "";
        char **dst = NULL;
        if (!strcmp(k, "prompt")) dst = &p->prompt;
        else if (!strcmp(k, "prompt_input")) dst = &p->prompt_input;
        else if (!strcmp(k, "answer") || !strcmp(k, "choice") || !strcmp(k, "target")) dst = &p->answer;
        if (dst) {
            if (cJSON_IsNull(c) && dst == &p->prompt_input) rc = replace_str(dst, NULL);
            else if (!cJSON_IsString(c)) rc = err_set("%s: field '%s': expected a string", path, k);
            else rc = replace_str(dst, c->valuestring);
        } else if (!strcmp(k, "stop")) {
            int m = cJSON_IsArray(c) ? cJSON_GetArraySize(c) : -1;
            if (m < 0 || m > 64) {
                rc = err_set("%s: field 'stop': expected an array of at most 64 strings", path);
                break;
            }
            const char **a = calloc((size_t)(m ? m : 1), sizeof *a);
            if (!a) {
                rc = err_set("out of memory");
                break;
            }
            int i = 0;
            for (const cJSON *s = c->child; s; s = s->next, i++) {
                if (!cJSON_IsString(s) || !s->valuestring[0]) {
                    rc = err_set("%s: field 'stop': item %d: expected a non-empty string", path, i);
                    break;
                }
                a[i] = s->valuestring;
            }
            if (rc == 0) rc = task_prompt_set_stops(p, a, m);
            free(a);
        } else {
            rc = err_set("%s: unknown field '%.40s' (known: prompt, prompt_input, answer, stop)", path, k);
        }
    }
    cJSON_Delete(o);
    return rc;
}

/* ---- fields of an instance ---------------------------------------------------------------- */

#define MAX_NAMES 24

/* names/values for the prompt template (answer = 0) or the answer template (answer = 1, with
 * `extra` = the choice text for MC). Returns the count. */
static int mc_names(const TaskSet *ts, const TaskMC *m, int c, const char *choice,
                    const char **names, const char **values) {
    int k = 0;
    names[k] = "id", values[k++] = m ? m->id : NULL;
    names[k] = "context", values[k++] = m ? m->context : NULL;
    for (int i = 0; i < ts->n_fields && k < MAX_NAMES - 2; i++)
        names[k] = ts->field_names[i], values[k++] = m ? m->fields[i] : NULL;
    if (choice) {
        names[k] = "choice", values[k++] = choice;
        if (task_format_def(ts->format)->choice_text)
            names[k] = "choice_text", values[k++] = m && m->choice_texts ? m->choice_texts[c] : NULL;
    }
    return k;
}

static int gen_names(const TaskSet *ts, const TaskGen *g, int answer, const char **names,
                     const char **values) {
    int k = 0;
    names[k] = "id", values[k++] = g ? g->id : NULL;
    names[k] = "prompt", values[k++] = g ? g->prompt : NULL;
    for (int i = 0; i < ts->n_fields && k < MAX_NAMES - 2; i++)
        names[k] = ts->field_names[i], values[k++] = g ? g->fields[i] : NULL;
    if (answer) {
        names[k] = "target", values[k++] = g ? g->target : NULL;
        names[k] = "answer", values[k++] = g ? g->answer : NULL;
    }
    return k;
}

int task_prompt_check(const TaskPrompt *p, const TaskSet *ts) {
    const char *names[MAX_NAMES], *values[MAX_NAMES];
    int n;
    if (ts->kind == TASK_MC) n = mc_names(ts, NULL, 0, NULL, names, values);
    else n = gen_names(ts, NULL, 0, names, values);
    if (task_template_check(p->prompt, names, n, "prompt template") != 0) return -1;
    if (p->prompt_input && task_template_check(p->prompt_input, names, n, "prompt template (with input)") != 0)
        return -1;
    if (ts->kind == TASK_MC) n = mc_names(ts, NULL, 0, "", names, values);
    else n = gen_names(ts, NULL, 1, names, values);
    return task_template_check(p->answer, names, n,
                               ts->kind == TASK_MC ? "choice template" : "target template");
}

/* The prompt template to use for fields `f`: prompt_input when the set's field "input" is set. */
static const char *pick_prompt(const TaskPrompt *p, const TaskSet *ts, const char **f) {
    if (!p->prompt_input) return p->prompt;
    for (int i = 0; i < ts->n_fields; i++)
        if (!strcmp(ts->field_names[i], "input") && f[i] && f[i][0]) return p->prompt_input;
    return p->prompt;
}

/* Moves the trailing (Python) whitespace of *ctx to the front of every continuation. */
static int move_trailing_space(char *ctx, char **conts, int n) {
    size_t len = strlen(ctx), ws = task_py_rstrip_len(ctx, len);
    if (!ws) return 0;
    for (int c = 0; c < n; c++) {
        size_t cl = strlen(conts[c]);
        char *s = malloc(ws + cl + 1);
        if (!s) return err_set("out of memory");
        memcpy(s, ctx + len - ws, ws);
        memcpy(s + ws, conts[c], cl + 1);
        free(conts[c]);
        conts[c] = s;
    }
    ctx[len - ws] = 0;
    return 0;
}

void task_mc_text_free(TaskMCText *t) {
    if (!t) return;
    free(t->context);
    for (int i = 0; i < t->n_choices && t->conts; i++) free(t->conts[i]);
    free(t->conts);
    memset(t, 0, sizeof *t);
}

void task_gen_text_free(TaskGenText *t) {
    if (!t) return;
    free(t->prompt);
    free(t->target);
    memset(t, 0, sizeof *t);
}

int task_mc_format(const TaskSet *ts, int i, const TaskPrompt *p, TaskMCText *out) {
    memset(out, 0, sizeof *out);
    if (ts->kind != TASK_MC || i < 0 || i >= ts->n)
        return err_set("%s: instance %d: not a multiple-choice instance of the set", ts->path, i);
    const TaskMC *m = &ts->mc[i];
    const char *names[MAX_NAMES], *values[MAX_NAMES];
    int n = mc_names(ts, m, 0, NULL, names, values);
    out->context = task_template_format(pick_prompt(p, ts, m->fields), names, values, n, "prompt template");
    if (!out->context) return err_prefix("%s:%d", ts->path, m->line);
    out->conts = calloc((size_t)m->n_choices, sizeof *out->conts);
    if (!out->conts) {
        task_mc_text_free(out);
        return err_set("out of memory");
    }
    out->n_choices = m->n_choices;
    out->label = m->label;
    for (int c = 0; c < m->n_choices; c++) {
        n = mc_names(ts, m, c, m->choices[c], names, values);
        out->conts[c] = task_template_format(p->answer, names, values, n, "choice template");
        if (!out->conts[c]) {
            task_mc_text_free(out);
            return err_prefix("%s:%d", ts->path, m->line);
        }
    }
    if (move_trailing_space(out->context, out->conts, out->n_choices) != 0) {
        task_mc_text_free(out);
        return -1;
    }
    return 0;
}

int task_gen_format(const TaskSet *ts, int i, const TaskPrompt *p, TaskGenText *out) {
    memset(out, 0, sizeof *out);
    if (ts->kind != TASK_GEN || i < 0 || i >= ts->n)
        return err_set("%s: instance %d: not a generation instance of the set", ts->path, i);
    const TaskGen *g = &ts->gen[i];
    const char *names[MAX_NAMES], *values[MAX_NAMES];
    int n = gen_names(ts, g, 0, names, values);
    out->prompt = task_template_format(pick_prompt(p, ts, g->fields), names, values, n, "prompt template");
    if (!out->prompt) return err_prefix("%s:%d", ts->path, g->line);
    n = gen_names(ts, g, 1, names, values);
    out->target = task_template_format(p->answer, names, values, n, "target template");
    if (!out->target) {
        task_gen_text_free(out);
        return err_prefix("%s:%d", ts->path, g->line);
    }
    if (move_trailing_space(out->prompt, &out->target, 1) != 0) {
        task_gen_text_free(out);
        return -1;
    }
    return 0;
}

int task_prompt_setup(TaskPrompt *p, const TaskSet *ts, const char *file, const char *prompt, const char *answer,
                      const char *const *extra_stops, int n_extra) {
    if (task_prompt_default(p, ts) != 0) return -1;
    if (file && task_prompt_load(p, file) != 0) return -1;
    if ((prompt || answer) && task_prompt_set(p, prompt, answer) != 0) return -1;
    if (n_extra > 0) {
        int n = p->n_stops + n_extra;
        const char **all = malloc((size_t)n * sizeof *all);
        if (!all) return err_set("out of memory");
        for (int i = 0; i < p->n_stops; i++) all[i] = p->stops[i];
        for (int i = 0; i < n_extra; i++) all[p->n_stops + i] = extra_stops[i];
        int rc = task_prompt_set_stops(p, all, n);
        free(all);
        if (rc) return -1;
    }
    return task_prompt_check(p, ts);
}
