/* compat/compat_method_list.h - THE list of compatibility methods (docs/compat.md: "A method
 * is one table entry"). One X(ID, fields...) entry per method, the fields a designated
 * initializer of CompatMethodDef (compat_method.h) whose functions (pick_*, seq_*) live in
 * compat_method.c. This one list makes
 *   - the CompatMethod enum (COMPAT_<ID>, compat_loss.h),
 *   - the methods' table (compat_method.c), which the levels and losses read,
 *   - --compat's errors and `muscle finetune --help`'s method list,
 *   - `muscle update`'s presets of every method (.presets: name, level, ce-weight, ...),
 *     its --help lines and --methods' errors (update_plan.c adds the non-loss ones).
 * A new method: one entry here and its function(s) in compat_method.c.
 *
 * Shorthands inside the entries (defined in compat_method.c only): TOK, CHO, SEQ (level
 * bits), M1, M2, ENS, MIX (COMPAT_TEACH_*), P(name, level, ce_weight, ...) a preset
 * (CompatPresetDef). Unnamed fields are 0: COMPAT_KD_KL, COMPAT_SCALES_MIX,
 * COMPAT_XTOK_TOKEN_NO, no sequence level function. The order is --help's. */
#ifndef MUSCLE_COMPAT_COMPAT_METHOD_LIST_H
#define MUSCLE_COMPAT_COMPAT_METHOD_LIST_H

#define COMPAT_METHOD_LIST(X)                                                                                          \
    X(STUDENT_WRONG, .name = "student-wrong", .levels = TOK | CHO | SEQ, .teachers = M1 | M2,                          \
      .pick = pick_student_wrong, .seq_mask = seq_student_wrong, .seq_reads_student = 1,                                \
      .xtok_token = COMPAT_XTOK_TOKEN_YES, .help = "M1 where the student is wrong, M2 where right (the paper's best)", \
      .presets = {P("muscle", TOK), P("muscle-answer", TOK, .answer_only = 1), P("choice", CHO, 0.5),                  \
                  P("seqkd", SEQ, 0.5)})                                                                               \
    X(OLD_CORRECT, .name = "old-correct", .levels = TOK | CHO | SEQ, .teachers = M1 | M2, .pick = pick_old_correct,    \
      .seq_mask = seq_old_correct, .xtok_token = COMPAT_XTOK_TOKEN_YES, .help = "M1 where M1 is right, else M2",        \
      .presets = {P("old-correct", TOK)})                                                                              \
    X(NONE, .name = "none", .levels = TOK | CHO | SEQ, .teachers = M1, .pick = pick_none, .seq_mask = seq_none,         \
      .xtok_token = COMPAT_XTOK_TOKEN_YES, .help = "plain distillation from M1", .presets = {P("distill", TOK)})        \
    X(TOKEN_LIKELIHOOD, .name = "token-likelihood", .levels = TOK | CHO, .teachers = M1 | M2,                          \
      .pick = pick_token_likelihood, .xtok_token = COMPAT_XTOK_TOKEN_YES, .help = "M1 where the student's q(y) < M1's", \
      .presets = {P("token-likelihood", TOK, 0.5)})                                                                    \
    X(SEQ_LIKELIHOOD, .name = "sequence-likelihood", .levels = TOK | CHO, .teachers = M1 | M2,                         \
      .pick = pick_seq_likelihood, .token_seq_flag = 1,                                                                \
      .help = "M1 on the sequences the student finds less likely than M1",                                             \
      .presets = {P("sequence-likelihood", TOK, 0.5)})                                                                 \
    X(FOCAL, .name = "focal", .levels = TOK | CHO, .teachers = M1, .scales = COMPAT_SCALES_ADD, .pick = pick_focal,     \
      .help = "baseline: CE + L (alpha + beta [M1 correct]) KL(M1 || student)",                                         \
      .presets = {P("focal", TOK), P("focal-choice", CHO)})                                                            \
    X(ELODI, .name = "elodi", .levels = TOK | CHO, .teachers = M1, .kd = COMPAT_KD_LOGIT_DIFF,                          \
      .scales = COMPAT_SCALES_ADD, .help = "baseline: CE + L |log q - log p1|^p beyond a margin",                       \
      .presets = {P("elodi", TOK), P("elodi-choice", CHO)})                                                            \
    X(ENSEMBLE, .name = "ensemble", .levels = TOK | CHO | SEQ, .teachers = M1 | ENS, .pick = pick_student_wrong,       \
      .seq_mask = seq_student_wrong, .seq_reads_student = 1,                                                           \
      .help = "student-wrong with the mean of K new adapters as the new teacher (sequence: its outputs distilled)",    \
      .presets = {P("ensemble", TOK), P("ensemble-choice", CHO, 0.5), P("ensemble-seqkd", SEQ, 0.5)})                  \
    X(MIXTURE, .name = "mixture", .levels = TOK | CHO | SEQ, .teachers = M1 | MIX, .pick = pick_mixture,               \
      .seq_mask = seq_student_wrong, .seq_reads_student = 1,                                                           \
      .help = "distil (1-a) mean(K new) + a M1 (a: --mixture-weight, or chosen on validation)",                        \
      .presets = {P("mixture", TOK, .kinds = COMPAT_FOR_MC), P("mixture-choice", CHO, 0.5),                            \
                  P("mixture-distill", CHO),                                                                           \
                  P("mixture-gen", TOK, .kinds = COMPAT_FOR_GEN, .mixture_a = COMPAT_MIXTURE_A_GEN),                   \
                  P("mixture-seqkd", SEQ, 0.5, .mixture_a = COMPAT_MIXTURE_A_GEN)})                                    \
    X(WEIGHTED, .name = "weighted", .levels = CHO | SEQ, .teachers = M1 | M2, .pick = pick_weighted,                   \
      .seq_mask = seq_student_wrong, .seq_weight = seq_weight_old_score, .seq_reads_student = 1,                       \
      .help = "student-wrong, M1's term weighted by M1's confidence in the gold answer",                               \
      .presets = {P("weighted-choice", CHO, 0.5), P("weighted-seqkd", SEQ, 0.5)})                                      \
    X(FLIP, .name = "flip", .levels = CHO | SEQ, .teachers = M1 | M2, .pick = pick_flip, .seq_mask = seq_flip,         \
      .help = "M1's term only where M2 is wrong and M1 right",                                                         \
      .presets = {P("flip-choice", CHO, 0.5), P("flip-seqkd", SEQ, 0.5)})

#endif
