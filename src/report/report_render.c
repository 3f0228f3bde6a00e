/* report/report_render.c - a computed report as report.json, report.md, report.html (one
 * self-contained file: inline CSS and SVG, no scripts, every outside text escaped) and the
 * plain-text tables `muscle report` prints. */
#include "core/error.h"
#include "core/strbuf.h"
#include "core/utf8.h"
#include "report_internal.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define HTML_MAX_FLIPS 200  /* rows of flipped instances per list in report.html */
#define HTML_MAX_TEXT 2000  /* bytes of one prediction or target shown in report.html */
#define HTML_MAX_CONTEXT 360 /* bytes of an instance's text (its end) shown in a flip table */

/* ================================================================ text buffer */

/* Text is built in a StrBuf (core/strbuf.h); b_finish checks it once at the end. */

static char *b_finish(StrBuf *b) {
    strbuf_put(b, "", 0);
    if (b->oom) {
        strbuf_free(b);
        err_set("out of memory rendering the report");
        return NULL;
    }
    return b->p;
}

/* Text for HTML (element content and quoted attribute values): & < > " ' escaped, control
 * characters other than tab and newline replaced by U+FFFD. At most max bytes (0 = all),
 * then an ellipsis (and, when `note`, how many bytes were left out). */
static void b_html_cut(StrBuf *b, const char *s, size_t max, int note) {
    size_t len = strlen(s), n = max ? utf8_cut(s, len, max) : len;
    size_t start = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        const char *rep = NULL;
        switch (c) {
        case '&': rep = "&amp;"; break;
        case '<': rep = "&lt;"; break;
        case '>': rep = "&gt;"; break;
        case '"': rep = "&quot;"; break;
        case '\'': rep = "&#39;"; break;
        default:
            if ((c < 0x20 && c != '\n' && c != '\t') || c == 0x7f) rep = "\xEF\xBF\xBD";
        }
        if (!rep) continue;
        strbuf_put(b, s + start, i - start);
        strbuf_puts(b, rep);
        start = i + 1;
    }
    strbuf_put(b, s + start, n - start);
    if (n < len) {
        strbuf_puts(b, "\xE2\x80\xA6");
        if (note) strbuf_printf(b, " [%zu more bytes]", len - n);
    }
}

static void b_html_n(StrBuf *b, const char *s, size_t max) { b_html_cut(b, s, max, 1); }
static void b_html(StrBuf *b, const char *s) { b_html_cut(b, s, 0, 0); }

/* Markdown table cell / inline text: HTML-significant characters as entities, Markdown
 * punctuation backslash-escaped, line breaks as spaces. */
static void b_md(StrBuf *b, const char *s) {
    for (; *s; s++) {
        char c = *s;
        if (c == '<') strbuf_puts(b, "&lt;");
        else if (c == '>') strbuf_puts(b, "&gt;");
        else if (c == '&') strbuf_puts(b, "&amp;");
        else if (c == '\n' || c == '\r' || c == '\t') strbuf_puts(b, " ");
        else if (strchr("\\`*_[]|#", c)) {
            char e[2] = {'\\', c};
            strbuf_put(b, e, 2);
        } else strbuf_put(b, s, 1);
    }
}

/* Display width of UTF-8 text (code points; good enough for the tables' labels). */
static size_t text_width(const char *s) {
    size_t w = 0;
    for (; *s; s++)
        if (((unsigned char)*s & 0xC0) != 0x80) w++;
    return w;
}

/* Bytes of the first `chars` code points of s. */
static size_t label_bytes(const char *s, size_t chars) {
    size_t i = 0, c = 0;
    for (; s[i]; i++) {
        if (((unsigned char)s[i] & 0xC0) != 0x80 && c++ == chars) break;
    }
    return i;
}

/* ================================================================ numbers */

/* "78.55 [76.70, 80.35]": the value times scale with `decimals` decimals (sign: always a
 * sign), the interval when there is one ("[n/a]" when the bootstrap ran but the statistic
 * was 0/0 on a resample). "n/a" when undefined. */
static void fmt_stat(char *out, size_t sz, const CompatStat *s, double scale, int decimals, int sign, int bootstrap) {
    if (isnan(s->value)) {
        snprintf(out, sz, "n/a");
        return;
    }
    const char *f = sign ? "%+.*f" : "%.*f";
    char v[32], lo[32], hi[32];
    snprintf(v, sizeof v, f, decimals, scale * s->value + 0.0);
    if (!isnan(s->lo)) {
        snprintf(lo, sizeof lo, f, decimals, scale * s->lo + 0.0);
        snprintf(hi, sizeof hi, f, decimals, scale * s->hi + 0.0);
        snprintf(out, sz, "%s [%s, %s]", v, lo, hi);
    } else if (bootstrap > 0) {
        snprintf(out, sz, "%s [n/a]", v);
    } else {
        snprintf(out, sz, "%s", v);
    }
}

static const char *kind_label(const RTask *t) {
    return t->gen ? "scores: field 'score', ROUGE-1 F1 from muscle eval" : "discrete outcome: field 'correct'";
}

/* ================================================================ the results table */

enum { COL_MODEL, COL_SEEDS, COL_ACC, COL_NFR, COL_PFR, COL_REL, COL_DACC, NCOL };

static const char *col_header(const RTask *t, int c) {
    static const char *mc[NCOL] = {"model", "seeds", "accuracy %", "NFR %", "PFR %", "rel. NFR change %", "dacc pts"};
    static const char *gen[NCOL] = {"model", "seeds", "ROUGE-1", "score NFR %", "score PFR %", "rel. score NFR change %",
                                    "dROUGE-1"};
    return t->gen ? gen[c] : mc[c];
}

/* cells[row][col] for M1, M2 and each method (row 0 M1, row 1 M2, row 1 + m method m);
 * `none` for empty cells. Names are raw (escape them where they go). */
typedef struct {
    char cell[NCOL][128];
    const char *name;
    int model;          /* -1 M1, else index into models */
} Row;

static Row *results_rows(const Report *r, const RTask *t, const char *none, int *nrows) {
    int n = 1 + t->n_models, B = r->o.bootstrap;
    Row *rows = calloc((size_t)n, sizeof *rows);
    if (!rows) return NULL;
    for (int i = 0; i < n; i++) {
        Row *w = &rows[i];
        w->model = i - 1;
        for (int c = 0; c < NCOL; c++) snprintf(w->cell[c], sizeof w->cell[c], "%s", none);
        if (i == 0) {
            w->name = "M1";
            snprintf(w->cell[COL_SEEDS], sizeof w->cell[0], "1");
            fmt_stat(w->cell[COL_ACC], sizeof w->cell[0], rt_acc_old(t, &t->models[0].stats), 100, 2, 0, B);
            continue;
        }
        const RModel *m = &t->models[i - 1];
        w->name = m->in->name;
        snprintf(w->cell[COL_SEEDS], sizeof w->cell[0], "%d", m->in->n_seeds);
        fmt_stat(w->cell[COL_ACC], sizeof w->cell[0], rt_acc(t, &m->stats), 100, 2, 0, B);
        fmt_stat(w->cell[COL_NFR], sizeof w->cell[0], rt_nfr(t, &m->stats), 100, 2, 0, B);
        fmt_stat(w->cell[COL_PFR], sizeof w->cell[0], rt_pfr(t, &m->stats), 100, 2, 0, B);
        if (!m->is_new) {
            fmt_stat(w->cell[COL_REL], sizeof w->cell[0], rt_rel(t, &m->delta), 1, 1, 1, B);
            fmt_stat(w->cell[COL_DACC], sizeof w->cell[0], rt_dacc(t, &m->delta), 100, 2, 1, B);
        }
    }
    *nrows = n;
    return rows;
}

