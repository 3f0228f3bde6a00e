/* core/file.h - reading files (mapped read-only) and writing them atomically.
 *
 * Every output of muscle goes through file_atomic_*: the bytes go to a temporary
 * file in the destination's folder, are flushed (fsync) and renamed over the
 * destination (and the folder is flushed), so a crash or a full disk never leaves a
 * half-written file and the previous good file stays in place. Where the file system
 * allows it the temporary file is anonymous (O_TMPFILE) until the commit, so a
 * process killed while writing leaves nothing behind either. Folders of files can be
 * written atomically too (file_atomic_dir_*).
 *
 * Test hook: with MUSCLE_TEST_KILL_AFTER_COMMITS=N in the environment the process kills
 * itself (SIGKILL) right after its N-th successful file_atomic_commit, so the tests can
 * interrupt a command between two files deterministically.
 */
#ifndef MUSCLE_CORE_FILE_H
#define MUSCLE_CORE_FILE_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

typedef struct {
    const uint8_t *data; /* read-only mapping (NULL for an empty file) */
    size_t size;
    char *path;          /* copy of the path, for error messages */
} MappedFile;

/* Maps `path` read-only. Errors: missing file, a directory, unreadable. */
int file_map(MappedFile *f, const char *path);
void file_unmap(MappedFile *f);

/* Reads a whole file into a malloc'd, NUL-terminated buffer (size excludes the NUL).
 * `max_size` guards against absurd inputs (0 = no limit). */
char *file_read_all(const char *path, size_t *size, size_t max_size);

int file_exists(const char *path);
int file_is_dir(const char *path);
/* Creates a directory (and parents) if missing. */
int file_mkdirs(const char *path);
/* malloc'd "dir/name". */
char *file_join(const char *dir, const char *name);
/* malloc'd directory part of a path ("." when none). */
char *file_dirname(const char *path);

/* Atomic writes. */
typedef struct {
    FILE *fp;
    char *path;     /* final destination */
    char *tmp_path; /* temporary name beside it (given at commit when anonymous) */
    char *dir;      /* the destination's folder */
    int anonymous;  /* O_TMPFILE: no name until commit, so a killed process leaves nothing */
    int failed;
} AtomicFile;

int file_atomic_open(AtomicFile *af, const char *path);
/* Writes n bytes; on error remembers it (checked again at commit). */
int file_atomic_write(AtomicFile *af, const void *buf, size_t n);
/* Flushes, fsyncs, renames. On any error: removes the temp file, leaves the old
 * destination untouched, returns -1 with a message naming the path. */
int file_atomic_commit(AtomicFile *af);
/* Abandons the temporary file. */
void file_atomic_abort(AtomicFile *af);
/* Convenience: write a whole buffer atomically. */
int file_write_all_atomic(const char *path, const void *buf, size_t n);

/* Atomic folders: a folder of outputs (a converted model) appears complete or not at all.
 * The files are written (each with file_atomic_*) into a temporary sibling folder
 * ".NAME.tmp-PID-XXXXXX" (same parent, so the same file system), which the commit
 * flushes and renames into place; the parent folder is flushed too.
 *  - `path` absent or an empty folder: a plain rename(2), atomic.
 *  - `path` a non-empty folder: refused at open unless `replace`; then the commit
 *    swaps the two folders with renameat2(RENAME_EXCHANGE) (atomic: at every moment
 *    `path` is the whole old folder or the whole new one) and removes the old one.
 *    Where the file system has no RENAME_EXCHANGE, the old folder is renamed aside
 *    first: for that instant `path` does not exist (both versions stay complete on
 *    disk under their names).
 *  - `path` anything else (a file): refused.
 * A process killed before the commit leaves `path` untouched and its temporary folder
 * behind (hidden, holding only finished files); the next open for the same path removes
 * such folders of processes that no longer exist. So does it for an old folder left by a
 * kill between the swap and its removal. */
typedef struct {
    char *path;   /* the destination folder (no trailing slash) */
    char *tmp;    /* the temporary sibling being filled */
    char *parent; /* their folder */
    int replace;  /* path is a non-empty folder: the commit swaps */
} AtomicDir;

/* Creates the temporary folder (and the parents of path when missing). Errors: path is
 * a file, a non-empty folder without `replace`, a folder that cannot be written, or the
 * temporary folder cannot be made. */
int file_atomic_dir_open(AtomicDir *d, const char *path, int replace);
/* Puts the temporary folder in place (see above). On error the temporary folder is
 * removed and `path` is as before. */
int file_atomic_dir_commit(AtomicDir *d);
/* Removes the temporary folder and everything in it; a current error message that
 * names a file inside it is changed to name the destination instead. */
void file_atomic_dir_abort(AtomicDir *d);
/* Removes a folder and everything under it (symbolic links are removed, never followed).
 * Best effort: returns -1 when something could not be removed. */
int file_remove_tree(const char *path);

/* 1 when both paths exist and are the same file (device and inode: another spelling, a
 * link), else 0. An output must never be one of the command's inputs. */
int file_same(const char *a, const char *b);

#endif
