/* core/progress.c */
#include "progress.h"

#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

double progress_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

void progress_init(Progress *p, const char *label, const char *unit, long total, int quiet) {
    memset(p, 0, sizeof *p);
    p->label = label;
    p->unit = unit;
    p->total = total;
    p->quiet = quiet;
    p->tty = isatty(2);
    p->t0 = progress_now();
    p->last_decile = -1;
}

static void fmt_time(char *buf, size_t cap, double s) {
    if (s < 0 || s > 1e7) { snprintf(buf, cap, "?"); return; }
    long t = (long)(s + 0.5);
    if (t >= 3600) snprintf(buf, cap, "%ldh%02ldm", t / 3600, (t / 60) % 60);
    else snprintf(buf, cap, "%ldm%02lds", t / 60, t % 60);
}

static void draw(Progress *p, int final) {
    double el = progress_now() - p->t0;
    double rate = el > 0 ? (double)p->done / el : 0;
    double frac = p->total > 0 ? (double)p->done / (double)p->total : 0;
    char eta[32], elapsed[32], bar[24];
    fmt_time(eta, sizeof eta, rate > 0 ? (double)(p->total - p->done) / rate : -1);
    fmt_time(elapsed, sizeof elapsed, el);
    int fill = (int)(frac * 20 + 0.5);
    for (int i = 0; i < 20; i++) bar[i] = i < fill ? '#' : '.';
    bar[20] = 0;
    fprintf(stderr, "%s%s [%s] %ld/%ld %s, %.1f %s/s, %s %s%s%s%s%s", p->tty ? "\r" : "", p->label, bar, p->done, p->total,
            p->unit, rate, p->unit, final ? "took" : "ETA", final ? elapsed : eta, p->extra[0] ? ", " : "", p->extra,
            p->tty ? "\033[K" : "", (final || !p->tty) ? "\n" : "");
    fflush(stderr);
}

void progress_update(Progress *p, long done, const char *extra) {
    p->done = done;
    if (extra) snprintf(p->extra, sizeof p->extra, "%s", extra);
    if (p->quiet) return;
    double now = progress_now();
    if (p->tty) {
        if (now - p->last_draw < 0.1 && done < p->total) return;
        p->last_draw = now;
        draw(p, 0);
    } else {
        int dec = p->total > 0 ? (int)(10 * done / p->total) : 0;
        if (dec == p->last_decile || done >= p->total) return;
        p->last_decile = dec;
        draw(p, 0);
    }
}

void progress_finish(Progress *p) {
    if (!p->quiet) draw(p, 1);
}
