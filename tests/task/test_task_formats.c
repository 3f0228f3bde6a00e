/* tests/task/test_task_formats.c - the format table (task_formats.c): every entry complete
 * and consistent, and auto-detection in the order the formats were always detected (records
 * that carry the keys of two formats go to the earlier one). */
#include "testutil.h"
#include "core/error.h"
#include "task/task_internal.h"

#include <cJSON.h>

/* The detection order before the table existed (task_format_detect's if-chain). */
static const TaskFormat ORDER[] = {TASK_FMT_LLM_ADAPTERS, TASK_FMT_HELLASWAG, TASK_FMT_PIQA, TASK_FMT_ARC,
                                   TASK_FMT_BOOLQ, TASK_FMT_RACE, TASK_FMT_DIALOGSUM, TASK_FMT_GSM8K,
                                   TASK_FMT_NATIVE_MC, TASK_FMT_NATIVE_GEN};

static void test_entries_complete(void **state) {
    (void)state;
    assert_null(task_format_def((TaskFormat)-1));
    assert_null(task_format_def(TASK_FMT_COUNT));
    assert_string_equal(task_format_name(TASK_FMT_AUTO), "auto");
    for (int f = 1; f < TASK_FMT_COUNT; f++) {
        const TaskFormatDef *d = task_format_def((TaskFormat)f);
        assert_non_null(d);
        assert_non_null(d->name);
        int convs = !!d->convert_mc + !!d->convert_gen + !!d->convert_any;
        if (convs != 1) fail_msg("%s: %d converters, want 1", d->name, convs);
        if (d->kind == TASK_MC) assert_non_null(d->convert_mc);
        if (d->kind == TASK_GEN) assert_non_null(d->convert_gen);
        if (!d->kind) assert_non_null(d->convert_any);
        if (d->kind != TASK_GEN && (!d->tmpl_mc.prompt || !d->tmpl_mc.answer))
            fail_msg("%s: no default MC templates", d->name);
        if (d->kind != TASK_MC && (!d->tmpl_gen.prompt || !d->tmpl_gen.answer))
            fail_msg("%s: no default generation templates", d->name);
        assert_true(d->detect_rank > 0);
        assert_true(task_list_count(d->detect) > 0);
        for (int g = 1; g < f; g++) assert_int_not_equal(task_format_def((TaskFormat)g)->detect_rank, d->detect_rank);
        /* the name and every alias find the entry */
        TaskFormat back;
        assert_int_equal(task_format_from_name(d->name, &back), 0);
        assert_int_equal(back, f);
        for (const char *const *a = d->aliases; a && *a; a++) {
            assert_int_equal(task_format_from_name(*a, &back), 0);
            assert_int_equal(back, f);
        }
        assert_int_equal(task_format_answer_rule((TaskFormat)f), f == TASK_FMT_GSM8K ? TASK_ANSWER_GSM8K : TASK_ANSWER_EXACT);
    }
    assert_int_equal((int)(sizeof ORDER / sizeof *ORDER), TASK_FMT_COUNT - 1);
    TaskFormat back;
    assert_int_equal(task_format_from_name("squad", &back), -1);
    assert_non_null(strstr(err_msg(), "(known: auto, native-mc, native-gen, hellaswag, piqa, arc, boolq, race, "
                                      "gsm8k, dialogsum (samsum), llm-adapters (alpaca, llm_adapters))"));
}

/* An object with the detection keys of f (the first alternative of "a|b"). */
static void add_keys(cJSON *o, TaskFormat f) {
    for (const char *const *k = task_format_def(f)->detect; *k; k++) {
        char key[64];
        snprintf(key, sizeof key, "%.*s", (int)strcspn(*k, "|"), *k);
        if (!cJSON_GetObjectItemCaseSensitive(o, key)) cJSON_AddStringToObject(o, key, "x");
    }
}

static void test_detection_order(void **state) {
    (void)state;
    int n = (int)(sizeof ORDER / sizeof *ORDER);
    for (int i = 0; i < n; i++) {
        cJSON *o = cJSON_CreateObject();
        add_keys(o, ORDER[i]);
        assert_int_equal(task_format_detect(o), ORDER[i]);
        cJSON_Delete(o);
        for (int j = i + 1; j < n; j++) { /* keys of both: the earlier format wins */
            o = cJSON_CreateObject();
            add_keys(o, ORDER[j]);
            add_keys(o, ORDER[i]);
            if (task_format_detect(o) != ORDER[i])
                fail_msg("keys of %s and %s: detected %s", task_format_name(ORDER[i]), task_format_name(ORDER[j]),
                         task_format_name(task_format_detect(o)));
            cJSON_Delete(o);
        }
    }
    /* alternatives: DialogSum with summary1 only; half a rule is no match */
    cJSON *o = cJSON_Parse("{\"dialogue\": \"a\", \"summary1\": \"b\"}");
    assert_int_equal(task_format_detect(o), TASK_FMT_DIALOGSUM);
    cJSON_Delete(o);
    o = cJSON_Parse("{\"dialogue\": \"a\", \"summary2\": \"b\", \"goal\": 1}");
    assert_int_equal(task_format_detect(o), TASK_FMT_AUTO);
    cJSON_Delete(o);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_entries_complete),
        cmocka_unit_test(test_detection_order),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
