/* tests/update/test_update.c - the update library: the typed method presets give the
 * finetune settings `muscle update` recorded as flag strings before (update.json and the
 * manifest keep them, so a run folder of an older muscle resumes), the methods list,
 * TrainSpec checks, and model_bundle_load. */
#include "testutil.h"
#include "core/error.h"
#include "update/bundle.h"
#include "update/train_run.h"
#include "update/update.h"

/* The presets as the older muscle spelled them (its table of flag strings). */
static const struct { const char *name, *args; TaskKind kind; } expected[] = {
    {"muscle", "--compat student-wrong", TASK_MC},
    {"muscle-answer", "--compat student-wrong --distill-tokens answer", TASK_GEN},
    {"choice", "--compat student-wrong --level choice --ce-weight 0.5", TASK_MC},
    {"old-correct", "--compat old-correct", TASK_MC},
    {"distill", "--compat none", TASK_GEN},
    {"token-likelihood", "--compat token-likelihood --ce-weight 0.5", TASK_MC},
    {"sequence-likelihood", "--compat sequence-likelihood --ce-weight 0.5", TASK_GEN},
    {"focal", "--compat focal", TASK_MC},
    {"elodi", "--compat elodi", TASK_GEN},
    {"focal-choice", "--compat focal --level choice", TASK_MC},
    {"elodi-choice", "--compat elodi --level choice", TASK_MC},
    {"seqkd", "--compat student-wrong --level sequence --ce-weight 0.5", TASK_GEN},
    /* issue 18 */
    {"ensemble", "--compat ensemble", TASK_MC},
    {"ensemble-choice", "--compat ensemble --level choice --ce-weight 0.5", TASK_MC},
    {"mixture", "--compat mixture", TASK_MC},
    {"mixture-choice", "--compat mixture --level choice --ce-weight 0.5", TASK_MC},
    {"mixture-distill", "--compat mixture --level choice", TASK_MC},
    {"weighted-choice", "--compat weighted --level choice --ce-weight 0.5", TASK_MC},
    {"weighted-seqkd", "--compat weighted --level sequence --ce-weight 0.5", TASK_GEN},
    {"flip-choice", "--compat flip --level choice --ce-weight 0.5", TASK_MC},
    {"flip-seqkd", "--compat flip --level sequence --ce-weight 0.5", TASK_GEN},
    /* issue 18, sequence level and generation: ensemble decoding of the K new adapters (and M1) */
    {"ensemble-seqkd", "--compat ensemble --level sequence --ce-weight 0.5", TASK_GEN},
    {"mixture-gen", "--compat mixture --mixture-weight 0.3", TASK_GEN},
    {"mixture-seqkd", "--compat mixture --level sequence --ce-weight 0.5 --mixture-weight 0.3", TASK_GEN},
    {"ce", NULL, TASK_MC},
    {"interp", "interpolation: (1-a) A2 + a A1 moved to v2 (exact rank-2r adapter), a in 0..1 step 0.1 chosen on --task-val", TASK_MC},
    {"soup", "seed soup: (1/K) sum of the K new adapters, exact as one rank-K*r adapter", TASK_GEN},
};

static void test_presets_render_the_old_flags(void **state) {
    (void)state;
    int n;
    update_presets(&n);
    assert_int_equal(n, (int)(sizeof expected / sizeof expected[0]));
    for (int i = 0; i < n; i++) {
        UpdateSpec u;
        update_spec_default(&u);
        u.train = "train.jsonl";
        u.kind = expected[i].kind;
        if (update_methods_parse(&u, expected[i].name) != 0) fail_msg("%s: %s", expected[i].name, err_msg());
        assert_int_equal(u.n_methods, 1);
        assert_string_equal(u.methods[0].name, expected[i].name);
        assert_non_null(u.methods[0].preset);
        if (expected[i].args) assert_string_equal(u.methods[0].args, expected[i].args);
        else assert_null(u.methods[0].args);
        update_spec_free(&u);
    }
}

