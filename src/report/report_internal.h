/* report/report_internal.h - the computed report, shared by report.c (manifest, statistics,
 * files) and report_render.c (JSON, Markdown, HTML, text). Not part of the public API. */
#ifndef MUSCLE_REPORT_INTERNAL_H
#define MUSCLE_REPORT_INTERNAL_H

#include "metrics/compat.h"
#include "metrics/mcnemar.h"
#include "report.h"

#include <cJSON.h>
#include <stddef.h>

typedef struct {
    const ReportModel *in;      /* name, settings, files */
    int is_new;                 /* 1 for M2 (models[0]) */
    int paired_seeds;           /* methods: compared with M2's seeds 1..paired_seeds */
    CompatReport stats;         /* against M1: means over the seeds, with intervals */
    CompatDelta delta;          /* methods: against M2, seed k with seed k */
    CompatReport *per_seed;     /* n_seeds point values (no intervals) */
    int qualifies;              /* methods: accuracy (mean score) within max_acc_drop of M2's */
    /* seed 1 */
    cJSON *flips;               /* array of flipped instances, negative first */
    long long flip_count[3];    /* negative, positive, inconsistent */
    long long matrix[2][2];     /* discrete: [M1 right][model right] */
    long long dsign[3];         /* scores: D < 0, tie, D > 0 */
    McNemar mc_m1;              /* seed 1 against M1 (exact sign test for scores) */
    McNemar mc_m2;              /* methods: seed 1 against M2's seed 1 */
} RModel;

typedef struct {
    int from, to;               /* M2 seeds, 1-based */
    CompatReport r;             /* point values */
} RPair;

typedef struct {
    const ReportTask *in;
    char *slug;                 /* for HTML ids: [A-Za-z0-9_-], unique in the report */
    int gen;                    /* headline outcome: 0 discrete ("correct"), 1 scores ("score") */
    size_t n;                   /* instances */
    RModel *models;             /* [0] = M2, then the methods in manifest order */
    int n_models;
    int chosen;                 /* index into models (>= 1); -1 none */
    int has_noise;              /* M2 has >= 2 seeds */
    CompatReport noise;         /* M2 seed i -> seed j over every ordered pair i != j: means, intervals */
    RPair *pairs;
    int n_pairs;
} RTask;

struct Report {
    const ReportInput *in;
    CompatOptions o;
    RTask *tasks;
    int n_tasks;
};

/* The headline numbers of a model in a task: accuracy or mean score, NFR or score NFR, ... */
static inline const CompatStat *rt_acc_old(const RTask *t, const CompatReport *r) { return t->gen ? &r->mean1 : &r->acc1; }
static inline const CompatStat *rt_acc(const RTask *t, const CompatReport *r) { return t->gen ? &r->mean2 : &r->acc2; }
static inline const CompatStat *rt_nfr(const RTask *t, const CompatReport *r) { return t->gen ? &r->cnfr : &r->nfr; }
static inline const CompatStat *rt_pfr(const RTask *t, const CompatReport *r) { return t->gen ? &r->cpfr : &r->pfr; }
static inline const CompatStat *rt_dnfr(const RTask *t, const CompatDelta *d) { return t->gen ? &d->dcnfr : &d->dnfr; }
static inline const CompatStat *rt_rel(const RTask *t, const CompatDelta *d) { return t->gen ? &d->rel_dcnfr : &d->rel_dnfr; }
static inline const CompatStat *rt_dacc(const RTask *t, const CompatDelta *d) { return t->gen ? &d->dmean : &d->dacc; }

#endif
