/* compat/compat_loss.c - token- and choice-level compatibility losses (compat_loss.h). */
#include "compat_loss.h"
#include "compat_method.h"
#include "core/error.h"
#include "kernel/vmath.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------------- */
/* settings                                                                   */

void compat_config_default(CompatConfig *c) {
    memset(c, 0, sizeof *c);
    c->method = COMPAT_STUDENT_WRONG;
    c->level = COMPAT_LEVEL_TOKEN;
    c->temperature = 2.0;
    c->ce_weight = 0.0;
    c->kd_weight = 1.0;
    c->focal_alpha = 1.0;
    c->focal_beta = 5.0;
    c->elodi_margin = 0.5;
    c->elodi_p = 2;
    c->topk = 0;
    c->cache_mb = 1024.0;
    c->gen_max_tokens = 128;
    c->gen_no_repeat_ngram = 0;
    c->mixture_a = -1.0;
    c->mixture_tol = 0.005;
}

const char *compat_level_name(CompatLevel l) {
    return l == COMPAT_LEVEL_CHOICE ? "choice" : l == COMPAT_LEVEL_SEQUENCE ? "sequence" : "token";
}

int compat_level_parse(const char *s, CompatLevel *l) {
    if (strcmp(s, "token") == 0) *l = COMPAT_LEVEL_TOKEN;
    else if (strcmp(s, "choice") == 0) *l = COMPAT_LEVEL_CHOICE;
    else if (strcmp(s, "sequence") == 0) *l = COMPAT_LEVEL_SEQUENCE;
    else return err_set("'%s': expected token, choice or sequence", s);
    return 0;
}

int compat_config_check(const CompatConfig *c) {
    if (c->method < 0 || c->method >= COMPAT_N_METHODS) return err_set("compat: unknown method %d", (int)c->method);
    if (!(c->temperature > 0) || !isfinite(c->temperature)) return err_set("compat: temperature %g: expected a number > 0", c->temperature);
    if (!(c->ce_weight >= 0 && c->ce_weight <= 1)) return err_set("compat: ce weight %g: expected a number in 0..1", c->ce_weight);
    if (!(c->kd_weight >= 0) || !isfinite(c->kd_weight)) return err_set("compat: distillation weight %g: expected a number >= 0", c->kd_weight);
    if (!(c->focal_alpha >= 0) || !(c->focal_beta >= 0) || !isfinite(c->focal_alpha) || !isfinite(c->focal_beta))
        return err_set("compat: focal alpha %g, beta %g: expected numbers >= 0", c->focal_alpha, c->focal_beta);
    if (!(c->elodi_margin >= 0) || !isfinite(c->elodi_margin)) return err_set("compat: elodi margin %g: expected a number >= 0", c->elodi_margin);
    if (c->elodi_p != 1 && c->elodi_p != 2) return err_set("compat: elodi p %d: expected 1 or 2", c->elodi_p);
    if (c->topk < 0) return err_set("compat: teacher top-k %d: expected >= 0 (0 = automatic)", c->topk);
    if (!(c->cache_mb > 0)) return err_set("compat: teacher cache %g MB: expected a number > 0", c->cache_mb);
    if (c->level < COMPAT_LEVEL_TOKEN || c->level > COMPAT_LEVEL_SEQUENCE) return err_set("compat: unknown level %d", (int)c->level);
    if (c->level == COMPAT_LEVEL_SEQUENCE && compat_seq_method_check(c->method) != 0) return -1;
    if (!compat_method_has_level(c->method, c->level))
        return err_set("compat: --compat %s has no %s level: use %s with --level %s", compat_method_name(c->method),
                       compat_level_name(c->level), compat_methods_list(COMPAT_LEVEL_BIT(c->level), 0), compat_level_name(c->level));
    if (c->method == COMPAT_MIXTURE && !(c->mixture_a < 0 || (c->mixture_a > 0 && c->mixture_a < 1)))
        return err_set("compat: mixture weight %g: expected a number in (0, 1), or none to choose it on the validation split", c->mixture_a);
    if (!(c->mixture_tol >= 0 && c->mixture_tol <= 1)) return err_set("compat: mixture tolerance %g: expected a number in 0..1", c->mixture_tol);
    if (c->level == COMPAT_LEVEL_SEQUENCE) {
        if (c->answer_only) return err_set("compat: --distill-tokens answer goes with the token level (the sequence level trains on M1's output tokens)");
        if (c->gen_max_tokens < 1) return err_set("compat: max tokens %d: expected >= 1", c->gen_max_tokens);
        if (c->gen_no_repeat_ngram < 0) return err_set("compat: no-repeat n-gram %d: expected >= 0", c->gen_no_repeat_ngram);
    }
    return 0;
}

