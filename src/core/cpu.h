/* core/cpu.h - processor features and floating-point mode. */
#ifndef MUSCLE_CORE_CPU_H
#define MUSCLE_CORE_CPU_H

/* Sets flush-to-zero and denormals-are-zero on the calling thread and on every
 * OpenMP worker: sharp softmaxes otherwise produce denormals that slow the
 * arithmetic several times over. Call once at start-up. */
void cpu_flush_denormals(void);
/* Number of OpenMP threads that parallel regions will use. */
int cpu_threads(void);

#endif
