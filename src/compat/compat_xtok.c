/* compat/compat_xtok.c - alignment, vocabulary mapping and the ULD loss across
 * tokenizers (compat_xtok.h has the maths). */
#include "compat/compat_xtok.h"
#include "core/error.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

const char *compat_xtok_map_name(CompatXtokMap m) { return m == COMPAT_XTOK_ULD ? "uld" : "exact"; }

int compat_xtok_map_parse(const char *s, CompatXtokMap *m) {
    if (s && strcmp(s, "exact") == 0) *m = COMPAT_XTOK_EXACT;
    else if (s && strcmp(s, "uld") == 0) *m = COMPAT_XTOK_ULD;
    else return err_set("--vocab-map: expected exact or uld, got '%s'", s ? s : "");
    return 0;
}

int compat_tok_same(const Tokenizer *a, const Tokenizer *b) {
    if (a == b) return 1;
    if (!a || !b) return 0;
    int n = tok_vocab_size(a);
    if (n != tok_vocab_size(b) || tok_bos_id(a) != tok_bos_id(b) || tok_eos_id(a) != tok_eos_id(b)) return 0;
    if (strcmp(tok_kind(a), tok_kind(b)) != 0) return 0;
    for (int i = 0; i < n; i++) {
        size_t la = 0, lb = 0;
        const char *pa = tok_piece(a, i, &la), *pb = tok_piece(b, i, &lb);
        if (!pa || !pb || la != lb || memcmp(pa, pb, la) != 0 || tok_type(a, i) != tok_type(b, i)) return 0;
    }
    return 1;
}

int compat_xtok_offsets(const Tokenizer *t, const int *ids, int n, int *off) {
    size_t full_len = 0;
    char *full = tok_decode(t, ids, n, &full_len);
    if (!full) return -1;
    off[0] = 0;
    off[n] = (int)full_len;
    for (int i = 1; i < n; i++) {
        size_t len = 0;
        char *p = tok_decode(t, ids, i, &len);
        if (!p) {
            free(full);
            return -1;
        }
        off[i] = len <= full_len && memcmp(p, full, len) == 0 ? (int)len : -1;
        free(p);
    }
    free(full);
    return 0;
}

int compat_xtok_align(const int *off_s, int ns, const int *off_t, int nt, int *t_of_s) {
    int i = 0, n = 0;
    for (int j = 0; j + 1 < ns; j++) {
        t_of_s[j] = -1;
        int b = off_s[j + 1];
        if (b < 0) continue;
        /* the teacher position standing at b: off_t[i + 1] == b (offsets are non-decreasing
         * where valid; the first one wins) */
        while (i + 1 < nt && (off_t[i + 1] < 0 || off_t[i + 1] < b)) i++;
        if (i + 1 < nt && off_t[i + 1] == b) {
            /* the same byte boundary: aligned, unless the student's previous position
             * already took this teacher position (a zero-length piece) */
            if (j == 0 || t_of_s[j - 1] != i) {
                t_of_s[j] = i;
                n++;
            }
        }
    }
    /* the last pair's span runs to the rows' ends: complete only when both end at one byte */
    if (ns > 0 && nt > 0 && off_s[ns] != off_t[nt])
        for (int j = ns - 2; j >= 0; j--)
            if (t_of_s[j] >= 0) {
                t_of_s[j] = -1;
                n--;
                break;
            }
    return n;
}

int compat_xtok_span_end(const int *t_of_s, int ns, int nt, int j, int *t_end) {
    int k = j + 1;
    while (k + 1 < ns && t_of_s[k] < 0) k++;
    if (k + 1 >= ns) k = ns - 1; /* no later aligned position: the row's end */
    if (t_end) *t_end = k < ns - 1 ? t_of_s[k] : nt - 1;
    return k;
}

void compat_xtok_span_side(const float *z, int V, const int *y, int n, CompatSpanSide *out) {
    out->wrong = 0;
    out->ll = 0.0;
    for (int k = 0; k < n; k++) {
        const float *zk = z + (size_t)k * V;
        int am = 0;
        for (int v = 1; v < V; v++)
            if (zk[v] > zk[am]) am = v;
        double mx = zk[am], s = 0.0;
        for (int v = 0; v < V; v++) s += exp((double)zk[v] - mx);
        out->wrong |= am != y[k];
        out->ll += (double)zk[y[k]] - mx - log(s);
    }
}

int compat_xtok_span_mask(CompatMethod method, const CompatSpanSide *student, const CompatSpanSide *old) {
    switch (method) {
    case COMPAT_STUDENT_WRONG: return student->wrong;
    case COMPAT_OLD_CORRECT: return !old->wrong;
    case COMPAT_TOKEN_LIKELIHOOD: return student->ll < old->ll;
    default: return 1;
    }
}

