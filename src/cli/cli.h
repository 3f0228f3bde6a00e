/* cli/cli.h - the `muscle` program's commands. Each returns the process exit code. */
#ifndef MUSCLE_CLI_H
#define MUSCLE_CLI_H

int cmd_info(int argc, char **argv);
int cmd_tokenize(int argc, char **argv);
int cmd_generate(int argc, char **argv);
int cmd_score(int argc, char **argv);
int cmd_convert(int argc, char **argv);
int cmd_compare(int argc, char **argv);
int cmd_eval(int argc, char **argv);
int cmd_pretrain(int argc, char **argv);
int cmd_finetune(int argc, char **argv);
int cmd_update(int argc, char **argv);
int cmd_report(int argc, char **argv);
int cmd_gate(int argc, char **argv);
int cmd_export(int argc, char **argv);

/* Prints "muscle: error: <err_msg()>" and returns 1. */
int cli_fail(void);
/* Prints a usage error for a command ("muscle CMD: <msg> (see muscle CMD --help)") and
 * returns 2. */
int cli_usage_error(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* The same in the form of every other error ("muscle: error: <msg> (see muscle CMD
 * --help)"), as finetune, pretrain and update print them; returns 2. */
int cli_usage_fail(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Parses an integer / float option value; on failure prints an error. */
int cli_parse_int(const char *opt, const char *s, long lo, long hi, long *out);
int cli_parse_float(const char *opt, const char *s, double *out);

/* help texts of pretrain and finetune (train_help.c) */
extern const char *const pretrain_help, *const finetune_help;
/* The help of pretrain (0) or finetune (1): finetune's lists the compatibility methods from their table. */
void train_help_print(int finetune);

#endif
