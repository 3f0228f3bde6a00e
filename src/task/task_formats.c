/* task/task_formats.c - record formats: the table of every format (names, kind, fields,
 * detection, default templates, answer rule) and detection from the fields; the converters,
 * one per format from a parsed JSON object to a TaskMC / TaskGen instance, are task_convert.c.
 *
 * Converters write messages without the "file:line: " prefix (the loader adds it), naming
 * the field and what was expected: "field 'label': expected 0 or 1, got 3".
 */
#include "task/task_internal.h"

#include "core/error.h"
#include "io/json.h"

#include <cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

/* "id, sol1, sol2" (cut with "..." past ~200 bytes) into buf. */
void task_json_keys(const cJSON *o, char *buf, size_t cap) {
    size_t n = 0;
    buf[0] = 0;
    for (const cJSON *c = o ? o->child : NULL; c; c = c->next) {
        const char *k = c->string ? c->string : "?";
        size_t kl = strlen(k);
        if (n + kl + 8 >= cap || n > 200) {
            snprintf(buf + n, cap - n, "%s...", n ? ", " : "");
            return;
        }
        n += (size_t)snprintf(buf + n, cap - n, "%s%s", n ? ", " : "", k);
    }
    if (n == 0) snprintf(buf, cap, "no fields");
}

/* ---- the table ---------------------------------------------------------------------------- */

/* Alpaca's prompt (the one LLM-Adapters trains with, without its stray indentation). */
#define ALPACA                                                                                     \
    "Below is an instruction that describes a task. Write a response that appropriately "         \
    "completes the request.\n\n### Instruction:\n{instruction}\n\n### Response:\n"
#define ALPACA_INPUT                                                                               \
    "Below is an instruction that describes a task, paired with an input that provides further "  \
    "context. Write a response that appropriately completes the request.\n\n### "                 \
    "Instruction:\n{instruction}\n\n### Input:\n{input}\n\n### Response:\n"
#define LLMA_MC_TAIL "the correct answer is"

/* A NULL-terminated list of names (file-scope compound literals have static storage). */
#define LIST(...) ((const char *const[]){__VA_ARGS__, NULL})

/* One entry per format, indexed by TaskFormat. Adding a format: a TaskFormat value in task.h,
 * its converter in task_convert.c, an entry here, a fixture + expectation in tests/task (docs/tasks.md).
 * Detection tries the entries by detect_rank (1 first): the rules overlap (a RACE record has
 * "question" and "answer" like a GSM8K one), so the order is part of the format definitions. */
static const TaskFormatDef FORMATS[TASK_FMT_COUNT] = {
    [TASK_FMT_AUTO] = {.name = "auto"},
    [TASK_FMT_NATIVE_MC] = {
        .name = "native-mc", .kind = TASK_MC,
        .detect_rank = 9, .detect = LIST("context", "choices"),
        .convert_mc = conv_native_mc,
        .tmpl_mc = {.prompt = "{context}", .answer = " {choice}"}},
    [TASK_FMT_NATIVE_GEN] = {
        .name = "native-gen", .kind = TASK_GEN,
        .detect_rank = 10, .detect = LIST("prompt", "target"),
        .convert_gen = conv_native_gen,
        .tmpl_gen = {.prompt = "{prompt}", .answer = " {target}", .stops = LIST("\n\n")}},
    [TASK_FMT_HELLASWAG] = {
        .name = "hellaswag", .kind = TASK_MC,
        .fields = LIST("query", "activity_label", "ctx_a", "ctx_b"),
        .detect_rank = 2, .detect = LIST("endings", "ctx_a"),
        .convert_mc = conv_hellaswag,
        .tmpl_mc = {.prompt = "{query}", .answer = " {choice}"}},
    [TASK_FMT_PIQA] = {
        .name = "piqa", .kind = TASK_MC,
        .fields = LIST("goal"),
        .detect_rank = 3, .detect = LIST("goal", "sol1"),
        .convert_mc = conv_piqa,
        .tmpl_mc = {.prompt = "Question: {goal}\nAnswer:", .answer = " {choice}"}},
    [TASK_FMT_ARC] = {
        .name = "arc", .kind = TASK_MC,
        .fields = LIST("question"),
        .detect_rank = 4, .detect = LIST("answerKey"),
        .convert_mc = conv_arc,
        .tmpl_mc = {.prompt = "Question: {question}\nAnswer:", .answer = " {choice}"}},
    [TASK_FMT_BOOLQ] = {
        .name = "boolq", .kind = TASK_MC,
        .fields = LIST("question", "passage"),
        .detect_rank = 5, .detect = LIST("passage", "question"),
        .convert_mc = conv_boolq,
        .tmpl_mc = {.prompt = "{passage}\nQuestion: {question}?\nAnswer:", .answer = " {choice}"}},
    [TASK_FMT_RACE] = {
        .name = "race", .kind = TASK_MC,
        .fields = LIST("article", "question"),
        .detect_rank = 6, .detect = LIST("article", "options"),
        .convert_mc = conv_race,
        .tmpl_mc = {.prompt = "Article: {article}\n\n{question}", .answer = " {choice}"}},
    [TASK_FMT_GSM8K] = {
        .name = "gsm8k", .kind = TASK_GEN,
        .fields = LIST("question"),
        .detect_rank = 8, .detect = LIST("question", "answer"),
        .convert_gen = conv_gsm8k,
        .tmpl_gen = {.prompt = "Question: {question}\nAnswer:", .answer = " {target}",
                     .stops = LIST("Question:", "\n\n")},
        .answer_rule = TASK_ANSWER_GSM8K},
    [TASK_FMT_DIALOGSUM] = {
        .name = "dialogsum", .aliases = LIST("samsum"), .kind = TASK_GEN,
        .fields = LIST("dialogue"),
        .detect_rank = 7, .detect = LIST("dialogue", "summary|summary1"),
        .convert_gen = conv_dialogsum,
        .tmpl_gen = {.prompt = "Dialogue: {dialogue}\nSummary:", .answer = " {target}",
                     .stops = LIST("Dialogue:", "Summary:", "\n\n")}},
    [TASK_FMT_LLM_ADAPTERS] = {
        .name = "llm-adapters", .aliases = LIST("alpaca", "llm_adapters"), .kind = (TaskKind)0,
        .fields = LIST("instruction", "input", "question"),
        .detect_rank = 1, .detect = LIST("instruction", "output"),
        .convert_any = conv_llm_adapters,
        .tmpl_mc = {.prompt = ALPACA LLMA_MC_TAIL, .prompt_input = ALPACA_INPUT LLMA_MC_TAIL,
                    .answer = " {choice}"},
        .tmpl_gen = {.prompt = ALPACA, .prompt_input = ALPACA_INPUT, .answer = "{target}",
                     .stops = LIST("### Instruction:", "### Response:")},
        .choice_text = 1},
};

