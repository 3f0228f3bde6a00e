/* tests/core/test_file.c - atomic folders (file_atomic_dir_*): a folder appears complete or
 * not at all, an existing one is refused unless replacing, a replacement swaps the whole
 * folder, an abandoned one leaves nothing, and leftovers of killed processes are removed. */
#include "testutil.h"
#include "core/error.h"
#include "core/file.h"

#include <sys/stat.h>
#include <sys/wait.h>

static char *path_in(const char *dir, const char *name) {
    char *p = file_join(dir, name);
    assert_non_null(p);
    return p;
}

static void put(const char *dir, const char *name, const char *text) {
    char *p = path_in(dir, name);
    assert_int_equal(file_write_all_atomic(p, text, strlen(text)), 0);
    free(p);
}

static char *get(const char *dir, const char *name) {
    char *p = path_in(dir, name);
    char *s = file_read_all(p, NULL, 0);
    free(p);
    return s;
}

/* entries of dir besides . and .. */
static int count_entries(const char *dir) {
    DIR *d = opendir(dir);
    assert_non_null(d);
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) n++;
    closedir(d);
    return n;
}

static void test_new_folder(void **state) {
    (void)state;
    const char *root = test_tmpdir();
    char *out = path_in(root, "sub/out");
    AtomicDir d;
    assert_int_equal(file_atomic_dir_open(&d, out, 0), 0);
    assert_false(file_exists(out)); /* nothing visible before the commit */
    put(d.tmp, "a.txt", "new a");
    put(d.tmp, "b.txt", "new b");
    assert_false(file_exists(out));
    assert_int_equal(file_atomic_dir_commit(&d), 0);
    char *s = get(out, "b.txt");
    assert_string_equal(s, "new b");
    free(s);
    char *sub = path_in(root, "sub");
    assert_int_equal(count_entries(sub), 1); /* no temporary folder left */
    struct stat st;
    assert_int_equal(stat(out, &st), 0);
    mode_t um = umask(0);
    umask(um);
    assert_int_equal(st.st_mode & 0777, 0777 & ~um); /* not mkdtemp's 0700 */
    /* an empty folder counts as absent; a trailing slash is fine */
    char *empty = path_in(root, "empty/");
    assert_int_equal(file_mkdirs(empty), 0);
    assert_int_equal(file_atomic_dir_open(&d, empty, 0), 0);
    put(d.tmp, "x", "x");
    assert_int_equal(file_atomic_dir_commit(&d), 0);
    s = get(empty, "x");
    assert_string_equal(s, "x");
    free(s);
    assert_int_equal(file_remove_tree(root), 0);
    assert_false(file_exists(root));
    free(out);
    free(sub);
    free(empty);
}

static void test_existing_folder(void **state) {
    (void)state;
    const char *root = test_tmpdir();
    char *out = path_in(root, "out");
    assert_int_equal(file_mkdirs(out), 0);
    put(out, "a.txt", "old a");
    put(out, "extra.txt", "old extra");
    AtomicDir d;
    assert_int_equal(file_atomic_dir_open(&d, out, 0), -1);
    assert_non_null(strstr(err_msg(), "not empty"));
    assert_non_null(strstr(err_msg(), "--force"));
    assert_int_equal(count_entries(root), 1);
    /* replaced: the whole folder, old files not written again are gone */
    assert_int_equal(file_atomic_dir_open(&d, out, 1), 0);
    put(d.tmp, "a.txt", "new a");
    char *s = get(out, "a.txt");
    assert_string_equal(s, "old a"); /* untouched until the commit */
    free(s);
    assert_int_equal(file_atomic_dir_commit(&d), 0);
    s = get(out, "a.txt");
    assert_string_equal(s, "new a");
    free(s);
    assert_int_equal(count_entries(out), 1);
    assert_int_equal(count_entries(root), 1); /* the old folder is removed */
    /* a file is never replaced by a folder */
    char *file = path_in(root, "file");
    assert_int_equal(file_write_all_atomic(file, "x", 1), 0);
    assert_int_equal(file_atomic_dir_open(&d, file, 1), -1);
    assert_non_null(strstr(err_msg(), "not a folder"));
    assert_int_equal(file_atomic_dir_open(&d, ".", 1), -1);
    assert_int_equal(file_atomic_dir_open(&d, "/", 1), -1);
    file_remove_tree(root);
    free(out);
    free(file);
}