static int fewer_seeds(const RTask *t) {
    for (int m = 1; m < t->n_models; m++)
        if (t->models[m].paired_seeds < t->models[0].in->n_seeds) return 1;
    return 0;
}

/* "noise floor ..." sentence (plain text; no outside strings in it). */
static void noise_text(StrBuf *b, const Report *r, const RTask *t) {
    const char *what = t->gen ? "score NFR" : "NFR";
    if (!t->has_noise) {
        strbuf_printf(b, "noise floor: n/a (M2 has one seed; with two or more, the %s between M2 seeds shows what seed noise "
                    "alone flips)", what);
        return;
    }
    char v[128];
    fmt_stat(v, sizeof v, rt_nfr(t, &t->noise), 100, 2, 0, r->o.bootstrap);
    strbuf_printf(b, "noise floor: %s %s %% between M2 seeds (mean over %d ordered pairs of %d seeds:", what, v, t->n_pairs,
             t->models[0].in->n_seeds);
    for (int p = 0; p < t->n_pairs; p++)
        strbuf_printf(b, "%s %d->%d %.2f", p ? "," : "", t->pairs[p].from, t->pairs[p].to, 100 * rt_nfr(t, &t->pairs[p].r)->value);
    strbuf_printf(b, ")");
}

/* "chosen: ..." sentence; name_fn writes the chosen model's name (escaped for the format). */
static void chosen_text(StrBuf *b, const Report *r, const RTask *t, void (*name_fn)(StrBuf *, const char *)) {
    double drop = 100 * r->in->max_acc_drop;
    const char *acc = t->gen ? "mean score" : "accuracy", *nfr = t->gen ? "score NFR" : "NFR";
    int q = 0;
    for (int m = 1; m < t->n_models; m++) q += t->models[m].qualifies;
    if (t->n_models == 1) {
        strbuf_puts(b, "chosen: none (no compatibility methods in this task)");
    } else if (t->chosen < 0) {
        strbuf_printf(b, "chosen: none: no method's %s is within %.2f pts of M2's", acc, drop);
    } else {
        strbuf_puts(b, "chosen: ");
        name_fn(b, t->models[t->chosen].in->name);
        strbuf_printf(b, ", the lowest %s among the methods whose %s is at most %.2f pts below M2's (%d of %d qualify)", nfr, acc,
                 drop, q, t->n_models - 1);
    }
}

static void name_plain(StrBuf *b, const char *s) { strbuf_puts(b, s); }

/* ================================================================ text and Markdown */

static void table_plain(StrBuf *b, const Report *r, const RTask *t, int md) {
    int n;
    Row *rows = results_rows(r, t, "-", &n);
    StrBuf *names = rows ? calloc((size_t)n, sizeof *names) : NULL;
    if (!names) {
        free(rows);
        b->oom = 1;
        return;
    }
    /* names as they will be written, and the column widths */
    size_t width[NCOL];
    for (int c = 0; c < NCOL; c++) width[c] = text_width(col_header(t, c));
    for (int i = 0; i < n; i++) {
        int m = rows[i].model;
        if (md) b_md(&names[i], rows[i].name);
        else strbuf_puts(&names[i], rows[i].name);
        if (m >= 1 && t->models[m].paired_seeds < t->models[0].in->n_seeds) strbuf_puts(&names[i], " +");
        if (m >= 1 && m == t->chosen) strbuf_puts(&names[i], " (chosen)");
        strbuf_put(&names[i], "", 0);
        if (names[i].oom) b->oom = 1;
        size_t w = names[i].p ? text_width(names[i].p) : 0;
        if (w > width[0]) width[0] = w;
        for (int c = 1; c < NCOL; c++)
            if (text_width(rows[i].cell[c]) > width[c]) width[c] = text_width(rows[i].cell[c]);
    }
    for (int i = -1; i < n; i++) {
        for (int c = 0; c < NCOL; c++) {
            const char *s = i < 0 ? col_header(t, c) : c == 0 ? (names[i].p ? names[i].p : "") : rows[i].cell[c];
            size_t pad = width[c] - text_width(s);
            if (md) strbuf_puts(b, c ? " | " : "| ");
            else if (c) strbuf_puts(b, "  ");
            strbuf_puts(b, s);
            if (md || c < NCOL - 1)
                for (size_t k = 0; k < pad; k++) strbuf_puts(b, " ");
        }
        strbuf_puts(b, md ? " |\n" : "\n");
        if (i < 0 && md) { /* the separator: the model column left-aligned, the numbers right-aligned */
            for (int c = 0; c < NCOL; c++) {
                strbuf_puts(b, c ? " | " : "| ");
                for (size_t k = 0; k + 1 < width[c]; k++) strbuf_puts(b, "-");
                strbuf_puts(b, c ? ":" : "-");
            }
            strbuf_puts(b, " |\n");
        }
    }
    for (int i = 0; i < n; i++) free(names[i].p);
    free(names);
    free(rows);
}

static void intro_plain(StrBuf *b, const Report *r) {
    if (r->o.bootstrap > 0)
        strbuf_printf(b, "%g%% intervals: paired bootstrap over instances, %d resamples, seed %llu; a model with several seeds "
                    "is the mean over its seeds (one index set per resample for every seed and model).",
                 100 * r->o.level, r->o.bootstrap, (unsigned long long)r->o.seed);
    else
        strbuf_puts(b, "No intervals (--bootstrap 0); a model with several seeds is the mean over its seeds.");
}

/* "McNemar's exact test (seed 1), p: M2 vs M1 0.031 (7 / 1); ..." */
static void mcnemar_text(StrBuf *b, const RTask *t, void (*name_fn)(StrBuf *, const char *)) {
    strbuf_puts(b, t->gen ? "Exact sign test on the score changes (seed 1, two-sided), p:"
                     : "McNemar's exact test (seed 1, two-sided, discordant pairs), p:");
    for (int m = 0; m < t->n_models; m++) {
        const RModel *rm = &t->models[m];
        strbuf_puts(b, m ? "; " : " ");
        name_fn(b, rm->in->name);
        strbuf_printf(b, " vs M1 %.4g (%lld / %lld)", rm->mc_m1.p, rm->mc_m1.b, rm->mc_m1.c);
        if (m > 0) {
            strbuf_puts(b, ", vs ");
            name_fn(b, t->models[0].in->name);
            strbuf_printf(b, " %.4g (%lld / %lld)", rm->mc_m2.p, rm->mc_m2.b, rm->mc_m2.c);
        }
    }
    strbuf_puts(b, ".");
}

static char *render_text(const Report *r) {
    StrBuf b = {0};
    strbuf_printf(&b, "%s\n", r->in->title);
    intro_plain(&b, r);
    strbuf_puts(&b, "\n");
    for (int i = 0; i < r->n_tasks; i++) {
        const RTask *t = &r->tasks[i];
        strbuf_printf(&b, "\n%s: kind %s (%s), %zu instances\n", t->in->name, t->in->kind, kind_label(t), t->n);
        table_plain(&b, r, t, 0);
        if (fewer_seeds(t)) strbuf_puts(&b, "+ fewer seeds than M2: compared with M2's first seeds only\n");
        noise_text(&b, r, t);
        strbuf_puts(&b, "\n");
        chosen_text(&b, r, t, name_plain);
        strbuf_puts(&b, "\n");
        mcnemar_text(&b, t, name_plain);
        strbuf_puts(&b, "\n");
    }
    return b_finish(&b);
}

static void name_md(StrBuf *b, const char *s) {
    strbuf_puts(b, "**");
    b_md(b, s);
    strbuf_puts(b, "**");
}

