/* core/dist.c - MPI ranks, or one process (see dist.h). */
#include "dist.h"
#include "error.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static int g_rank = 0, g_size = 1, g_mpi = 0;
static double g_comm_s = 0.0;
static long g_comm_n = 0;

int dist_rank(void) { return g_rank; }
int dist_size(void) { return g_size; }
int dist_active(void) { return g_mpi && g_size > 1; }
double dist_comm_seconds(void) { return g_comm_s; }
long dist_comm_calls(void) { return g_comm_n; }
void dist_comm_reset(void) {
    g_comm_s = 0.0;
    g_comm_n = 0;
}

void dist_shard(long n, int rank, int size, long *lo, long *hi) {
    if (size < 1) size = 1;
    *lo = n * rank / size;
    *hi = n * (rank + 1) / size;
}

#ifdef MUSCLE_MPI
#include <mpi.h>
#include <pthread.h>
#include <stdatomic.h>
#include <unistd.h>

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* ---- the watchdog: a thread that ends the process when a collective does not return ---- */

static _Atomic long long g_coll_start_ms = 0; /* 0: not in a collective */
static const char *_Atomic g_coll_name = "";
static double g_timeout_s = 600.0;

static long long now_ms(void) { return (long long)(now_s() * 1000.0) + 1; }

static void *watchdog(void *arg) {
    (void)arg;
    for (;;) {
        struct timespec ts = {0, 200 * 1000 * 1000};
        nanosleep(&ts, NULL);
        long long t0 = atomic_load(&g_coll_start_ms);
        if (t0 && (double)(now_ms() - t0) / 1000.0 > g_timeout_s) {
            fprintf(stderr,
                    "muscle: error: rank %d of %d: no answer from the other ranks for %.0f s in %s: a rank died or hangs "
                    "(MUSCLE_DIST_TIMEOUT=%g); stopping\n",
                    g_rank, g_size, g_timeout_s, atomic_load(&g_coll_name), g_timeout_s);
            fflush(stderr);
            _exit(124);
        }
    }
    return NULL;
}

static double coll_begin(const char *name) {
    atomic_store(&g_coll_name, name);
    double t = now_s();
    atomic_store(&g_coll_start_ms, now_ms());
    return t;
}

static int coll_end(double t0, int mrc, const char *name) {
    atomic_store(&g_coll_start_ms, 0);
    g_comm_s += now_s() - t0;
    g_comm_n++;
    if (mrc == MPI_SUCCESS) return 0;
    char msg[MPI_MAX_ERROR_STRING];
    int len = 0;
    MPI_Error_string(mrc, msg, &len);
    return err_set("rank %d of %d: %s failed: %s (another rank may have died)", g_rank, g_size, name, msg);
}

