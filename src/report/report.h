/* report/report.h - the update report: how the old task model M1, the new one M2 and each
 * compatibility method compare, over several seeds, as report.json, report.md and a
 * self-contained report.html. Format, manifest and statistics: docs/report.md.
 *
 * Input: per task, M1's prediction file, M2's prediction files (one per seed) and each
 * method's (one per seed; a method's seed k was trained from M2's seed k), all PREDS.jsonl
 * as `muscle eval` writes them (metrics/preds.h). Kind "mc": the discrete outcome
 * ("correct": accuracy, NFR, PFR); kind "gen": the score ("score", ROUGE-1 F1 from
 * `muscle eval`: mean score, continuous NFR/PFR).
 */
#ifndef MUSCLE_REPORT_REPORT_H
#define MUSCLE_REPORT_REPORT_H

#include <stdint.h>

/* The longest task or model name, in bytes: the manifest refuses longer ones and `muscle gate`
 * refuses them in a report.json, so gate can read every report muscle writes. */
#define REPORT_NAME_MAX 256
#define REPORT_MIX_MAX 11 /* a generation task's mixture files */

typedef struct {
    char *name;
    char *settings; /* free text (e.g. the command-line choices); "" when not given */
    int n_seeds;
    char **preds;   /* n_seeds prediction files, seed 1 first */
    char **sweeps;  /* an interpolation's sweep files (update/update_weight.c), one per seed; NULL: none */
    int n_sweeps;
} ReportModel;

typedef struct {
    char *name;
    char *kind;     /* "mc" or "gen" */
    char *format;   /* the prediction files' format: "auto" (default), "muscle", "lm-eval", "csv" */
    char *metric;   /* lm-eval: "NAME[,FILTER]"; NULL = the default (metrics/preds.h) */
    char *old_preds;
    ReportModel new_model;
    ReportModel *methods;
    int n_methods;
    /* generation: the inference-time mixture's prediction files (update/update_mixgen.c),
     * one per weight a of (1 - a) mean(M2 seeds) + a M1; n_mix 0: none */
    double *mix_a;
    char **mix_preds;
    int n_mix;
} ReportTask;

typedef struct {
    char *title;
    char *manifest;      /* where it was read from ("" when built by hand) */
    ReportTask *tasks;
    int n_tasks;
    int bootstrap;       /* resamples (default 1000; 0 = no intervals) */
    uint64_t seed;       /* bootstrap seed (default 42) */
    double max_acc_drop; /* "chosen" may lose at most this much accuracy (mean score) against M2 (default 0.005) */
} ReportInput;

/* Reads a manifest (JSON; docs/report.md); paths in it are relative to its folder.
 * Errors name the file and the field ("run/manifest.json: tasks[0].methods[1].preds[0]: ...").
 * Sets the defaults for bootstrap, seed and max_acc_drop. */
int report_load_manifest(ReportInput *in, const char *manifest_json_path);
void report_input_free(ReportInput *in);

/* The computed report (every number, the flipped instances of seed 1). */
typedef struct Report Report;

/* Reads every prediction file, pairs the instances by id and computes the statistics.
 * `in` must outlive the report (names and paths are not copied). */
int report_compute(const ReportInput *in, Report **out);
void report_free(Report *r);

typedef enum { REPORT_JSON, REPORT_MD, REPORT_HTML, REPORT_TEXT, REPORT_FLIPS_CSV } ReportFormat;
/* The report as text (malloc'd): report.json, report.md, report.html, or the plain-text
 * results tables `muscle report` prints. NULL (with err_set) when out of memory. */
char *report_render(const Report *r, ReportFormat f);

/* Writes out_dir/report.json, report.md, report.html and flips.csv (every flipped instance
 * of seed 1, for spreadsheets), each atomically (creates out_dir). */
int report_write(const char *out_dir, const Report *r);

/* A rate given as a fraction ("0.05", "-0.01") or in percent ("5%", "-0.5%"): *out = 0.05. */
int report_parse_fraction(const char *s, double *out);

#endif