/* An inline code span that survives backticks in the text. */
static void b_md_code(StrBuf *b, const char *s) {
    int run = 0, longest = 0;
    for (const char *c = s; *c; c++) {
        run = *c == '`' ? run + 1 : 0;
        if (run > longest) longest = run;
    }
    size_t len = strlen(s);
    int pad = longest > 0 || s[0] == ' ' || (len && s[len - 1] == ' ');
    for (int k = 0; k <= longest; k++) strbuf_puts(b, "`");
    if (pad) strbuf_puts(b, " ");
    for (const char *c = s; *c; c++) {
        if (*c == '\n' || *c == '\r') strbuf_puts(b, " ");
        else strbuf_put(b, c, 1);
    }
    if (pad) strbuf_puts(b, " ");
    for (int k = 0; k <= longest; k++) strbuf_puts(b, "`");
}

static char *render_md(const Report *r) {
    StrBuf b = {0};
    strbuf_puts(&b, "# ");
    b_md(&b, r->in->title);
    strbuf_puts(&b, "\n\nWritten by `muscle report`");
    if (r->in->manifest && r->in->manifest[0]) {
        strbuf_puts(&b, " from ");
        b_md_code(&b, r->in->manifest);
    }
    strbuf_puts(&b, ". ");
    intro_plain(&b, r);
    strbuf_puts(&b, " Rates in %; accuracy and ROUGE-1 in points; rel. NFR change = 100 * (NFR(method) - NFR(M2)) / "
                "NFR(M2); dacc = accuracy(method) - accuracy(M2), seed k with seed k.\n");
    for (int i = 0; i < r->n_tasks; i++) {
        const RTask *t = &r->tasks[i];
        strbuf_puts(&b, "\n## ");
        b_md(&b, t->in->name);
        strbuf_printf(&b, "\n\nKind `%s` (%s), %zu instances.\n\n", t->in->kind, kind_label(t), t->n);
        table_plain(&b, r, t, 1);
        strbuf_puts(&b, "\n");
        if (fewer_seeds(t)) strbuf_puts(&b, "\\+ fewer seeds than M2: compared with M2's first seeds only.\n\n");
        strbuf_puts(&b, "- ");
        noise_text(&b, r, t);
        strbuf_puts(&b, "\n- ");
        chosen_text(&b, r, t, name_md);
        strbuf_puts(&b, "\n- ");
        mcnemar_text(&b, t, name_md);
        strbuf_puts(&b, "\n- flips of seed 1 against M1:");
        for (int m = 0; m < t->n_models; m++) {
            const RModel *rm = &t->models[m];
            strbuf_puts(&b, m ? "; " : " ");
            b_md(&b, rm->in->name);
            strbuf_printf(&b, " %lld negative, %lld positive", rm->flip_count[0], rm->flip_count[1]);
            if (!t->gen) strbuf_printf(&b, ", %lld inconsistent", rm->flip_count[2]);
        }
        strbuf_puts(&b, " (every one listed in report.json and report.html)\n");
        int any = 0;
        for (int m = 0; m < t->n_models; m++) any |= t->models[m].in->settings[0] != 0;
        if (any) {
            strbuf_puts(&b, "\nSettings:\n\n");
            for (int m = 0; m < t->n_models; m++) {
                const RModel *rm = &t->models[m];
                if (!rm->in->settings[0]) continue;
                strbuf_puts(&b, "- ");
                b_md(&b, rm->in->name);
                strbuf_puts(&b, ": ");
                b_md_code(&b, rm->in->settings);
                strbuf_puts(&b, "\n");
            }
        }
    }
    return b_finish(&b);
}

/* ================================================================ JSON */

static cJSON *num_or_null(double v) { return isnan(v) ? cJSON_CreateNull() : cJSON_CreateNumber(v); }

/* The statistics of a comparison with M1 and the deltas against M2, named as
 * `muscle compare --json` names them (metrics/compat_json.c). */
static cJSON *stats_json(const CompatReport *r) {
    cJSON *o = cJSON_CreateObject();
    compat_report_json_add(o, r);
    return o;
}

static cJSON *delta_json(const CompatDelta *d) {
    cJSON *o = cJSON_CreateObject();
    compat_delta_json_add(o, d);
    return o;
}

/* Point values of one seed (or one noise-floor pair), as plain numbers. */
static void point_json(cJSON *o, const CompatReport *r) {
    if (r->discrete) {
        cJSON_AddItemToObject(o, "acc_new", num_or_null(r->acc2.value));
        cJSON_AddItemToObject(o, "nfr", num_or_null(r->nfr.value));
        cJSON_AddItemToObject(o, "pfr", num_or_null(r->pfr.value));
    }
    if (r->continuous) {
        cJSON_AddItemToObject(o, "score_new", num_or_null(r->mean2.value));
        cJSON_AddItemToObject(o, "score_nfr", num_or_null(r->cnfr.value));
        cJSON_AddItemToObject(o, "score_pfr", num_or_null(r->cpfr.value));
    }
}

static cJSON *strings_json(char *const *s, int n) {
    cJSON *a = cJSON_CreateArray();
    for (int i = 0; i < n; i++) cJSON_AddItemToArray(a, cJSON_CreateString(s[i]));
    return a;
}

static cJSON *mcnemar_json(const McNemar *m, int gen) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "test", gen ? "sign-exact" : "mcnemar-exact");
    cJSON_AddNumberToObject(o, "b", (double)m->b);
    cJSON_AddNumberToObject(o, "c", (double)m->c);
    cJSON_AddItemToObject(o, "p", num_or_null(m->p));
    return o;
}

static cJSON *model_json(const RTask *t, const RModel *m) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "name", m->in->name);
    cJSON_AddStringToObject(o, "role", m->is_new ? "new" : "method");
    cJSON_AddStringToObject(o, "settings", m->in->settings);
    cJSON_AddNumberToObject(o, "seeds", m->in->n_seeds);
    cJSON_AddItemToObject(o, "preds", strings_json(m->in->preds, m->in->n_seeds));
    if (!m->is_new) {
        cJSON_AddNumberToObject(o, "paired_seeds", m->paired_seeds);
        cJSON_AddBoolToObject(o, "qualifies", m->qualifies);
    }
    cJSON_AddItemToObject(o, "stats", stats_json(&m->stats));
    if (!m->is_new) cJSON_AddItemToObject(o, "delta", delta_json(&m->delta));
    cJSON *ps = cJSON_AddArrayToObject(o, "per_seed");
    for (int s = 0; s < m->in->n_seeds; s++) {
        cJSON *e = cJSON_CreateObject();
        cJSON_AddNumberToObject(e, "seed", s + 1);
        point_json(e, &m->per_seed[s]);
        cJSON_AddItemToArray(ps, e);
    }
    cJSON *s1 = cJSON_AddObjectToObject(o, "seed1");
    if (m->stats.discrete) {
        cJSON *mx = cJSON_AddObjectToObject(s1, "matrix");
        cJSON_AddNumberToObject(mx, "old_right_new_right", (double)m->matrix[0][0]);
        cJSON_AddNumberToObject(mx, "old_right_new_wrong", (double)m->matrix[0][1]);
        cJSON_AddNumberToObject(mx, "old_wrong_new_right", (double)m->matrix[1][0]);
        cJSON_AddNumberToObject(mx, "old_wrong_new_wrong", (double)m->matrix[1][1]);
    }
    if (t->gen) {
        cJSON *sc = cJSON_AddObjectToObject(s1, "score_changes");
        cJSON_AddNumberToObject(sc, "lower", (double)m->dsign[0]);
        cJSON_AddNumberToObject(sc, "tie", (double)m->dsign[1]);
        cJSON_AddNumberToObject(sc, "higher", (double)m->dsign[2]);
    }
    cJSON_AddItemToObject(s1, "mcnemar_vs_m1", mcnemar_json(&m->mc_m1, t->gen));
    if (!m->is_new) cJSON_AddItemToObject(s1, "mcnemar_vs_m2", mcnemar_json(&m->mc_m2, t->gen));
    cJSON *fl = cJSON_AddObjectToObject(s1, "flips");
    cJSON_AddNumberToObject(fl, "negative", (double)m->flip_count[0]);
    cJSON_AddNumberToObject(fl, "positive", (double)m->flip_count[1]);
    if (!t->gen) cJSON_AddNumberToObject(fl, "inconsistent", (double)m->flip_count[2]);
    cJSON_AddItemToObject(fl, "instances", cJSON_Duplicate(m->flips, 1));
    return o;
}