static void test_abort(void **state) {
    (void)state;
    const char *root = test_tmpdir();
    char *out = path_in(root, "out");
    assert_int_equal(file_mkdirs(out), 0);
    put(out, "a.txt", "old a");
    AtomicDir d;
    assert_int_equal(file_atomic_dir_open(&d, out, 1), 0);
    put(d.tmp, "a.txt", "new a");
    char msg[4200];
    snprintf(msg, sizeof msg, "%s/model.safetensors: write error: No space left on device", d.tmp);
    err_set("%s", msg);
    file_atomic_dir_abort(&d);
    /* the message names the destination, not the temporary folder */
    snprintf(msg, sizeof msg, "%s/model.safetensors: write error: No space left on device", out);
    assert_string_equal(err_msg(), msg);
    char *s = get(out, "a.txt");
    assert_string_equal(s, "old a");
    free(s);
    assert_int_equal(count_entries(root), 1);
    file_remove_tree(root);
    free(out);
}

static void test_stale_leftovers(void **state) {
    (void)state;
    const char *root = test_tmpdir();
    char *out = path_in(root, "out");
    /* the pid of a process that is gone */
    pid_t child = fork();
    if (child == 0) _exit(0);
    waitpid(child, NULL, 0);
    char name[128];
    snprintf(name, sizeof name, ".out.tmp-%ld-abcdef", (long)child);
    char *stale = path_in(root, name);
    assert_int_equal(file_mkdirs(stale), 0);
    put(stale, "model.safetensors", "half");
    /* a live process's folder (ours: the parent's pid), and other names, are kept */
    snprintf(name, sizeof name, ".out.tmp-%ld-ghijkl", (long)getppid());
    char *live = path_in(root, name);
    assert_int_equal(file_mkdirs(live), 0);
    char *other = path_in(root, ".outx.tmp-1-abcdef");
    assert_int_equal(file_mkdirs(other), 0);
    AtomicDir d;
    assert_int_equal(file_atomic_dir_open(&d, out, 0), 0);
    assert_false(file_exists(stale));
    assert_true(file_is_dir(live));
    assert_true(file_is_dir(other));
    assert_int_equal(file_atomic_dir_commit(&d), 0);
    assert_int_equal(count_entries(root), 3); /* out, live, other */
    file_remove_tree(root);
    free(out);
    free(stale);
    free(live);
    free(other);
}

static void test_remove_tree_keeps_link_targets(void **state) {
    (void)state;
    const char *root = test_tmpdir();
    char *keep = path_in(root, "keep");
    char *tree = path_in(root, "tree/a/b");
    assert_int_equal(file_mkdirs(keep), 0);
    put(keep, "precious", "x");
    assert_int_equal(file_mkdirs(tree), 0);
    char *link = path_in(root, "tree/a/link");
    assert_int_equal(symlink(keep, link), 0);
    char *t = path_in(root, "tree");
    assert_int_equal(file_remove_tree(t), 0);
    assert_false(file_exists(t));
    char *s = get(keep, "precious");
    assert_string_equal(s, "x");
    free(s);
    file_remove_tree(root);
    free(keep);
    free(tree);
    free(link);
    free(t);
}

/* A FIFO with no writer is refused at once by every reader (it used to block for ever). */
static void test_fifo_refused(void **state) {
    (void)state;
    const char *root = test_tmpdir();
    assert_int_equal(file_mkdirs(root), 0);
    char *fifo = path_in(root, "pipe.jsonl");
    assert_int_equal(mkfifo(fifo, 0644), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        alarm(5); /* a reader that blocks dies of SIGALRM: the parent sees it */
        MappedFile f;
        int bad = file_map(&f, fifo) == 0 || !strstr(err_msg(), "not a regular file");
        size_t n = 0;
        char *s = file_read_all(fifo, &n, 0);
        bad |= s != NULL || !strstr(err_msg(), "not a regular file");
        _exit(bad ? 3 : 0);
    }
    int st = 0;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    assert_true(WIFEXITED(st));
    assert_int_equal(WEXITSTATUS(st), 0);
    unlink(fifo);
    file_remove_tree(root);
    free(fifo);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_new_folder),
        cmocka_unit_test(test_existing_folder),
        cmocka_unit_test(test_abort),
        cmocka_unit_test(test_stale_leftovers),
        cmocka_unit_test(test_remove_tree_keeps_link_targets),
        cmocka_unit_test(test_fifo_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
