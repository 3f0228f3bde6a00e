/* report/report_render_internal.h - what the text/Markdown/JSON renderer (report_render.c)
 * shares with the HTML and CSV renderer (report_html.c). Private to src/report. */
#ifndef MUSCLE_REPORT_RENDER_INTERNAL_H
#define MUSCLE_REPORT_RENDER_INTERNAL_H

#include <stddef.h>

#include "core/strbuf.h"
#include "report_internal.h"

#define HTML_MAX_FLIPS 200  /* rows of flipped instances per list in report.html */
#define HTML_MAX_TEXT 2000  /* bytes of one prediction or target shown in report.html */
#define HTML_MAX_CONTEXT 360 /* bytes of an instance's text (its end) shown in a flip table */

/* the columns of the results table */
enum { COL_MODEL, COL_SEEDS, COL_ACC, COL_NFR, COL_PFR, COL_REL, COL_DACC, COL_VSCE, NCOL };

/* cells[row][col] for M1, M2 and each method (row 0 M1, row 1 M2, row 1 + m method m);
 * `none` for empty cells. Names are raw (escape them where they go). */
typedef struct {
    char cell[NCOL][128];
    const char *name;
    int model;          /* -1 M1, else index into models */
} Row;

/* text building (report_render.c) */
char *rr_b_finish(StrBuf *b);
void rr_b_html_cut(StrBuf *b, const char *s, size_t max, int note);
void rr_b_html(StrBuf *b, const char *s);
size_t rr_text_width(const char *s);
/* the results table and its sentences (report_render.c) */
const char *rr_kind_label(const RTask *t);
const char *rr_col_header(const RTask *t, int c);
Row *rr_results_rows(const Report *r, const RTask *t, const char *none, int *nrows);
int rr_fewer_seeds(const RTask *t);
void rr_noise_text(StrBuf *b, const Report *r, const RTask *t);
void rr_chosen_text(StrBuf *b, const Report *r, const RTask *t, void (*name_fn)(StrBuf *, const char *));
void rr_intro_plain(StrBuf *b, const Report *r);
/* "against the ce control: ..." sentence (issue 18): the chosen method beats ce, or which does, or none does */
void rr_ce_text(StrBuf *b, const Report *r, const RTask *t, void (*name_fn)(StrBuf *, const char *));
/* "a=0.0 acc [..] NFR [..]" of the inference-time mixture at grid point g (plain text, no outside strings) */
void rr_mix_cell(char *out, size_t sz, const Report *r, const RTask *t, int g, int what);
void rr_mcnemar_text(StrBuf *b, const RTask *t, void (*name_fn)(StrBuf *, const char *));
/* report_html.c */
char *rr_render_html(const Report *r);
char *rr_render_flips_csv(const Report *r);

#endif