static char *render_json(const Report *r) {
    cJSON *o = cJSON_CreateObject();
    if (!o) {
        err_set("out of memory rendering the report");
        return NULL;
    }
    cJSON_AddStringToObject(o, "format", "muscle-report");
    cJSON_AddNumberToObject(o, "version", 1);
    cJSON_AddStringToObject(o, "title", r->in->title);
    cJSON_AddStringToObject(o, "manifest", r->in->manifest ? r->in->manifest : "");
    cJSON_AddNumberToObject(o, "bootstrap", r->o.bootstrap);
    cJSON_AddNumberToObject(o, "seed", (double)r->o.seed);
    cJSON_AddNumberToObject(o, "level", r->o.level);
    cJSON_AddNumberToObject(o, "tie_eps", r->o.tie_eps);
    cJSON_AddNumberToObject(o, "max_acc_drop", r->in->max_acc_drop);
    cJSON *ts = cJSON_AddArrayToObject(o, "tasks");
    for (int i = 0; i < r->n_tasks; i++) {
        const RTask *t = &r->tasks[i];
        cJSON *tj = cJSON_CreateObject();
        cJSON_AddStringToObject(tj, "name", t->in->name);
        cJSON_AddStringToObject(tj, "kind", t->in->kind);
        cJSON_AddNumberToObject(tj, "n", (double)t->n);
        cJSON_AddBoolToObject(tj, "discrete", t->models[0].stats.discrete);
        cJSON_AddBoolToObject(tj, "continuous", t->models[0].stats.continuous);
        cJSON *old = cJSON_AddObjectToObject(tj, "old");
        cJSON_AddStringToObject(old, "name", "M1");
        cJSON_AddStringToObject(old, "preds", t->in->old_preds);
        /* M1 is the same model in every comparison: the counts of one */
        CompatStat acc1 = t->models[0].stats.acc1;
        acc1.num = t->models[0].per_seed[0].acc1.num;
        acc1.den = t->models[0].per_seed[0].acc1.den;
        if (t->models[0].stats.discrete) cJSON_AddItemToObject(old, "acc", compat_stat_json(&acc1));
        if (t->models[0].stats.continuous) cJSON_AddItemToObject(old, "score", compat_stat_json(&t->models[0].stats.mean1));
        cJSON_AddStringToObject(tj, "new", t->models[0].in->name);
        cJSON_AddItemToObject(tj, "chosen", t->chosen >= 0 ? cJSON_CreateString(t->models[t->chosen].in->name) : cJSON_CreateNull());
        if (t->has_noise) {
            cJSON *nf = cJSON_AddObjectToObject(tj, "noise_floor");
            cJSON_AddNumberToObject(nf, "seeds", t->models[0].in->n_seeds);
            cJSON *st = stats_json(&t->noise);
            cJSON_AddItemToObject(nf, "stats", st);
            cJSON *pairs = cJSON_AddArrayToObject(nf, "pairs");
            for (int p = 0; p < t->n_pairs; p++) {
                cJSON *e = cJSON_CreateObject();
                cJSON_AddNumberToObject(e, "from", t->pairs[p].from);
                cJSON_AddNumberToObject(e, "to", t->pairs[p].to);
                point_json(e, &t->pairs[p].r);
                cJSON_AddItemToArray(pairs, e);
            }
        } else {
            cJSON_AddNullToObject(tj, "noise_floor");
        }
        cJSON *ms = cJSON_AddArrayToObject(tj, "models");
        for (int m = 0; m < t->n_models; m++) cJSON_AddItemToArray(ms, model_json(t, &t->models[m]));
        cJSON_AddItemToArray(ts, tj);
    }
    char *s = cJSON_Print(o);
    cJSON_Delete(o);
    if (!s) {
        err_set("out of memory rendering the report");
        return NULL;
    }
    size_t n = strlen(s);
    char *t = realloc(s, n + 2);
    if (!t) {
        free(s);
        err_set("out of memory rendering the report");
        return NULL;
    }
    t[n] = '\n';
    t[n + 1] = 0;
    return t;
}

/* ================================================================ HTML */

static const char *css =
    "body{font:15px/1.45 system-ui,-apple-system,\"Segoe UI\",Roboto,\"DejaVu Sans\",sans-serif;color:#1d2330;"
    "background:#fff;max-width:1180px;margin:1.5em auto;padding:0 1.2em}\n"
    "h1{font-size:1.7em;margin:.2em 0}h2{font-size:1.35em;margin-top:2.2em;padding-bottom:.2em;"
    "border-bottom:2px solid #dfe4ee}h3{font-size:1.08em;margin:1.6em 0 .4em}\n"
    ".meta{color:#5a6376}.note{color:#5a6376;font-size:.92em}\n"
    "table{border-collapse:collapse;margin:.6em 0}th,td{padding:.32em .7em;border-bottom:1px solid #e4e8f0;"
    "text-align:right;vertical-align:top}th:first-child,td:first-child{text-align:left}\n"
    "thead th{background:#f3f5f9;font-weight:600;white-space:nowrap}\n"
    "table.results td{white-space:nowrap;font-variant-numeric:tabular-nums}\n"
    "table.results .ci{color:#6b7385;font-size:.86em}table.results tr.m1 td{color:#5a6376}table.results tr.chosen td{background:#eaf7ee;font-weight:600}\n"
    ".badge{display:inline-block;margin-left:.5em;padding:0 .45em;border-radius:.6em;background:#1e7b34;color:#fff;"
    "font-size:.78em;font-weight:600;vertical-align:middle}\n"
    ".grid{display:flex;flex-wrap:wrap;gap:1.5em 2.5em;align-items:flex-start}\n"
    "table.matrix caption{text-align:left;font-weight:600;padding-bottom:.3em}table.matrix td{min-width:5.5em}\n"
    ".neg{color:#b3261e}.pos{color:#1e7b34}.inc{color:#8a6100}\n"
    "table.flips{width:100%;table-layout:fixed}table.flips td{text-align:left;white-space:pre-wrap;"
    "overflow-wrap:anywhere;font:13px/1.4 ui-monospace,\"DejaVu Sans Mono\",monospace}\n"
    "table.flips th{text-align:left}table.flips col.n{width:3em}table.flips col.id{width:7em}"
    "table.flips col.kind{width:7.5em}table.flips col.d{width:7.5em}table.flips col.text{width:32%}\n"
    "table.flips td.num{text-align:right}table.sortable th[aria-sort=ascending]::after{content:' \\25B2'}"
    "table.sortable th[aria-sort=descending]::after{content:' \\25BC'}\n"
    "p.filters input{font:inherit;padding:.2em .4em;width:18em}p.filters select{font:inherit}\n"
    "dl.settings dt{font-weight:600}dl.settings dd{margin:0 0 .5em 1.2em;font:13px/1.4 ui-monospace,monospace;"
    "white-space:pre-wrap;overflow-wrap:anywhere}\n"
    "svg.nfr-plot{background:#fbfcfe;border:1px solid #e4e8f0;border-radius:6px;max-width:100%;height:auto}\n"
    "svg.nfr-plot .grid-line{stroke:#e6eaf2;stroke-width:1}svg.nfr-plot .axis{stroke:#8a93a6;stroke-width:1}\n"
    "svg.nfr-plot text{font:12px system-ui,\"DejaVu Sans\",sans-serif;fill:#3a4252}svg.nfr-plot .axis-label{font-weight:600}\n"
    "svg.nfr-plot .ref{stroke:#9aa3b5;stroke-width:1.2;stroke-dasharray:5 4}svg.nfr-plot .ref-label{fill:#6b7385;font-size:11px}\n"
    "svg.nfr-plot .err{stroke-width:1.4;opacity:.55}\n"
    "svg.nfr-plot .new circle{fill:#3b6fd8}svg.nfr-plot .new .err{stroke:#3b6fd8}\n"
    "svg.nfr-plot .method circle{fill:#8a6100}svg.nfr-plot .method .err{stroke:#8a6100}\n"
    "svg.nfr-plot .chosen circle{fill:#1e7b34}svg.nfr-plot .chosen .err{stroke:#1e7b34}\n"
    "svg.nfr-plot circle{stroke:#fff;stroke-width:1.5}\n"
    "footer{margin:3em 0 1em;color:#5a6376;font-size:.88em}\n";