void compat_xtok_row_masks(CompatMethod method, const int *t_of_s, int ns, int nt, const int *ids, const float *z, int V,
                           const TeacherPos *t1, int *m) {
    int j = 0;
    for (; j + 1 < ns && t_of_s[j] < 0; j++) m[j] = -1; /* before the first span */
    while (j + 1 < ns) {
        int e = compat_xtok_span_end(t_of_s, ns, nt, j, NULL);
        CompatSpanSide st = {0, 0.0}, old = {t1[j].argmax != ids[j + 1], (double)t1[j].logp_y};
        if (method == COMPAT_STUDENT_WRONG || method == COMPAT_TOKEN_LIKELIHOOD)
            compat_xtok_span_side(z + (size_t)j * V, V, ids + j + 1, e - j, &st);
        int mk = compat_xtok_span_mask(method, &st, &old);
        for (int k = j; k < e; k++) m[k] = mk;
        j = e;
    }
}

double compat_xtok_pos_loss(const CompatConfig *c, int uld, int m, const float *z, int V, int y, int ans, int dist,
                            const TeacherPos *t1, const TeacherPos *t2, double ce_s, double kd_s, float *dz, float *scratch,
                            CompatTokenOut *out) {
    CompatConfig one = *c;
    one.method = COMPAT_NONE; /* the mask is m: one teacher, plain KL */
    int use1 = dist && m, use2 = dist && !m && t2 && c->method != COMPAT_NONE;
    double l = 0.0;
    if (use1 && uld) {
        float *g = scratch + 3 * (size_t)V;
        memset(g, 0, (size_t)V * sizeof *g);
        l = compat_uld_loss(t1->z, t1->k, z, V, c->temperature, kd_s, g, scratch + 4 * (size_t)V);
        l += compat_token_loss(&one, z, V, y, ans, 0, 0, NULL, NULL, ce_s, kd_s, dz, scratch, out);
        for (int v = 0; v < V; v++) dz[v] += g[v];
    } else {
        l = compat_token_loss(&one, z, V, y, ans, use1 || use2, 0, use1 ? t1 : use2 ? t2 : NULL, NULL, ce_s, kd_s, dz, scratch, out);
    }
    out->masked = m;
    return l;
}

/* A student piece by its decoded bytes; sorted on (bytes, rank: normal pieces before
 * byte pieces, id). */
typedef struct {
    const char *b;
    size_t n;
    int id, rank;
} Key;

static int key_cmp(const void *x, const void *y) {
    const Key *a = x, *b = y;
    size_t l = a->n < b->n ? a->n : b->n;
    int c = memcmp(a->b, b->b, l);
    if (c) return c;
    if (a->n != b->n) return a->n < b->n ? -1 : 1;
    if (a->rank != b->rank) return a->rank - b->rank;
    return a->id - b->id;
}

int compat_vocab_map_init(CompatVocabMap *m, const Tokenizer *teacher, const Tokenizer *student) {
    memset(m, 0, sizeof *m);
    m->vt = tok_vocab_size(teacher);
    m->vs = tok_vocab_size(student);
    m->s_of_t = malloc((size_t)m->vt * sizeof *m->s_of_t);
    if (!m->s_of_t) return err_set("out of memory");
    for (int i = 0; i < m->vt; i++) m->s_of_t[i] = -1;
    if (compat_tok_same(teacher, student)) { /* the identity */
        for (int i = 0; i < m->vt; i++) m->s_of_t[i] = i;
        m->n_mapped = m->vt;
        return 0;
    }
    /* the student's pieces by their decoded bytes, sorted (binary search below) */
    int vs = m->vs;
    Key *k = malloc((size_t)(vs ? vs : 1) * sizeof *k);
    char (*buf)[8] = malloc((size_t)(vs ? vs : 1) * 8);
    if (!k || !buf) {
        free(k);
        free(buf);
        compat_vocab_map_free(m);
        return err_set("out of memory");
    }
    int nk = 0;
    for (int s = 0; s < vs; s++) {
        int ty = tok_type(student, s);
        if (ty == TOK_CONTROL || ty == TOK_UNKNOWN || ty == TOK_UNUSED) continue;
        size_t len = 0;
        const char *p = tok_decode_piece(student, -1, s, buf[s], &len);
        if (!p || len == 0) continue;
        k[nk++] = (Key){p, len, s, ty == TOK_BYTE};
    }
    qsort(k, (size_t)nk, sizeof *k, key_cmp);
    char tb[8];
    for (int t = 0; t < m->vt; t++) {
        int ty = tok_type(teacher, t);
        if (t == tok_bos_id(teacher)) {
            m->s_of_t[t] = tok_bos_id(student);
        } else if (t == tok_eos_id(teacher)) {
            m->s_of_t[t] = tok_eos_id(student);
        } else if (ty != TOK_CONTROL && ty != TOK_UNKNOWN && ty != TOK_UNUSED) {
            size_t len = 0;
            const char *p = tok_decode_piece(teacher, -1, t, tb, &len);
            if (!p || len == 0) continue;
            Key key = {p, len, -1, -1};
            /* binary search for the first entry with these bytes */
            int lo = 0, hi = nk;
            while (lo < hi) {
                int mid = (lo + hi) / 2;
                size_t l = k[mid].n < len ? k[mid].n : len;
                int c = memcmp(k[mid].b, key.b, l);
                if (c == 0) c = k[mid].n < len ? -1 : k[mid].n > len ? 1 : 0;
                if (c < 0) lo = mid + 1;
                else hi = mid;
            }
            if (lo < nk && k[lo].n == len && memcmp(k[lo].b, p, len) == 0) m->s_of_t[t] = k[lo].id;
        }
        if (m->s_of_t[t] >= 0) m->n_mapped++;
    }
    free(k);
    free(buf);
    return 0;
}

