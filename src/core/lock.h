/* core/lock.h - one run per output folder.
 *
 * Every command that writes into a folder it keeps open for a while (finetune's --out,
 * update's RUN_DIR, report's --out) holds an advisory lock on DIR/.muscle.lock for as long
 * as it runs: flock(2) on an open file description, so the lock ends with the process
 * however it ends (exit, crash, SIGKILL) and no stale lock is ever left behind. A second
 * run on the same folder fails at once, naming the pid written into the file by the
 * holder. The lock file itself stays (an empty-looking hidden file); removing it would
 * race with a run that is just opening it.
 *
 * Children: with DIR_LOCK_INHERIT the descriptor survives exec, so a child process
 * started by the holder keeps the folder locked after the holder dies (update's steps:
 * an orphaned step keeps RUN_DIR locked, and a rerun refuses it instead of racing it).
 */
#ifndef MUSCLE_CORE_LOCK_H
#define MUSCLE_CORE_LOCK_H

#define DIR_LOCK_FILE ".muscle.lock"

typedef enum {
    DIR_LOCK_PRIVATE = 0, /* closed on exec: only this process holds the lock */
    DIR_LOCK_INHERIT = 1, /* children started with exec hold it too */
} DirLockMode;

typedef struct {
    int fd;       /* -1 when not held */
    char *path;   /* DIR/.muscle.lock */
} DirLock;

/* Creates `dir` (and its parents) when missing and locks it. `what` names the command in
 * the message a second run gets ("muscle update"). -1 (err_set) when another process holds
 * the lock: "DIR: in use by another muscle run (pid N: what); wait for it to finish or stop
 * it", or when the folder or its lock file cannot be made. */
int dir_lock_acquire(DirLock *l, const char *dir, const char *what, DirLockMode mode);
/* Releases the lock (closes the descriptor; children holding it keep it). Safe on a
 * DirLock that was never acquired (zeroed or failed). */
void dir_lock_release(DirLock *l);

#endif