static void html_results(StrBuf *b, const Report *r, const RTask *t) {
    int n;
    Row *rows = results_rows(r, t, "\xE2\x80\x94", &n);
    if (!rows) {
        b->oom = 1;
        return;
    }
    strbuf_printf(b, "<table id=\"results-%s\" class=\"results\">\n<thead><tr>", t->slug);
    for (int c = 0; c < NCOL; c++) {
        strbuf_puts(b, "<th>");
        b_html(b, col_header(t, c));
        strbuf_puts(b, "</th>");
    }
    strbuf_puts(b, "</tr></thead>\n<tbody>\n");
    for (int i = 0; i < n; i++) {
        const Row *w = &rows[i];
        const char *cls = w->model < 0 ? "m1" : w->model == 0 ? "new" : w->model == t->chosen ? "chosen" : "method";
        strbuf_printf(b, "<tr class=\"%s\"><td>", cls);
        b_html(b, w->name);
        if (w->model >= 1 && t->models[w->model].paired_seeds < t->models[0].in->n_seeds) strbuf_puts(b, "<sup>+</sup>");
        if (w->model >= 1 && w->model == t->chosen) strbuf_puts(b, "<span class=\"badge\">chosen</span>");
        strbuf_puts(b, "</td>");
        for (int c = 1; c < NCOL; c++) {
            const char *iv = strstr(w->cell[c], " [");
            strbuf_puts(b, "<td>");
            if (iv) {
                char v[128];
                snprintf(v, sizeof v, "%.*s", (int)(iv - w->cell[c]), w->cell[c]);
                b_html(b, v);
                strbuf_puts(b, " <span class=\"ci\">");
                b_html(b, iv + 1);
                strbuf_puts(b, "</span>");
            } else {
                b_html(b, w->cell[c]);
            }
            strbuf_puts(b, "</td>");
        }
        strbuf_puts(b, "</tr>\n");
    }
    strbuf_puts(b, "</tbody>\n</table>\n");
    free(rows);
}

static double nice_step(double range, int target) {
    double raw = range / target, p = pow(10, floor(log10(raw))), f = raw / p;
    return (f < 1.5 ? 1 : f < 3.5 ? 2 : f < 7.5 ? 5 : 10) * p;
}

typedef struct {
    double x, y, w, h;
} Box;

static int overlaps(const Box *a, const Box *b) {
    return a->x < b->x + b->w && b->x < a->x + a->w && a->y < b->y + b->h && b->y < a->y + a->h;
}

/* The scatter plot: NFR (x) against accuracy (y), one point per model (M2 and the methods)
 * with its intervals as error bars; M1's accuracy and the noise floor as dashed lines. */