char *compat_config_json(const CompatConfig *c) {
    char buf[512];
    int n = snprintf(buf, sizeof buf,
                     "{\"method\":\"%s\",\"level\":\"%s\",\"distill_tokens\":\"%s\",\"temperature\":%.17g,"
                     "\"ce_weight\":%.17g,\"kd_weight\":%.17g,\"focal_alpha\":%.17g,\"focal_beta\":%.17g,"
                     "\"elodi_margin\":%.17g,\"elodi_p\":%d,\"teacher_topk\":%d,\"teacher_cache_mb\":%.17g}",
                     compat_method_name(c->method), compat_level_name(c->level), c->answer_only ? "answer" : "all",
                     c->temperature, c->ce_weight, c->kd_weight, c->focal_alpha, c->focal_beta, c->elodi_margin,
                     c->elodi_p, c->topk, c->cache_mb);
    if (n < 0 || (size_t)n >= sizeof buf) return NULL;
    if (c->level == COMPAT_LEVEL_SEQUENCE) { /* the decoding of the outputs (only here: other levels keep their JSON) */
        int m = snprintf(buf + n - 1, sizeof buf - (size_t)n + 1, ",\"max_tokens\":%d,\"no_repeat_ngram\":%d}", c->gen_max_tokens,
                         c->gen_no_repeat_ngram);
        if (m < 0 || (size_t)(n - 1 + m) >= sizeof buf) return NULL;
        n += m - 1;
    }
    if (c->method == COMPAT_MIXTURE) { /* only for the mixture: other methods keep their JSON */
        int m = snprintf(buf + n - 1, sizeof buf - (size_t)n + 1, ",\"mixture_a\":%.17g,\"mixture_tol\":%.17g}", c->mixture_a,
                         c->mixture_tol);
        if (m < 0 || (size_t)(n - 1 + m) >= sizeof buf) return NULL;
        n += m - 1;
    }
    if (c->vocab_map) { /* only when not the default: same-tokenizer runs keep their JSON */
        int m = snprintf(buf + n - 1, sizeof buf - (size_t)n + 1, ",\"vocab_map\":\"uld\"}");
        if (m < 0 || (size_t)(n - 1 + m) >= sizeof buf) return NULL;
        n += m - 1;
    }
    char *s = malloc((size_t)n + 1);
    if (s) memcpy(s, buf, (size_t)n + 1);
    return s;
}

/* ------------------------------------------------------------------------- */
/* teacher positions                                                          */

