/* compat/compat_method.c - the compatibility methods' table (compat_method.h): one entry
 * and its functions per method. */
#include "compat_method.h"
#include "core/error.h"

#include <stdio.h>
#include <string.h>

/* ------------------------------------------------------------------------- */
/* what each method decides (token and choice levels)                        */

/* The MUSCLE masks: m = 1 takes M1's KL, m = 0 the new-side teacher's. */
static CompatPick muscle_pick(int m) { return (CompatPick){m ? 1 : 2, 1.0, m}; }
static CompatPick pick_student_wrong(const CompatConfig *c, const CompatPickIn *in) {
    (void)c;
    return muscle_pick(in->student_argmax != in->label);
}
static CompatPick pick_old_correct(const CompatConfig *c, const CompatPickIn *in) {
    (void)c;
    return muscle_pick(in->old_argmax == in->label);
}
static CompatPick pick_none(const CompatConfig *c, const CompatPickIn *in) {
    (void)c, (void)in;
    return muscle_pick(1);
}
static CompatPick pick_token_likelihood(const CompatConfig *c, const CompatPickIn *in) {
    (void)c;
    return muscle_pick(in->student_logp < in->old_logp);
}
static CompatPick pick_seq_likelihood(const CompatConfig *c, const CompatPickIn *in) {
    (void)c;
    return muscle_pick(in->seq_flag != 0);
}
/* focal distillation: (alpha + beta [M1 correct]) * a_1 */
static CompatPick pick_focal(const CompatConfig *c, const CompatPickIn *in) {
    int ok = in->old_argmax == in->label;
    return (CompatPick){1, c->focal_alpha + c->focal_beta * ok, ok};
}
/* mixture teacher: its KL everywhere (it holds M1 already) */
static CompatPick pick_mixture(const CompatConfig *c, const CompatPickIn *in) {
    (void)c, (void)in;
    return (CompatPick){2, 1.0, 0};
}
/* instance weighting: student-wrong, M1's term weighted by M1's probability of the label */
static CompatPick pick_weighted(const CompatConfig *c, const CompatPickIn *in) {
    (void)c;
    int m = in->student_argmax != in->label;
    return (CompatPick){m ? 1 : 2, m ? in->old_prob : 1.0, m};
}
/* flip-targeted: M1's KL only where M2 is wrong and M1 right; nothing elsewhere */
static CompatPick pick_flip(const CompatConfig *c, const CompatPickIn *in) {
    (void)c;
    int m = in->new_argmax != in->label && in->old_argmax == in->label;
    return (CompatPick){m ? 1 : 0, 1.0, m};
}

/* ------------------------------------------------------------------------- */
/* sequence level (compat_loss.h: CompatSeqScores)                            */

static int seq_none(const CompatSeqScores *s) {
    (void)s;
    return 1;
}
static int seq_old_correct(const CompatSeqScores *s) { return s->labelled ? (s->r1 >= s->r2 && s->r1 > 0) : 1; }
static int seq_student_wrong(const CompatSeqScores *s) { return s->labelled ? s->rs < s->r1 : !s->student_same; }
/* instance weighting: M1's ROUGE-1 F against the reference (1 without one) */
static double seq_weight_old_score(const CompatSeqScores *s) { return s->labelled ? s->r1 : 1.0; }
/* flip-targeted: M1's output scores better than M2's (labelled only: no reference, no flip) */
static int seq_flip(const CompatSeqScores *s) { return s->labelled && s->r1 > s->r2; }

/* ------------------------------------------------------------------------- */
/* the table                                                                  */

