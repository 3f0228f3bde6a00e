/* core/file.c - mapped reads and atomic writes. */
#include "file.h"
#include "error.h"

#include <errno.h>
#include <dirent.h>
#include <fcntl.h>
#include <ftw.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

int file_map(MappedFile *f, const char *path) {
    memset(f, 0, sizeof *f);
    /* O_NONBLOCK: a FIFO with no writer would block the open; it is refused below */
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0) return err_set("%s: cannot open: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0) {
        int e = errno;
        close(fd);
        return err_set("%s: cannot stat: %s", path, strerror(e));
    }
    if (!S_ISREG(st.st_mode)) {
        close(fd);
        return err_set("%s: not a regular file", path);
    }
    f->size = (size_t)st.st_size;
    if (f->size > 0) {
        void *p = mmap(NULL, f->size, PROT_READ, MAP_PRIVATE, fd, 0);
        if (p == MAP_FAILED) {
            int e = errno;
            close(fd);
            return err_set("%s: cannot map: %s", path, strerror(e));
        }
        f->data = p;
    }
    close(fd);
    f->path = strdup(path);
    return 0;
}

void file_unmap(MappedFile *f) {
    if (f->data) munmap((void *)f->data, f->size);
    free(f->path);
    memset(f, 0, sizeof *f);
}

char *file_read_all(const char *path, size_t *size, size_t max_size) {
    /* O_NONBLOCK: a FIFO with no writer would block the open; only regular files are read */
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0) {
        err_set("%s: cannot open: %s", path, strerror(errno));
        return NULL;
    }
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        err_set("%s: not a regular file", path);
        return NULL;
    }
    FILE *fp = fdopen(fd, "rb");
    if (!fp) {
        close(fd);
        err_set("%s: cannot open: %s", path, strerror(errno));
        return NULL;
    }
    size_t n = (size_t)st.st_size;
    if (max_size && n > max_size) {
        fclose(fp);
        err_set("%s: file is %zu bytes, more than the limit of %zu", path, n, max_size);
        return NULL;
    }
    char *buf = malloc(n + 1);
    if (!buf) {
        fclose(fp);
        err_set("%s: out of memory reading %zu bytes", path, n);
        return NULL;
    }
    if (n && fread(buf, 1, n, fp) != n) {
        free(buf);
        fclose(fp);
        err_set("%s: read error", path);
        return NULL;
    }
    fclose(fp);
    buf[n] = 0;
    if (size) *size = n;
    return buf;
}

int file_exists(const char *path) {
    struct stat st;
    return stat(path, &st) == 0;
}

