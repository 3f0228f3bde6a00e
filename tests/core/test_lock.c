/* tests/core/test_lock.c - one run per output folder (core/lock.h): a second holder is
 * refused at once with the first one's pid, the lock ends with its process however it ends
 * (release, exit, SIGKILL), an inherited lock outlives its parent in an exec'd child. */
#include "testutil.h"
#include "core/error.h"
#include "core/file.h"
#include "core/lock.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>

/* Tries the lock from another process, as a second run would; its message into msg.
 * Returns 0 when it got the lock, 1 when refused. */
static int try_in_child(const char *dir, char *msg, size_t cap) {
    int p[2];
    assert_int_equal(pipe(p), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(p[0]);
        DirLock l;
        int rc = dir_lock_acquire(&l, dir, "second", DIR_LOCK_PRIVATE);
        const char *m = rc ? err_msg() : "";
        if (write(p[1], m, strlen(m)) < 0) _exit(9);
        dir_lock_release(&l);
        _exit(rc ? 1 : 0);
    }
    close(p[1]);
    ssize_t n = read(p[0], msg, cap - 1);
    msg[n > 0 ? n : 0] = 0;
    close(p[0]);
    int st = 0;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    assert_true(WIFEXITED(st));
    return WEXITSTATUS(st);
}

static void test_second_run_refused(void **state) {
    (void)state;
    const char *root = test_tmpdir();
    char *dir = file_join(root, "run/out");
    DirLock l;
    assert_int_equal(dir_lock_acquire(&l, dir, "muscle update", DIR_LOCK_PRIVATE), 0);
    assert_true(file_is_dir(dir)); /* created */
    char msg[512], want[64];
    assert_int_equal(try_in_child(dir, msg, sizeof msg), 1);
    snprintf(want, sizeof want, "pid %ld muscle update", (long)getpid());
    assert_non_null(strstr(msg, want));
    assert_non_null(strstr(msg, "in use by another muscle run"));
    dir_lock_release(&l);
    assert_int_equal(try_in_child(dir, msg, sizeof msg), 0); /* free again */
    dir_lock_release(&l); /* twice is harmless */
    file_remove_tree(root);
    free(dir);
}

/* A holder killed with SIGKILL leaves no stale lock. */
static void test_killed_holder(void **state) {
    (void)state;
    const char *root = test_tmpdir();
    int p[2];
    assert_int_equal(pipe(p), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        DirLock l;
        if (dir_lock_acquire(&l, root, "holder", DIR_LOCK_PRIVATE) != 0) _exit(1);
        if (write(p[1], "x", 1) != 1) _exit(2);
        pause();
        _exit(0);
    }
    char c;
    assert_int_equal(read(p[0], &c, 1), 1);
    char msg[512];
    assert_int_equal(try_in_child(root, msg, sizeof msg), 1);
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    assert_int_equal(try_in_child(root, msg, sizeof msg), 0);
    close(p[0]);
    close(p[1]);
    file_remove_tree(root);
}

/* DIR_LOCK_INHERIT: an exec'd child keeps the folder locked after its parent is gone;
 * DIR_LOCK_PRIVATE: it does not. */
static void check_inherit(DirLockMode mode, int want_locked) {
    const char *root = test_tmpdir();
    pid_t holder = fork();
    assert_true(holder >= 0);
    if (holder == 0) {
        DirLock l;
        if (dir_lock_acquire(&l, root, "parent", mode) != 0) _exit(1);
        int sync[2]; /* close-on-exec: its read end sees EOF once the child has exec'd */
        if (pipe2(sync, O_CLOEXEC) != 0) _exit(2);
        pid_t c = fork();
        if (c == 0) {
            execl("/bin/sleep", "sleep", "3", (char *)NULL);
            _exit(127);
        }
        close(sync[1]);
        char b;
        while (read(sync[0], &b, 1) > 0) {
        }
        _exit(0); /* the parent dies after the child's exec; the sleeping child may hold the lock */
    }
    int st = 0;
    assert_int_equal(waitpid(holder, &st, 0), holder);
    assert_int_equal(WEXITSTATUS(st), 0);
    char msg[512];
    assert_int_equal(try_in_child(root, msg, sizeof msg), want_locked);
    file_remove_tree(root);
}

static void test_inherit(void **state) {
    (void)state;
    check_inherit(DIR_LOCK_INHERIT, 1);
    check_inherit(DIR_LOCK_PRIVATE, 0);
}

/* A lock file that is not a regular file (a symbolic link to elsewhere) is refused. */
static void test_lock_file_link(void **state) {
    (void)state;
    const char *root = test_tmpdir();
    assert_int_equal(file_mkdirs(root), 0);
    char *lf = file_join(root, DIR_LOCK_FILE);
    assert_int_equal(symlink("/etc/passwd", lf), 0);
    DirLock l;
    assert_int_equal(dir_lock_acquire(&l, root, "x", DIR_LOCK_PRIVATE), -1);
    assert_non_null(strstr(err_msg(), DIR_LOCK_FILE));
    unlink(lf);
    free(lf);
    file_remove_tree(root);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_second_run_refused),
        cmocka_unit_test(test_killed_holder),
        cmocka_unit_test(test_inherit),
        cmocka_unit_test(test_lock_file_link),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
