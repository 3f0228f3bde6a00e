/* cli/cmd_gate.c - `muscle gate --max-nfr X REPORT.json`: may this update ship? For a release
 * pipeline: exit 0 when every task passes, 1 when one fails, 2 on a usage error or a bad report. */
#include "cli.h"
#include "core/error.h"
#include "core/file.h"
#include "core/utf8.h"
#include "io/json.h"
#include "report/report.h"

#include <cJSON.h>
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *gate_help =
    "usage: muscle gate --max-nfr X [--min-acc-gain Y] [--max-p P] [--task NAME] [--method NAME] REPORT.json\n"
    "Checks a report of `muscle report`: for every task (or the one named), the chosen method\n"
    "(or the one named; \"M2\" names the plain new model; a task without methods checks M2)\n"
    "must have NFR <= X (score NFR for generation tasks) and, when --min-acc-gain is given, an\n"
    "accuracy (mean score) gain over M1 of at least Y. X and Y are fractions (0.05) or percents\n"
    "(5%); Y may be negative. Values are the report's means over seeds.\n"
    "Prints one line per task: PASS or FAIL, the numbers and why.\n"
    "Exit status: 0 every task passes, 1 a task fails, 2 usage error or unreadable report.\n"
    "  --max-nfr X          highest negative flip rate allowed (required)\n"
    "  --min-acc-gain Y     lowest accuracy change against M1 allowed (default: not checked)\n"
    "  --task NAME          check this task only\n"
    "  --method NAME        check this model instead of each task's chosen method\n"
    "  --max-p P            the change against M1 must also be a significant gain: the\n"
    "                       model right more often than M1 on the discordant instances\n"
    "                       (score up more often than down, for generation tasks) with\n"
    "                       McNemar's exact test (sign test) p <= P, on seed 1\n";

/* Prints "muscle: error: ..." and returns 2 (a bad report is not a failing gate). The line is
 * valid UTF-8 whatever the path holds: a character cut by the message buffer's end is dropped,
 * invalid bytes become U+FFFD. */
static int gate_error(void) {
    const char *m = err_msg();
    size_t n = strlen(m);
    n -= utf8_incomplete_tail(m, n);
    char *clean = malloc(3 * n + 1);
    if (!clean) {
        fprintf(stderr, "muscle: error: %.*s\n", (int)utf8_valid_prefix(m, n), m);
        return 2;
    }
    size_t k = utf8_sanitize(m, n, clean);
    fprintf(stderr, "muscle: error: %.*s\n", (int)k, clean);
    free(clean);
    return 2;
}

/* The JSON kind of v for messages ("missing" when absent). */
static const char *json_kind(const cJSON *v) { return v ? io_json_kind(v) : "missing"; }

/* Longest name gate prints (task, model, role, chosen, --task, --method), in bytes. */
#define GATE_NAME_MAX REPORT_NAME_MAX /* report.h: the manifest refuses longer names too */

/* Why s (len bytes) cannot be printed as a name, or NULL when it can: it must be valid UTF-8
 * (core/utf8.h), at most GATE_NAME_MAX bytes and free of characters that act on a terminal or
 * reorder a line: C0 controls and DEL (ESC, BEL, CR could forge a verdict line), C1 controls
 * (U+0080..U+009F: 0x9B is a CSI on some terminals) and the bidirectional overrides and
 * isolates (U+202A..U+202E, U+2066..U+2069). why has room for 96 bytes. */
