/* cli/cmd_compare.c - `muscle compare OLD_PREDS NEW_PREDS`: what an update broke, instance by instance. */
#include "cli.h"
#include "core/error.h"
#include "core/file.h"
#include "metrics/compat.h"
#include "metrics/mcnemar.h"
#include "metrics/preds.h"

#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *compare_help =
    "usage: muscle compare OLD_PREDS NEW_PREDS [options]\n"
    "Compares the per-instance outcomes of an old and a new model on the same test set\n"
    "(prediction files, one JSON object per line: \"id\", \"correct\" true/false and/or\n"
    "\"score\" in [0,1], \"prediction\"; see docs/metrics.md). Instances are matched by id.\n"
    "Prints accuracy (or mean score) of both, negative/positive flip rates, inconsistency\n"
    "flips, score flip rates with regression/gain magnitudes, negative flip impact and\n"
    "backward trust compatibility, each with a 95% paired-bootstrap interval.\n"
    "  --json             print one JSON object instead of the table\n"
    "  --flips FILE       write the flipped instances as JSON lines (kind: negative,\n"
    "                     positive, inconsistent), with both models' predictions\n"
    "  --baseline PREDS   also compare OLD with PREDS (the ordinarily updated model) and\n"
    "                     report NEW minus PREDS: dNFR, relative dNFR %, dPFR, dacc\n"
    "                     (for a compatibility model NEW), resampled jointly\n"
    "  --bootstrap B      resamples (default 1000; 0 = no intervals)\n"
    "  --format F         the files' format: auto (default: from the content), muscle,\n"
    "                     lm-eval (--log_samples files), csv (id plus correct/score)\n"
    "  --metric NAME[,FILTER]  lm-eval: the per-sample metric that is the outcome\n"
    "                     (default acc for multiple choice, else exact_match; a metric\n"
    "                     other than acc/acc_norm/exact_match is a score in [0,1]) and\n"
    "                     the filter (default: the first line's)\n"
    "Also prints McNemar's exact test (two-sided, on the discordant pairs) of old vs new\n"
    "and, with --baseline, of new vs baseline (docs/metrics.md).\n"
    "  --seed N           bootstrap seed (default 42)\n";

typedef struct {
    const PredFile *old, *new, *base;
    const size_t *inew, *ibase;
    int discrete, continuous;
    CompatOptions o;
} Ctx;

static void fill(const Ctx *c, const PredFile *other, const size_t *idx, CompatInstance *x) {
    for (size_t i = 0; i < c->old->n; i++) {
        const PredRecord *a = &c->old->rec[i], *b = &other->rec[idx[i]];
        x[i].correct1 = c->discrete ? a->correct : -1;
        x[i].correct2 = c->discrete ? b->correct : -1;
        x[i].score1 = c->continuous ? a->score : NAN;
        x[i].score2 = c->continuous ? b->score : NAN;
        x[i].same_pred = (signed char)preds_same_prediction(a, b);
    }
}

/* ------------------------------------------------------------------ flips file */

static cJSON *side(const PredRecord *r) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "line", (double)r->line);
    if (r->correct >= 0) cJSON_AddBoolToObject(o, "correct", r->correct);
    if (!isnan(r->score)) cJSON_AddNumberToObject(o, "score", r->score);
    cJSON_AddItemToObject(o, "prediction", cJSON_Duplicate(r->prediction, 1));
    if (r->choice_logprobs) cJSON_AddItemToObject(o, "choice_logprobs", cJSON_Duplicate(r->choice_logprobs, 1));
    return o;
}

static int write_flips(const Ctx *c, const CompatInstance *x, const char *path, size_t counts[3]) {
    AtomicFile af;
    if (file_atomic_open(&af, path) != 0) return -1;
    counts[0] = counts[1] = counts[2] = 0;
    for (size_t i = 0; i < c->old->n; i++) {
        const char *kind = NULL;
        double d = x[i].score2 - x[i].score1;
        if (c->discrete) {
            if (x[i].correct1 && !x[i].correct2) kind = "negative";
            else if (!x[i].correct1 && x[i].correct2) kind = "positive";
            else if (!x[i].correct1 && !x[i].correct2 && x[i].same_pred == 0) kind = "inconsistent";
        } else {
            if (d < -c->o.tie_eps) kind = "negative";
            else if (d > c->o.tie_eps) kind = "positive";
        }
        if (!kind) continue;
        counts[kind[0] == 'n' ? 0 : kind[0] == 'p' ? 1 : 2]++;
        const PredRecord *a = &c->old->rec[i], *b = &c->new->rec[c->inew[i]];
        cJSON *o = cJSON_CreateObject();
        cJSON_AddItemToObject(o, "id", cJSON_Duplicate(a->id, 1));
        cJSON_AddStringToObject(o, "kind", kind);
        if (c->continuous) cJSON_AddNumberToObject(o, "delta", d);
        const cJSON *target = a->target ? a->target : b->target;
        if (target) cJSON_AddItemToObject(o, "target", cJSON_Duplicate(target, 1));
        cJSON_AddItemToObject(o, "old", side(a));
        cJSON_AddItemToObject(o, "new", side(b));
        char *s = cJSON_PrintUnformatted(o);
        cJSON_Delete(o);
        if (!s) {
            file_atomic_abort(&af);
            return err_set("%s: out of memory", path);
        }
        file_atomic_write(&af, s, strlen(s));
        file_atomic_write(&af, "\n", 1);
        free(s);
    }
    return file_atomic_commit(&af);
}