void compat_teacher_pos(const float *z, int V, double T, int y, int k, int *ids_out, float *z_out, TeacherPos *tp) {
    float mx = kvec_max(z, V);
    int am = kvec_argmax(z, V);
    tp->lse1 = (float)kvec_lse(z, mx, 1.0, V);
    tp->lseT = (float)kvec_lse(z, mx, 1.0 / T, V);
    tp->logp_y = (y >= 0 && y < V) ? (float)((double)z[y] - tp->lse1) : 0.0f;
    tp->argmax = am;
    if (k >= V) {
        memcpy(z_out, z, (size_t)V * sizeof(float));
        tp->k = V;
        tp->ids = NULL;
        tp->z = z_out;
        return;
    }
    /* the k largest, kept sorted in descending order (ties: lower id first) */
    int n = 0;
    for (int j = 0; j < V; j++) {
        float v = z[j];
        if (n == k && !(v > z_out[k - 1])) continue;
        int p = n < k ? n++ : k - 1;
        while (p > 0 && v > z_out[p - 1]) {
            z_out[p] = z_out[p - 1];
            ids_out[p] = ids_out[p - 1];
            p--;
        }
        z_out[p] = v;
        ids_out[p] = j;
    }
    tp->k = n;
    tp->ids = ids_out;
    tp->z = z_out;
}

/* ------------------------------------------------------------------------- */
/* ensemble and mixture teachers                                              */

void compat_teacher_acc(const float *z, int V, double T, double w, double *acc) {
    double mx = z[0], s = 0.0;
    for (int j = 1; j < V; j++) mx = z[j] > mx ? z[j] : mx;
    for (int j = 0; j < V; j++) s += exp(((double)z[j] - mx) / T);
    for (int j = 0; j < V; j++) acc[j] += w * exp(((double)z[j] - mx) / T) / s;
}

void compat_teacher_acc_d(const double *z, int V, double T, double w, double *acc) {
    double mx = z[0], s = 0.0;
    for (int j = 1; j < V; j++) mx = z[j] > mx ? z[j] : mx;
    for (int j = 0; j < V; j++) s += exp((z[j] - mx) / T);
    for (int j = 0; j < V; j++) acc[j] += w * exp((z[j] - mx) / T) / s;
}

void compat_teacher_logits(const double *acc, int V, double T, float *out) {
    for (int j = 0; j < V; j++) out[j] = (float)(T * log(acc[j] > 1e-300 ? acc[j] : 1e-300));
}

void compat_teacher_logits_d(const double *acc, int V, double T, double *out) {
    for (int j = 0; j < V; j++) out[j] = T * log(acc[j] > 1e-300 ? acc[j] : 1e-300);
}

/* ------------------------------------------------------------------------- */
/* token level                                                                */

double compat_logprob(const float *z, int V, int y) { return (double)z[y] - kvec_logsumexp(z, V); }

static inline int tid(const TeacherPos *t, int j) { return t->ids ? t->ids[j] : j; }

/* KL(p || q) between the teacher's bucketed distribution at temperature T and the
 * student's q = softmax(z / T) (qT [V] in scratch, logsumexp of (z - mx)/T = lsT).
 * Sets *qrest and *r for the gradient. q_rest is summed over the classes outside K
 * (marked by flipping their qT's sign for the moment, then restored): 1 - sum_K q
 * would lose it to the floats' rounding (~1e-7) as soon as the student is confident,
 * and with it r log(r / q_rest) and the tail's gradient r q_j / q_rest. */
static double kl_teacher(const TeacherPos *t, const float *z, int V, float mx, double lsT, float *qT, double invT,
                         double *qrest, double *r) {
    double kl = 0.0, psum = 0.0;
    for (int j = 0; j < t->k; j++) {
        int id = tid(t, j);
        double lp = (double)t->z[j] * invT - t->lseT;
        double p = exp(lp);
        double lq = ((double)z[id] - mx) * invT - lsT;
        if (p > 0) kl += p * (lp - lq);
        psum += p;
    }
    double rr = 1.0 - psum, qr = 0.0;
    if (rr < 1e-12 || t->ids == NULL) rr = 0.0;
    if (rr > 0) {
        for (int j = 0; j < t->k; j++) qT[t->ids[j]] = -qT[t->ids[j]];
        for (int j = 0; j < V; j++)
            if (qT[j] > 0.0f) qr += qT[j];
        for (int j = 0; j < t->k; j++) qT[t->ids[j]] = -qT[t->ids[j]];
        if (qr < 1e-37) qr = 1e-37; /* the whole tail below float range: bounded, not infinite */
        kl += rr * (log(rr) - log(qr));
    }
    *qrest = rr > 0 ? qr : 1.0;
    *r = rr;
    return kl;
}

