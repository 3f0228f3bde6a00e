/* tests/report/test_report.c - the report module: manifests (and their errors, which name the
 * file and the field), the statistics on the hand-written prediction files of
 * tests/fixtures/report/ against hand-computed values, the chosen method, HTML escaping of
 * untrusted predictions and names, and writing the three files. */
#include "testutil.h"
#include "core/error.h"
#include "report/report.h"

#include <cJSON.h>
#include <limits.h>
#include <math.h>
#include <ftw.h>
#include <sys/stat.h>

#define FIX "tests/fixtures/report"
#define CLOSE(a, b) assert_true(fabs((a) - (b)) <= 1e-12)

/* ------------------------------------------------------------------ helpers */

/* Walks "tasks/0/models/1/stats/nfr/value" through objects and arrays. */
static const cJSON *jget(const cJSON *root, const char *path) {
    char buf[256];
    snprintf(buf, sizeof buf, "%s", path);
    const cJSON *o = root;
    for (char *tok = strtok(buf, "/"); tok && o; tok = strtok(NULL, "/")) {
        if (cJSON_IsArray(o)) o = cJSON_GetArrayItem(o, atoi(tok));
        else o = cJSON_GetObjectItemCaseSensitive(o, tok);
    }
    if (!o) print_error("no JSON value at %s\n", path);
    return o;
}

static double jnum(const cJSON *root, const char *path) {
    const cJSON *v = jget(root, path);
    assert_non_null(v);
    assert_true(cJSON_IsNumber(v));
    return v->valuedouble;
}

static const char *jstr(const cJSON *root, const char *path) {
    const cJSON *v = jget(root, path);
    assert_non_null(v);
    assert_true(cJSON_IsString(v));
    return v->valuestring;
}

static int rm_one(const char *p, const struct stat *st, int flag, struct FTW *ftw) {
    (void)st, (void)flag, (void)ftw;
    return remove(p);
}

/* Removes a test's temporary folder. */
static void rm_tree(const char *dir) { nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS); }