/* ------------------------------------------------------------------ output */


enum { PCT, NUM, PTS, RELPCT, DNUM };

static int g_bootstrap; /* resamples, for the table's wording */

/* one table row: name, value, interval, count */
static void row(const char *name, const CompatStat *s, int fmt) {
    char v[48], iv[64] = "", cnt[48] = "";
    double k = (fmt == PCT || fmt == PTS) ? 100 : 1;
    const char *unit = fmt == PCT || fmt == RELPCT ? "%" : fmt == PTS ? " pts" : "";
    const char *f = fmt == NUM ? "%.4f" : fmt == DNUM ? "%+.4f" : fmt == PCT ? "%.2f" : "%+.2f";
    if (isnan(s->value)) {
        snprintf(v, sizeof v, "n/a");
    } else {
        char num[24];
        snprintf(num, sizeof num, f, k * s->value);
        snprintf(v, sizeof v, "%s%s", num, unit);
    }
    if (!isnan(s->lo)) {
        char lo[24], hi[24];
        snprintf(lo, sizeof lo, f, k * s->lo);
        snprintf(hi, sizeof hi, f, k * s->hi);
        snprintf(iv, sizeof iv, "[%s, %s]", lo, hi);
    } else if (!isnan(s->value)) {
        /* B = 0, or the statistic is 0/0 on some resample (docs/metrics.md) */
        snprintf(iv, sizeof iv, "%s", g_bootstrap > 0 ? "n/a (0/0 in resamples)" : "-");
    }
    if (s->den >= 0 && !isnan(s->value)) snprintf(cnt, sizeof cnt, "%lld/%lld", s->num, s->den);
    char line[256];
    int n = snprintf(line, sizeof line, "%-36s %12s  %-22s %s", name, v, iv, cnt);
    while (n > 0 && line[n - 1] == ' ') line[--n] = 0;
    printf("%s\n", line);
}

static void report_table(const CompatReport *r, const char *newname) {
    char acc2[48], mean2[48];
    snprintf(acc2, sizeof acc2, "accuracy, %s", newname);
    snprintf(mean2, sizeof mean2, "mean score, %s", newname);
    if (r->discrete) {
        row("accuracy, old", &r->acc1, PCT);
        row(acc2, &r->acc2, PCT);
        row("negative flip rate NFR", &r->nfr, PCT);
        row("positive flip rate PFR", &r->pfr, PCT);
        row("inconsistency flip rate", &r->ifr, PCT);
        row("negative flip impact NFI", &r->nfi, PCT);
        row("backward trust compatibility BTC", &r->btc, PCT);
    }
    if (r->discrete && r->continuous) printf("\n");
    if (r->continuous) {
        row("mean score, old", &r->mean1, NUM);
        row(mean2, &r->mean2, NUM);
        row("score NFR (D < 0)", &r->cnfr, PCT);
        row("score PFR (D > 0)", &r->cpfr, PCT);
        row("regression magnitude m_r", &r->m_r, NUM);
        row("gain magnitude m_g", &r->m_g, NUM);
        row("score BTC (D >= 0 where old > 0)", &r->cbtc, PCT);
    }
}

static cJSON *mcnemar_json(const McNemar *m, int discrete) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "test", discrete ? "mcnemar-exact" : "sign-exact");
    cJSON_AddNumberToObject(o, "b", (double)m->b);
    cJSON_AddNumberToObject(o, "c", (double)m->c);
    cJSON_AddItemToObject(o, "p", isnan(m->p) ? cJSON_CreateNull() : cJSON_CreateNumber(m->p));
    return o;
}

static void mcnemar_row(const char *what, const McNemar *m, int discrete) {
    char name[96];
    snprintf(name, sizeof name, "%s, %s", discrete ? "McNemar" : "sign test", what);
    if (isnan(m->p)) printf("%-36s %12s\n", name, "n/a");
    else printf("%-36s %12.4g  %lld / %lld\n", name, m->p, m->b, m->c);
}