static const char *gate_name_problem(const char *s, size_t len, char *why, size_t cap) {
    if (len == 0) return "an empty string";
    if (len > GATE_NAME_MAX) {
        snprintf(why, cap, "%zu bytes (at most %d)", len, GATE_NAME_MAX);
        return why;
    }
    size_t ok = utf8_valid_prefix(s, len);
    if (ok != len) {
        snprintf(why, cap, "invalid UTF-8 at byte %zu", ok + 1);
        return why;
    }
    for (size_t i = 0; i < len;) {
        const unsigned char *u = (const unsigned char *)s + i;
        size_t n = utf8_char_len(u, len - i);
        unsigned cp = n == 1 ? u[0] : n == 2 ? (u[0] & 0x1fu) << 6 | (u[1] & 0x3fu)
                    : n == 3 ? (u[0] & 0x0fu) << 12 | (u[1] & 0x3fu) << 6 | (u[2] & 0x3fu) : 0x10000;
        if (cp < 0x20 || (cp >= 0x7f && cp <= 0x9f) || (cp >= 0x202a && cp <= 0x202e) || (cp >= 0x2066 && cp <= 0x2069)) {
            snprintf(why, cap, "a control character (U+%04X) at byte %zu", cp, i + 1);
            return why;
        }
        i += n;
    }
    return NULL;
}

/* v as a name gate may print (see gate_name_problem); else a message naming the file, where
 * and the field. */
static int gate_name(const char *file, const char *where, const char *field, const cJSON *v, const char **out) {
    char why[96];
    if (!cJSON_IsString(v))
        return err_set("%s: %s: field '%s': expected a string, got %s", file, where, field, json_kind(v));
    const char *p = gate_name_problem(v->valuestring, strlen(v->valuestring), why, sizeof why);
    if (p) return err_set("%s: %s: field '%s': expected a printable UTF-8 name, got %s", file, where, field, p);
    *out = v->valuestring;
    return 0;
}

/* o.stats.<key>.value as a number; errors name the file, the task, the model and the field. */
static int stat_value(const char *file, const char *where, const cJSON *model, const char *key, double *out) {
    const cJSON *stats = cJSON_GetObjectItemCaseSensitive(model, "stats");
    const cJSON *st = cJSON_GetObjectItemCaseSensitive(stats, key);
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(st, "value");
    if (!cJSON_IsNumber(v))
        return err_set("%s: %s: field 'stats.%s.value': expected a number, got %s", file, where, key, json_kind(v));
    if (!isfinite(v->valuedouble))
        return err_set("%s: %s: field 'stats.%s.value': expected a finite number, got %g", file, where, key, v->valuedouble);
    if (strstr(key, "nfr") && !(v->valuedouble >= 0 && v->valuedouble <= 1)) /* a rate: a negative one would pass any gate */
        return err_set("%s: %s: field 'stats.%s.value': expected a rate in [0, 1], got %g", file, where, key, v->valuedouble);
    *out = v->valuedouble;
    return 0;
}

typedef struct {
    double max_nfr, min_gain, max_p;
    int check_gain, check_p;
    const char *method;
} GateOpts;

/* Checks one task: 1 pass, 0 fail, -1 bad report (or no such --method). Every string it
 * prints or matches is checked by gate_name first. */
