/* model/lora_peft.c - PEFT adapter folders: adapter_config.json + adapter_model.safetensors. */
#include "lora_peft.h"
#include "core/error.h"
#include "core/file.h"
#include "io/json.h"
#include "io/safetensors.h"

#include <cJSON.h>
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "load_internal.h"

/* Module paths come from the family's description (arch.h hf_lin): "self_attn.q_proj". */
static const ModelArch *arch_of(const ModelConfig *c) { return c && c->arch ? c->arch : arch_llama(); }

static void tensor_name(char *buf, size_t cap, const ModelConfig *c, int layer, int t, char which) {
    snprintf(buf, cap, "base_model.model.model.layers.%d.%s.lora_%c.weight", layer, arch_of(c)->hf_lin[t], which);
}

/* Heads whose rows a target's B matrix permutes (q, k), else 0. */
static int permuted_heads(const ModelConfig *c, int t) {
    return t == LORA_Q ? c->n_heads : t == LORA_K ? c->n_kv_heads : 0;
}

/* rows [heads*hd, cols]: to_hf: Meta row (h, 2i+s) -> HF row (h, s*hd/2+i); else back. */
static void permute_rows(float *dst, const float *src, const ModelConfig *c, int heads, int cols, int to_hf) {
    model_qk_permute(dst, src, heads, c->head_dim, c->rope_dims ? c->rope_dims : c->head_dim, (size_t)cols * sizeof(float), to_hf);
}

/* ------------------------------------------------------------------------- */
/* writing                                                                    */

int lora_save_peft(const LoraAdapter *a, const ModelConfig *c, const char *dir, const char *base_name,
                   const LoraMeta *meta, int n_meta) {
    if (file_mkdirs(dir) != 0) return -1;
    StWriter w;
    st_writer_init(&w);
    float **tmp = calloc((size_t)a->n_layers * 2, sizeof *tmp);
    int ntmp = 0, rc = tmp ? 0 : err_set("out of memory");
    char nm[192];
    for (int l = 0; l < a->n_layers && !rc; l++)
        for (int t = 0; t < LORA_N_TARGETS && !rc; t++) {
            const LoraMat *p = lora_mat(a, l, (LoraTarget)t);
            if (!p) continue;
            int64_t sa[2] = {p->rank, p->in}, sb[2] = {p->out, p->rank};
            tensor_name(nm, sizeof nm, c, l, t, 'A');
            rc = st_writer_add_f32(&w, nm, DT_F32, 2, sa, p->A);
            const float *B = p->B;
            int heads = permuted_heads(c, t);
            if (!rc && heads) {
                float *q = malloc((size_t)p->out * p->rank * sizeof *q);
                if (!q) { rc = err_set("out of memory"); break; }
                permute_rows(q, p->B, c, heads, p->rank, 1);
                tmp[ntmp++] = q;
                B = q;
            }
            tensor_name(nm, sizeof nm, c, l, t, 'B');
            if (!rc) rc = st_writer_add_f32(&w, nm, DT_F32, 2, sb, B);
        }
    for (int i = 0; i < n_meta && !rc; i++) rc = st_writer_meta_set(&w, meta[i].key, meta[i].value);
    if (!rc) rc = st_writer_meta_set(&w, "format", "pt");
    char *path = file_join(dir, "adapter_model.safetensors");
    if (!rc) rc = path ? st_writer_write(&w, path) : err_set("out of memory");
    free(path);
    st_writer_free(&w);
    for (int i = 0; i < ntmp; i++) free(tmp[i]);
    free(tmp);
    if (rc) return rc;

    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "peft_type", "LORA");
    cJSON_AddStringToObject(j, "task_type", "CAUSAL_LM");
    cJSON_AddNumberToObject(j, "r", a->rank);
    cJSON_AddNumberToObject(j, "lora_alpha", a->alpha);
    cJSON *tm = cJSON_AddArrayToObject(j, "target_modules");
    for (int t = 0; t < LORA_N_TARGETS; t++)
        if (a->targets & LORA_BIT(t)) cJSON_AddItemToArray(tm, cJSON_CreateString(arch_module_name(arch_of(c), (LinearSlot)t)));
    cJSON_AddNumberToObject(j, "lora_dropout", 0.0);
    cJSON_AddStringToObject(j, "bias", "none");
    cJSON_AddBoolToObject(j, "fan_in_fan_out", 0);
    cJSON_AddBoolToObject(j, "use_rslora", a->rslora);
    cJSON_AddStringToObject(j, "base_model_name_or_path", base_name ? base_name : "");
    cJSON_AddBoolToObject(j, "inference_mode", 1);
    cJSON_AddBoolToObject(j, "init_lora_weights", 1);
    cJSON_AddNullToObject(j, "modules_to_save");
    cJSON_AddNullToObject(j, "layers_to_transform");
    cJSON_AddNullToObject(j, "revision");
    char *text = cJSON_Print(j);
    cJSON_Delete(j);
    char *cpath = file_join(dir, "adapter_config.json");
    rc = (text && cpath) ? file_write_all_atomic(cpath, text, strlen(text)) : err_set("out of memory");
    free(text);
    free(cpath);
    return rc;
}

