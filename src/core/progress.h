/* core/progress.h - progress on stderr: a bar with done/total, rate and ETA.
 * On a terminal the line is redrawn in place (at most 10 times a second); otherwise a
 * plain line is printed every 10% so that logs stay short. `quiet` silences it. */
#ifndef MUSCLE_CORE_PROGRESS_H
#define MUSCLE_CORE_PROGRESS_H

typedef struct {
    const char *label;
    const char *unit;   /* "items", "steps", ... */
    long total;
    long done;
    int quiet, tty;
    double t0, last_draw;
    int last_decile;
    char extra[96];     /* shown after the rate, e.g. "loss 2.31" */
} Progress;

void progress_init(Progress *p, const char *label, const char *unit, long total, int quiet);
/* Sets the count done; `extra` (may be NULL) is shown at the end of the line. */
void progress_update(Progress *p, long done, const char *extra);
/* Final line (always printed unless quiet). */
void progress_finish(Progress *p);
/* Seconds since an arbitrary start (monotonic). */
double progress_now(void);

#endif