/* The kept classes' dz, written whole: dz_id = c / T (qT_id - p_id) + B q1_id (the caller
 * has written every class as a class outside K: c / T (1 - r / q_rest) qT_j + B q1_j).
 * Adding c / T r / q_rest qT_id back onto that instead would cancel catastrophically
 * when q_rest is small (r / q_rest large). One teacher per position: the masks pick
 * one, focal reads only M1. */
static void kl_grad_kept(const TeacherPos *t, const float *qT, const float *q1, double invT, double c, double B, float *dz) {
    double f = c * invT;
    for (int j = 0; j < t->k; j++) {
        int id = tid(t, j);
        double p = exp((double)t->z[j] * invT - t->lseT);
        dz[id] = (float)(f * ((double)qT[id] - p) + B * q1[id]);
    }
}

double compat_token_loss(const CompatConfig *c, const float *z, int V, int y, int answer, int distill, int seq_flag,
                         const TeacherPos *t1, const TeacherPos *t2, double ce_scale, double kd_scale, float *dz,
                         float *scratch, CompatTokenOut *out) {
    CompatTokenOut o = {0, 0, 0, 0};
    if (!answer && !distill) {
        memset(dz, 0, (size_t)V * sizeof(float));
        if (out) *out = o;
        return 0.0;
    }
    double invT = 1.0 / c->temperature;
    float *qT = scratch, *q1 = scratch + V, *g = scratch + 2 * (size_t)V;
    /* ---- read z: softmaxes, the student's argmax, the losses ---- */
    /* The student's softmaxes at T and at 1, exp in double: the one place that keeps its own
     * exp instead of kernel/vmath.h's policy. The KL below weighs these probabilities (focal:
     * up to alpha + beta times), and the float polynomial's 2e-7 per term would take the loss
     * past the 1e-6 of the float64 formulas that tests/compat/test_compat_loss.c holds it to. */
    float mx = kvec_max(z, V);
    int am = kvec_argmax(z, V);
    double sT = 0.0, s1 = 0.0;
    for (int j = 0; j < V; j++) {
        double d = (double)z[j] - mx;
        qT[j] = (float)exp(d * invT);
        q1[j] = (float)exp(d);
        sT += qT[j];
        s1 += q1[j];
    }
    double lsT = log(sT), ls1 = log(s1);
    float iT = (float)(1.0 / sT), i1 = (float)(1.0 / s1);
    for (int j = 0; j < V; j++) {
        qT[j] *= iT;
        q1[j] *= i1;
    }
    double logq1_y = (double)z[y] - mx - ls1;
    o.student_correct = am == y;
    if (answer) o.ce = -logq1_y;

    double c1 = 0.0, c2 = 0.0, qr1 = 1, r1 = 0, qr2 = 1, r2 = 0, gsum = 0.0, cel = 0.0;
    int use1 = 0, use2 = 0, use_elodi = 0;
    if (distill) {
        const CompatMethodDef *def = compat_method_def(c->method);
        if (def->kd == COMPAT_KD_LOGIT_DIFF) {
            /* D_j = log q1_j - log p1_j over the kept classes */
            double kd = 0.0;
            for (int j = 0; j < t1->k; j++) {
                int id = tid(t1, j);
                double D = ((double)z[id] - mx - ls1) - ((double)t1->z[j] - t1->lse1), a = fabs(D);
                double gj = 0.0;
                if (a > c->elodi_margin) {
                    kd += c->elodi_p == 2 ? a * a : a;
                    gj = (c->elodi_p == 2 ? 2.0 * D : (D > 0 ? 1.0 : -1.0)) / t1->k;
                }
                g[j] = (float)gj;
                gsum += gj;
            }
            o.kd = kd / t1->k;
            cel = kd_scale;
            use_elodi = 1;
        } else {
            CompatPickIn in = {y, am, t1 ? t1->argmax : -1, t2 ? t2->argmax : -1, logq1_y, t1 ? (double)t1->logp_y : 0.0,
                               t1 ? exp((double)t1->logp_y) : 0.0, seq_flag};
            CompatPick pk = def->pick(c, &in);
            o.masked = pk.masked;
            if (pk.teacher == 1) {
                o.kd = pk.w * kl_teacher(t1, z, V, mx, lsT, qT, invT, &qr1, &r1);
                c1 = kd_scale * pk.w;
                use1 = 1;
            } else if (pk.teacher == 2) {
                o.kd = pk.w * kl_teacher(t2, z, V, mx, lsT, qT, invT, &qr2, &r2);
                c2 = kd_scale * pk.w;
                use2 = 1;
            }
        }
    }
    /* ---- write dz: every class as one outside the teacher's kept ones (A qT + B q1),
     * then the kept ones whole, then the CE's -1 at y ---- */
    double A = 0.0, Bc = answer ? ce_scale : 0.0;
    if (use1) A += c1 * invT * (1.0 - (r1 > 0 ? r1 / qr1 : 0.0));
    if (use2) A += c2 * invT * (1.0 - (r2 > 0 ? r2 / qr2 : 0.0));
    if (use_elodi) Bc -= cel * gsum;
    float fA = (float)A, fB = (float)Bc;
    for (int j = 0; j < V; j++) dz[j] = fA * qT[j] + fB * q1[j];
    if (use1) kl_grad_kept(t1, qT, q1, invT, c1, Bc, dz);
    if (use2) kl_grad_kept(t2, qT, q1, invT, c2, Bc, dz);
    if (answer) dz[y] -= (float)ce_scale;
    if (use_elodi)
        for (int j = 0; j < t1->k; j++) dz[tid(t1, j)] += (float)(cel * g[j]);
    if (out) *out = o;
    return (answer ? ce_scale * o.ce : 0.0) + (distill ? kd_scale * o.kd : 0.0);
}