/* ------------------------------------------------------------------------- */
/* reading                                                                    */

static int module_index(const ModelArch *a, const char *s) {
    for (int t = 0; t < LORA_N_TARGETS; t++)
        if (!strcmp(s, arch_module_name(a, (LinearSlot)t))) return t;
    return -1;
}

static int peft_config_parse(LoraPeftConfig *pc, const ModelArch *arch, const char *text, size_t n, const char *cpath);

int lora_peft_config_parse(LoraPeftConfig *pc, const char *text, size_t n, const char *cpath) {
    return peft_config_parse(pc, arch_llama(), text, n, cpath);
}

/* target_modules are the family's module names (arch.h). */
static int peft_config_parse(LoraPeftConfig *pc, const ModelArch *arch, const char *text, size_t n, const char *cpath) {
    memset(pc, 0, sizeof *pc);
    cJSON *j = io_json_parse_object((const uint8_t *)text, n, cpath, NULL);
    if (!j) return -1;
    int rc = io_json_unique_keys(j, cpath);
    unsigned targets = 0;
    const cJSON *v;
#define FAIL(...) do { rc = err_set(__VA_ARGS__); goto done; } while (0)
    if (rc) goto done;
    v = cJSON_GetObjectItemCaseSensitive(j, "peft_type");
    if (v && (!cJSON_IsString(v) || strcmp(v->valuestring, "LORA"))) FAIL("%s: field 'peft_type': expected \"LORA\"", cpath);
    v = cJSON_GetObjectItemCaseSensitive(j, "r");
    if (!cJSON_IsNumber(v) || v->valuedouble < 1 || v->valuedouble > LORA_PEFT_MAX_RANK || v->valuedouble != floor(v->valuedouble))
        FAIL("%s: field 'r': expected an integer from 1 to %d", cpath, LORA_PEFT_MAX_RANK);
    pc->rank = (int)v->valuedouble;
    v = cJSON_GetObjectItemCaseSensitive(j, "lora_alpha");
    if (!cJSON_IsNumber(v) || !(v->valuedouble > 0) || v->valuedouble > FLT_MAX || !((float)v->valuedouble > 0))
        FAIL("%s: field 'lora_alpha': expected a positive number within the range of a float", cpath);
    if (v->valuedouble > LORA_PEFT_MAX_ALPHA)
        FAIL("%s: field 'lora_alpha': %g is beyond %g: no trained adapter scales its update that much", cpath, v->valuedouble, LORA_PEFT_MAX_ALPHA);
    pc->alpha = (float)v->valuedouble;
    v = cJSON_GetObjectItemCaseSensitive(j, "use_rslora");
    if (v && !cJSON_IsBool(v)) FAIL("%s: field 'use_rslora': expected true or false", cpath);
    pc->rslora = v && cJSON_IsTrue(v);
    v = cJSON_GetObjectItemCaseSensitive(j, "fan_in_fan_out");
    if (v && cJSON_IsTrue(v)) FAIL("%s: field 'fan_in_fan_out' is true: only Llama (nn.Linear) adapters are supported", cpath);
    v = cJSON_GetObjectItemCaseSensitive(j, "bias");
    if (v && (!cJSON_IsString(v) || strcmp(v->valuestring, "none"))) FAIL("%s: field 'bias': only \"none\" is supported", cpath);
    /* what would make PEFT compute another model than muscle's: refused by name */
    v = cJSON_GetObjectItemCaseSensitive(j, "use_dora");
    if (v && !cJSON_IsFalse(v) && !cJSON_IsNull(v)) FAIL("%s: field 'use_dora': DoRA adapters are not supported (expected false)", cpath);
    const char *unsup[] = {"modules_to_save", "layers_to_transform", "layers_pattern", "layer_replication"};
    for (int i = 0; i < 4; i++) {
        v = cJSON_GetObjectItemCaseSensitive(j, unsup[i]);
        if (v && !cJSON_IsNull(v) && !(cJSON_IsArray(v) && !v->child) && !(cJSON_IsString(v) && !v->valuestring[0]))
            FAIL("%s: field '%s' is not supported (expected null): muscle applies LoRA to every layer and saves no other module", cpath, unsup[i]);
    }
    const char *pats[] = {"rank_pattern", "alpha_pattern"};
    for (int i = 0; i < 2; i++) {
        v = cJSON_GetObjectItemCaseSensitive(j, pats[i]);
        if (v && !cJSON_IsNull(v) && !(cJSON_IsObject(v) && !v->child)) FAIL("%s: field '%s': per-module ranks are not supported", cpath, pats[i]);
    }
    v = cJSON_GetObjectItemCaseSensitive(j, "target_modules");
    if (cJSON_IsArray(v)) {
        const cJSON *e;
        cJSON_ArrayForEach(e, v) {
            int t = cJSON_IsString(e) ? module_index(arch, e->valuestring) : -1;
            if (t < 0)
                FAIL("%s: field 'target_modules': '%.64s' is not one of %s, %s, %s, %s, %s, %s, %s", cpath,
                     cJSON_IsString(e) ? e->valuestring : "?", arch_module_name(arch, LIN_Q), arch_module_name(arch, LIN_K),
                     arch_module_name(arch, LIN_V), arch_module_name(arch, LIN_O), arch_module_name(arch, LIN_GATE),
                     arch_module_name(arch, LIN_UP), arch_module_name(arch, LIN_DOWN));
            targets |= LORA_BIT(t);
        }
    } else if (cJSON_IsString(v) && !strcmp(v->valuestring, "all-linear")) {
        targets = LORA_TARGETS_ALL;
    } else {
        FAIL("%s: field 'target_modules': expected a list of module names (regular expressions are not supported)", cpath);
    }
    if (!targets) FAIL("%s: field 'target_modules' is empty", cpath);
    pc->targets = targets;
done:
#undef FAIL
    cJSON_Delete(j);
    if (rc) memset(pc, 0, sizeof *pc);
    return rc;
}

