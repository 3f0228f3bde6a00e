/* report/report_render.c - a computed report as report.json, report.md and the plain-text
 * tables `muscle report` prints; report.html and flips.csv are written by report_html.c. */
#include "core/error.h"
#include "core/strbuf.h"
#include "core/utf8.h"
#include "report_render_internal.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ================================================================ text buffer */

/* Text is built in a StrBuf (core/strbuf.h); rr_b_finish checks it once at the end. */

char *rr_b_finish(StrBuf *b) {
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
void rr_b_html_cut(StrBuf *b, const char *s, size_t max, int note) {
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

void rr_b_html(StrBuf *b, const char *s) { rr_b_html_cut(b, s, 0, 0); }

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
size_t rr_text_width(const char *s) {
    size_t w = 0;
    for (; *s; s++)
        if (((unsigned char)*s & 0xC0) != 0x80) w++;
    return w;
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

const char *rr_kind_label(const RTask *t) {
    return t->gen ? "scores: field 'score', ROUGE-1 F1 from muscle eval" : "discrete outcome: field 'correct'";
}

/* ================================================================ the results table */

const char *rr_col_header(const RTask *t, int c) {
    static const char *mc[NCOL] = {"model", "seeds", "accuracy %", "NFR %", "PFR %", "rel. NFR change %", "dacc pts",
                                   "dNFR vs ce pts"};
    static const char *gen[NCOL] = {"model", "seeds", "ROUGE-1", "score NFR %", "score PFR %", "rel. score NFR change %",
                                    "dROUGE-1", "dscore NFR vs ce pts"};
    return t->gen ? gen[c] : mc[c];
}

Row *rr_results_rows(const Report *r, const RTask *t, const char *none, int *nrows) {
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
        if (m->has_vs_ce) fmt_stat(w->cell[COL_VSCE], sizeof w->cell[0], rt_dnfr(t, &m->vs_ce), 100, 2, 1, B);
    }
    *nrows = n;
    return rows;
}

int rr_fewer_seeds(const RTask *t) {
    for (int m = 1; m < t->n_models; m++)
        if (t->models[m].paired_seeds < t->models[0].in->n_seeds) return 1;
    return 0;
}

/* "noise floor ..." sentence (plain text; no outside strings in it). */
void rr_noise_text(StrBuf *b, const Report *r, const RTask *t) {
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
void rr_chosen_text(StrBuf *b, const Report *r, const RTask *t, void (*name_fn)(StrBuf *, const char *)) {
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

void rr_ce_text(StrBuf *b, const Report *r, const RTask *t, void (*name_fn)(StrBuf *, const char *)) {
    const char *nfr = t->gen ? "score NFR" : "NFR";
    if (t->ce < 0) {
        strbuf_puts(b, "against the ce control: no method named ce in this run (add ce to --methods: more cross-entropy training "
                    "from the same new adapter, the control every method must beat)");
        return;
    }
    char v[128];
    if (t->beats_ce >= 0) {
        const RModel *m = &t->models[t->beats_ce];
        fmt_stat(v, sizeof v, rt_dnfr(t, &m->vs_ce), 100, 2, 1, r->o.bootstrap);
        strbuf_puts(b, "against the ce control: ");
        name_fn(b, m->in->name);
        strbuf_printf(b, " beats ce (paired %s difference %s pts, interval below 0, accuracy kept)%s", nfr, v,
                      t->beats_ce == t->chosen ? ", and it is the chosen method" : "; the chosen method does not");
        return;
    }
    strbuf_printf(b, "against the ce control: none beats ce (no method keeps accuracy within %.2f pts of M2's with its paired %s "
                  "difference against ce below 0 over the whole interval)", 100 * r->in->max_acc_drop, nfr);
}

void rr_mix_cell(char *out, size_t sz, const Report *r, const RTask *t, int g, int what) {
    const CompatReport *m = &t->mix[g];
    if (what == 0) fmt_stat(out, sz, rt_acc(t, m), 100, 2, 0, r->o.bootstrap);
    else if (what == 1) fmt_stat(out, sz, rt_nfr(t, m), 100, 2, 0, r->o.bootstrap);
    else {
        double base = rt_nfr(t, &t->models[0].stats)->value;
        if (base > 0) snprintf(out, sz, "%+.1f", 100 * (rt_nfr(t, m)->value - base) / base);
        else snprintf(out, sz, "n/a");
    }
}

/* The mixture's lines (text and Markdown). */
static void mix_plain(StrBuf *b, const Report *r, const RTask *t, const char *bullet) {
    if (!t->n_mix) return;
    if (t->gen)
        strbuf_printf(b, "%sinference-time mixture of the generators: greedy decoding from (1-a) x mean(%d M2 seeds) + a x M1 "
                      "(what a two-model deployment would get; score, score NFR %%, rel. score NFR change %% vs M2):\n", bullet,
                      t->models[0].in->n_seeds);
    else
        strbuf_printf(b, "%sinference-time mixture (1-a) x mean(%d M2 seeds) + a x M1 over the choices (a two-model deployment; "
                      "accuracy %%, NFR %%, rel. NFR change %% vs M2):\n", bullet, t->models[0].in->n_seeds);
    for (int g = 0; g < t->n_mix; g++) {
        char a[96], n[96], rel[32];
        rr_mix_cell(a, sizeof a, r, t, g, 0);
        rr_mix_cell(n, sizeof n, r, t, g, 1);
        rr_mix_cell(rel, sizeof rel, r, t, g, 2);
        strbuf_printf(b, "%s  a=%.1f: %s %s, %s %s, rel. %s\n", *bullet ? "  " : "", t->mix_a[g], t->gen ? "score" : "accuracy", a,
                      t->gen ? "score NFR" : "NFR", n, rel);
    }
}

/* The interpolation sweeps' lines (text and Markdown). */
static void sweep_plain(StrBuf *b, const RTask *t, const char *bullet, void (*name_fn)(StrBuf *, const char *)) {
    for (int m = 1; m < t->n_models; m++) {
        const RModel *rm = &t->models[m];
        if (!rm->n_sweep) continue;
        strbuf_puts(b, bullet);
        strbuf_puts(b, "sweep of ");
        name_fn(b, rm->in->name);
        strbuf_printf(b, " on the test split (a chosen on validation: mean %.2f; accuracy %% / NFR %%, means over its seeds):", rm->chosen_a_mean);
        for (int g = 0; g < rm->n_sweep; g++)
            strbuf_printf(b, "%s a=%.1f %.2f/%.2f", g ? "," : "", rm->sweep_a[g], 100 * rm->sweep_acc[g], 100 * rm->sweep_nfr[g]);
        strbuf_puts(b, "\n");
    }
}

static void name_plain(StrBuf *b, const char *s) { strbuf_puts(b, s); }

/* ================================================================ text and Markdown */

static void table_plain(StrBuf *b, const Report *r, const RTask *t, int md) {
    int n;
    Row *rows = rr_results_rows(r, t, "-", &n);
    StrBuf *names = rows ? calloc((size_t)n, sizeof *names) : NULL;
    if (!names) {
        free(rows);
        b->oom = 1;
        return;
    }
    /* names as they will be written, and the column widths */
    size_t width[NCOL];
    for (int c = 0; c < NCOL; c++) width[c] = rr_text_width(rr_col_header(t, c));
    for (int i = 0; i < n; i++) {
        int m = rows[i].model;
        if (md) b_md(&names[i], rows[i].name);
        else strbuf_puts(&names[i], rows[i].name);
        if (m >= 1 && t->models[m].paired_seeds < t->models[0].in->n_seeds) strbuf_puts(&names[i], " +");
        if (m >= 1 && m == t->chosen) strbuf_puts(&names[i], " (chosen)");
        strbuf_put(&names[i], "", 0);
        if (names[i].oom) b->oom = 1;
        size_t w = names[i].p ? rr_text_width(names[i].p) : 0;
        if (w > width[0]) width[0] = w;
        for (int c = 1; c < NCOL; c++)
            if (rr_text_width(rows[i].cell[c]) > width[c]) width[c] = rr_text_width(rows[i].cell[c]);
    }
    for (int i = -1; i < n; i++) {
        for (int c = 0; c < NCOL; c++) {
            const char *s = i < 0 ? rr_col_header(t, c) : c == 0 ? (names[i].p ? names[i].p : "") : rows[i].cell[c];
            size_t pad = width[c] - rr_text_width(s);
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

void rr_intro_plain(StrBuf *b, const Report *r) {
    if (r->o.bootstrap > 0)
        strbuf_printf(b, "%g%% intervals: paired bootstrap over instances, %d resamples, seed %llu; a model with several seeds "
                    "is the mean over its seeds (one index set per resample for every seed and model).",
                 100 * r->o.level, r->o.bootstrap, (unsigned long long)r->o.seed);
    else
        strbuf_puts(b, "No intervals (--bootstrap 0); a model with several seeds is the mean over its seeds.");
}

/* "McNemar's exact test (seed 1), p: M2 vs M1 0.031 (7 / 1); ..." */
void rr_mcnemar_text(StrBuf *b, const RTask *t, void (*name_fn)(StrBuf *, const char *)) {
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
    rr_intro_plain(&b, r);
    strbuf_puts(&b, "\n");
    for (int i = 0; i < r->n_tasks; i++) {
        const RTask *t = &r->tasks[i];
        strbuf_printf(&b, "\n%s: kind %s (%s), %zu instances\n", t->in->name, t->in->kind, rr_kind_label(t), t->n);
        table_plain(&b, r, t, 0);
        if (rr_fewer_seeds(t)) strbuf_puts(&b, "+ fewer seeds than M2: compared with M2's first seeds only\n");
        rr_noise_text(&b, r, t);
        strbuf_puts(&b, "\n");
        rr_chosen_text(&b, r, t, name_plain);
        strbuf_puts(&b, "\n");
        rr_ce_text(&b, r, t, name_plain);
        strbuf_puts(&b, "\n");
        rr_mcnemar_text(&b, t, name_plain);
        strbuf_puts(&b, "\n");
        sweep_plain(&b, t, "", name_plain);
        mix_plain(&b, r, t, "");
    }
    return rr_b_finish(&b);
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
    rr_intro_plain(&b, r);
    strbuf_puts(&b, " Rates in %; accuracy and ROUGE-1 in points; rel. NFR change = 100 * (NFR(method) - NFR(M2)) / "
                "NFR(M2); dacc = accuracy(method) - accuracy(M2), seed k with seed k.\n");
    for (int i = 0; i < r->n_tasks; i++) {
        const RTask *t = &r->tasks[i];
        strbuf_puts(&b, "\n## ");
        b_md(&b, t->in->name);
        strbuf_printf(&b, "\n\nKind `%s` (%s), %zu instances.\n\n", t->in->kind, rr_kind_label(t), t->n);
        table_plain(&b, r, t, 1);
        strbuf_puts(&b, "\n");
        if (rr_fewer_seeds(t)) strbuf_puts(&b, "\\+ fewer seeds than M2: compared with M2's first seeds only.\n\n");
        strbuf_puts(&b, "- ");
        rr_noise_text(&b, r, t);
        strbuf_puts(&b, "\n- ");
        rr_chosen_text(&b, r, t, name_md);
        strbuf_puts(&b, "\n- ");
        rr_ce_text(&b, r, t, name_md);
        strbuf_puts(&b, "\n- ");
        rr_mcnemar_text(&b, t, name_md);
        strbuf_puts(&b, "\n- flips of seed 1 against M1:");
        for (int m = 0; m < t->n_models; m++) {
            const RModel *rm = &t->models[m];
            strbuf_puts(&b, m ? "; " : " ");
            b_md(&b, rm->in->name);
            strbuf_printf(&b, " %lld negative, %lld positive", rm->flip_count[0], rm->flip_count[1]);
            if (!t->gen) strbuf_printf(&b, ", %lld inconsistent", rm->flip_count[2]);
        }
        strbuf_puts(&b, " (every one listed in report.json and report.html)\n");
        sweep_plain(&b, t, "- ", name_md);
        mix_plain(&b, r, t, "- ");
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
    return rr_b_finish(&b);
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
    if (m->has_vs_ce) {
        cJSON *vc = delta_json(&m->vs_ce);
        cJSON_AddBoolToObject(vc, "beats_ce", m->beats_ce);
        cJSON_AddItemToObject(o, "vs_ce", vc);
    }
    if (m->n_sweep) {
        cJSON *sw = cJSON_AddObjectToObject(o, "sweep");
        cJSON_AddNumberToObject(sw, "chosen_a_mean", m->chosen_a_mean);
        cJSON_AddItemToObject(sw, "files", strings_json(m->in->sweeps, m->in->n_sweeps));
        cJSON *pts = cJSON_AddArrayToObject(sw, "points");
        for (int g = 0; g < m->n_sweep; g++) {
            cJSON *e = cJSON_CreateObject();
            cJSON_AddNumberToObject(e, "a", m->sweep_a[g]);
            cJSON_AddNumberToObject(e, "test_acc", m->sweep_acc[g]);
            cJSON_AddNumberToObject(e, "test_nfr", m->sweep_nfr[g]);
            cJSON_AddItemToArray(pts, e);
        }
    }
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
        cJSON_AddItemToObject(tj, "beats_ce", t->beats_ce >= 0 ? cJSON_CreateString(t->models[t->beats_ce].in->name) : cJSON_CreateNull());
        if (t->n_mix) {
            cJSON_AddStringToObject(tj, "mixture_of", t->gen ? "generators" : "choices");
            cJSON *mx = cJSON_AddArrayToObject(tj, "mixture");
            for (int g = 0; g < t->n_mix; g++) {
                cJSON *e = cJSON_CreateObject();
                cJSON_AddNumberToObject(e, "a", t->mix_a[g]);
                cJSON_AddItemToObject(e, "stats", stats_json(&t->mix[g]));
                cJSON_AddItemToArray(mx, e);
            }
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

char *report_render(const Report *r, ReportFormat f) {
    switch (f) {
    case REPORT_JSON: return render_json(r);
    case REPORT_MD: return render_md(r);
    case REPORT_HTML: return rr_render_html(r);
    case REPORT_TEXT: return render_text(r);
    case REPORT_FLIPS_CSV: return rr_render_flips_csv(r);
    }
    err_set("report: unknown format %d", (int)f);
    return NULL;
}