static void test_methods_list(void **state) {
    (void)state;
    UpdateSpec u;
    update_spec_default(&u);
    u.train = "train.jsonl";
    u.kind = TASK_MC;
    /* seqkd is for generation: skipped; a user's method keeps its flags as given */
    assert_int_equal(update_methods_parse(&u, "muscle, seqkd,mine=--compat focal --kd-weight 2,ce"), 0);
    assert_int_equal(u.n_methods, 3);
    assert_string_equal(u.methods[1].name, "mine");
    assert_null(u.methods[1].preset);
    assert_string_equal(u.methods[1].args, "--compat focal --kd-weight 2");
    update_spec_free(&u);
    /* all: every preset for the task's kind, once (a name given before is not repeated);
     * interp only when --task-val and --old-adapter are given (it needs both) */
    assert_int_equal(update_methods_parse(&u, "choice,all"), 0);
    int n_all = 0, n_presets;
    const UpdatePreset *ps = update_presets(&n_presets);
    for (int i = 0; i < n_presets; i++) n_all += (ps[i].kinds & UPDATE_FOR_MC) != 0;
    assert_int_equal(u.n_methods, n_all - 1);
    for (int i = 0; i < u.n_methods; i++) assert_string_not_equal(u.methods[i].name, "interp");
    update_spec_free(&u);
    u.val = "val.jsonl";
    u.old_adapter = "a1";
    assert_int_equal(update_methods_parse(&u, "choice,all"), 0);
    assert_int_equal(u.n_methods, n_all);
    u.val = NULL;
    u.old_adapter = NULL;
    for (int i = 0; i < u.n_methods; i++) {
        assert_non_null(u.methods[i].preset);
        assert_true(u.methods[i].preset->kinds & UPDATE_FOR_MC);
    }
    update_spec_free(&u);
    /* the default list depends on the kind */
    assert_int_equal(update_methods_parse(&u, NULL), 0);
    assert_int_equal(u.n_methods, 2);
    assert_string_equal(u.methods[1].name, "choice");
    update_spec_free(&u);
    u.kind = TASK_GEN;
    assert_int_equal(update_methods_parse(&u, NULL), 0);
    assert_int_equal(u.n_methods, 1);
    update_spec_free(&u);
    const char *bad[][2] = {{"nonsense", "unknown method 'nonsense'"}, {"muscle,muscle", "named twice"},
                            {"a b=--compat none", "use letters"}, {"choice", "no method to run"}};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_int_equal(update_methods_parse(&u, bad[i][0]), -1);
        if (!strstr(err_msg(), bad[i][1])) fail_msg("%s: %s", bad[i][0], err_msg());
        update_spec_free(&u);
    }
}

/* interp-NAME and soup-NAME, and what the weight-space methods need (update_weight_check
 * through update_check_inputs' first lines) */
static void test_weight_methods(void **state) {
    (void)state;
    UpdateSpec u;
    update_spec_default(&u);
    u.train = "train.jsonl";
    u.test = "test.jsonl";
    u.kind = TASK_MC;
    assert_int_equal(update_methods_parse(&u, "choice,interp-choice,soup-ce,interp,soup"), 0);
    assert_int_equal(u.n_methods, 5);
    assert_string_equal(u.methods[1].interp_with, "choice");
    assert_int_equal(u.methods[1].preset->weight, UPDATE_WEIGHT_INTERP);
    assert_int_equal(u.methods[2].soup_init, 1);
    assert_true(u.methods[2].preset->ce_only);
    assert_non_null(strstr(u.methods[2].args, "trained from the seed soup"));
    assert_null(u.methods[3].interp_with);
    assert_int_equal(u.methods[4].preset->weight, UPDATE_WEIGHT_SOUP);
    /* interp needs --task-val, then --old-adapter */
    assert_int_equal(update_check_inputs(&u), -1);
    assert_non_null(strstr(err_msg(), "--task-val"));
    u.val = "val.jsonl";
    assert_int_equal(update_check_inputs(&u), -1);
    assert_non_null(strstr(err_msg(), "--old-adapter"));
    update_spec_free(&u);
    assert_int_equal(update_methods_parse(&u, "interp-focal"), 0);
    assert_int_equal(update_check_inputs(&u), -1);
    assert_non_null(strstr(err_msg(), "add it to --methods"));
    update_spec_free(&u);
    assert_int_equal(update_methods_parse(&u, "soup-interp"), -1);
    assert_non_null(strstr(err_msg(), "a trained preset"));
    update_spec_free(&u);
}

static void test_train_spec_check(void **state) {
    (void)state;
    TrainSpec s;
    train_spec_default(&s, TRAIN_RUN_FINETUNE);
    assert_int_equal(train_spec_check(&s), -1);
    assert_non_null(strstr(err_msg(), "--data FILE or --task FILE is required"));
    s.data.task = "t.jsonl";
    s.out = "out";
    s.model = "m";
    assert_int_equal(train_spec_check(&s), 0);
    s.compat.on = 1;
    assert_int_equal(train_spec_check(&s), -1);
    assert_non_null(strstr(err_msg(), "--adapter-init"));
    s.adapter.init = "a2";
    s.compat.old_model = "m1";
    s.compat.old_adapter = "a1";
    assert_int_equal(train_spec_check(&s), 0);
    train_spec_default(&s, TRAIN_RUN_PRETRAIN);
    s.data.data = "d.txt";
    s.out = "out";
    s.tokenizer = "tok";
    s.shape.dim = 30, s.shape.layers = 1, s.shape.heads = 4, s.shape.hidden = 8;
    assert_int_equal(train_spec_check(&s), -1);
    assert_non_null(strstr(err_msg(), "not a multiple of --heads"));
}