static int gate_task(FILE *out, const char *file, int ti, const cJSON *t, const GateOpts *g) {
    char where[2 * GATE_NAME_MAX + 64];
    const char *tn, *mn, *role;
    snprintf(where, sizeof where, "tasks[%d]", ti);
    if (gate_name(file, where, "name", cJSON_GetObjectItemCaseSensitive(t, "name"), &tn) != 0) return -1;
    snprintf(where, sizeof where, "tasks[%d] ('%s')", ti, tn);
    const cJSON *kind = cJSON_GetObjectItemCaseSensitive(t, "kind");
    if (!cJSON_IsString(kind) || (strcmp(kind->valuestring, "mc") && strcmp(kind->valuestring, "gen")))
        return err_set("%s: %s: field 'kind': expected \"mc\" or \"gen\", got %s", file, where,
                       cJSON_IsString(kind) ? "another string" : json_kind(kind));
    int gen = !strcmp(kind->valuestring, "gen");
    const cJSON *models = cJSON_GetObjectItemCaseSensitive(t, "models");
    if (!cJSON_IsArray(models) || cJSON_GetArraySize(models) == 0)
        return err_set("%s: %s: field 'models': expected a non-empty array, got %s", file, where,
                       cJSON_IsArray(models) ? "an empty array" : json_kind(models));
    int mi = 0;
    for (const cJSON *m = models->child; m; m = m->next, mi++) {
        char mw[sizeof where + 32];
        snprintf(mw, sizeof mw, "%s: models[%d]", where, mi);
        if (!cJSON_IsObject(m)) return err_set("%s: %s: expected an object, got %s", file, mw, json_kind(m));
        if (gate_name(file, mw, "name", cJSON_GetObjectItemCaseSensitive(m, "name"), &mn) != 0 ||
            gate_name(file, mw, "role", cJSON_GetObjectItemCaseSensitive(m, "role"), &role) != 0)
            return -1;
    }
    const cJSON *chosen = cJSON_GetObjectItemCaseSensitive(t, "chosen");
    if (!cJSON_IsNull(chosen) && gate_name(file, where, "chosen", chosen, &mn) != 0) {
        if (!cJSON_IsString(chosen))
            err_set("%s: %s: field 'chosen': expected a model name or null, got %s", file, where, json_kind(chosen));
        return -1;
    }
    /* which model */
    const char *want = g->method;
    const cJSON *sel = NULL;
    if (!want && cJSON_IsString(chosen)) want = chosen->valuestring;
    if (!want && cJSON_GetArraySize(models) > 1) {
        fprintf(out, "FAIL  %s: no chosen method: no method's %s is within the report's max_acc_drop of M2's (name one with "
               "--method)\n", tn, gen ? "mean score" : "accuracy");
        return 0;
    }
    mi = 0;
    for (const cJSON *m = models->child; m; m = m->next, mi++) {
        const char *mn = cJSON_GetObjectItemCaseSensitive(m, "name")->valuestring;
        const char *role = cJSON_GetObjectItemCaseSensitive(m, "role")->valuestring;
        if (want ? !strcmp(mn, want) || (!strcmp(want, "M2") && !strcmp(role, "new")) : !strcmp(role, "new")) {
            sel = m;
            break;
        }
    }
    if (!sel) {
        char list[512] = "";
        size_t used = 0;
        for (const cJSON *m = models->child; m && used < sizeof list; m = m->next)
            used += (size_t)snprintf(list + used, sizeof list - used, "%s%s", m == models->child ? "" : ", ",
                                     cJSON_GetObjectItemCaseSensitive(m, "name")->valuestring);
        list[utf8_cut(list, strlen(list), sizeof list - 1)] = 0; /* a cut list ends on a character */
        if (g->method) return err_set("%s: task '%s' has no model '%s' (models: %s)", file, tn, want, list);
        if (want) return err_set("%s: %s: field 'chosen': \"%s\" is not one of the models (%s)", file, where, want, list);
        return err_set("%s: %s: field 'models': no model with role \"new\"", file, where);
    }
    const char *mname = cJSON_GetObjectItemCaseSensitive(sel, "name")->valuestring;
    snprintf(where, sizeof where, "tasks[%d] ('%s'): models[%d] ('%s')", ti, tn, mi, mname);
    double nfr = NAN, acc = NAN, old = NAN;
    if (stat_value(file, where, sel, gen ? "score_nfr" : "nfr", &nfr) != 0 ||
        stat_value(file, where, sel, gen ? "score_new" : "acc_new", &acc) != 0 ||
        stat_value(file, where, sel, gen ? "score_old" : "acc_old", &old) != 0)
        return -1;
    double gain = acc - old, p = NAN;
    long long mb = 0, mc = 0;
    if (g->check_p) {
        const cJSON *s1 = cJSON_GetObjectItemCaseSensitive(sel, "seed1");
        const cJSON *t = cJSON_GetObjectItemCaseSensitive(s1, "mcnemar_vs_m1");
        const cJSON *pv = cJSON_GetObjectItemCaseSensitive(t, "p"), *bv = cJSON_GetObjectItemCaseSensitive(t, "b"),
                    *cv = cJSON_GetObjectItemCaseSensitive(t, "c");
        if (!cJSON_IsNumber(pv) || !cJSON_IsNumber(bv) || !cJSON_IsNumber(cv))
            return err_set("%s: %s: field 'seed1.mcnemar_vs_m1': expected {\"b\", \"c\", \"p\"} numbers (a report of an "
                           "older muscle? write it again)", file, where);
        p = pv->valuedouble;
        mb = (long long)bv->valuedouble;
        mc = (long long)cv->valuedouble;
    }
    int nfr_ok = nfr <= g->max_nfr + 1e-12, gain_ok = !g->check_gain || gain >= g->min_gain - 1e-12;
    int p_ok = !g->check_p || (mc > mb && p <= g->max_p);
    const char *nfr_name = gen ? "score NFR" : "NFR", *gain_name = gen ? "mean score gain" : "accuracy gain";
    fprintf(out, "%s  %s: %s %s %.2f%% %s %.2f%%", nfr_ok && gain_ok && p_ok ? "PASS" : "FAIL", tn, mname, nfr_name, 100 * nfr,
           nfr_ok ? "<=" : ">", 100 * g->max_nfr);
    fprintf(out, "; %s over M1 %+.2f pts", gain_name, 100 * gain);
    if (g->check_gain) fprintf(out, " %s %+.2f pts", gain_ok ? ">=" : "<", 100 * g->min_gain);
    if (g->check_p)
        fprintf(out, "; %s p %.4g (%lld/%lld discordant) %s %g", gen ? "sign test" : "McNemar", p, mb, mc,
                p_ok ? "<=" : mc > mb ? ">" : "and no gain, not <=", g->max_p);
    if (!nfr_ok || !gain_ok || !p_ok) {
        const char *why[3] = {nfr_ok ? NULL : "too many negative flips", gain_ok ? NULL : "gain too small",
                              p_ok ? NULL : "gain not significant"};
        int first = 1;
        fprintf(out, " (");
        for (int k = 0; k < 3; k++)
            if (why[k]) {
                fprintf(out, "%s%s", first ? "" : "; ", why[k]);
                first = 0;
            }
        fprintf(out, ")");
    }
    fprintf(out, "\n");
    return nfr_ok && gain_ok && p_ok;
}

