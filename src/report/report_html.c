/* report/report_html.c - a computed report as report.html (one self-contained file: inline
 * CSS and SVG, one inline script that sorts and filters the flip tables, no network, every
 * outside text escaped) and flips.csv. */
#include "core/error.h"
#include "core/strbuf.h"
#include "core/utf8.h"
#include "report_render_internal.h"

#include <cJSON.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void rr_b_html_n(StrBuf *b, const char *s, size_t max) { rr_b_html_cut(b, s, max, 1); }

/* Bytes of the first `chars` code points of s. */
static size_t rr_label_bytes(const char *s, size_t chars) {
    size_t i = 0, c = 0;
    for (; s[i]; i++) {
        if (((unsigned char)s[i] & 0xC0) != 0x80 && c++ == chars) break;
    }
    return i;
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
    "svg.nfr-plot .sweep polyline{fill:none;stroke:#8a6100;stroke-width:1.6;opacity:.8}svg.nfr-plot .sweep circle{fill:#8a6100;stroke-width:1}\n"
    "svg.nfr-plot .mixture polyline{fill:none;stroke:#7a3fb8;stroke-width:1.6;stroke-dasharray:6 3}"
    "svg.nfr-plot .mixture circle{fill:#7a3fb8;stroke-width:1}\n"
    "table.mixture td{min-width:6em}\n"
    "footer{margin:3em 0 1em;color:#5a6376;font-size:.88em}\n";

static void html_results(StrBuf *b, const Report *r, const RTask *t) {
    int n;
    Row *rows = rr_results_rows(r, t, "\xE2\x80\x94", &n);
    if (!rows) {
        b->oom = 1;
        return;
    }
    strbuf_printf(b, "<table id=\"results-%s\" class=\"results\">\n<thead><tr>", t->slug);
    for (int c = 0; c < NCOL; c++) {
        strbuf_puts(b, "<th>");
        rr_b_html(b, rr_col_header(t, c));
        strbuf_puts(b, "</th>");
    }
    strbuf_puts(b, "</tr></thead>\n<tbody>\n");
    for (int i = 0; i < n; i++) {
        const Row *w = &rows[i];
        const char *cls = w->model < 0 ? "m1" : w->model == 0 ? "new" : w->model == t->chosen ? "chosen" : "method";
        strbuf_printf(b, "<tr class=\"%s\"><td>", cls);
        rr_b_html(b, w->name);
        if (w->model >= 1 && t->models[w->model].paired_seeds < t->models[0].in->n_seeds) strbuf_puts(b, "<sup>+</sup>");
        if (w->model >= 1 && w->model == t->chosen) strbuf_puts(b, "<span class=\"badge\">chosen</span>");
        strbuf_puts(b, "</td>");
        for (int c = 1; c < NCOL; c++) {
            const char *iv = strstr(w->cell[c], " [");
            strbuf_puts(b, "<td>");
            if (iv) {
                char v[128];
                snprintf(v, sizeof v, "%.*s", (int)(iv - w->cell[c]), w->cell[c]);
                rr_b_html(b, v);
                strbuf_puts(b, " <span class=\"ci\">");
                rr_b_html(b, iv + 1);
                strbuf_puts(b, "</span>");
            } else {
                rr_b_html(b, w->cell[c]);
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
    for (int m = 1; m < t->n_models; m++)
        for (int g = 0; g < t->models[m].n_sweep; g++) {
            GROW(t->models[m].sweep_nfr[g], dummy, x1);
            GROW(t->models[m].sweep_acc[g], y0, y1);
        }
    for (int g = 0; g < t->n_mix; g++) {
        GROW(rt_nfr(t, &t->mix[g])->value, dummy, x1);
        GROW(rt_acc(t, &t->mix[g])->value, y0, y1);
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
    rr_b_html(b, t->in->name);
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
    /* curves: each interpolation sweep (test split, a = 0 at A2's end), the inference-time mixture */
    for (int m = 1; m <= t->n_models; m++) {
        int mix = m == t->n_models, n = mix ? t->n_mix : t->models[m].n_sweep;
        if (n < 2) continue;
        strbuf_printf(b, "<g class=\"%s\"><polyline points=\"", mix ? "mixture" : "sweep");
        for (int g = 0; g < n; g++) {
            double f = mix ? rt_nfr(t, &t->mix[g])->value : t->models[m].sweep_nfr[g], a = mix ? rt_acc(t, &t->mix[g])->value : t->models[m].sweep_acc[g];
            strbuf_printf(b, "%s%.1f,%.1f", g ? " " : "", PX(f), PY(a));
        }
        strbuf_puts(b, "\"/>");
        for (int g = 0; g < n; g++) {
            double f = mix ? rt_nfr(t, &t->mix[g])->value : t->models[m].sweep_nfr[g], a = mix ? rt_acc(t, &t->mix[g])->value : t->models[m].sweep_acc[g];
            double w = mix ? t->mix_a[g] : t->models[m].sweep_a[g];
            strbuf_printf(b, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"2.5\"><title>", PX(f), PY(a));
            if (mix) strbuf_printf(b, "mixture (1-a) mean(M2) + a M1");
            else rr_b_html(b, t->models[m].in->name);
            strbuf_printf(b, " at a = %.1f: %s %.2f, %s %.2f</title></circle>", w, xl, 100 * f, yl, 100 * a);
        }
        strbuf_puts(b, "</g>\n");
    }
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
        rr_b_html(b, rm->in->name);
        strbuf_printf(b, ": %s %.2f, %s %.2f</title></circle>", xl, 100 * f->value, yl, 100 * a->value);
        /* the label: beside the point, where it overlaps no earlier label */
        size_t len = rr_text_width(rm->in->name);
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
        rr_b_html_cut(b, rm->in->name, rr_label_bytes(rm->in->name, 28), 0);
        strbuf_puts(b, "</text></g>\n");
    }
#undef PX
#undef PY
    strbuf_puts(b, "</svg>\n");
}

/* The inference-time mixture (1 - a) mean(M2 seeds) + a M1 over the choices: what a deployment
 * of both models would get, the reference every method is read beside. */
static void html_mixture(StrBuf *b, const Report *r, const RTask *t) {
    if (!t->n_mix) return;
    if (t->gen)
        strbuf_printf(b, "<h3>Inference-time mixture of the generators (two models deployed)</h3>\n<p>Greedy decoding of the test "
                      "inputs from (1 &minus; a) &times; the mean of the %d M2 seeds' next-token distributions + a &times; M1's, "
                      "scored with the task's metric: what a two-model deployment would get, the reference a one-adapter "
                      "method is distilled towards.</p>\n<table class=\"mixture results\"><thead><tr><th>a</th><th>score</th>"
                      "<th>score NFR %%</th><th>rel. score NFR change %%</th></tr></thead>\n<tbody>\n", t->models[0].in->n_seeds);
    else
        strbuf_printf(b, "<h3>Inference-time mixture (two models deployed)</h3>\n<p>(1 &minus; a) &times; mean of the %d M2 seeds' "
                      "distributions over the choices + a &times; M1's, from the prediction files; the reference a one-adapter "
                      "method is distilled towards.</p>\n<table class=\"mixture results\"><thead><tr><th>a</th><th>accuracy %%</th>"
                      "<th>NFR %%</th><th>rel. NFR change %%</th></tr></thead>\n<tbody>\n", t->models[0].in->n_seeds);
    for (int g = 0; g < t->n_mix; g++) {
        char a[96], n[96], rel[32];
        rr_mix_cell(a, sizeof a, r, t, g, 0);
        rr_mix_cell(n, sizeof n, r, t, g, 1);
        rr_mix_cell(rel, sizeof rel, r, t, g, 2);
        strbuf_printf(b, "<tr><td>%.1f</td><td>", t->mix_a[g]);
        rr_b_html(b, a);
        strbuf_puts(b, "</td><td>");
        rr_b_html(b, n);
        strbuf_puts(b, "</td><td>");
        rr_b_html(b, rel);
        strbuf_puts(b, "</td></tr>\n");
    }
    strbuf_puts(b, "</tbody>\n</table>\n");
}

static void html_matrix(StrBuf *b, const RTask *t, const RModel *m) {
    strbuf_puts(b, "<table class=\"matrix\"><caption>");
    rr_b_html(b, m->in->name);
    strbuf_puts(b, " against M1 (seed 1)</caption>\n");
    if (m->stats.discrete) {
        strbuf_puts(b, "<thead><tr><th></th><th>");
        rr_b_html(b, m->in->name);
        strbuf_puts(b, " right</th><th>");
        rr_b_html(b, m->in->name);
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
        rr_b_html_n(b, v->valuestring, HTML_MAX_TEXT);
        return;
    }
    char *s = cJSON_PrintUnformatted(v);
    if (!s) {
        b->oom = 1;
        return;
    }
    rr_b_html_n(b, s, HTML_MAX_TEXT);
    free(s);
}

/* The last `max` bytes of a context (the part next to the answer), an ellipsis first when cut. */
static void b_html_tail(StrBuf *b, const char *s, size_t max) {
    size_t len = strlen(s);
    if (len <= max) {
        rr_b_html(b, s);
        return;
    }
    size_t k = len - max;
    while (k < len && ((unsigned char)s[k] & 0xC0) == 0x80) k++;
    strbuf_puts(b, "\xE2\x80\xA6");
    rr_b_html(b, s + k);
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
    rr_b_html(b, m->in->name);
    strbuf_puts(b, " against M1 (seed 1)</h3>\n<p class=\"note\">");
    strbuf_printf(b, "%lld negative (M1 %s, ", m->flip_count[0], t->gen ? "scored higher" : "right");
    rr_b_html(b, m->in->name);
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
    rr_b_html(b, m->in->name);
    strbuf_puts(b, "</th>");
    if (t->gen) strbuf_puts(b, "<th>score change</th>");
    else if (margins) {
        strbuf_puts(b, "<th>M1 margin</th><th>");
        rr_b_html(b, m->in->name);
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
char *rr_render_flips_csv(const Report *r) {
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
    return rr_b_finish(&b);
}

static void name_html(StrBuf *b, const char *s) {
    strbuf_puts(b, "<strong>");
    rr_b_html(b, s);
    strbuf_puts(b, "</strong>");
}

char *rr_render_html(const Report *r) {
    StrBuf b = {0};
    strbuf_puts(&b, "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
               "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n<title>");
    rr_b_html(&b, r->in->title);
    strbuf_printf(&b, "</title>\n<style>\n%s</style>\n</head>\n<body>\n<header>\n<h1>", css);
    rr_b_html(&b, r->in->title);
    strbuf_puts(&b, "</h1>\n<p class=\"meta\">");
    StrBuf intro = {0};
    rr_intro_plain(&intro, r);
    if (rr_b_finish(&intro)) {
        rr_b_html(&b, intro.p);
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
            rr_b_html(&b, r->tasks[i].in->name);
            strbuf_puts(&b, "</a>");
        }
        strbuf_puts(&b, "</p></nav>\n");
    }
    strbuf_puts(&b, "</header>\n");
    for (int i = 0; i < r->n_tasks; i++) {
        const RTask *t = &r->tasks[i];
        strbuf_printf(&b, "<section class=\"task\" id=\"task-%s\">\n<h2>", t->slug);
        rr_b_html(&b, t->in->name);
        strbuf_printf(&b, "</h2>\n<p class=\"meta\">Kind <code>%s</code> (%s), %zu instances; M2 with %d seed%s.</p>\n", t->in->kind,
                 rr_kind_label(t), t->n, t->models[0].in->n_seeds, t->models[0].in->n_seeds > 1 ? "s" : "");
        html_results(&b, r, t);
        if (rr_fewer_seeds(t)) strbuf_puts(&b, "<p class=\"note\"><sup>+</sup> fewer seeds than M2: compared with M2's first seeds only.</p>\n");
        strbuf_puts(&b, "<p>");
        StrBuf nt = {0};
        rr_noise_text(&nt, r, t);
        if (rr_b_finish(&nt)) {
            rr_b_html(&b, nt.p);
            free(nt.p);
        } else {
            b.oom = 1;
        }
        strbuf_puts(&b, "</p>\n<p>");
        rr_chosen_text(&b, r, t, name_html);
        strbuf_puts(&b, "</p>\n<p class=\"vs-ce\">");
        rr_ce_text(&b, r, t, name_html);
        strbuf_puts(&b, "</p>\n<div class=\"grid\">\n");
        html_plot(&b, r, t);
        strbuf_puts(&b, "<div>\n");
        html_matrix(&b, t, &t->models[0]);
        if (t->chosen >= 0) html_matrix(&b, t, &t->models[t->chosen]);
        strbuf_puts(&b, "</div>\n</div>\n");
        if (t->n_mix || t->n_models > 1) strbuf_puts(&b, "<p class=\"note\">Plot: points are models (intervals as bars); solid curves "
                                                     "are interpolation sweeps on the test split (a from 0, the new adapter, to 1); the dashed "
                                                     "curve is the inference-time mixture of M1 and M2 (below).</p>\n");
        html_mixture(&b, r, t);
        int any = 0;
        for (int m = 0; m < t->n_models; m++) any |= t->models[m].in->settings[0] != 0;
        if (any) {
            strbuf_puts(&b, "<h3>Settings</h3>\n<dl class=\"settings\">\n");
            for (int m = 0; m < t->n_models; m++) {
                if (!t->models[m].in->settings[0]) continue;
                strbuf_puts(&b, "<dt>");
                rr_b_html(&b, t->models[m].in->name);
                strbuf_puts(&b, "</dt><dd>");
                rr_b_html(&b, t->models[m].in->settings);
                strbuf_puts(&b, "</dd>\n");
            }
            strbuf_puts(&b, "</dl>\n");
        }
        strbuf_puts(&b, "<p>");
        rr_mcnemar_text(&b, t, name_html);
        strbuf_puts(&b, "</p>\n");
        html_flips(&b, t, &t->models[0], 0);
        if (t->chosen >= 0) html_flips(&b, t, &t->models[t->chosen], t->chosen);
        strbuf_puts(&b, "</section>\n");
    }
    strbuf_puts(&b, "<footer>Written by <code>muscle report</code>. Every number, and every flipped instance of every model, "
               "is in report.json; the flipped instances also in flips.csv.</footer>\n<script>\n");
    strbuf_puts(&b, flips_js);
    strbuf_puts(&b, "</script>\n</body>\n</html>\n");
    return rr_b_finish(&b);
}