static int launched_by_mpi(void) {
    const char *no = getenv("MUSCLE_NO_MPI");
    if (no && *no && strcmp(no, "0")) return 0;
    static const char *const vars[] = {"OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "PMI_SIZE", "PMI_RANK", "MPI_LOCALNRANKS"};
    for (size_t i = 0; i < sizeof vars / sizeof vars[0]; i++)
        if (getenv(vars[i])) return 1;
    return 0;
}

int dist_init(int *argc, char ***argv) {
    if (g_mpi || !launched_by_mpi()) return 0;
    int provided = 0;
    if (MPI_Init_thread(argc, argv, MPI_THREAD_FUNNELED, &provided) != MPI_SUCCESS) return err_set("MPI_Init failed");
    g_mpi = 1;
    MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
    MPI_Comm_rank(MPI_COMM_WORLD, &g_rank);
    MPI_Comm_size(MPI_COMM_WORLD, &g_size);
    const char *to = getenv("MUSCLE_DIST_TIMEOUT");
    if (to && *to) {
        char *end;
        double v = strtod(to, &end);
        if (*end || !(v >= 0)) return err_set("MUSCLE_DIST_TIMEOUT '%s': expected seconds >= 0 (0 = no watchdog)", to);
        g_timeout_s = v;
    }
    if (g_size > 1 && g_timeout_s > 0) {
        pthread_t th;
        pthread_attr_t at;
        pthread_attr_init(&at);
        pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
        if (pthread_create(&th, &at, watchdog, NULL) != 0) {
            pthread_attr_destroy(&at);
            return err_set("rank %d: cannot start the watchdog thread", g_rank);
        }
        pthread_attr_destroy(&at);
    }
    return 0;
}

void dist_free(int exit_code) {
    if (!g_mpi) return;
    fflush(stdout);
    fflush(stderr);
    if (g_size > 1 && exit_code != 0 && exit_code < 128) MPI_Abort(MPI_COMM_WORLD, exit_code); /* does not return */
    MPI_Finalize();
    g_mpi = 0;
}

static int allreduce(void *buf, size_t n, size_t elem, MPI_Datatype type, MPI_Op op, const char *name) {
    if (!dist_active() || n == 0) return 0;
    char *p = buf;
    for (size_t off = 0; off < n; off += DIST_BUCKET_FLOATS) {
        size_t k = n - off < DIST_BUCKET_FLOATS ? n - off : DIST_BUCKET_FLOATS;
        double t0 = coll_begin(name);
        int mrc = MPI_Allreduce(MPI_IN_PLACE, p + off * elem, (int)k, type, op, MPI_COMM_WORLD);
        if (coll_end(t0, mrc, name) != 0) return -1;
    }
    return 0;
}

int dist_allreduce_sum_f32(float *buf, size_t n) { return allreduce(buf, n, sizeof *buf, MPI_FLOAT, MPI_SUM, "MPI_Allreduce"); }
int dist_allreduce_sum_f64(double *buf, size_t n) { return allreduce(buf, n, sizeof *buf, MPI_DOUBLE, MPI_SUM, "MPI_Allreduce"); }
int dist_allreduce_sum_i64(int64_t *buf, size_t n) { return allreduce(buf, n, sizeof *buf, MPI_INT64_T, MPI_SUM, "MPI_Allreduce"); }
int dist_allreduce_sum_int(int *buf, size_t n) { return allreduce(buf, n, sizeof *buf, MPI_INT, MPI_SUM, "MPI_Allreduce"); }
int dist_allreduce_max_int(int *v) { return allreduce(v, 1, sizeof *v, MPI_INT, MPI_MAX, "MPI_Allreduce"); }

int dist_bcast(void *buf, size_t n, int root) {
    if (!dist_active() || n == 0) return 0;
    char *p = buf;
    for (size_t off = 0; off < n; off += (size_t)1 << 30) {
        size_t k = n - off < ((size_t)1 << 30) ? n - off : (size_t)1 << 30;
        double t0 = coll_begin("MPI_Bcast");
        int mrc = MPI_Bcast(p + off, (int)k, MPI_BYTE, root, MPI_COMM_WORLD);
        if (coll_end(t0, mrc, "MPI_Bcast") != 0) return -1;
    }
    return 0;
}

int dist_gather_bytes(const void *buf, size_t n, char **out, size_t *out_n) {
    *out = NULL;
    *out_n = 0;
    if (!dist_active()) {
        *out = malloc(n + 1);
        if (!*out) return err_set("out of memory");
        if (n) memcpy(*out, buf, n);
        (*out)[n] = 0;
        *out_n = n;
        return 0;
    }
    if (n > (size_t)1 << 30) return err_set("rank %d: %zu bytes to gather: more than 1 GiB from one rank", g_rank, n);
    int mine = (int)n, *counts = NULL, *displs = NULL;
    if (g_rank == 0) {
        counts = calloc((size_t)g_size, sizeof *counts);
        displs = calloc((size_t)g_size, sizeof *displs);
        if (!counts || !displs) {
            free(counts);
            free(displs);
            return err_set("out of memory"); /* the job stops: dist_free aborts it */
        }
    }
    double t0 = coll_begin("MPI_Gather");
    int mrc = MPI_Gather(&mine, 1, MPI_INT, counts, 1, MPI_INT, 0, MPI_COMM_WORLD);
    if (coll_end(t0, mrc, "MPI_Gather") != 0) {
        free(counts);
        free(displs);
        return -1;
    }
    char *all = NULL;
    size_t total = 0;
    if (g_rank == 0) {
        for (int r = 0; r < g_size; r++) {
            if (total + (size_t)counts[r] > (size_t)0x7fffffff) {
                size_t want = total + (size_t)counts[r];
                free(counts);
                free(displs);
                return err_set("%zu bytes to gather: more than 2 GiB", want);
            }
            displs[r] = (int)total;
            total += (size_t)counts[r];
        }
        all = malloc(total + 1);
        if (!all) {
            free(counts);
            free(displs);
            return err_set("out of memory: %zu bytes of gathered output", total);
        }
    }
    t0 = coll_begin("MPI_Gatherv");
    mrc = MPI_Gatherv(buf, mine, MPI_BYTE, all, counts, displs, MPI_BYTE, 0, MPI_COMM_WORLD);
    free(counts);
    free(displs);
    if (coll_end(t0, mrc, "MPI_Gatherv") != 0) {
        free(all);
        return -1;
    }
    if (all) {
        all[total] = 0;
        *out = all;
        *out_n = total;
    }
    return 0;
}

int dist_barrier(void) {
    if (!dist_active()) return 0;
    double t0 = coll_begin("MPI_Barrier");
    return coll_end(t0, MPI_Barrier(MPI_COMM_WORLD), "MPI_Barrier");
}

#else /* one process: no MPI in this build */

int dist_init(int *argc, char ***argv) {
    (void)argc;
    (void)argv;
    return 0;
}
void dist_free(int exit_code) { (void)exit_code; }
int dist_allreduce_sum_f32(float *buf, size_t n) { (void)buf; (void)n; return 0; }
int dist_allreduce_sum_f64(double *buf, size_t n) { (void)buf; (void)n; return 0; }
int dist_allreduce_sum_i64(int64_t *buf, size_t n) { (void)buf; (void)n; return 0; }
int dist_allreduce_sum_int(int *buf, size_t n) { (void)buf; (void)n; return 0; }
int dist_allreduce_max_int(int *v) { (void)v; return 0; }
int dist_bcast(void *buf, size_t n, int root) { (void)buf; (void)n; (void)root; return 0; }
int dist_gather_bytes(const void *buf, size_t n, char **out, size_t *out_n) {
    *out = malloc(n + 1);
    *out_n = 0;
    if (!*out) return err_set("out of memory");
    if (n) memcpy(*out, buf, n);
    (*out)[n] = 0;
    *out_n = n;
    return 0;
}
int dist_barrier(void) { return 0; }

#endif