int file_is_dir(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

int file_mkdirs(const char *path) {
    char *p = strdup(path);
    if (!p) return err_set("out of memory");
    for (char *s = p + 1; *s; s++) {
        if (*s == '/') {
            *s = 0;
            if (mkdir(p, 0777) != 0 && errno != EEXIST) {
                int e = errno;
                free(p);
                return err_set("%s: cannot create directory: %s", path, strerror(e));
            }
            *s = '/';
        }
    }
    if (mkdir(p, 0777) != 0 && errno != EEXIST) {
        int e = errno;
        free(p);
        return err_set("%s: cannot create directory: %s", path, strerror(e));
    }
    free(p);
    if (!file_is_dir(path)) return err_set("%s: exists and is not a directory", path);
    return 0;
}

char *file_join(const char *dir, const char *name) {
    size_t a = strlen(dir), b = strlen(name);
    char *s = malloc(a + b + 2);
    if (!s) return NULL;
    memcpy(s, dir, a);
    size_t k = a;
    if (a && dir[a - 1] != '/') s[k++] = '/';
    memcpy(s + k, name, b + 1);
    return s;
}

char *file_dirname(const char *path) {
    const char *slash = strrchr(path, '/');
    if (!slash) return strdup(".");
    if (slash == path) return strdup("/");
    return strndup(path, (size_t)(slash - path));
}

int file_atomic_open(AtomicFile *af, const char *path) {
    memset(af, 0, sizeof *af);
    af->path = strdup(path);
    af->dir = file_dirname(path);
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    size_t n = (af->dir ? strlen(af->dir) : 0) + strlen(base) + 32;
    af->tmp_path = malloc(n);
    if (!af->path || !af->dir || !af->tmp_path) {
        file_atomic_abort(af);
        return err_set("out of memory");
    }
    snprintf(af->tmp_path, n, "%s/.%s.tmp.XXXXXX", af->dir, base);
    int fd = open(af->dir, O_TMPFILE | O_WRONLY | O_CLOEXEC, 0644);
    if (fd >= 0) {
        af->anonymous = 1;
    } else if (errno == EOPNOTSUPP || errno == EISDIR || errno == EINVAL || errno == ENOENT) {
        /* no O_TMPFILE here (or an old kernel): a named temporary file */
        fd = mkstemp(af->tmp_path);
        if (fd >= 0) fchmod(fd, 0644);
    }
    if (fd < 0) {
        int e = errno;
        err_set("%s: cannot create a temporary file beside it: %s", path, strerror(e));
        free(af->tmp_path);
        af->tmp_path = NULL;
        file_atomic_abort(af);
        return -1;
    }
    af->fp = fdopen(fd, "wb");
    if (!af->fp) {
        close(fd);
        file_atomic_abort(af);
        return err_set("%s: cannot open temporary file", path);
    }
    return 0;
}

/* Gives an anonymous (O_TMPFILE) file the name af->tmp_path (a fresh one). */
static int name_anonymous(AtomicFile *af) {
    char proc[64];
    snprintf(proc, sizeof proc, "/proc/self/fd/%d", fileno(af->fp));
    size_t len = strlen(af->tmp_path);
    for (int attempt = 0; attempt < 100; attempt++) {
        /* fill the XXXXXX with something new each attempt */
        uint64_t r = ((uint64_t)getpid() << 32) ^ (uint64_t)clock() ^ ((uint64_t)attempt * 0x9e3779b97f4a7c15ull) ^ (uint64_t)(uintptr_t)af;
        for (int i = 0; i < 6; i++, r /= 36) af->tmp_path[len - 6 + i] = "abcdefghijklmnopqrstuvwxyz0123456789"[r % 36];
        if (linkat(AT_FDCWD, proc, AT_FDCWD, af->tmp_path, AT_SYMLINK_FOLLOW) == 0) return 0;
        if (errno != EEXIST) return -1;
    }
    errno = EEXIST;
    return -1;
}

int file_atomic_write(AtomicFile *af, const void *buf, size_t n) {
    if (af->failed || !af->fp) return -1;
    if (n && fwrite(buf, 1, n, af->fp) != n) {
        af->failed = errno ? errno : EIO;
        return err_set("%s: write error: %s", af->path, strerror(af->failed));
    }
    return 0;
}

/* MUSCLE_TEST_KILL_AFTER_COMMITS=N: SIGKILL after the N-th commit (see file.h). */
static void test_kill_hook(void) {
    static long commits;
    const char *e = getenv("MUSCLE_TEST_KILL_AFTER_COMMITS");
    if (e && *e && ++commits == atol(e)) raise(SIGKILL);
}

int file_atomic_commit(AtomicFile *af) {
    int rc = 0;
    if (!af->fp) rc = err_set("%s: not open", af->path ? af->path : "?");
    if (rc == 0 && af->failed) rc = err_set("%s: write error: %s", af->path, strerror(af->failed));
    if (rc == 0 && fflush(af->fp) != 0) rc = err_set("%s: write error: %s", af->path, strerror(errno));
    if (rc == 0 && fsync(fileno(af->fp)) != 0) rc = err_set("%s: cannot flush to disk: %s", af->path, strerror(errno));
    int named = !af->anonymous; /* does tmp_path exist on disk? */
    if (rc == 0 && af->anonymous) {
        if (name_anonymous(af) != 0) rc = err_set("%s: cannot name the temporary file: %s", af->path, strerror(errno));
        else named = 1;
    }
    if (af->fp) {
        if (fclose(af->fp) != 0 && rc == 0) rc = err_set("%s: write error: %s", af->path, strerror(errno));
        af->fp = NULL;
    }
    if (rc == 0 && rename(af->tmp_path, af->path) != 0) rc = err_set("%s: cannot rename into place: %s", af->path, strerror(errno));
    if (rc == 0) { /* make the rename itself durable */
        int dfd = open(af->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dfd >= 0) {
            fsync(dfd);
            close(dfd);
        }
        test_kill_hook();
    } else if (named && af->tmp_path) {
        unlink(af->tmp_path);
    }
    free(af->tmp_path);
    free(af->path);
    free(af->dir);
    af->tmp_path = af->path = af->dir = NULL;
    return rc;
}

void file_atomic_abort(AtomicFile *af) {
    if (af->fp) fclose(af->fp); /* an anonymous file vanishes with its descriptor */
    if (af->tmp_path && !af->anonymous) unlink(af->tmp_path);
    free(af->tmp_path);
    free(af->path);
    free(af->dir);
    memset(af, 0, sizeof *af);
}

int file_write_all_atomic(const char *path, const void *buf, size_t n) {
    AtomicFile af;
    if (file_atomic_open(&af, path) != 0) return -1;
    file_atomic_write(&af, buf, n);
    return file_atomic_commit(&af);
}

/* ------------------------------------------------------------------------- */
/* atomic folders                                                             */

static int remove_entry(const char *p, const struct stat *st, int type, struct FTW *ftw) {
    (void)st;
    (void)ftw;
    int rc = (type == FTW_DP || type == FTW_D || type == FTW_DNR) ? rmdir(p) : unlink(p);
    return rc != 0 ? 1 : 0; /* stop at the first failure */
}

int file_remove_tree(const char *path) {
    struct stat st;
    if (lstat(path, &st) != 0) return errno == ENOENT ? 0 : -1;
    if (!S_ISDIR(st.st_mode)) return unlink(path) == 0 ? 0 : -1;
    return nftw(path, remove_entry, 16, FTW_DEPTH | FTW_PHYS) == 0 ? 0 : -1;
}

static void fsync_dir(const char *dir) {
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) {
        fsync(fd);
        close(fd);
    }
}

