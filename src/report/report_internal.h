/* report/report_internal.h - the computed report, shared by report.c (manifest, statistics,
 * files) and report_render.c (JSON, Markdown, HTML, text). Not part of the public API. */
#ifndef MUSCLE_REPORT_INTERNAL_H
#define MUSCLE_REPORT_INTERNAL_H

#include "metrics/compat.h"
#include "metrics/mcnemar.h"
#include "metrics/preds.h"
#include "report.h"

#include <cJSON.h>
#include <stddef.h>

#define RR_SWEEP_MAX 11     /* a = 0, 0.1, ..., 1 */

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
    /* against the ce control (report_versus.c): base = (M1, ce), cand = (M1, this method),
     * seed k with seed k; dnfr < 0 with its interval below 0: fewer flips than ce */
    int has_vs_ce;
    CompatDelta vs_ce;
    int beats_ce;               /* qualifies, and vs_ce's dNFR interval (the value without intervals) is below 0 */
    /* an interpolation's sweep (means over its seeds' sweep files); n_sweep 0: none */
    int n_sweep;
    double sweep_a[RR_SWEEP_MAX], sweep_acc[RR_SWEEP_MAX], sweep_nfr[RR_SWEEP_MAX];
    double chosen_a_mean;       /* mean over the seeds of the a chosen on validation */
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
    int ce;                     /* index of the method named "ce" (the control), -1 none */
    int beats_ce;               /* a qualifying method beats ce: the first in the order of choose() (-1 none) */
    /* the inference-time mixture (1 - a) mean(M2 seeds) + a M1: over the choices (multiple choice,
     * metrics/mixture.h: n_mix points, 0 when the files have no choice log-likelihoods), or of
     * the generators (generation: the manifest's mixture files, update/update_mixgen.c) */
    int n_mix;
    double mix_a[RR_SWEEP_MAX];
    CompatReport mix[RR_SWEEP_MAX];
} RTask;

struct Report {
    const ReportInput *in;
    CompatOptions o;
    RTask *tasks;
    int n_tasks;
};

/* Instances of the comparison a -> b (both in M1's order through their index maps; ia NULL:
 * a is M1's file itself); discrete: the 'correct' outcomes, continuous: the scores. */
void rr_fill(CompatInstance *x, size_t n, const PredFile *a, const size_t *ia, const PredFile *b, const size_t *ib, int discrete,
             int continuous);

/* report_versus.c: every method against ce; the sweep files; the mixture (after choose()). */
int rr_versus_ce(RTask *rt, const CompatInstance *const *const *x, const CompatOptions *o);
int rr_sweeps_read(RTask *rt);
int rr_mixture(RTask *rt, const PredFile *old, const PredFile *news, size_t *const *idx, int k, const CompatOptions *o);

/* The headline numbers of a model in a task: accuracy or mean score, NFR or score NFR, ... */
static inline const CompatStat *rt_acc_old(const RTask *t, const CompatReport *r) { return t->gen ? &r->mean1 : &r->acc1; }
static inline const CompatStat *rt_acc(const RTask *t, const CompatReport *r) { return t->gen ? &r->mean2 : &r->acc2; }
static inline const CompatStat *rt_nfr(const RTask *t, const CompatReport *r) { return t->gen ? &r->cnfr : &r->nfr; }
static inline const CompatStat *rt_pfr(const RTask *t, const CompatReport *r) { return t->gen ? &r->cpfr : &r->pfr; }
static inline const CompatStat *rt_dnfr(const RTask *t, const CompatDelta *d) { return t->gen ? &d->dcnfr : &d->dnfr; }
static inline const CompatStat *rt_rel(const RTask *t, const CompatDelta *d) { return t->gen ? &d->rel_dcnfr : &d->rel_dnfr; }
static inline const CompatStat *rt_dacc(const RTask *t, const CompatDelta *d) { return t->gen ? &d->dmean : &d->dacc; }

#endif
