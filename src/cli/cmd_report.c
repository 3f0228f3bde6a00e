/* cli/cmd_report.c - `muscle report MANIFEST.json --out DIR`: M1, M2 and the compatibility
 * methods of an update, over seeds, as report.json, report.md and report.html. */
#include "cli.h"
#include "core/error.h"
#include "core/lock.h"
#include "report/report.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *report_help =
    "usage: muscle report MANIFEST.json --out DIR [options]\n"
    "Compares the old task model M1, the new one M2 and each compatibility method on every\n"
    "task of the manifest (prediction files of `muscle eval`, one per seed; docs/report.md):\n"
    "accuracy (mean ROUGE-1 for generation), NFR, PFR, relative NFR change and accuracy\n"
    "change against M2, means over the seeds with 95% paired-bootstrap intervals, the noise\n"
    "floor between M2 seeds, and the chosen method (the lowest NFR among the methods whose\n"
    "accuracy is at most --max-acc-drop below M2's). Writes DIR/report.json, report.md and\n"
    "report.html (self-contained) and prints the results tables.\n"
    "  --out DIR            where to write the report (created if missing)\n"
    "  --json               print report.json instead of the tables\n"
    "  --bootstrap B        resamples (default 1000; 0 = no intervals)\n"
    "  --seed N             bootstrap seed (default 42)\n"
    "  --max-acc-drop X     fraction (0.005) or percent (0.5%) (default 0.005)\n"
    "  --quiet              no progress messages (the report prints none; accepted)\n";

int cmd_report(int argc, char **argv) {
    const char *out = NULL;
    int json = 0, c, bootstrap = -1;
    long lv;
    long long seed = -1;
    double drop = -1;
    static struct option opts[] = {{"out", 1, 0, 'o'},  {"json", 0, 0, 'j'}, {"bootstrap", 1, 0, 'B'},
                                   {"seed", 1, 0, 's'}, {"max-acc-drop", 1, 0, 'd'}, {"help", 0, 0, 'h'},
                                   {"quiet", 0, 0, 'q'}, {0, 0, 0, 0}};
    optind = 1;
    while ((c = getopt_long(argc, argv, "o:jB:s:d:hq", opts, NULL)) != -1) {
        switch (c) {
        case 'o': out = optarg; break;
        case 'j': json = 1; break;
        case 'q': break; /* the report shows no progress: accepted as every long command takes it */
        case 'B': if (cli_parse_int("--bootstrap", optarg, 0, 100000, &lv)) return 2; bootstrap = (int)lv; break;
        case 's': if (cli_parse_int("--seed", optarg, 0, 0x7fffffffffffffffL, &lv)) return 2; seed = lv; break;
        case 'd':
            if (report_parse_fraction(optarg, &drop) != 0 || drop < 0) {
                fprintf(stderr, "muscle: error: --max-acc-drop '%s': expected a fraction (0.005) or a percentage (0.5%%), "
                                "0 or more\n", optarg);
                return 2;
            }
            break;
        case 'h': fputs(report_help, stdout); return 0;
        default: return cli_usage_error("report", "bad option");
        }
    }
    if (argc - optind != 1) return cli_usage_error("report", "expected one MANIFEST.json");
    if (!out) return cli_usage_error("report", "--out DIR is required");
    DirLock lk = {-1, NULL}; /* one run per folder (core/lock.h); taken once the inputs are read: no folder on an error */
    ReportInput in;
    if (report_load_manifest(&in, argv[optind]) != 0) return cli_fail();
    if (bootstrap >= 0) in.bootstrap = bootstrap;
    if (seed >= 0) in.seed = (uint64_t)seed;
    if (drop >= 0) in.max_acc_drop = drop;
    Report *r = NULL;
    char *text = NULL;
    int rc = -1;
    if (report_compute(&in, &r) != 0 || dir_lock_acquire(&lk, out, "muscle report", DIR_LOCK_PRIVATE) != 0 || report_write(out, r) != 0) goto done;
    text = report_render(r, json ? REPORT_JSON : REPORT_TEXT);
    if (!text) goto done;
    fputs(text, stdout);
    if (!json) printf("\nwritten: %s/report.json, report.md, report.html, flips.csv\n", out);
    rc = 0;
done:
    free(text);
    report_free(r);
    report_input_free(&in);
    dir_lock_release(&lk);
    return rc == 0 ? 0 : cli_fail();
}
