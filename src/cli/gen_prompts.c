/* cli/gen_prompts.c - `muscle generate --prompts FILE`: many prompts through the batched
 * generator (model/generate_batch.h), one JSON line out per prompt, in input order.
 * Input: one prompt per line, a JSON string or an object with a string "prompt" (and an
 * optional "id", copied to the output); blank lines are skipped. Output line:
 * {"index", ["id",] "text", "n_tokens", "stopped_by": "max_tokens"|"eos"|"stop"|"context"}. */
#include "gen_prompts.h"
#include "core/error.h"
#include "core/file.h"
#include "model/generate_batch.h"

#include <cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *stop_name(int s) {
    static const char *names[] = {"max_tokens", "eos", "stop", "context", "emit"};
    return s >= 0 && s <= 4 ? names[s] : "?";
}

int gen_prompts_run(const Model *m, const Tokenizer *t, const GenOptions *g, const char *path, int width, const char *out_path,
                    int quiet) {
    size_t size;
    char *text = file_read_all(path, &size, 0);
    if (!text) return -1;
    int cap = 64, n = 0, rc = 0, line = 0;
    GenRequest *req = malloc((size_t)cap * sizeof *req);
    cJSON **ids = malloc((size_t)cap * sizeof *ids);
    if (!req || !ids) rc = err_set("out of memory");
    for (char *p = text; rc == 0 && p < text + size;) {
        char *e = memchr(p, '\n', (size_t)(text + size - p));
        if (!e) e = text + size;
        line++;
        size_t len = (size_t)(e - p);
        char *q = p;
        p = e + 1;
        while (len && (q[len - 1] == '\r' || q[len - 1] == ' ' || q[len - 1] == '\t')) len--;
        while (len && (*q == ' ' || *q == '\t')) q++, len--;
        if (!len) continue;
        cJSON *j = cJSON_ParseWithLength(q, len);
        const cJSON *s = cJSON_IsObject(j) ? cJSON_GetObjectItemCaseSensitive(j, "prompt") : j;
        if (!cJSON_IsString(s)) {
            cJSON_Delete(j);
            rc = err_set("%s:%d: expected a JSON string or an object with a string \"prompt\"", path, line);
            break;
        }
        if (n == cap) {
            cap *= 2;
            GenRequest *r2 = realloc(req, (size_t)cap * sizeof *req);
            if (r2) req = r2;
            cJSON **i2 = realloc(ids, (size_t)cap * sizeof *ids);
            if (i2) ids = i2;
            if (!r2 || !i2) { cJSON_Delete(j); rc = err_set("out of memory"); break; }
        }
        int *tok = NULL, nt = 0;
        if (tok_encode(t, s->valuestring, strlen(s->valuestring), tok_bos_id(t) >= 0, 0, &tok, &nt) != 0) {
            cJSON_Delete(j);
            rc = err_prefix("%s:%d", path, line);
            break;
        }
        const cJSON *id = cJSON_IsObject(j) ? cJSON_GetObjectItemCaseSensitive(j, "id") : NULL;
        ids[n] = id ? cJSON_Duplicate(id, 1) : NULL;
        req[n] = (GenRequest){tok, nt, gen_seed(g->seed, n)};
        n++;
        cJSON_Delete(j);
    }
    free(text);
    GenResult *res = rc == 0 ? calloc((size_t)(n ? n : 1), sizeof *res) : NULL;
    if (rc == 0 && !res) rc = err_set("out of memory");
    if (rc == 0 && n == 0) rc = err_set("%s: no prompts", path);
    if (rc == 0) {
        Progress pr;
        progress_init(&pr, "generate", "prompts", n, quiet);
        GenProgress gp = {&pr, 0};
        rc = model_generate_batch(m, t, req, n, g, width, gen_progress_done, &gp, res);
        if (rc == 0) progress_finish(&pr);
    }
    AtomicFile af;
    int have_af = 0;
    if (rc == 0 && out_path) {
        rc = file_atomic_open(&af, out_path);
        have_af = rc == 0;
    }
    for (int i = 0; rc == 0 && i < n; i++) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddNumberToObject(o, "index", i);
        if (ids[i]) {
            cJSON_AddItemToObject(o, "id", ids[i]);
            ids[i] = NULL;
        }
        cJSON_AddStringToObject(o, "text", res[i].text);
        cJSON_AddNumberToObject(o, "n_tokens", res[i].n_ids);
        cJSON_AddStringToObject(o, "stopped_by", stop_name(res[i].stopped_by));
        char *s = cJSON_PrintUnformatted(o);
        cJSON_Delete(o);
        if (!s) { rc = err_set("out of memory"); break; }
        if (have_af) {
            rc = file_atomic_write(&af, s, strlen(s));
            if (rc == 0) rc = file_atomic_write(&af, "\n", 1);
        } else {
            printf("%s\n", s);
        }
        free(s);
    }
    if (have_af) {
        if (rc == 0) rc = file_atomic_commit(&af);
        else file_atomic_abort(&af);
    }
    for (int i = 0; i < n; i++) {
        free((int *)req[i].prompt);
        cJSON_Delete(ids[i]);
        if (res) gen_result_free(&res[i]);
    }
    free(res);
    free(req);
    free(ids);
    return rc;
}