static void html_plot(StrBuf *b, const Report *r, const RTask *t) {
    (void)r;
    const double W = 660, H = 420, ml = 66, mr = 28, mt = 22, mb = 54;
    double x1 = 0, y0 = INFINITY, y1 = -INFINITY;
#define GROW(v, lo, hi)                   \
    do {                                  \
        if (!isnan(v) && (v) < (lo)) (lo) = (v); \
        if (!isnan(v) && (v) > (hi)) (hi) = (v); \
    } while (0)
    double dummy = INFINITY;
    for (int m = 0; m < t->n_models; m++) {
        const CompatStat *a = rt_acc(t, &t->models[m].stats), *f = rt_nfr(t, &t->models[m].stats);
        GROW(f->value, dummy, x1);
        GROW(f->hi, dummy, x1);
        GROW(a->value, y0, y1);
        GROW(a->lo, y0, y1);
        GROW(a->hi, y0, y1);
    }
    const CompatStat *m1 = rt_acc_old(t, &t->models[0].stats);
    GROW(m1->value, y0, y1);
    double noise = t->has_noise ? rt_nfr(t, &t->noise)->value : NAN;
    GROW(noise, dummy, x1);
#undef GROW
    if (!isfinite(y0) || !isfinite(y1)) y0 = 0, y1 = 1;
    x1 = x1 > 0 ? x1 * 1.12 : 0.01;
    double pad = fmax(0.1 * (y1 - y0), 0.005);
    y0 = fmax(0, y0 - pad);
    y1 = fmin(1, y1 + pad);
    if (y1 - y0 < 1e-9) y0 = fmax(0, y0 - 0.01), y1 = fmin(1, y1 + 0.01);
    double pw = W - ml - mr, ph = H - mt - mb;
#define PX(v) (ml + ((v) / x1) * pw)
#define PY(v) (mt + (1 - ((v) - y0) / (y1 - y0)) * ph)
    const char *xl = t->gen ? "score NFR %" : "NFR %", *yl = t->gen ? "ROUGE-1" : "accuracy %";
    strbuf_printf(b, "<svg class=\"nfr-plot\" xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 %g %g\" width=\"%g\" height=\"%g\" "
                "role=\"img\" aria-label=\"%s against %s, one point per model\">\n", W, H, W, H, xl, yl);
    strbuf_printf(b, "<title>%s against %s: ", xl, yl);
    b_html(b, t->in->name);
    strbuf_puts(b, "</title>\n");
    /* grid and ticks */
    double sx = nice_step(x1 * 100, 5) / 100, sy = nice_step((y1 - y0) * 100, 5) / 100;
    for (double v = 0; v <= x1 + 1e-12; v += sx)
        strbuf_printf(b, "<line class=\"grid-line\" x1=\"%.1f\" y1=\"%g\" x2=\"%.1f\" y2=\"%g\"/><text x=\"%.1f\" y=\"%g\" "
                    "text-anchor=\"middle\">%g</text>\n", PX(v), mt, PX(v), mt + ph, PX(v), mt + ph + 16, round(v * 1e6) / 1e4);
    for (double v = ceil(y0 / sy - 1e-9) * sy; v <= y1 + 1e-12; v += sy)
        strbuf_printf(b, "<line class=\"grid-line\" x1=\"%g\" y1=\"%.1f\" x2=\"%g\" y2=\"%.1f\"/><text x=\"%g\" y=\"%.1f\" "
                    "text-anchor=\"end\">%g</text>\n", ml, PY(v), ml + pw, PY(v), ml - 6, PY(v) + 4, round(v * 1e6) / 1e4);
    strbuf_printf(b, "<line class=\"axis\" x1=\"%g\" y1=\"%g\" x2=\"%g\" y2=\"%g\"/><line class=\"axis\" x1=\"%g\" y1=\"%g\" "
                "x2=\"%g\" y2=\"%g\"/>\n", ml, mt + ph, ml + pw, mt + ph, ml, mt, ml, mt + ph);
    strbuf_printf(b, "<text class=\"axis-label\" x=\"%g\" y=\"%g\" text-anchor=\"middle\">%s (lower is better)</text>\n",
             ml + pw / 2, H - 12, xl);
    strbuf_printf(b, "<text class=\"axis-label\" transform=\"translate(16 %g) rotate(-90)\" text-anchor=\"middle\">%s</text>\n",
             mt + ph / 2, yl);
    /* reference lines */
    if (!isnan(m1->value))
        strbuf_printf(b, "<line class=\"ref\" x1=\"%g\" y1=\"%.1f\" x2=\"%g\" y2=\"%.1f\"/><text class=\"ref-label\" x=\"%g\" "
                    "y=\"%.1f\" text-anchor=\"end\">M1 %.2f</text>\n", ml, PY(m1->value), ml + pw, PY(m1->value), ml + pw - 4,
                 PY(m1->value) - 5, 100 * m1->value);
    if (!isnan(noise))
        strbuf_printf(b, "<line class=\"ref\" x1=\"%.1f\" y1=\"%g\" x2=\"%.1f\" y2=\"%g\"/><text class=\"ref-label\" x=\"%.1f\" "
                    "y=\"%g\">noise floor %.2f</text>\n", PX(noise), mt, PX(noise), mt + ph, PX(noise) + 4, mt + 12, 100 * noise);
    /* points */
    Box placed[128];
    int np = 0;
    for (int m = 0; m < t->n_models; m++) {
        const RModel *rm = &t->models[m];
        const CompatStat *a = rt_acc(t, &rm->stats), *f = rt_nfr(t, &rm->stats);
        if (isnan(a->value) || isnan(f->value)) continue;
        double cx = PX(f->value), cy = PY(a->value);
        strbuf_printf(b, "<g class=\"%s\">", m == 0 ? "new" : m == t->chosen ? "chosen" : "method");
        if (!isnan(f->lo))
            strbuf_printf(b, "<line class=\"err\" x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\"/>", PX(f->lo), cy, PX(f->hi), cy);
        if (!isnan(a->lo))
            strbuf_printf(b, "<line class=\"err\" x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\"/>", cx, PY(a->lo), cx, PY(a->hi));
        strbuf_printf(b, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"5.5\"><title>", cx, cy);
        b_html(b, rm->in->name);
        strbuf_printf(b, ": %s %.2f, %s %.2f</title></circle>", xl, 100 * f->value, yl, 100 * a->value);
        /* the label: beside the point, where it overlaps no earlier label */
        size_t len = text_width(rm->in->name);
        if (len > 28) len = 28;
        Box bx = {0, 0, 7.0 * (double)len + 6, 14};
        static const double off[][2] = {{9, -18}, {9, 4}, {-9, -18}, {-9, 4}, {9, -32}, {9, 18}, {-9, -32}, {-9, 18}};
        int k;
        for (k = 0; k < 8; k++) {
            bx.x = off[k][0] > 0 ? cx + off[k][0] : cx + off[k][0] - bx.w;
            bx.y = cy + off[k][1];
            int clash = bx.x < 0 || bx.x + bx.w > W || bx.y < 0 || bx.y + bx.h > H;
            for (int j = 0; j < np && !clash; j++) clash = overlaps(&bx, &placed[j]);
            if (!clash) break;
        }
        if (k == 8) bx.x = cx + 9, bx.y = cy - 18;
        if (np < 128) placed[np++] = bx;
        strbuf_printf(b, "<text x=\"%.1f\" y=\"%.1f\">", bx.x + 3, bx.y + 11);
        b_html_cut(b, rm->in->name, label_bytes(rm->in->name, 28), 0);
        strbuf_puts(b, "</text></g>\n");
    }
#undef PX
#undef PY
    strbuf_puts(b, "</svg>\n");
}

static void html_matrix(StrBuf *b, const RTask *t, const RModel *m) {
    strbuf_puts(b, "<table class=\"matrix\"><caption>");
    b_html(b, m->in->name);
    strbuf_puts(b, " against M1 (seed 1)</caption>\n");
    if (m->stats.discrete) {
        strbuf_puts(b, "<thead><tr><th></th><th>");
        b_html(b, m->in->name);
        strbuf_puts(b, " right</th><th>");
        b_html(b, m->in->name);
        strbuf_puts(b, " wrong</th></tr></thead>\n<tbody>");
        strbuf_printf(b, "<tr><th>M1 right</th><td>%lld</td><td class=\"neg\">%lld negative</td></tr>\n", m->matrix[0][0],
                 m->matrix[0][1]);
        strbuf_printf(b, "<tr><th>M1 wrong</th><td class=\"pos\">%lld positive</td><td>%lld</td></tr>\n", m->matrix[1][0],
                 m->matrix[1][1]);
        strbuf_puts(b, "</tbody>");
    }
    if (t->gen) {
        strbuf_puts(b, "<thead><tr><th>score against M1</th><th>lower</th><th>same</th><th>higher</th></tr></thead>\n<tbody>");
        strbuf_printf(b, "<tr><th>instances</th><td class=\"neg\">%lld</td><td>%lld</td><td class=\"pos\">%lld</td></tr></tbody>\n",
                 m->dsign[0], m->dsign[1], m->dsign[2]);
    }
    strbuf_puts(b, "</table>\n");
}

/* A prediction, target or id: a string as its text, anything else as compact JSON. */
static void html_value(StrBuf *b, const cJSON *v) {
    if (!v) {
        strbuf_puts(b, "\xE2\x80\x94");
        return;
    }
    if (cJSON_IsString(v)) {
        b_html_n(b, v->valuestring, HTML_MAX_TEXT);
        return;
    }
    char *s = cJSON_PrintUnformatted(v);
    if (!s) {
        b->oom = 1;
        return;
    }
    b_html_n(b, s, HTML_MAX_TEXT);
    free(s);
}

/* The last `max` bytes of a context (the part next to the answer), an ellipsis first when cut. */
static void b_html_tail(StrBuf *b, const char *s, size_t max) {
    size_t len = strlen(s);
    if (len <= max) {
        b_html(b, s);
        return;
    }
    size_t k = len - max;
    while (k < len && ((unsigned char)s[k] & 0xC0) == 0x80) k++;
    strbuf_puts(b, "\xE2\x80\xA6");
    b_html(b, s + k);
}

static const cJSON *jget(const cJSON *o, const char *k) { return cJSON_GetObjectItemCaseSensitive(o, k); }

/* A side's answer: the choice text when known ("answer"), else the prediction. */
static const cJSON *side_answer(const cJSON *side) {
    const cJSON *a = jget(side, "answer");
    return a ? a : jget(side, "prediction");
}

static void html_margin(StrBuf *b, const cJSON *side) {
    const cJSON *m = jget(side, "margin");
    if (cJSON_IsNumber(m)) strbuf_printf(b, "<td class=\"num %s\" data-v=\"%.17g\">%+.3f</td>", m->valuedouble >= 0 ? "pos" : "neg",
                                    m->valuedouble, m->valuedouble);
    else strbuf_puts(b, "<td class=\"num\" data-v=\"\">\xE2\x80\x94</td>");
}

