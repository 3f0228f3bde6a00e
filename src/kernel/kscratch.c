/* kernel/kscratch.c - the products' working memory, grown once and kept: per thread, a
 * few numbered buffers (KScratchSlot, matmul_impl.h) for the bf16 copies of the operands
 * and oneDNN's scratchpad. Before, every product allocated and freed them: large blocks
 * come from mmap, so each call paid fresh pages (page faults, the kernel zeroing them);
 * a 110M LoRA bf16 step took 16000 minor faults (bench/train_profile.sh).
 *
 * A thread's buffers grow to the largest product it has run (by half again, so ragged
 * last batches do not reallocate) and are never shrunk while in use; they are freed by
 * kmm_scratch_release (trainer_free calls it; the training's operand copies are the big
 * ones), by the thread's exit, or stay reachable until the process ends. Contents are
 * not kept between calls (every user writes before it reads), so results do not depend
 * on them.
 * Concurrency: only the owning thread uses its buffers, between kscratch_enter and
 * kscratch_leave (nested calls share them: each slot has one user at a time).
 * kmm_scratch_release may run on any thread at any time: it frees the buffers of the
 * threads not inside a product (an atomic state: 0 idle, 1 in use, 2 being freed) and
 * leaves the others for the next release. */
#include "kernel/matmul.h"
#include "kernel/matmul_impl.h"

#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>

typedef struct KScratch {
    int state;              /* 0 idle, 1 in use by its thread, 2 being freed by a release */
    int depth;              /* nesting of enter/leave (owner only) */
    int dead;               /* its thread has exited: buffers freed, unlink at the next release */
    void *buf[KSCR_COUNT];  /* 64-byte aligned */
    size_t cap[KSCR_COUNT]; /* bytes of buf */
    struct KScratch *next;
} KScratch;

static pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER;
static KScratch *g_all; /* every thread's, reachable until released */
static pthread_once_t g_once = PTHREAD_ONCE_INIT;
static pthread_key_t g_key;
static _Thread_local KScratch *t_scr;

static void buffers_free(KScratch *s) {
    for (int i = 0; i < KSCR_COUNT; i++) {
        free(s->buf[i]);
        s->buf[i] = NULL;
        __atomic_store_n(&s->cap[i], 0, __ATOMIC_RELAXED);
    }
}

/* Thread exit: the thread is not inside a product, so its buffers are idle. */
static void on_exit_thread(void *p) {
    KScratch *s = p;
    pthread_mutex_lock(&g_lock);
    buffers_free(s);
    s->dead = 1;
    pthread_mutex_unlock(&g_lock);
}

static void key_make(void) {
    if (pthread_key_create(&g_key, on_exit_thread) != 0) {
        fprintf(stderr, "muscle: fatal: no thread key for the products' buffers\n");
        abort();
    }
}

void kscratch_enter(void) {
    KScratch *s = t_scr;
    if (!s) {
        pthread_once(&g_once, key_make);
        s = calloc(1, sizeof *s);
        if (!s) {
            fprintf(stderr, "muscle: fatal: out of memory in a matrix product\n");
            abort();
        }
        pthread_mutex_lock(&g_lock);
        s->next = g_all;
        g_all = s;
        pthread_mutex_unlock(&g_lock);
        pthread_setspecific(g_key, s);
        t_scr = s;
    }
    if (s->depth++ == 0) {
        int idle = 0;
        while (!__atomic_compare_exchange_n(&s->state, &idle, 1, 0, __ATOMIC_ACQUIRE, __ATOMIC_RELAXED)) {
            idle = 0; /* a release is freeing them right now */
            sched_yield();
        }
    }
}

void kscratch_leave(void) {
    KScratch *s = t_scr;
    if (--s->depth == 0) __atomic_store_n(&s->state, 0, __ATOMIC_RELEASE);
}

void *kscratch_get(KScratchSlot slot, size_t bytes) {
    KScratch *s = t_scr; /* inside kscratch_enter */
    if (bytes <= s->cap[slot]) return s->buf[slot];
    size_t want = bytes + bytes / 2;
    want = (want + 4095) & ~(size_t)4095;
    free(s->buf[slot]);
    s->buf[slot] = aligned_alloc(64, want);
    if (!s->buf[slot]) {
        fprintf(stderr, "muscle: fatal: out of memory (%zu bytes) in a matrix product\n", want);
        abort();
    }
    __atomic_store_n(&s->cap[slot], want, __ATOMIC_RELAXED); /* kmm_scratch_bytes reads it */
    return s->buf[slot];
}

void kmm_scratch_release(void) {
    pthread_mutex_lock(&g_lock);
    for (KScratch **pp = &g_all; *pp;) {
        KScratch *s = *pp;
        if (s->dead) { /* its thread is gone; the key's destructor freed the buffers */
            *pp = s->next;
            free(s);
            continue;
        }
        int idle = 0;
        if (__atomic_compare_exchange_n(&s->state, &idle, 2, 0, __ATOMIC_ACQUIRE, __ATOMIC_RELAXED)) {
            buffers_free(s);
            __atomic_store_n(&s->state, 0, __ATOMIC_RELEASE);
        }
        pp = &s->next;
    }
    pthread_mutex_unlock(&g_lock);
}

size_t kmm_scratch_bytes(void) {
    size_t b = 0;
    pthread_mutex_lock(&g_lock);
    for (KScratch *s = g_all; s; s = s->next)
        for (int i = 0; i < KSCR_COUNT; i++) b += __atomic_load_n(&s->cap[i], __ATOMIC_RELAXED);
    pthread_mutex_unlock(&g_lock);
    return b;
}
