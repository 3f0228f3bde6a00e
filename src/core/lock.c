/* core/lock.c - advisory locks on output folders (flock on DIR/.muscle.lock). */
#include "lock.h"
#include "error.h"
#include "file.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

/* The holder's note ("PID what"), read for the message; "" when unreadable. */
static void lock_holder(int fd, char *buf, size_t cap) {
    buf[0] = 0;
    ssize_t n = pread(fd, buf, cap - 1, 0);
    if (n <= 0) return;
    buf[n] = 0;
    for (ssize_t i = 0; i < n; i++) /* one printable line: never terminal control bytes */
        if (buf[i] == '\n') { buf[i] = 0; break; }
        else if ((unsigned char)buf[i] < 0x20 || buf[i] == 0x7f) buf[i] = '?';
}

int dir_lock_acquire(DirLock *l, const char *dir, const char *what, DirLockMode mode) {
    l->fd = -1;
    l->path = NULL;
    if (file_mkdirs(dir) != 0) return -1;
    l->path = file_join(dir, DIR_LOCK_FILE);
    if (!l->path) return err_set("%s: out of memory", dir);
    int flags = O_RDWR | O_CREAT | O_NOFOLLOW | (mode == DIR_LOCK_INHERIT ? 0 : O_CLOEXEC);
    int fd = open(l->path, flags, 0644);
    if (fd < 0) {
        int e = errno;
        err_set("%s: cannot open the folder's lock file %s: %s", dir, DIR_LOCK_FILE, strerror(e));
        dir_lock_release(l);
        return -1;
    }
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        err_set("%s: %s is not a regular file", dir, DIR_LOCK_FILE);
        dir_lock_release(l);
        return -1;
    }
    int rc;
    while ((rc = flock(fd, LOCK_EX | LOCK_NB)) != 0 && errno == EINTR) {
    }
    if (rc != 0) {
        int e = errno;
        char holder[160];
        lock_holder(fd, holder, sizeof holder);
        close(fd);
        if (e == EWOULDBLOCK)
            err_set("%s: in use by another muscle run (pid %s); wait for it to finish or stop it", dir,
                    holder[0] ? holder : "unknown");
        else
            err_set("%s: cannot lock %s: %s", dir, DIR_LOCK_FILE, strerror(e));
        dir_lock_release(l);
        return -1;
    }
    char note[160];
    int n = snprintf(note, sizeof note, "%ld %s\n", (long)getpid(), what ? what : "muscle");
    if (n < 0 || (size_t)n >= sizeof note) n = (int)strlen(note);
    /* best effort: the note only feeds the message a second run prints */
    if (ftruncate(fd, 0) == 0 && pwrite(fd, note, (size_t)n, 0) < 0) {
    }
    l->fd = fd;
    return 0;
}

void dir_lock_release(DirLock *l) {
    if (l->fd >= 0) close(l->fd);
    l->fd = -1;
    free(l->path);
    l->path = NULL;
}