/* 1 when dir has no entry besides . and .., 0 when it has, -1 when it cannot be read. */
static int dir_is_empty(const char *dir) {
    DIR *d = opendir(dir);
    if (!d) return -1;
    struct dirent *e;
    int empty = 1;
    while ((e = readdir(d)))
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) {
            empty = 0;
            break;
        }
    closedir(d);
    return empty;
}

/* Removes the ".BASE.tmp-PID-XXXXXX" folders in parent whose process is gone. */
static void remove_stale(const char *parent, const char *base) {
    DIR *d = opendir(parent);
    if (!d) return;
    size_t bl = strlen(base);
    struct dirent *e;
    while ((e = readdir(d))) {
        const char *n = e->d_name;
        if (n[0] != '.' || strncmp(n + 1, base, bl) != 0 || strncmp(n + 1 + bl, ".tmp-", 5) != 0) continue;
        char *end;
        long pid = strtol(n + 1 + bl + 5, &end, 10);
        if (pid <= 0 || *end != '-' || strlen(end + 1) != 6) continue;
        if (pid == (long)getpid() || kill((pid_t)pid, 0) == 0 || errno != ESRCH) continue; /* alive (or not ours to judge) */
        char *p = file_join(parent, n);
        if (p) file_remove_tree(p);
        free(p);
    }
    closedir(d);
}

static void atomic_dir_free(AtomicDir *d) {
    free(d->path);
    free(d->tmp);
    free(d->parent);
    memset(d, 0, sizeof *d);
}