const TaskFormatDef *task_format_def(TaskFormat f) {
    return (int)f >= 0 && f < TASK_FMT_COUNT ? &FORMATS[f] : NULL;
}

int task_list_count(const char *const *list) {
    int n = 0;
    while (list && list[n]) n++;
    return n;
}

const char *task_format_name(TaskFormat f) {
    return (int)f >= 0 && f < TASK_FMT_COUNT ? FORMATS[f].name : "?";
}

int task_format_from_name(const char *name, TaskFormat *f) {
    for (int i = 0; i < TASK_FMT_COUNT; i++) {
        int hit = strcmp(name, FORMATS[i].name) == 0;
        for (const char *const *a = FORMATS[i].aliases; !hit && a && *a; a++) hit = strcmp(name, *a) == 0;
        if (hit) {
            *f = (TaskFormat)i;
            return 0;
        }
    }
    char known[512];
    size_t n = 0;
    known[0] = 0;
    for (int i = 0; i < TASK_FMT_COUNT && n < sizeof known; i++) {
        n += (size_t)snprintf(known + n, sizeof known - n, "%s%s", i ? ", " : "", FORMATS[i].name);
        for (const char *const *a = FORMATS[i].aliases; a && *a && n < sizeof known; a++)
            n += (size_t)snprintf(known + n, sizeof known - n, "%s%s%s", a == FORMATS[i].aliases ? " (" : ", ", *a,
                                  a[1] ? "" : ")");
    }
    return err_set("unknown task format '%s' (known: %s)", name, known);
}

TaskKind task_format_kind(TaskFormat f) {
    const TaskFormatDef *d = task_format_def(f);
    return d ? d->kind : (TaskKind)0;
}

int task_format_fields(TaskFormat f, const char *const **names) {
    const TaskFormatDef *d = task_format_def(f);
    *names = d && d->fields ? d->fields : NULL;
    return d ? task_list_count(d->fields) : 0;
}

TaskAnswerRule task_format_answer_rule(TaskFormat f) {
    const TaskFormatDef *d = task_format_def(f);
    return d ? d->answer_rule : TASK_ANSWER_EXACT;
}

/* Every key of `keys` present ("a|b": either a or b). */
static int detect_match(const cJSON *o, const char *const *keys) {
    for (; *keys; keys++) {
        int found = 0;
        for (const char *k = *keys; !found && *k;) {
            const char *bar = strchr(k, '|');
            size_t kl = bar ? (size_t)(bar - k) : strlen(k);
            char key[64];
            if (kl < sizeof key) {
                memcpy(key, k, kl);
                key[kl] = 0;
                found = cJSON_GetObjectItemCaseSensitive(o, key) != NULL;
            }
            k += kl + (bar ? 1 : 0);
        }
        if (!found) return 0;
    }
    return 1;
}

TaskFormat task_format_detect(const cJSON *o) {
    TaskFormat best = TASK_FMT_AUTO;
    for (int i = 0; i < TASK_FMT_COUNT; i++) {
        const TaskFormatDef *d = &FORMATS[i];
        if (d->detect_rank > 0 && (best == TASK_FMT_AUTO || d->detect_rank < FORMATS[best].detect_rank) &&
            detect_match(o, d->detect))
            best = (TaskFormat)i;
    }
    return best;
}

int task_record_convert(TaskFormat f, const TaskRec *r, const cJSON *o, TaskKind *kind, TaskMC *mc,
                        TaskGen *gen) {
    memset(mc, 0, sizeof *mc);
    memset(gen, 0, sizeof *gen);
    mc->line = gen->line = r->line;
    const TaskFormatDef *d = task_format_def(f);
    if (!d || (!d->convert_mc && !d->convert_gen && !d->convert_any))
        return err_set("internal: no converter for format %d", (int)f);
    if (d->kind) {
        if (*kind && *kind != d->kind) return err_set("internal: kind mismatch");
        *kind = d->kind;
    }
    if (d->convert_mc) return d->convert_mc(r, o, mc);
    if (d->convert_gen) return d->convert_gen(r, o, gen);
    return d->convert_any(r, o, kind, mc, gen);
}