void compat_vocab_map_free(CompatVocabMap *m) {
    free(m->s_of_t);
    memset(m, 0, sizeof *m);
}

double compat_vocab_map_logits(const CompatVocabMap *m, const float *zt, double T, float *zs) {
    float mx = -INFINITY;
    for (int t = 0; t < m->vt; t++)
        if (zt[t] > mx) mx = zt[t];
    double all = 0.0, kept = 0.0;
    for (int s = 0; s < m->vs; s++) zs[s] = COMPAT_XTOK_NONE;
    for (int t = 0; t < m->vt; t++) {
        double e = exp((double)zt[t] - mx);
        all += e;
        int s = m->s_of_t[t];
        if (s < 0 || s >= m->vs) continue;
        kept += e;
        if (zs[s] == COMPAT_XTOK_NONE) {
            zs[s] = zt[t];
        } else { /* two teacher pieces with one image: their masses at temperature T add,
                  * T log(exp(a / T) + exp(b / T)) */
            double a = zs[s] / T, b = zt[t] / T, hi = a > b ? a : b;
            zs[s] = (float)(T * (hi + log(exp(a - hi) + exp(b - hi))));
        }
    }
    return all > 0 ? kept / all : 0.0;
}

/* ------------------------------------------------------------------------- */
/* ULD                                                                        */

static int desc_float(const void *x, const void *y) {
    float a = *(const float *)x, b = *(const float *)y;
    return a < b ? 1 : a > b ? -1 : 0;
}

void compat_uld_teacher(const float *z, int V, double T, float *p) {
    float mx = -INFINITY;
    for (int j = 0; j < V; j++)
        if (z[j] > mx) mx = z[j];
    double s = 0.0;
    for (int j = 0; j < V; j++) s += exp(((double)z[j] - mx) / T);
    for (int j = 0; j < V; j++) p[j] = (float)(exp(((double)z[j] - mx) / T) / s);
    qsort(p, (size_t)V, sizeof *p, desc_float);
}

typedef struct {
    float q;
    int j;
} QIdx;

static int desc_qidx(const void *x, const void *y) {
    const QIdx *a = x, *b = y;
    if (a->q != b->q) return a->q < b->q ? 1 : -1;
    return a->j - b->j;
}

double compat_uld_loss(const float *pt, int kt, const float *z, int V, double T, double scale, float *dz, float *scratch) {
    float *q = scratch;
    QIdx *qi = (QIdx *)(scratch + V); /* 2 floats' room each */
    float mx = -INFINITY;
    for (int j = 0; j < V; j++)
        if (z[j] > mx) mx = z[j];
    double s = 0.0;
    for (int j = 0; j < V; j++) s += exp(((double)z[j] - mx) / T);
    for (int j = 0; j < V; j++) {
        q[j] = (float)(exp(((double)z[j] - mx) / T) / s);
        qi[j] = (QIdx){q[j], j};
    }
    qsort(qi, (size_t)V, sizeof *qi, desc_qidx);
    double loss = 0.0, gq = 0.0;
    int N = V > kt ? V : kt;
    for (int r = 0; r < N; r++) {
        double a = r < V ? qi[r].q : 0.0, b = r < kt ? pt[r] : 0.0;
        loss += fabs(a - b);
    }
    /* g_j = sign(q_j - p_(rank j)); gq = sum_k q_k g_k */
    for (int r = 0; r < V; r++) {
        double b = r < kt ? pt[r] : 0.0, d = qi[r].q - b;
        double g = d > 0 ? 1.0 : d < 0 ? -1.0 : 0.0;
        qi[r].q = (float)g; /* reuse: the sign at the class's rank */
        gq += q[qi[r].j] * g;
    }
    for (int r = 0; r < V; r++) {
        int j = qi[r].j;
        dz[j] += (float)(scale * q[j] * (qi[r].q - gq) / T);
    }
    return scale * loss;
}