static void test_bundle(void **state) {
    (void)state;
    char model[4096], tok[4096];
    snprintf(model, sizeof model, "%s", shared_path("models/stories260K/stories260K.bin"));
    snprintf(tok, sizeof tok, "%s", shared_path("models/stories260K/tok512.bin"));
    ModelBundle b;
    BundleSpec s = {.model = model, .tokenizer = tok};
    if (model_bundle_load(&b, &s) != 0) fail_msg("%s", err_msg());
    assert_non_null(b.tok);
    assert_string_equal(b.tok_path, tok);
    assert_null(model_bundle_adapter(&b));
    model_bundle_free(&b);
    assert_null(b.tok);
    /* a missing adapter: an error naming the option, nothing left loaded */
    BundleSpec bad = {.model = model, .adapter = "/nonexistent/adapter", .tok = BUNDLE_TOK_NONE, .adapter_label = "--old-adapter"};
    assert_int_equal(model_bundle_load(&b, &bad), -1);
    assert_non_null(strstr(err_msg(), "--old-adapter /nonexistent/adapter"));
    assert_null(b.model.layers);
    /* no tokenizer beside a model file in a folder without one: optional gives the reason */
    BundleSpec opt = {.model = model, .tokenizer = "/nonexistent/tok.bin", .tok = BUNDLE_TOK_OPTIONAL};
    if (model_bundle_load(&b, &opt) != 0) fail_msg("%s", err_msg());
    assert_null(b.tok);
    assert_true(b.tok_error[0] != 0);
    model_bundle_free(&b);
}

/* The presets come from the methods' entries (compat/compat_method_list.h), in the
 * entries' order, then ce, interp, soup; each one's method, level, weights and kinds are
 * its entry's; --help lists every one, and an unknown name's error names every one. */
static void test_presets_from_the_method_table(void **state) {
    (void)state;
    int nm, np, k = 0;
    const CompatMethodDef *ms = compat_methods(&nm);
    const UpdatePreset *ps = update_presets(&np);
    char *help = update_presets_help();
    for (int i = 0; i < nm; i++)
        for (int j = 0; j < COMPAT_MAX_PRESETS && ms[i].presets[j].name; j++, k++) {
            const CompatPresetDef *d = &ms[i].presets[j];
            assert_true(k < np);
            assert_string_equal(ps[k].name, d->name);
            assert_int_equal(ps[k].method, ms[i].id);
            assert_int_equal(ps[k].level, d->level);
            assert_true(ps[k].ce_weight == d->ce_weight && ps[k].mixture_a == d->mixture_a);
            assert_int_equal(ps[k].kinds, compat_preset_kinds(d));
            assert_int_equal(ps[k].weight, UPDATE_WEIGHT_NONE);
            assert_false(ps[k].ce_only);
            char line[64];
            snprintf(line, sizeof line, " %s ", d->name);
            if (!strstr(help, line)) fail_msg("update --help lacks preset %s", d->name);
        }
    assert_int_equal(np, k + 3);
    assert_string_equal(ps[k].name, "ce");
    assert_string_equal(ps[k + 1].name, "interp");
    assert_string_equal(ps[k + 2].name, "soup");
    free(help);
    /* kinds from the level unless the entry says: a sequence preset is for generation only */
    UpdateSpec u;
    update_spec_default(&u);
    u.train = "train.jsonl";
    u.kind = TASK_MC;
    assert_int_equal(update_methods_parse(&u, "mixture-seqkd,ensemble-seqkd,mixture-gen,ce"), 0);
    assert_int_equal(u.n_methods, 1);
    update_spec_free(&u);
    assert_int_equal(update_methods_parse(&u, "nope"), -1);
    for (int i = 0; i < np; i++) assert_non_null(strstr(err_msg(), ps[i].name));
    assert_null(strchr(err_msg(), '\n'));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_presets_render_the_old_flags),
        cmocka_unit_test(test_presets_from_the_method_table),
        cmocka_unit_test(test_methods_list),
        cmocka_unit_test(test_weight_methods),
        cmocka_unit_test(test_train_spec_check),
        cmocka_unit_test(test_bundle),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