/* ------------------------------------------------------------------------- */
/* choice level                                                               */

/* log softmax(v / T) into out [n]. */
static void log_softmax_d(const double *v, int n, double T, double *out) {
    double mx = v[0];
    for (int i = 1; i < n; i++) mx = v[i] > mx ? v[i] : mx;
    double s = 0.0;
    for (int i = 0; i < n; i++) s += exp((v[i] - mx) / T);
    double ls = log(s);
    for (int i = 0; i < n; i++) out[i] = (v[i] - mx) / T - ls;
}

static int argmax_d(const double *v, int n) {
    int a = 0;
    for (int i = 1; i < n; i++)
        if (v[i] > v[a]) a = i;
    return a;
}

double compat_choice_loss(const CompatConfig *c, const double *ll, const double *ll1, const double *ll2, int n, int label,
                          int with_ce, double ce_scale, double kd_scale, double *dll, CompatTokenOut *out) {
    enum { MAXC = 64 };
    double lq[MAXC], lp[MAXC], lq1[MAXC], lp1[MAXC];
    CompatTokenOut o = {0, 0, 0, 0};
    if (n > MAXC) n = MAXC; /* task loading caps choices at 64 */
    double T = c->temperature;
    for (int i = 0; i < n; i++) dll[i] = 0.0;
    int am = argmax_d(ll, n), am1 = argmax_d(ll1, n);
    o.student_correct = am == label;
    log_softmax_d(ll, n, T, lq);
    const CompatMethodDef *def = compat_method_def(c->method);
    if (def->kd == COMPAT_KD_LOGIT_DIFF) {
        log_softmax_d(ll, n, 1.0, lq1);
        log_softmax_d(ll1, n, 1.0, lp1);
        double kd = 0.0, gsum = 0.0, gv[MAXC];
        for (int i = 0; i < n; i++) {
            double D = lq1[i] - lp1[i], a = fabs(D);
            gv[i] = 0.0;
            if (a > c->elodi_margin) {
                kd += c->elodi_p == 2 ? a * a : a;
                gv[i] = (c->elodi_p == 2 ? 2.0 * D : (D > 0 ? 1.0 : -1.0)) / n;
            }
            gsum += gv[i];
        }
        o.kd = kd / n;
        for (int i = 0; i < n; i++) dll[i] += kd_scale * (gv[i] - exp(lq1[i]) * gsum);
    } else {
        log_softmax_d(ll1, n, 1.0, lp1);
        CompatPickIn in = {label, am, am1, ll2 ? argmax_d(ll2, n) : -1, ll[label], ll1[label], exp(lp1[label]),
                           ll[label] < ll1[label]};
        CompatPick pk = def->pick(c, &in);
        o.masked = pk.masked;
        const double *teacher = pk.teacher == 1 ? ll1 : pk.teacher == 2 ? ll2 : NULL;
        double w = pk.w;
        if (teacher) {
            log_softmax_d(teacher, n, T, lp);
            double kl = 0.0;
            for (int i = 0; i < n; i++) {
                double p = exp(lp[i]);
                kl += p * (lp[i] - lq[i]);
                dll[i] += kd_scale * w * (exp(lq[i]) - p) / T;
            }
            o.kd = w * kl;
        }
    }
    if (with_ce) {
        o.ce = -ll[label];
        dll[label] -= ce_scale;
    }
    if (out) *out = o;
    return (with_ce ? ce_scale * o.ce : 0.0) + kd_scale * o.kd;
}

