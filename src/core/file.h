/* core/file.h - reading files (mapped read-only) and writing them atomically.
 *
 * Every output of muscle goes through file_atomic_*: the bytes go to a temporary
 * file in the destination's folder, are flushed (fsync) and renamed over the
 * destination (and the folder is flushed), so a crash or a full disk never leaves a
 * half-written file and the previous good file stays in place. Where the file system
 * allows it the temporary file is anonymous (O_TMPFILE) until the commit, so a
 * process killed while writing leaves nothing behind either.
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

#endif