/* Flipped instances of seed 1: the instance's text, the right answer, both models' answers
 * and margins; sortable (click a header) and filterable (text, kind) by the page's script. */
static void html_flips(StrBuf *b, const RTask *t, const RModel *m, int mi) {
    strbuf_puts(b, "<h3>Flipped instances: ");
    b_html(b, m->in->name);
    strbuf_puts(b, " against M1 (seed 1)</h3>\n<p class=\"note\">");
    strbuf_printf(b, "%lld negative (M1 %s, ", m->flip_count[0], t->gen ? "scored higher" : "right");
    b_html(b, m->in->name);
    strbuf_printf(b, " %s), %lld positive", t->gen ? "lower" : "wrong", m->flip_count[1]);
    if (!t->gen) strbuf_printf(b, ", %lld inconsistent (both wrong, with different answers)", m->flip_count[2]);
    strbuf_puts(b, t->gen ? "; negative first, largest changes first." : "; negative first.");
    strbuf_puts(b, " Margin: log-probability of the right choice minus the best other choice's (negative: wrong by that much).");
    int total = cJSON_GetArraySize(m->flips);
    if (total > HTML_MAX_FLIPS) strbuf_printf(b, " The first %d are shown; %d more are in report.json and flips.csv.", HTML_MAX_FLIPS, total - HTML_MAX_FLIPS);
    strbuf_puts(b, "</p>\n");
    if (!total) return;
    char id[160];
    snprintf(id, sizeof id, "flips-%s-%d", t->slug, mi);
    int margins = 0; /* margin columns only when some flip has a margin (choice log-probs and a gold index) */
    for (const cJSON *e = m->flips->child; e && !margins; e = e->next)
        margins = jget(jget(e, "old"), "margin") || jget(jget(e, "new"), "margin");
    strbuf_printf(b, "<p class=\"filters\"><input type=\"search\" class=\"flip-filter\" data-table=\"%s\" placeholder=\"filter: any text\" "
                "aria-label=\"filter the flipped instances\"> <select class=\"flip-kind\" data-table=\"%s\" aria-label=\"kind\">"
                "<option value=\"\">every kind</option><option value=\"negative\">negative</option>"
                "<option value=\"positive\">positive</option>%s</select> <span class=\"note flip-count\" data-table=\"%s\"></span></p>\n",
             id, id, t->gen ? "" : "<option value=\"inconsistent\">inconsistent</option>", id);
    strbuf_printf(b, "<table class=\"flips sortable\" id=\"%s\"><colgroup><col class=\"n\"><col class=\"id\"><col class=\"kind\">"
                "<col class=\"text\"><col><col><col>%s</colgroup>\n", id,
             t->gen ? "<col class=\"d\">" : margins ? "<col class=\"d\"><col class=\"d\">" : "");
    strbuf_puts(b, "<thead><tr><th>#</th><th>id</th><th>kind</th><th>instance</th><th>right answer</th><th>M1</th><th>");
    b_html(b, m->in->name);
    strbuf_puts(b, "</th>");
    if (t->gen) strbuf_puts(b, "<th>score change</th>");
    else if (margins) {
        strbuf_puts(b, "<th>M1 margin</th><th>");
        b_html(b, m->in->name);
        strbuf_puts(b, " margin</th>");
    }
    strbuf_puts(b, "</tr></thead>\n<tbody>\n");
    int k = 0;
    for (const cJSON *e = m->flips->child; e && k < HTML_MAX_FLIPS; e = e->next, k++) {
        const cJSON *kind = jget(e, "kind");
        const char *ks = cJSON_IsString(kind) ? kind->valuestring : "";
        const char *cls = ks[0] == 'n' ? "neg" : ks[0] == 'p' ? "pos" : "inc";
        const cJSON *old = jget(e, "old"), *nw = jget(e, "new"), *text = jget(e, "text");
        strbuf_printf(b, "<tr class=\"%s\" data-kind=\"%s\"><td data-v=\"%d\">%d</td><td>", cls, ks, k + 1, k + 1);
        html_value(b, jget(e, "id"));
        strbuf_printf(b, "</td><td class=\"%s\">%s</td><td class=\"text\">", cls, ks);
        if (cJSON_IsString(text)) b_html_tail(b, text->valuestring, HTML_MAX_CONTEXT);
        else strbuf_puts(b, "\xE2\x80\x94");
        strbuf_puts(b, "</td><td>");
        const cJSON *tt = jget(e, "target_text");
        html_value(b, tt ? tt : jget(e, "target"));
        strbuf_puts(b, "</td><td>");
        html_value(b, side_answer(old));
        strbuf_puts(b, "</td><td>");
        html_value(b, side_answer(nw));
        strbuf_puts(b, "</td>");
        if (t->gen) {
            const cJSON *d = jget(e, "delta");
            double dv = cJSON_IsNumber(d) ? d->valuedouble : 0.0;
            strbuf_printf(b, "<td class=\"num %s\" data-v=\"%.17g\">%+.3f</td>", cls, dv, dv);
        } else if (margins) {
            html_margin(b, old);
            html_margin(b, nw);
        }
        strbuf_puts(b, "</tr>\n");
    }
    strbuf_puts(b, "</tbody>\n</table>\n");
}

/* Sorting and filtering of the flip tables; inline, no network. */
static const char *flips_js =
    "(function(){\n"
    "function val(td){var v=td.getAttribute('data-v');if(v!==null&&v!==''){var x=parseFloat(v);if(!isNaN(x))return x;}"
    "return td.textContent.toLowerCase();}\n"
    "function cmp(a,b){if(typeof a==='number'&&typeof b==='number')return a-b;if(typeof a==='number')return -1;"
    "if(typeof b==='number')return 1;return a<b?-1:a>b?1:0;}\n"
    "Array.prototype.forEach.call(document.querySelectorAll('table.sortable'),function(t){\n"
    " var tb=t.tBodies[0];\n"
    " Array.prototype.forEach.call(t.tHead.rows[0].cells,function(th,i){\n"
    "  th.title='sort';th.style.cursor='pointer';\n"
    "  th.addEventListener('click',function(){\n"
    "   var asc=th.getAttribute('aria-sort')!=='ascending';\n"
    "   Array.prototype.forEach.call(t.tHead.rows[0].cells,function(h){h.removeAttribute('aria-sort');});\n"
    "   th.setAttribute('aria-sort',asc?'ascending':'descending');\n"
    "   var rows=Array.prototype.slice.call(tb.rows);\n"
    "   rows.sort(function(a,b){var c=cmp(val(a.cells[i]),val(b.cells[i]));return asc?c:-c;});\n"
    "   rows.forEach(function(r){tb.appendChild(r);});});});});\n"
    "function apply(id){var t=document.getElementById(id);if(!t)return;\n"
    " var q=document.querySelector('input.flip-filter[data-table=\"'+id+'\"]').value.toLowerCase();\n"
    " var k=document.querySelector('select.flip-kind[data-table=\"'+id+'\"]').value;var shown=0;\n"
    " Array.prototype.forEach.call(t.tBodies[0].rows,function(r){\n"
    "  var ok=(!k||r.getAttribute('data-kind')===k)&&(!q||r.textContent.toLowerCase().indexOf(q)>=0);\n"
    "  r.style.display=ok?'':'none';if(ok)shown++;});\n"
    " var c=document.querySelector('span.flip-count[data-table=\"'+id+'\"]');if(c)c.textContent=shown+' of '+t.tBodies[0].rows.length+' shown';}\n"
    "Array.prototype.forEach.call(document.querySelectorAll('input.flip-filter,select.flip-kind'),function(el){\n"
    " var id=el.getAttribute('data-table');el.addEventListener(el.tagName==='SELECT'?'change':'input',function(){apply(id);});apply(id);});\n"
    "})();\n";