int lora_load_peft(LoraAdapter *a, const ModelConfig *c, const char *dir) {
    memset(a, 0, sizeof *a);
    char *cpath = file_join(dir, "adapter_config.json");
    if (!cpath) return err_set("out of memory");
    size_t n;
    char *text = file_read_all(cpath, &n, LORA_PEFT_CONFIG_MAX_BYTES);
    if (!text) { free(cpath); return -1; }
    LoraPeftConfig pc;
    int rc = peft_config_parse(&pc, arch_of(c), text, n, cpath);
    free(text);
    if (rc) { free(cpath); return -1; }
    if (lora_init(a, c, pc.rank, pc.alpha, pc.rslora, pc.targets) != 0) { rc = -1; goto done; }
    {
        char *spath = file_join(dir, "adapter_model.safetensors");
        StFile f;
        if (!spath || st_open(&f, spath) != 0) { free(spath); rc = -1; goto done; }
        char nm[192];
        size_t n_used = 0;
        for (int l = 0; l < a->n_layers && !rc; l++)
            for (int t = 0; t < LORA_N_TARGETS && !rc; t++) {
                LoraMat *p = lora_mat(a, l, (LoraTarget)t);
                if (!p) continue;
                for (int which = 0; which < 2 && !rc; which++) {
                    tensor_name(nm, sizeof nm, c, l, t, which ? 'B' : 'A');
                    const StTensor *st = st_tensor_find(&f, nm);
                    int64_t r0 = which ? p->out : p->rank, r1 = which ? p->rank : p->in;
                    if (!st) { rc = err_set("%s: tensor '%s' is missing", spath, nm); break; }
                    if (st->ndim != 2 || st->shape[0] != r0 || st->shape[1] != r1) {
                        rc = err_set("%s: tensor '%s' has shape [%lld, %lld]: expected [%lld, %lld]", spath, nm,
                                     (long long)st->shape[0], (long long)(st->ndim > 1 ? st->shape[1] : 0), (long long)r0, (long long)r1);
                        break;
                    }
                    if (!st->supported || (st->dtype != DT_F32 && st->dtype != DT_F16 && st->dtype != DT_BF16)) {
                        rc = err_set("%s: tensor '%s' has dtype %s: expected F32, F16 or BF16", spath, nm, st->dtype_name);
                        break;
                    }
                    float *dst = which ? p->B : p->A;
                    if (st_tensor_to_f32(&f, st, dst) != 0) { rc = -1; break; }
                    for (uint64_t i = 0; i < st->numel; i++)
                        if (!isfinite(dst[i])) {
                            rc = err_set("%s: tensor '%s' holds %s at element %llu: weights must be finite", spath, nm,
                                         isnan(dst[i]) ? "NaN" : "an infinity", (unsigned long long)i);
                            break;
                        }
                    if (rc) break;
                    n_used++;
                    int heads = permuted_heads(c, t);
                    if (which && heads) {
                        float *q = malloc((size_t)p->out * p->rank * sizeof *q);
                        if (!q) { rc = err_set("out of memory"); break; }
                        permute_rows(q, dst, c, heads, p->rank, 0);
                        memcpy(dst, q, (size_t)p->out * p->rank * sizeof *q);
                        free(q);
                    }
                }
            }
        /* every tensor is one muscle applies: a DoRA magnitude vector, a saved lm_head or a
         * layer's LoRA outside target_modules would change PEFT's model, not muscle's */
        for (size_t i = 0; rc == 0 && n_used != f.n_tensors && i < f.n_tensors; i++) {
            const char *tn = f.tensors[i].name;
            int known = 0;
            for (int l = 0; l < a->n_layers && !known; l++)
                for (int t = 0; t < LORA_N_TARGETS && !known; t++)
                    for (int w = 0; w < 2 && !known && lora_mat(a, l, (LoraTarget)t); w++) {
                        tensor_name(nm, sizeof nm, c, l, t, w ? 'B' : 'A');
                        known = !strcmp(nm, tn);
                    }
            if (!known) rc = err_set("%s: tensor '%.100s' is not a LoRA weight of target_modules: not supported", spath, tn);
        }
        st_close(&f);
        free(spath);
    }
done:
    if (rc && a->data) lora_free(a);
    free(cpath);
    return rc;
}

char *lora_peft_base_name(const char *dir) {
    char *cpath = file_join(dir, "adapter_config.json"), *out = NULL;
    size_t n;
    char *text = cpath ? file_read_all(cpath, &n, LORA_PEFT_CONFIG_MAX_BYTES) : NULL;
    cJSON *j = text ? cJSON_ParseWithLength(text, n) : NULL;
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, "base_model_name_or_path");
    if (cJSON_IsString(v) && v->valuestring[0]) out = strdup(v->valuestring);
    cJSON_Delete(j);
    free(text);
    free(cpath);
    return out;
}

char *lora_peft_meta(const char *dir, const char *key) {
    char *spath = file_join(dir, "adapter_model.safetensors");
    StFile f;
    char *out = NULL;
    if (spath && st_open(&f, spath) == 0) {
        const char *v = st_meta_get(&f, key);
        if (v) out = strdup(v);
        st_close(&f);
    }
    free(spath);
    return out;
}
