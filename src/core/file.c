/* core/file.c - mapped reads and atomic writes. */
#include "file.h"
#include "error.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

int file_map(MappedFile *f, const char *path) {
    memset(f, 0, sizeof *f);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
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
    FILE *fp = fopen(path, "rb");
    if (!fp) {
        err_set("%s: cannot open: %s", path, strerror(errno));
        return NULL;
    }
    struct stat st;
    if (fstat(fileno(fp), &st) != 0 || !S_ISREG(st.st_mode)) {
        fclose(fp);
        err_set("%s: not a regular file", path);
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