/* ================================================================ flips.csv */

static void b_csv(StrBuf *b, const char *s) {
    strbuf_puts(b, "\"");
    for (const char *c = s; *c; c++) {
        if (*c == '"') strbuf_puts(b, "\"\"");
        else strbuf_put(b, c, 1);
    }
    strbuf_puts(b, "\"");
}

static void b_csv_value(StrBuf *b, const cJSON *v) {
    if (!v) return;
    if (cJSON_IsString(v)) {
        b_csv(b, v->valuestring);
        return;
    }
    char *s = cJSON_PrintUnformatted(v);
    if (!s) {
        b->oom = 1;
        return;
    }
    b_csv(b, s);
    free(s);
}

static void b_csv_num(StrBuf *b, const cJSON *v) {
    if (cJSON_IsNumber(v)) strbuf_printf(b, "%.6g", v->valuedouble);
}

/* One row per flipped instance of seed 1, every model of every task (RFC 4180, UTF-8). */
static char *render_flips_csv(const Report *r) {
    StrBuf b = {0};
    strbuf_puts(&b, "task,model,kind,id,text,target,right_answer,m1_answer,model_answer,m1_correct,model_correct,m1_margin,"
               "model_margin,m1_score,model_score,score_change\r\n");
    for (int i = 0; i < r->n_tasks; i++) {
        const RTask *t = &r->tasks[i];
        for (int m = 0; m < t->n_models; m++) {
            const RModel *rm = &t->models[m];
            for (const cJSON *e = rm->flips ? rm->flips->child : NULL; e; e = e->next) {
                const cJSON *old = jget(e, "old"), *nw = jget(e, "new");
                b_csv(&b, t->in->name);
                strbuf_puts(&b, ",");
                b_csv(&b, rm->in->name);
                /* text cells, then number cells, in the header's order */
                const cJSON *cells[] = {jget(e, "kind"), jget(e, "id"), jget(e, "text"), jget(e, "target"),
                                        jget(e, "target_text"), side_answer(old), side_answer(nw), jget(old, "correct"),
                                        jget(nw, "correct")};
                const cJSON *nums[] = {jget(old, "margin"), jget(nw, "margin"), jget(old, "score"), jget(nw, "score"),
                                       jget(e, "delta")};
                for (size_t k = 0; k < sizeof cells / sizeof cells[0]; k++) {
                    strbuf_puts(&b, ",");
                    b_csv_value(&b, cells[k]);
                }
                for (size_t k = 0; k < sizeof nums / sizeof nums[0]; k++) {
                    strbuf_puts(&b, ",");
                    b_csv_num(&b, nums[k]);
                }
                strbuf_puts(&b, "\r\n");
            }
        }
    }
    return b_finish(&b);
}

static void name_html(StrBuf *b, const char *s) {
    strbuf_puts(b, "<strong>");
    b_html(b, s);
    strbuf_puts(b, "</strong>");
}

static char *render_html(const Report *r) {
    StrBuf b = {0};
    strbuf_puts(&b, "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
               "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n<title>");
    b_html(&b, r->in->title);
    strbuf_printf(&b, "</title>\n<style>\n%s</style>\n</head>\n<body>\n<header>\n<h1>", css);
    b_html(&b, r->in->title);
    strbuf_puts(&b, "</h1>\n<p class=\"meta\">");
    StrBuf intro = {0};
    intro_plain(&intro, r);
    if (b_finish(&intro)) {
        b_html(&b, intro.p);
        free(intro.p);
    } else {
        b.oom = 1;
    }
    strbuf_puts(&b, " Rates in %; accuracy and ROUGE-1 in points. Rel. NFR change = 100 &times; (NFR(method) &minus; NFR(M2)) / "
               "NFR(M2); dacc = accuracy(method) &minus; accuracy(M2), seed k with seed k. Each cell: value [95% interval].</p>\n");
    if (r->n_tasks > 1) {
        strbuf_puts(&b, "<nav><p>Tasks:");
        for (int i = 0; i < r->n_tasks; i++) {
            strbuf_printf(&b, " <a href=\"#task-%s\">", r->tasks[i].slug);
            b_html(&b, r->tasks[i].in->name);
            strbuf_puts(&b, "</a>");
        }
        strbuf_puts(&b, "</p></nav>\n");
    }
    strbuf_puts(&b, "</header>\n");
    for (int i = 0; i < r->n_tasks; i++) {
        const RTask *t = &r->tasks[i];
        strbuf_printf(&b, "<section class=\"task\" id=\"task-%s\">\n<h2>", t->slug);
        b_html(&b, t->in->name);
        strbuf_printf(&b, "</h2>\n<p class=\"meta\">Kind <code>%s</code> (%s), %zu instances; M2 with %d seed%s.</p>\n", t->in->kind,
                 kind_label(t), t->n, t->models[0].in->n_seeds, t->models[0].in->n_seeds > 1 ? "s" : "");
        html_results(&b, r, t);
        if (fewer_seeds(t)) strbuf_puts(&b, "<p class=\"note\"><sup>+</sup> fewer seeds than M2: compared with M2's first seeds only.</p>\n");
        strbuf_puts(&b, "<p>");
        StrBuf nt = {0};
        noise_text(&nt, r, t);
        if (b_finish(&nt)) {
            b_html(&b, nt.p);
            free(nt.p);
        } else {
            b.oom = 1;
        }
        strbuf_puts(&b, "</p>\n<p>");
        chosen_text(&b, r, t, name_html);
        strbuf_puts(&b, "</p>\n<div class=\"grid\">\n");
        html_plot(&b, r, t);
        strbuf_puts(&b, "<div>\n");
        html_matrix(&b, t, &t->models[0]);
        if (t->chosen >= 0) html_matrix(&b, t, &t->models[t->chosen]);
        strbuf_puts(&b, "</div>\n</div>\n");
        int any = 0;
        for (int m = 0; m < t->n_models; m++) any |= t->models[m].in->settings[0] != 0;
        if (any) {
            strbuf_puts(&b, "<h3>Settings</h3>\n<dl class=\"settings\">\n");
            for (int m = 0; m < t->n_models; m++) {
                if (!t->models[m].in->settings[0]) continue;
                strbuf_puts(&b, "<dt>");
                b_html(&b, t->models[m].in->name);
                strbuf_puts(&b, "</dt><dd>");
                b_html(&b, t->models[m].in->settings);
                strbuf_puts(&b, "</dd>\n");
            }
            strbuf_puts(&b, "</dl>\n");
        }
        strbuf_puts(&b, "<p>");
        mcnemar_text(&b, t, name_html);
        strbuf_puts(&b, "</p>\n");
        html_flips(&b, t, &t->models[0], 0);
        if (t->chosen >= 0) html_flips(&b, t, &t->models[t->chosen], t->chosen);
        strbuf_puts(&b, "</section>\n");
    }
    strbuf_puts(&b, "<footer>Written by <code>muscle report</code>. Every number, and every flipped instance of every model, "
               "is in report.json; the flipped instances also in flips.csv.</footer>\n<script>\n");
    strbuf_puts(&b, flips_js);
    strbuf_puts(&b, "</script>\n</body>\n</html>\n");
    return b_finish(&b);
}

char *report_render(const Report *r, ReportFormat f) {
    switch (f) {
    case REPORT_JSON: return render_json(r);
    case REPORT_MD: return render_md(r);
    case REPORT_HTML: return render_html(r);
    case REPORT_TEXT: return render_text(r);
    case REPORT_FLIPS_CSV: return render_flips_csv(r);
    }
    err_set("report: unknown format %d", (int)f);
    return NULL;
}