static void write_file(const char *path, const char *text) {
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

/* Loads the fixture manifest and computes it (B resamples); returns report.json parsed. */
static cJSON *fixture_json(int B, double max_drop) {
    ReportInput in;
    assert_int_equal(report_load_manifest(&in, FIX "/manifest.json"), 0);
    in.bootstrap = B;
    in.max_acc_drop = max_drop;
    Report *r;
    if (report_compute(&in, &r) != 0) fail_msg("%s", err_msg());
    char *s = report_render(r, REPORT_JSON);
    assert_non_null(s);
    cJSON *j = cJSON_Parse(s);
    assert_non_null(j);
    free(s);
    report_free(r);
    report_input_free(&in);
    return j;
}

/* ------------------------------------------------------------------ manifest */

static void test_manifest_ok(void **state) {
    (void)state;
    ReportInput in;
    assert_int_equal(report_load_manifest(&in, FIX "/manifest.json"), 0);
    assert_string_equal(in.title, "Fixture update <v1 -> v2> & friends");
    assert_int_equal(in.n_tasks, 2);
    assert_int_equal(in.bootstrap, 1000);
    assert_int_equal(in.seed, 42);
    CLOSE(in.max_acc_drop, 0.005);
    ReportTask *t = &in.tasks[0];
    assert_string_equal(t->name, "choice");
    assert_string_equal(t->kind, "mc");
    assert_string_equal(t->old_preds, FIX "/m1.jsonl"); /* relative to the manifest's folder */
    assert_string_equal(t->new_model.name, "M2");
    assert_int_equal(t->new_model.n_seeds, 2);
    assert_string_equal(t->new_model.preds[1], FIX "/m2-s2.jsonl");
    assert_int_equal(t->n_methods, 2);
    assert_string_equal(t->methods[0].name, "muscle");
    assert_string_equal(t->methods[0].settings, "--compat student-wrong --ce-weight 0.5");
    t = &in.tasks[1];
    assert_string_equal(t->new_model.name, "M2"); /* the default name */
    assert_string_equal(t->new_model.settings, "");
    assert_int_equal(t->methods[0].n_seeds, 1);
    report_input_free(&in);
}

static void test_manifest_errors(void **state) {
    (void)state;
    const char *dir = test_tmpdir();
    char path[512];
    snprintf(path, sizeof path, "%s/manifest.json", dir);
    static const struct {
        const char *json, *want;
    } cases[] = {
        {"{\"title\": \"x\"}", "manifest.json: missing field 'tasks'"},
        {"{\"tasks\": []}", "manifest.json: tasks: expected a non-empty array of tasks, got an empty array"},
        {"{\"tasks\": [{\"name\": \"t\", \"kind\": \"mc\", \"old\": \"a\",\n \"new\": {\"preds\": [\"b\"]},\n \"method\": []}]}",
         "manifest.json: tasks[0]: unknown field 'method' (known: name, kind, old, new, methods, format, metric, mixture)"},
        {"{\"tasks\": [{\"name\": \"t\", \"kind\": \"cls\", \"old\": \"a\", \"new\": {\"preds\": [\"b\"]}}]}",
         "manifest.json: tasks[0].kind: expected \"mc\""},
        {"{\"tasks\": [{\"name\": \"t\", \"kind\": \"mc\", \"new\": {\"preds\": [\"b\"]}}]}",
         "manifest.json: tasks[0]: missing field 'old'"},
        {"{\"tasks\": [{\"name\": \"t\", \"kind\": \"mc\", \"old\": 3, \"new\": {\"preds\": [\"b\"]}}]}",
         "manifest.json: tasks[0].old: expected a string (a file path), got a number"},
        {"{\"tasks\": [{\"name\": \"t\", \"kind\": \"mc\", \"old\": \"a\", \"new\": {\"preds\": []}}]}",
         "manifest.json: tasks[0].new.preds: expected a non-empty array of file paths (one per seed), got an empty array"},
        {"{\"tasks\": [{\"name\": \"t\", \"kind\": \"mc\", \"old\": \"a\", \"new\": {\"preds\": [\"b\", \"c\"]},"
         " \"methods\": [{\"name\": \"m\", \"preds\": [\"d\", 7]}]}]}",
         "manifest.json: tasks[0].methods[0].preds[1]: expected a string (a file path), got a number"},
        {"{\"tasks\": [{\"name\": \"t\", \"kind\": \"mc\", \"old\": \"a\", \"new\": {\"preds\": [\"b\"]},"
         " \"methods\": [{\"name\": \"m\", \"preds\": [\"d\", \"e\"]}]}]}",
         "manifest.json: tasks[0].methods[0].preds: 2 files, but the new model has 1"},
        {"{\"tasks\": [{\"name\": \"t\", \"kind\": \"mc\", \"old\": \"a\", \"new\": {\"preds\": [\"b\"]},"
         " \"methods\": [{\"name\": \"m\", \"preds\": [\"d\"]}, {\"name\": \"m\", \"preds\": [\"e\"]}]}]}",
         "manifest.json: tasks[0].methods[1].name: \"m\" is also the name of methods[0]"},
        {"{\"tasks\": [{\"name\": \"t\", \"kind\": \"mc\", \"old\": \"a\", \"new\": {\"preds\": [\"b\"]},"
         " \"methods\": [{\"preds\": [\"d\"]}]}]}",
         "manifest.json: tasks[0].methods[0]: missing field 'name'"},
        {"{\"tasks\": [{\"name\": \"t\", \"kind\": \"mc\", \"old\": \"a\", \"new\": {\"preds\": [\"b\"]},"
         " \"methods\": [{\"name\": \"M2\", \"preds\": [\"d\"]}]}]}",
         "manifest.json: tasks[0].methods[0].name: \"M2\" names the new model"},
        {"{\"tasks\": [{\"name\": \"t\", \"kind\": \"mc\", \"old\": \"a\", \"new\": {\"preds\": [\"b\"]}},"
         " {\"name\": \"t\", \"kind\": \"gen\", \"old\": \"a\", \"new\": {\"preds\": [\"b\"]}}]}",
         "manifest.json: tasks[1].name: \"t\" is also the name of tasks[0]"},
        {"{\"tasks\": [\n  {\"name\": \"t\",,}\n]}", "manifest.json:2:17: not valid JSON"},
        {"[1, 2]", "manifest.json: expected a JSON object"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        write_file(path, cases[i].json);
        ReportInput in;
        err_clear();
        int rc = report_load_manifest(&in, path);
        if (rc == 0 || !strstr(err_msg(), cases[i].want)) {
            print_error("case %zu: rc %d, message '%s', expected '%s'\n", i, rc, err_msg(), cases[i].want);
            fail();
        }
        assert_true(strstr(err_msg(), path) == err_msg()); /* the message starts with the file */
    }
    snprintf(path, sizeof path, "%s/missing.json", dir);
    ReportInput in;
    assert_int_equal(report_load_manifest(&in, path), -1);
    assert_non_null(strstr(err_msg(), "missing.json: cannot open"));
    rm_tree(dir);
}

/* Errors found while reading the prediction files name the file, the task, the model, the seed. */
static void test_prediction_errors(void **state) {
    (void)state;
    const char *dir = test_tmpdir();
    char fix[PATH_MAX], path[600], json[40000];
    assert_non_null(realpath(FIX, fix));
    snprintf(path, sizeof path, "%s/manifest.json", dir);
    static const struct {
        const char *task, *want;
    } cases[] = {
        /* a generation file in a multiple-choice task */
        {"{\"name\": \"t\", \"kind\": \"mc\", \"old\": \"%s/m1.jsonl\", \"new\": {\"preds\": [\"%s/sum-m2-s1.jsonl\"]}}",
         "sum-m2-s1.jsonl: task 't' is kind \"mc\" but the file has no field 'correct'"},
        /* different instances */
        {"{\"name\": \"t\", \"kind\": \"gen\", \"old\": \"%s/sum-m1.jsonl\", \"new\": {\"preds\": [\"%s/sum-m2-s1.jsonl\"]},"
         " \"methods\": [{\"name\": \"x\", \"preds\": [\"%s/nowhere.jsonl\"]}]}",
         "task 't', model 'x', seed 1: "},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char task[16000];
        snprintf(task, sizeof task, cases[i].task, fix, fix, fix);
        snprintf(json, sizeof json, "{\"tasks\": [%s]}", task);
        write_file(path, json);
        ReportInput in;
        assert_int_equal(report_load_manifest(&in, path), 0);
        Report *r = NULL;
        assert_int_equal(report_compute(&in, &r), -1);
        assert_null(r);
        if (!strstr(err_msg(), cases[i].want)) {
            print_error("case %zu: message '%s', expected '%s'\n", i, err_msg(), cases[i].want);
            fail();
        }
        report_input_free(&in);
    }
    assert_non_null(strstr(err_msg(), "nowhere.jsonl: cannot open"));
    /* ids that do not match M1's */
    char other[600];
    snprintf(other, sizeof other, "%s/other.jsonl", dir);
    write_file(other, "{\"id\": \"q0\", \"correct\": true, \"prediction\": 1}\n");
    snprintf(json, sizeof json,
             "{\"tasks\": [{\"name\": \"t\", \"kind\": \"mc\", \"old\": \"%s/m1.jsonl\", \"new\": {\"preds\": [\"%s/m2-s1.jsonl\", \"other.jsonl\"]}}]}",
             fix, fix);
    write_file(path, json);
    ReportInput in;
    assert_int_equal(report_load_manifest(&in, path), 0);
    Report *r = NULL;
    assert_int_equal(report_compute(&in, &r), -1);
    assert_non_null(strstr(err_msg(), "task 't', model 'M2', seed 2: "));
    assert_non_null(strstr(err_msg(), "9 ids of"));
    assert_non_null(strstr(err_msg(), "missing from"));
    assert_non_null(strstr(err_msg(), "/other.jsonl")); /* relative to the manifest's folder */
    report_input_free(&in);
    rm_tree(dir);
}

/* ------------------------------------------------------------------ statistics */

/* The multiple-choice fixture (docs/report.md walks through it). M1 right on q0..q5.
 *   M2 seed 1: NF q4, PF q6 q7 (acc .7)        muscle seed 1: PF q6 q7 (acc .8)
 *   M2 seed 2: NF q0, PF q6 q8 (acc .7)        muscle seed 2: NF q5, PF q6 q8 (acc .7)
 *   distill = M1 on both seeds (acc .6: 10 points below M2, so it cannot be chosen)
 * M2: NFR .1 (2/20), PFR .2; muscle: NFR .05, dNFR -.05, rel -50%, dacc +.05.
 * Noise floor: seed 1 -> 2 flips q0 and q7 (.2), 2 -> 1 flips q4 and q8 (.2). */
static void test_stats_mc(void **state) {
    (void)state;
    cJSON *j = fixture_json(0, 0.005);
    assert_string_equal(jstr(j, "format"), "muscle-report");
    CLOSE(jnum(j, "version"), 1);
    assert_string_equal(jstr(j, "tasks/0/name"), "choice");
    CLOSE(jnum(j, "tasks/0/n"), 10);
    CLOSE(jnum(j, "tasks/0/old/acc/value"), 0.6);
    CLOSE(jnum(j, "tasks/0/old/acc/num"), 6);
    CLOSE(jnum(j, "tasks/0/old/acc/den"), 10);
    assert_string_equal(jstr(j, "tasks/0/models/0/name"), "M2");
    assert_string_equal(jstr(j, "tasks/0/models/0/role"), "new");
    CLOSE(jnum(j, "tasks/0/models/0/stats/acc_new/value"), 0.7);
    CLOSE(jnum(j, "tasks/0/models/0/stats/nfr/value"), 0.1);
    CLOSE(jnum(j, "tasks/0/models/0/stats/nfr/num"), 2);
    CLOSE(jnum(j, "tasks/0/models/0/stats/nfr/den"), 20);
    CLOSE(jnum(j, "tasks/0/models/0/stats/pfr/value"), 0.2);
    assert_true(cJSON_IsNull(jget(j, "tasks/0/models/0/stats/nfr/lo"))); /* --bootstrap 0 */
    CLOSE(jnum(j, "tasks/0/models/0/per_seed/0/nfr"), 0.1);
    CLOSE(jnum(j, "tasks/0/models/0/per_seed/1/nfr"), 0.1);
    assert_string_equal(jstr(j, "tasks/0/models/1/name"), "muscle");
    CLOSE(jnum(j, "tasks/0/models/1/stats/nfr/value"), 0.05);
    CLOSE(jnum(j, "tasks/0/models/1/stats/acc_new/value"), 0.75);
    CLOSE(jnum(j, "tasks/0/models/1/delta/dnfr/value"), -0.05);
    CLOSE(jnum(j, "tasks/0/models/1/delta/rel_dnfr_pct/value"), -50);
    CLOSE(jnum(j, "tasks/0/models/1/delta/dacc/value"), 0.05);
    CLOSE(jnum(j, "tasks/0/models/1/per_seed/0/nfr"), 0);
    CLOSE(jnum(j, "tasks/0/models/1/per_seed/1/nfr"), 0.1);
    assert_true(cJSON_IsTrue(jget(j, "tasks/0/models/1/qualifies")));
    CLOSE(jnum(j, "tasks/0/models/2/stats/nfr/value"), 0);
    CLOSE(jnum(j, "tasks/0/models/2/delta/dacc/value"), -0.1);
    assert_true(cJSON_IsFalse(jget(j, "tasks/0/models/2/qualifies")));
    assert_string_equal(jstr(j, "tasks/0/chosen"), "muscle");
    CLOSE(jnum(j, "tasks/0/noise_floor/seeds"), 2);
    CLOSE(jnum(j, "tasks/0/noise_floor/stats/nfr/value"), 0.2);
    CLOSE(jnum(j, "tasks/0/noise_floor/pairs/0/from"), 1);
    CLOSE(jnum(j, "tasks/0/noise_floor/pairs/0/to"), 2);
    CLOSE(jnum(j, "tasks/0/noise_floor/pairs/0/nfr"), 0.2);
    CLOSE(jnum(j, "tasks/0/noise_floor/pairs/1/nfr"), 0.2);
    /* seed 1 of M2: the flip matrix and the flips, negative first */
    CLOSE(jnum(j, "tasks/0/models/0/seed1/matrix/old_right_new_right"), 5);
    CLOSE(jnum(j, "tasks/0/models/0/seed1/matrix/old_right_new_wrong"), 1);
    CLOSE(jnum(j, "tasks/0/models/0/seed1/matrix/old_wrong_new_right"), 2);
    CLOSE(jnum(j, "tasks/0/models/0/seed1/matrix/old_wrong_new_wrong"), 2);
    CLOSE(jnum(j, "tasks/0/models/0/seed1/flips/negative"), 1);
    CLOSE(jnum(j, "tasks/0/models/0/seed1/flips/positive"), 2);
    CLOSE(jnum(j, "tasks/0/models/0/seed1/flips/inconsistent"), 1); /* q9: 2 -> 0; q8 answered 3 both times */
    const char *order[] = {"q4", "q6", "q7", "q9"}, *kinds[] = {"negative", "positive", "positive", "inconsistent"};
    const cJSON *fl = jget(j, "tasks/0/models/0/seed1/flips/instances");
    assert_int_equal(cJSON_GetArraySize(fl), 4);
    for (int i = 0; i < 4; i++) {
        char p[64];
        snprintf(p, sizeof p, "%d/id", i);
        assert_string_equal(jstr(fl, p), order[i]);
        snprintf(p, sizeof p, "%d/kind", i);
        assert_string_equal(jstr(fl, p), kinds[i]);
    }
    CLOSE(jnum(fl, "0/old/prediction"), 1);
    CLOSE(jnum(fl, "0/new/prediction"), 2);
    CLOSE(jnum(fl, "0/target"), 1);
    cJSON_Delete(j);
}

/* The generation fixture: scores of M1 .5 .2 0 1 .3 (mean .4);
 *   M2 seed 1: .7 .2 .1 .6 .3  D +.2 0 +.1 -.4 0    (mean .38, score NFR .2, PFR .4)
 *   M2 seed 2: .4 .3 .1 1 .2   D -.1 +.1 +.1 0 -.1  (mean .40, score NFR .4, PFR .4)
 *   muscle, one seed: .5 .4 0 1 .3  D 0 +.2 0 0 0   (mean .44, score NFR 0, PFR .2),
 *   paired with M2 seed 1 only: dscore +.06, score dNFR -.2, relative -100%. */
static void test_stats_gen(void **state) {
    (void)state;
    cJSON *j = fixture_json(200, 0.005);
    assert_string_equal(jstr(j, "tasks/1/kind"), "gen");
    assert_true(cJSON_IsFalse(jget(j, "tasks/1/discrete")));
    CLOSE(jnum(j, "tasks/1/old/score/value"), 0.4);
    CLOSE(jnum(j, "tasks/1/models/0/stats/score_new/value"), 0.39);
    CLOSE(jnum(j, "tasks/1/models/0/stats/score_nfr/value"), 0.3);
    CLOSE(jnum(j, "tasks/1/models/0/stats/score_pfr/value"), 0.4);
    assert_null(cJSON_GetObjectItemCaseSensitive(jget(j, "tasks/1/models/0/stats"), "nfr"));
    CLOSE(jnum(j, "tasks/1/models/1/paired_seeds"), 1);
    CLOSE(jnum(j, "tasks/1/models/1/stats/score_new/value"), 0.44);
    CLOSE(jnum(j, "tasks/1/models/1/stats/score_nfr/value"), 0);
    CLOSE(jnum(j, "tasks/1/models/1/delta/dscore/value"), 0.06);
    CLOSE(jnum(j, "tasks/1/models/1/delta/score_dnfr/value"), -0.2);
    CLOSE(jnum(j, "tasks/1/models/1/delta/score_rel_dnfr_pct/value"), -100);
    assert_string_equal(jstr(j, "tasks/1/chosen"), "muscle");
    /* noise floor: seed 1 -> 2: D -.3 +.1 0 +.4 -.1 (.4); 2 -> 1 the mirror (.4) */
    CLOSE(jnum(j, "tasks/1/noise_floor/stats/score_nfr/value"), 0.4);
    /* intervals are there and contain the values */
    double lo = jnum(j, "tasks/1/models/0/stats/score_nfr/lo"), hi = jnum(j, "tasks/1/models/0/stats/score_nfr/hi");
    assert_true(lo <= 0.3 && 0.3 <= hi && lo < hi);
    /* seed-1 flips: the negative one first, then the positives, larger changes first */
    const cJSON *fl = jget(j, "tasks/1/models/0/seed1/flips/instances");
    assert_int_equal(cJSON_GetArraySize(fl), 3);
    assert_string_equal(jstr(fl, "0/id"), "d");
    assert_string_equal(jstr(fl, "0/kind"), "negative");
    assert_true(fabs(jnum(fl, "0/delta") + 0.4) < 1e-9);
    assert_string_equal(jstr(fl, "1/id"), "a");
    assert_string_equal(jstr(fl, "2/id"), "c");
    CLOSE(jnum(j, "tasks/1/models/0/seed1/score_changes/lower"), 1);
    CLOSE(jnum(j, "tasks/1/models/0/seed1/score_changes/tie"), 2);
    CLOSE(jnum(j, "tasks/1/models/0/seed1/score_changes/higher"), 2);
    cJSON_Delete(j);
}

/* The same draws for every model: a method identical to M2 has dNFR exactly 0 with the
 * interval [0, 0]; and no method qualifies when every one loses more accuracy than allowed. */
static void test_chosen_and_joint_resampling(void **state) {
    (void)state;
    const char *dir = test_tmpdir();
    char fix[PATH_MAX], path[600], json[40000];
    assert_non_null(realpath(FIX, fix));
    snprintf(path, sizeof path, "%s/manifest.json", dir);
    snprintf(json, sizeof json,
             "{\"tasks\": [{\"name\": \"t\", \"kind\": \"mc\", \"old\": \"%s/m1.jsonl\","
             " \"new\": {\"preds\": [\"%s/m2-s1.jsonl\", \"%s/m2-s2.jsonl\"]},"
             " \"methods\": [{\"name\": \"same\", \"preds\": [\"%s/m2-s1.jsonl\", \"%s/m2-s2.jsonl\"]},"
             " {\"name\": \"distill\", \"preds\": [\"%s/distill-s1.jsonl\", \"%s/distill-s2.jsonl\"]}]}]}",
             fix, fix, fix, fix, fix, fix, fix);
    write_file(path, json);
    ReportInput in;
    assert_int_equal(report_load_manifest(&in, path), 0);
    in.bootstrap = 300;
    Report *r;
    assert_int_equal(report_compute(&in, &r), 0);
    char *s = report_render(r, REPORT_JSON);
    cJSON *j = cJSON_Parse(s);
    CLOSE(jnum(j, "tasks/0/models/1/delta/dnfr/value"), 0);
    CLOSE(jnum(j, "tasks/0/models/1/delta/dnfr/lo"), 0);
    CLOSE(jnum(j, "tasks/0/models/1/delta/dnfr/hi"), 0);
    CLOSE(jnum(j, "tasks/0/models/1/delta/dacc/hi"), 0);
    /* "same" loses nothing: chosen (distill's NFR is lower, but it is 10 points less accurate) */
    assert_string_equal(jstr(j, "tasks/0/chosen"), "same");
    cJSON_Delete(j);
    free(s);
    report_free(r);
    /* allow a 10-point drop: distill (NFR 0) wins */
    in.max_acc_drop = 0.1;
    assert_int_equal(report_compute(&in, &r), 0);
    s = report_render(r, REPORT_JSON);
    j = cJSON_Parse(s);
    assert_string_equal(jstr(j, "tasks/0/chosen"), "distill");
    cJSON_Delete(j);
    free(s);
    report_free(r);
    report_input_free(&in);
    /* only distill: none qualifies */
    snprintf(json, sizeof json,
             "{\"tasks\": [{\"name\": \"t\", \"kind\": \"mc\", \"old\": \"%s/m1.jsonl\","
             " \"new\": {\"preds\": [\"%s/m2-s1.jsonl\"]},"
             " \"methods\": [{\"name\": \"distill\", \"preds\": [\"%s/distill-s1.jsonl\"]}]}]}", fix, fix, fix);
    write_file(path, json);
    assert_int_equal(report_load_manifest(&in, path), 0);
    assert_int_equal(report_compute(&in, &r), 0);
    s = report_render(r, REPORT_JSON);
    j = cJSON_Parse(s);
    assert_true(cJSON_IsNull(jget(j, "tasks/0/chosen")));
    assert_true(cJSON_IsNull(jget(j, "tasks/0/noise_floor"))); /* one M2 seed */
    cJSON_Delete(j);
    free(s);
    s = report_render(r, REPORT_MD);
    assert_non_null(strstr(s, "chosen: none: no method's accuracy is within 0.50 pts of M2's"));
    assert_non_null(strstr(s, "noise floor: n/a (M2 has one seed"));
    free(s);
    report_free(r);
    report_input_free(&in);
    rm_tree(dir);
}

/* ------------------------------------------------------------------ rendering */

static void test_html_escaping(void **state) {
    (void)state;
    ReportInput in;
    assert_int_equal(report_load_manifest(&in, FIX "/manifest.json"), 0);
    in.bootstrap = 50;
    /* untrusted names too */
    free(in.tasks[0].methods[1].name);
    in.tasks[0].methods[1].name = strdup("<img src=x onerror=alert(1)>");
    free(in.tasks[1].name);
    in.tasks[1].name = strdup("sum \"mary\" & <co>");
    Report *r;
    assert_int_equal(report_compute(&in, &r), 0);
    char *h = report_render(r, REPORT_HTML);
    assert_non_null(h);
    /* the generated prediction with a script, and the old one with markup and & */
    assert_non_null(strstr(h, "&lt;script&gt;alert(&quot;flip&quot;)&lt;/script&gt; &amp; Jerry"));
    assert_non_null(strstr(h, "Tom &amp; Jerry&#39;s &lt;b&gt;chase&lt;/b&gt;"));
    /* one script: the page's own inline sort/filter code (no src), none from the data */
    const char *sc = strstr(h, "<script");
    assert_non_null(sc);
    assert_true(strncmp(sc, "<script>\n(function(){", 21) == 0);
    assert_null(strstr(sc + 1, "<script"));
    assert_null(strstr(h, "<img"));
    assert_null(strstr(h, "<co>"));
    assert_non_null(strstr(h, "&lt;img src=x onerror=alert(1)&gt;"));
    assert_non_null(strstr(h, "<title>Fixture update &lt;v1 -&gt; v2&gt; &amp; friends</title>"));
    /* the structure the browser test looks for; ids made safe */
    assert_non_null(strstr(h, "<table id=\"results-choice\" class=\"results\">"));
    assert_non_null(strstr(h, "<table id=\"results-sum--mary-----co-\" class=\"results\">"));
    assert_non_null(strstr(h, "<svg class=\"nfr-plot\""));
    assert_non_null(strstr(h, "<circle"));
    /* self-contained: nothing fetched */
    assert_null(strstr(h, "src=\"http"));
    assert_null(strstr(h, "<link"));
    assert_null(strstr(h, "@import"));
    free(h);
    /* Markdown: no raw markup from the names either */
    char *md = report_render(r, REPORT_MD);
    assert_null(strstr(md, "<img"));
    assert_non_null(strstr(md, "&lt;img src=x onerror=alert(1)&gt;"));
    free(md);
    report_free(r);
    report_input_free(&in);
}

static int nonempty(const char *dir, const char *name) {
    char p[1024];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    struct stat st;
    return stat(p, &st) == 0 && st.st_size > 100;
}

static void test_write(void **state) {
    (void)state;
    const char *tmp = test_tmpdir();
    char dir[600];
    snprintf(dir, sizeof dir, "%s/out/nested", tmp);
    ReportInput in;
    assert_int_equal(report_load_manifest(&in, FIX "/manifest.json"), 0);
    in.bootstrap = 20;
    Report *r;
    assert_int_equal(report_compute(&in, &r), 0);
    assert_int_equal(report_write(dir, r), 0);
    assert_true(nonempty(dir, "report.json") && nonempty(dir, "report.md") && nonempty(dir, "report.html"));
    assert_int_equal(report_write(dir, r), 0); /* over an earlier report */
    /* a file where the folder should be */
    char file[700];
    snprintf(file, sizeof file, "%s/report.json", dir);
    assert_int_equal(report_write(file, r), -1);
    assert_non_null(strstr(err_msg(), "report.json"));
    char *t = report_render(r, REPORT_TEXT);
    assert_non_null(strstr(t, "muscle (chosen)"));
    assert_non_null(strstr(t, "noise floor: NFR 20.00 ["));
    free(t);
    report_free(r);
    report_input_free(&in);
    rm_tree(tmp);
}

static void test_parse_fraction(void **state) {
    (void)state;
    double v;
    assert_int_equal(report_parse_fraction("0.05", &v), 0);
    CLOSE(v, 0.05);
    assert_int_equal(report_parse_fraction("5%", &v), 0);
    CLOSE(v, 0.05);
    assert_int_equal(report_parse_fraction("-0.5%", &v), 0);
    CLOSE(v, -0.005);
    assert_int_equal(report_parse_fraction("0", &v), 0);
    CLOSE(v, 0);
    const char *bad[] = {"", "abc", "5%%", "5 %", " 5", "0.05x", "nan", "inf"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) assert_int_equal(report_parse_fraction(bad[i], &v), -1);
    assert_non_null(strstr(err_msg(), "expected a fraction (0.05) or a percentage (5%)"));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_manifest_ok),
        cmocka_unit_test(test_manifest_errors),
        cmocka_unit_test(test_prediction_errors),
        cmocka_unit_test(test_stats_mc),
        cmocka_unit_test(test_stats_gen),
        cmocka_unit_test(test_chosen_and_joint_resampling),
        cmocka_unit_test(test_html_escaping),
        cmocka_unit_test(test_write),
        cmocka_unit_test(test_parse_fraction),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
