/* core/dist.h - the processes of a distributed run (MPI), or one process.
 *
 * Built with MPI (the Makefile defines MUSCLE_MPI when it finds mpicc) and started by
 * an MPI launcher (mpirun, mpiexec, srun --mpi=pmix: recognised by the environment
 * variables they set), dist_init() calls MPI_Init and the calls below talk to the
 * other ranks of MPI_COMM_WORLD. Otherwise (no MPI in the build, a plain `muscle`
 * command, or MUSCLE_NO_MPI=1 in the environment) there is one rank and every call is
 * a no-op that leaves the data as it is: the program behaves exactly as without this
 * module.
 *
 * Collectives must be called by every rank in the same order. Each one is timed: the
 * seconds spent in them (dist_comm_seconds) tell the communication share of a step.
 * A watchdog bounds the time a rank waits in one collective: after MUSCLE_DIST_TIMEOUT
 * seconds (default 600; 0 = no watchdog) without an answer from the others (a rank died
 * or hangs) it prints "muscle: error: rank R: ..." and ends the process with exit code
 * 124, which makes the launcher stop the job.
 */
#ifndef MUSCLE_CORE_DIST_H
#define MUSCLE_CORE_DIST_H

#include <stddef.h>
#include <stdint.h>

/* Joins the job when launched by MPI (else one rank). Call once, early, before any
 * thread is started (and after anything that re-executes the program). -1 with
 * err_set() when MPI fails to start. */
int dist_init(int *argc, char ***argv);
/* Leaves the job. exit_code: what the process is about to exit with; 0 and signal
 * stops (>= 128, reached by every rank together) finalise MPI normally; another
 * code on a run of several ranks aborts the whole job with it (MPI_Abort), so that
 * the other ranks do not wait for this one forever. */
void dist_free(int exit_code);

int dist_rank(void);   /* 0 .. size-1 (0 without MPI) */
int dist_size(void);   /* ranks in the job (1 without MPI) */
int dist_active(void); /* MPI is initialised and there are several ranks */

/* Element-wise sums over the ranks, in place, same result on every rank. Large
 * buffers go in buckets of DIST_BUCKET_FLOATS values. -1 (err_set) on failure. */
#define DIST_BUCKET_FLOATS (4u << 20) /* 16 MB of floats */
int dist_allreduce_sum_f32(float *buf, size_t n);
int dist_allreduce_sum_f64(double *buf, size_t n);
int dist_allreduce_sum_i64(int64_t *buf, size_t n);
int dist_allreduce_sum_int(int *buf, size_t n);
/* Maximum of an int over the ranks, in place. */
int dist_allreduce_max_int(int *v);
/* Copies n bytes from rank `root` to every rank. */
int dist_bcast(void *buf, size_t n, int root);
/* Rank 0 receives the concatenation, in rank order, of every rank's n bytes at buf:
 * *out (malloc'd, NUL-terminated for convenience) and *out_n. Other ranks get NULL / 0. */
int dist_gather_bytes(const void *buf, size_t n, char **out, size_t *out_n);
int dist_barrier(void);

/* The block of [0, n) that rank r of size ranks takes: [*lo, *hi), contiguous, in rank
 * order, sizes differing by at most one (a rank may get none when n < size). */
void dist_shard(long n, int rank, int size, long *lo, long *hi);

/* Seconds spent in collectives since the start (or the last reset), and their count. */
double dist_comm_seconds(void);
long dist_comm_calls(void);
void dist_comm_reset(void);

#endif