int file_atomic_dir_open(AtomicDir *d, const char *path, int replace) {
    memset(d, 0, sizeof *d);
    size_t len = strlen(path);
    while (len > 1 && path[len - 1] == '/') len--;
    d->path = strndup(path, len);
    if (!d->path) return err_set("out of memory");
    const char *slash = strrchr(d->path, '/');
    const char *base = slash ? slash + 1 : d->path;
    if (!*base || !strcmp(base, ".") || !strcmp(base, "..") || !strcmp(d->path, "/")) {
        err_set("%s: name a new folder to write into (not . or .. or /)", path);
        atomic_dir_free(d);
        return -1;
    }
    d->parent = file_dirname(d->path);
    if (!d->parent) {
        atomic_dir_free(d);
        return err_set("out of memory");
    }
    struct stat st;
    if (lstat(d->path, &st) == 0) {
        if (!S_ISDIR(st.st_mode)) {
            err_set("%s: exists and is not a folder", d->path);
            atomic_dir_free(d);
            return -1;
        }
        int empty = dir_is_empty(d->path);
        if (empty < 0) {
            err_set("%s: cannot read the folder: %s", d->path, strerror(errno));
            atomic_dir_free(d);
            return -1;
        }
        if (!empty && !replace) {
            err_set("%s: the folder exists and is not empty (--force replaces it as a whole)", d->path);
            atomic_dir_free(d);
            return -1;
        }
        if (!empty && access(d->path, W_OK | X_OK) != 0) { /* its files could not be replaced one by one either */
            err_set("%s: cannot replace the folder: %s", d->path, strerror(errno));
            atomic_dir_free(d);
            return -1;
        }
        d->replace = !empty;
    } else if (errno != ENOENT) {
        err_set("%s: %s", d->path, strerror(errno));
        atomic_dir_free(d);
        return -1;
    } else if (file_mkdirs(d->parent) != 0) {
        atomic_dir_free(d);
        return -1;
    }
    remove_stale(d->parent, base);
    size_t n = strlen(d->parent) + strlen(base) + 48;
    d->tmp = malloc(n);
    if (!d->tmp) {
        atomic_dir_free(d);
        return err_set("out of memory");
    }
    snprintf(d->tmp, n, "%s/.%s.tmp-%ld-XXXXXX", d->parent, base, (long)getpid());
    if (!mkdtemp(d->tmp)) {
        err_set("%s: cannot create a temporary folder beside it: %s", d->path, strerror(errno));
        atomic_dir_free(d);
        return -1;
    }
    mode_t um = umask(0);
    umask(um);
    chmod(d->tmp, 0777 & ~um); /* mkdtemp makes it 0700 */
    return 0;
}

void file_atomic_dir_abort(AtomicDir *d) {
    if (d->tmp) {
        /* "TMP/x: ..." -> "PATH/x: ..." in the message: the user knows PATH */
        const char *m = err_msg();
        size_t tl = strlen(d->tmp);
        if (d->path && strncmp(m, d->tmp, tl) == 0) {
            char *rest = strdup(m + tl);
            if (rest) {
                err_set("%s%s", d->path, rest);
                free(rest);
            }
        }
        file_remove_tree(d->tmp);
    }
    atomic_dir_free(d);
}

int file_atomic_dir_commit(AtomicDir *d) {
    if (!d->tmp) return err_set("%s: not open", d->path ? d->path : "?");
    fsync_dir(d->tmp);
    int rc = 0;
    if (!d->replace) {
        if (rename(d->tmp, d->path) != 0) {
            int e = errno;
            rc = err_set("%s: cannot rename the new folder into place: %s%s", d->path, strerror(e),
                         e == ENOTEMPTY || e == EEXIST ? " (files appeared in it meanwhile)" : "");
        }
    } else if (renameat2(AT_FDCWD, d->tmp, AT_FDCWD, d->path, RENAME_EXCHANGE) == 0) {
        file_remove_tree(d->tmp); /* now the old folder; left for the next open if this fails */
    } else if (errno == EINVAL || errno == ENOSYS || errno == EOPNOTSUPP) {
        /* no RENAME_EXCHANGE here: old folder aside, new one in, old one removed */
        size_t n = strlen(d->tmp) + 1;
        char *aside = malloc(n);
        if (!aside) {
            rc = err_set("out of memory");
        } else {
            memcpy(aside, d->tmp, n);
            memcpy(aside + n - 7, "XXXXXX", 6);
            if (!mkdtemp(aside) || rename(d->path, aside) != 0) {
                rc = err_set("%s: cannot move the old folder aside: %s", d->path, strerror(errno));
                rmdir(aside);
            } else if (rename(d->tmp, d->path) != 0) {
                rc = err_set("%s: cannot rename the new folder into place: %s", d->path, strerror(errno));
                rename(aside, d->path); /* put the old one back */
            } else {
                file_remove_tree(aside);
            }
            free(aside);
        }
    } else {
        rc = err_set("%s: cannot swap in the new folder: %s", d->path, strerror(errno));
    }
    if (rc != 0) {
        file_remove_tree(d->tmp);
        atomic_dir_free(d);
        return rc;
    }
    fsync_dir(d->parent);
    atomic_dir_free(d);
    return 0;
}

int file_same(const char *a, const char *b) {
    struct stat sa, sb;
    return a && b && stat(a, &sa) == 0 && stat(b, &sb) == 0 && sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
}