int cmd_gate(int argc, char **argv) {
    GateOpts g = {0};
    const char *task = NULL;
    int c, have_max = 0;
    static struct option opts[] = {{"max-nfr", 1, 0, 'x'}, {"min-acc-gain", 1, 0, 'y'}, {"task", 1, 0, 't'},
                                   {"method", 1, 0, 'm'},  {"help", 0, 0, 'h'},         {"max-p", 1, 0, 'p'},
                                   {0, 0, 0, 0}};
    optind = 1;
    while ((c = getopt_long(argc, argv, "x:y:t:m:p:h", opts, NULL)) != -1) {
        switch (c) {
        case 'x':
            if (report_parse_fraction(optarg, &g.max_nfr) != 0 || g.max_nfr < 0) {
                fprintf(stderr, "muscle: error: --max-nfr '%s': expected a fraction (0.05) or a percentage (5%%), 0 or more\n",
                        optarg);
                return 2;
            }
            have_max = 1;
            break;
        case 'y':
            if (report_parse_fraction(optarg, &g.min_gain) != 0) {
                fprintf(stderr, "muscle: error: --min-acc-gain '%s': expected a fraction (0.01, -0.005) or a percentage "
                                "(1%%, -0.5%%)\n", optarg);
                return 2;
            }
            g.check_gain = 1;
            break;
        case 'p': {
            char *e;
            g.max_p = strtod(optarg, &e);
            if (!*optarg || *e || !(g.max_p >= 0 && g.max_p <= 1)) {
                fprintf(stderr, "muscle: error: --max-p '%s': expected a p-value in [0, 1] (e.g. 0.05)\n", optarg);
                return 2;
            }
            g.check_p = 1;
            break;
        }
        case 't':
        case 'm': {
            char why[96];
            const char *p = gate_name_problem(optarg, strlen(optarg), why, sizeof why);
            if (p) {
                fprintf(stderr, "muscle: error: --%s: expected a printable UTF-8 name, got %s\n", c == 't' ? "task" : "method", p);
                return 2;
            }
            *(c == 't' ? &task : &g.method) = optarg;
            break;
        }
        case 'h': fputs(gate_help, stdout); return 0;
        default: return cli_usage_error("gate", "bad option");
        }
    }
    if (argc - optind != 1) return cli_usage_error("gate", "expected one REPORT.json");
    if (!have_max) return cli_usage_error("gate", "--max-nfr X is required");
    const char *file = argv[optind];
    size_t size;
    char *text = file_read_all(file, &size, 1u << 30);
    if (!text) return gate_error();
    if (io_json_refuse_nul(text, size, file) != 0) { /* "muscle\u0000evil" must not match --method muscle */
        free(text);
        return gate_error();
    }
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(text, size, &end, 0);
    if (!root) {
        const char *ep = cJSON_GetErrorPtr();
        size_t line = 1;
        if (ep && ep >= text && ep <= text + size)
            for (const char *p = text; p < ep; p++) line += *p == '\n';
        free(text);
        err_set("%s:%zu: not valid JSON (a report.json of `muscle report` was expected)", file, line);
        return gate_error();
    }
    free(text);
    int rc = 2, failed = 0, checked = 0;
    /* the verdict lines are printed only when the whole report could be checked */
    char *lines = NULL;
    size_t lines_len = 0;
    FILE *out = open_memstream(&lines, &lines_len);
    if (!out) {
        cJSON_Delete(root);
        err_set("out of memory");
        return gate_error();
    }
    const cJSON *fmt = cJSON_GetObjectItemCaseSensitive(root, "format"), *ver = cJSON_GetObjectItemCaseSensitive(root, "version");
    const cJSON *tasks = cJSON_GetObjectItemCaseSensitive(root, "tasks");
    if (!cJSON_IsString(fmt) || strcmp(fmt->valuestring, "muscle-report")) {
        err_set("%s: field 'format': expected \"muscle-report\", got %s (not a report.json of `muscle report`)", file,
                cJSON_IsString(fmt) ? "another string" : json_kind(fmt));
        goto done;
    }
    if (!cJSON_IsNumber(ver) || ver->valuedouble != 1) {
        err_set("%s: field 'version': expected 1, got %s", file, cJSON_IsNumber(ver) ? "another number" : json_kind(ver));
        goto done;
    }
    if (!cJSON_IsArray(tasks) || cJSON_GetArraySize(tasks) == 0) {
        err_set("%s: field 'tasks': expected a non-empty array, got %s", file, cJSON_IsArray(tasks) ? "an empty array" : json_kind(tasks));
        goto done;
    }
    int ti = 0;
    for (const cJSON *t = tasks->child; t; t = t->next, ti++) {
        if (!cJSON_IsObject(t)) {
            err_set("%s: tasks[%d]: expected an object, got %s", file, ti, json_kind(t));
            goto done;
        }
        const cJSON *name = cJSON_GetObjectItemCaseSensitive(t, "name");
        if (task && !(cJSON_IsString(name) && !strcmp(name->valuestring, task))) continue;
        int ok = gate_task(out, file, ti, t, &g);
        if (ok < 0) goto done;
        failed += !ok;
        checked++;
    }
    if (task && !checked) {
        err_set("%s: no task named '%s'", file, task);
        goto done;
    }
    rc = failed ? 1 : 0;
done:
    cJSON_Delete(root);
    fclose(out);
    if (rc != 2) fputs(lines, stdout);
    free(lines);
    return rc == 2 ? gate_error() : rc;
}