static int outcome_kinds(Ctx *c) {
    const PredFile *f[3] = {c->old, c->new, c->base};
    int nf = c->base ? 3 : 2;
    c->discrete = c->continuous = 1;
    for (int i = 0; i < nf; i++) {
        c->discrete &= f[i]->has_correct;
        c->continuous &= f[i]->has_score;
    }
    if (c->discrete || c->continuous) return 0;
    char what[3][64];
    for (int i = 0; i < nf; i++)
        snprintf(what[i], sizeof what[i], "%s", f[i]->has_correct && f[i]->has_score ? "'correct' and 'score'"
                                               : f[i]->has_correct ? "'correct'" : "'score'");
    if (nf == 2)
        return err_set("%s has %s, %s has %s: no outcome to compare", c->old->path, what[0], c->new->path, what[1]);
    return err_set("%s has %s, %s has %s, %s has %s: no outcome common to all", c->old->path, what[0], c->new->path, what[1],
                   c->base->path, what[2]);
}

int cmd_compare(int argc, char **argv) {
    const char *flips = NULL, *baseline = NULL;
    int json = 0, c;
    long lv;
    Ctx ctx = {0};
    compat_options_default(&ctx.o);
    static struct option opts[] = {{"json", 0, 0, 'j'},      {"flips", 1, 0, 'f'}, {"baseline", 1, 0, 'b'},
                                   {"bootstrap", 1, 0, 'B'}, {"seed", 1, 0, 's'},  {"help", 0, 0, 'h'},
                                   {"format", 1, 0, 'F'},    {"metric", 1, 0, 'M'}, {0, 0, 0, 0}};
    PredsReadOptions ro = {PREDS_FMT_AUTO, NULL};
    optind = 1;
    while ((c = getopt_long(argc, argv, "jf:b:B:s:h", opts, NULL)) != -1) {
        switch (c) {
        case 'j': json = 1; break;
        case 'f': flips = optarg; break;
        case 'b': baseline = optarg; break;
        case 'B': if (cli_parse_int("--bootstrap", optarg, 0, 100000, &lv)) return 2; ctx.o.bootstrap = (int)lv; break;
        case 's': if (cli_parse_int("--seed", optarg, 0, 0x7fffffffffffffffL, &lv)) return 2; ctx.o.seed = (uint64_t)lv; break;
        case 'h': fputs(compare_help, stdout); return 0;
        case 'F': if (preds_format_parse(optarg, &ro.format) != 0) return cli_usage_error("compare", "--%s", err_msg()); break;
        case 'M': ro.metric = optarg; break;
        default: return cli_usage_error("compare", "bad option");
        }
    }
    if (argc - optind != 2) return cli_usage_error("compare", "expected OLD_PREDS and NEW_PREDS");
    if (flips && (file_same(flips, argv[optind]) || file_same(flips, argv[optind + 1]) || file_same(flips, baseline)))
        return cli_usage_fail("compare", "--flips %s is an input of this run: give another file", flips);
    PredFile fo, fn, fb;
    memset(&fb, 0, sizeof fb);
    if (preds_read_opts(&fo, argv[optind], &ro) != 0) return cli_fail();
    if (preds_read_opts(&fn, argv[optind + 1], &ro) != 0) {
        preds_free(&fo);
        return cli_fail();
    }
    if (baseline && preds_read_opts(&fb, baseline, &ro) != 0) {
        preds_free(&fo);
        preds_free(&fn);
        return cli_fail();
    }
    ctx.old = &fo;
    ctx.new = &fn;
    ctx.base = baseline ? &fb : NULL;
    size_t *inew = NULL, *ibase = NULL;
    CompatInstance *x = NULL, *xb = NULL;
    CompatDelta d;
    CompatReport *r = &d.cand;
    size_t counts[3] = {0, 0, 0};
    int rc = -1;
    if (outcome_kinds(&ctx) != 0 || preds_match(&fo, &fn, &inew) != 0) goto done;
    if (baseline && preds_match(&fo, &fb, &ibase) != 0) goto done;
    ctx.inew = inew;
    ctx.ibase = ibase;
    x = calloc(fo.n, sizeof *x);
    xb = calloc(fo.n, sizeof *xb);
    if (!x || !xb) {
        err_set("out of memory for %zu instances", fo.n);
        goto done;
    }
    fill(&ctx, &fn, inew, x);
    if (baseline) {
        fill(&ctx, &fb, ibase, xb);
        if (compat_delta(xb, x, fo.n, &ctx.o, &d) != 0) goto done;
    } else if (compat_compute(x, fo.n, &ctx.o, r) != 0) {
        goto done;
    }
    if (flips && write_flips(&ctx, x, flips, counts) != 0) goto done;
    McNemar mc_new = mcnemar_instances(x, fo.n, ctx.o.tie_eps), mc_vs_base = {0, 0, NAN};
    if (baseline) {
        /* new vs baseline: the same instances, first = baseline (M2), second = new */
        for (size_t i = 0; i < fo.n; i++) {
            xb[i].correct1 = xb[i].correct2;
            xb[i].correct2 = x[i].correct2;
            xb[i].score1 = xb[i].score2;
            xb[i].score2 = x[i].score2;
        }
        mc_vs_base = mcnemar_instances(xb, fo.n, ctx.o.tie_eps);
    }
    rc = 0;
    if (json) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "old", fo.path);
        cJSON_AddStringToObject(o, "new", fn.path);
        if (baseline) cJSON_AddStringToObject(o, "baseline", fb.path);
        cJSON_AddNumberToObject(o, "n", (double)fo.n);
        cJSON_AddNumberToObject(o, "bootstrap", ctx.o.bootstrap);
        cJSON_AddNumberToObject(o, "seed", (double)ctx.o.seed);
        cJSON_AddNumberToObject(o, "level", ctx.o.level);
        cJSON_AddNumberToObject(o, "tie_eps", ctx.o.tie_eps);
        cJSON_AddBoolToObject(o, "discrete", ctx.discrete);
        cJSON_AddBoolToObject(o, "continuous", ctx.continuous);
        cJSON_AddStringToObject(o, "format", fo.format);
        if (fo.metric) cJSON_AddStringToObject(o, "metric", fo.metric);
        compat_report_json_add(o, r);
        cJSON_AddItemToObject(o, "mcnemar", mcnemar_json(&mc_new, ctx.discrete));
        if (baseline) cJSON_AddItemToObject(o, "mcnemar_vs_baseline", mcnemar_json(&mc_vs_base, ctx.discrete));
        if (baseline) {
            cJSON *b = cJSON_CreateObject(), *dd = cJSON_CreateObject();
            compat_report_json_add(b, &d.base);
            cJSON_AddItemToObject(o, "baseline_metrics", b);
            compat_delta_json_add(dd, &d);
            cJSON_AddItemToObject(o, "delta", dd);
        }
        if (flips) {
            cJSON *fl = cJSON_CreateObject();
            cJSON_AddStringToObject(fl, "file", flips);
            cJSON_AddNumberToObject(fl, "negative", (double)counts[0]);
            cJSON_AddNumberToObject(fl, "positive", (double)counts[1]);
            cJSON_AddNumberToObject(fl, "inconsistent", (double)counts[2]);
            cJSON_AddItemToObject(o, "flips", fl);
        }
        char *s = cJSON_PrintUnformatted(o);
        cJSON_Delete(o);
        if (!s) {
            err_set("out of memory");
            rc = -1;
            goto done;
        }
        printf("%s\n", s);
        free(s);
    } else {
        g_bootstrap = ctx.o.bootstrap;
        printf("old       %s\nnew       %s\n", fo.path, fn.path);
        if (baseline) printf("baseline  %s\n", fb.path);
        if (ctx.o.bootstrap > 0)
            printf("%zu instances; %g%% intervals: paired bootstrap, %d resamples, seed %llu\n\n", fo.n, 100 * ctx.o.level,
                   ctx.o.bootstrap, (unsigned long long)ctx.o.seed);
        else
            printf("%zu instances; no intervals (--bootstrap 0)\n\n", fo.n);
        printf("%-36s %12s  %-22s %s\n", "old -> new", "value", "95% interval", "count");
        report_table(r, "new");
        if (baseline) {
            printf("\n%-36s %12s  %-22s %s\n", "old -> baseline", "value", "95% interval", "count");
            report_table(&d.base, "baseline");
            printf("\n%-36s %12s  %s\n", "new - baseline (paired)", "change", "95% interval");
            if (d.discrete) {
                row("dNFR", &d.dnfr, PTS);
                row("relative dNFR", &d.rel_dnfr, RELPCT);
                row("dPFR", &d.dpfr, PTS);
                row("dacc", &d.dacc, PTS);
            }
            if (d.continuous) {
                row("score dNFR", &d.dcnfr, PTS);
                row("relative score dNFR", &d.rel_dcnfr, RELPCT);
                row("dmean score", &d.dmean, DNUM);
            }
        }
        printf("\n%-36s %12s  %s\n", "paired exact test, two-sided", "p",
               ctx.discrete ? "discordant: first right only / second right only" : "score down / score up");
        mcnemar_row("old vs new", &mc_new, ctx.discrete);
        if (baseline) mcnemar_row("baseline vs new", &mc_vs_base, ctx.discrete);
        if (flips)
            printf("\nflips written to %s: %zu negative, %zu positive, %zu inconsistent\n", flips, counts[0], counts[1],
                   counts[2]);
    }
done:
    free(x);
    free(xb);
    free(inew);
    free(ibase);
    preds_free(&fo);
    preds_free(&fn);
    if (baseline) preds_free(&fb);
    return rc == 0 ? 0 : cli_fail();
}