/* The shorthands of compat_method_list.h's entries. */
#define TOK COMPAT_LEVEL_BIT(COMPAT_LEVEL_TOKEN)
#define CHO COMPAT_LEVEL_BIT(COMPAT_LEVEL_CHOICE)
#define SEQ COMPAT_LEVEL_BIT(COMPAT_LEVEL_SEQUENCE)
#define M1 COMPAT_TEACH_M1
#define M2 COMPAT_TEACH_M2
#define ENS COMPAT_TEACH_ENSEMBLE
#define MIX COMPAT_TEACH_MIXTURE
#define P_LV_TOK COMPAT_LEVEL_TOKEN
#define P_LV_CHO COMPAT_LEVEL_CHOICE
#define P_LV_SEQ COMPAT_LEVEL_SEQUENCE
#define P(n, lv, ...) {.name = n, .level = P_LV_##lv, __VA_ARGS__}
#define METHOD_ENTRY_(ID, ...) [COMPAT_##ID] = {.id = COMPAT_##ID, __VA_ARGS__},
static const CompatMethodDef methods[COMPAT_N_METHODS] = {COMPAT_METHOD_LIST(METHOD_ENTRY_)};
#undef METHOD_ENTRY_
#undef P
#undef TOK
#undef CHO
#undef SEQ
#undef M1
#undef M2
#undef ENS
#undef MIX

unsigned compat_preset_kinds(const CompatPresetDef *p) {
    if (p->kinds) return p->kinds;
    return p->level == COMPAT_LEVEL_CHOICE ? COMPAT_FOR_MC : p->level == COMPAT_LEVEL_SEQUENCE ? COMPAT_FOR_GEN : COMPAT_FOR_MC | COMPAT_FOR_GEN;
}

const CompatMethodDef *compat_method_def(CompatMethod m) { return m >= 0 && m < COMPAT_N_METHODS ? &methods[m] : NULL; }

const CompatMethodDef *compat_methods(int *n) {
    *n = COMPAT_N_METHODS;
    return methods;
}

int compat_method_has_level(CompatMethod m, CompatLevel l) {
    const CompatMethodDef *d = compat_method_def(m);
    return d && (d->levels & COMPAT_LEVEL_BIT(l)) != 0;
}

const char *compat_method_name(CompatMethod m) { return m >= 0 && m < COMPAT_N_METHODS ? methods[m].name : "?"; }

const char *compat_methods_list(unsigned level_bits, int xtok) {
    static char buf[512];
    const char *pick[COMPAT_N_METHODS];
    int n = 0;
    for (int i = 0; i < COMPAT_N_METHODS; i++) {
        const CompatMethodDef *d = &methods[i];
        if (!(d->levels & level_bits)) continue;
        if (xtok && !(d->xtok_token == COMPAT_XTOK_TOKEN_YES || (xtok == 1 && d->xtok_token == COMPAT_XTOK_TOKEN_EXACT))) continue;
        pick[n++] = d->name;
    }
    size_t k = 0;
    buf[0] = 0;
    for (int i = 0; i < n; i++)
        k += (size_t)snprintf(buf + k, sizeof buf - k, "%s%s", i == 0 ? "" : i == n - 1 ? " or " : ", ", pick[i]);
    return buf;
}

int compat_method_parse(const char *s, CompatMethod *m) {
    for (int i = 0; i < COMPAT_N_METHODS; i++)
        if (strcmp(s, methods[i].name) == 0) {
            *m = (CompatMethod)i;
            return 0;
        }
    return err_set("'%s': expected %s", s, compat_methods_list(~0u, 0));
}

const char *compat_methods_help(void) {
    static char buf[2048];
    size_t k = 0;
    for (int i = 0; i < COMPAT_N_METHODS && k < sizeof buf; i++) {
        const CompatMethodDef *d = &methods[i];
        char lv[32] = "";
        size_t l = 0;
        for (int v = COMPAT_LEVEL_TOKEN; v <= COMPAT_LEVEL_SEQUENCE; v++)
            if (d->levels & COMPAT_LEVEL_BIT(v)) l += (size_t)snprintf(lv + l, sizeof lv - l, "%s%c", l ? "," : "", compat_level_name((CompatLevel)v)[0]);
        k += (size_t)snprintf(buf + k, sizeof buf - k, "    %-20s [%s] %s\n", d->name, lv, d->help);
    }
    return buf;
}
