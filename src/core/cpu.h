/* core/cpu.h - processor features and floating-point mode. */
#ifndef MUSCLE_CORE_CPU_H
#define MUSCLE_CORE_CPU_H

#include <stddef.h>

/* Sets flush-to-zero and denormals-are-zero on the calling thread and on every
 * OpenMP worker: sharp softmaxes otherwise produce denormals that slow the
 * arithmetic several times over. Call once at start-up. */
void cpu_flush_denormals(void);
/* Work (in element operations) below which a loop runs on one thread: waking the
 * team costs microseconds, and with another process on the cores an OpenMP barrier
 * can cost milliseconds, which made decoding a tiny model 60x slower. Use as
 *   #pragma omp parallel for if (CPU_PAR(work)) */
#define CPU_PAR_MIN 65536
#define CPU_PAR(work) ((size_t)(work) > (size_t)CPU_PAR_MIN)
/* Number of OpenMP threads that parallel regions will use. */
int cpu_threads(void);
/* Memory for a large buffer that is streamed or walked often (weight copies, run states):
 * from 2 MB up it starts on a 2 MB boundary and is marked for transparent huge pages
 * (first touch faults 512 times less, the walk misses the TLB far less; where the kernel
 * has no THP it is ordinary memory), smaller ones are 64-byte aligned. free() frees it;
 * NULL when out of memory. */
void *cpu_alloc_huge(size_t bytes);

#endif

/* OpenBLAS 0.3.21 (Debian bookworm) does not recognise recent Intel server cores
 * (e.g. family 6 model 207) and falls back to its SSE3 "Prescott" kernels, 4-6x
 * slower. When OPENBLAS_CORETYPE is unset, the library picked a generic core and the
 * CPU has AVX-512 (or AVX2), this sets OPENBLAS_CORETYPE=SkylakeX (or Haswell) and
 * re-executes the program once (/proc/self/exe) so that OpenBLAS starts with the right
 * kernels. It also sets GOMP_SPINCOUNT=1000 when neither GOMP_SPINCOUNT nor
 * OMP_WAIT_POLICY is set (libgomp's default spin starves the partner thread whenever
 * the machine has other work). Call first thing in main(). Returns normally when
 * nothing needs doing. MUSCLE_NO_BLAS_FIXUP=1 disables both. */
void cpu_blas_fixup(char **argv);
/* Name of the OpenBLAS kernel set in use. */
const char *cpu_blas_core(void);