/* ------------------------------------------------------------------------- */
/* sequence level                                                             */

int compat_seq_method_check(CompatMethod m) {
    if (compat_method_has_level(m, COMPAT_LEVEL_SEQUENCE)) return 0;
    return err_set("compat: --compat %s has no sequence level: use %s with --level sequence", compat_method_name(m),
                   compat_methods_list(COMPAT_LEVEL_BIT(COMPAT_LEVEL_SEQUENCE), 0));
}

int compat_seq_mask(CompatMethod m, const CompatSeqScores *s) {
    if (compat_seq_method_check(m) != 0) return -1;
    return compat_method_def(m)->seq_mask(s);
}

double compat_seq_weight(CompatMethod m, const CompatSeqScores *s) {
    const CompatMethodDef *d = compat_method_def(m);
    return d && d->seq_weight ? d->seq_weight(s) : 1.0;
}

void compat_seq_scales(const CompatConfig *c, double n_ref, double n_m1, double *ce, double *kd) {
    *ce = n_ref > 0 ? c->ce_weight / n_ref : 0.0;
    *kd = n_m1 > 0 ? c->kd_weight / n_m1 : 0.0;
}

double compat_seq_row_loss(const float *z, int V, const int *ids, const uint8_t *mask, int len, double scale, float *dz,
                           int *correct) {
    double loss = 0.0;
    int right = 0;
    for (int j = 0; j + 1 < len; j++) {
        const float *zj = z + (size_t)j * V;
        float *dj = dz + (size_t)j * V;
        if (!mask[j + 1] || scale == 0.0) {
            memset(dj, 0, (size_t)V * sizeof(float));
            continue;
        }
        int y = ids[j + 1];
        float mx = kvec_max(zj, V);
        double s = kvec_sum_exp(zj, mx, V);
        loss += scale * ((double)mx + log(s) - (double)zj[y]);
        right += kvec_argmax(zj, V) == y;
        kvec_exp_scale(dj, zj, mx, (float)(scale / s), V); /* zj read before dj written */
        dj[y] -= (float)scale;
    }
    if (correct) *correct = right;
    return loss;
}
