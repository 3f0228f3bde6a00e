/* metrics/compat_json.c - the JSON names of the compatibility statistics (compat.h), written
 * once: `muscle compare --json` and report.json both call these. */
#include "compat.h"

#include <cJSON.h>
#include <math.h>

static cJSON *num_or_null(double v) { return isnan(v) ? cJSON_CreateNull() : cJSON_CreateNumber(v); }

cJSON *compat_stat_json(const CompatStat *s) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddItemToObject(o, "value", num_or_null(s->value));
    cJSON_AddItemToObject(o, "lo", num_or_null(s->lo));
    cJSON_AddItemToObject(o, "hi", num_or_null(s->hi));
    if (s->den >= 0 && !isnan(s->value)) {
        cJSON_AddNumberToObject(o, "num", (double)s->num);
        cJSON_AddNumberToObject(o, "den", (double)s->den);
    }
    return o;
}

void compat_report_json_add(cJSON *o, const CompatReport *r) {
    if (r->discrete) {
        cJSON_AddItemToObject(o, "acc_old", compat_stat_json(&r->acc1));
        cJSON_AddItemToObject(o, "acc_new", compat_stat_json(&r->acc2));
        cJSON_AddItemToObject(o, "nfr", compat_stat_json(&r->nfr));
        cJSON_AddItemToObject(o, "pfr", compat_stat_json(&r->pfr));
        cJSON_AddItemToObject(o, "ifr", compat_stat_json(&r->ifr));
        cJSON_AddItemToObject(o, "nfi", compat_stat_json(&r->nfi));
        cJSON_AddItemToObject(o, "btc", compat_stat_json(&r->btc));
    }
    if (r->continuous) {
        cJSON_AddItemToObject(o, "score_old", compat_stat_json(&r->mean1));
        cJSON_AddItemToObject(o, "score_new", compat_stat_json(&r->mean2));
        cJSON_AddItemToObject(o, "score_nfr", compat_stat_json(&r->cnfr));
        cJSON_AddItemToObject(o, "score_pfr", compat_stat_json(&r->cpfr));
        cJSON_AddItemToObject(o, "m_r", compat_stat_json(&r->m_r));
        cJSON_AddItemToObject(o, "m_g", compat_stat_json(&r->m_g));
        cJSON_AddItemToObject(o, "score_btc", compat_stat_json(&r->cbtc));
    }
}

void compat_delta_json_add(cJSON *o, const CompatDelta *d) {
    if (d->discrete) {
        cJSON_AddItemToObject(o, "dnfr", compat_stat_json(&d->dnfr));
        cJSON_AddItemToObject(o, "rel_dnfr_pct", compat_stat_json(&d->rel_dnfr));
        cJSON_AddItemToObject(o, "dpfr", compat_stat_json(&d->dpfr));
        cJSON_AddItemToObject(o, "dacc", compat_stat_json(&d->dacc));
    }
    if (d->continuous) {
        cJSON_AddItemToObject(o, "score_dnfr", compat_stat_json(&d->dcnfr));
        cJSON_AddItemToObject(o, "score_rel_dnfr_pct", compat_stat_json(&d->rel_dcnfr));
        cJSON_AddItemToObject(o, "dscore", compat_stat_json(&d->dmean));
    }
}
