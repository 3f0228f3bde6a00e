/* tests/core/test_dist.c - core/dist.h outside an MPI launch: one rank, every collective
 * leaves the data as it is (the single-process run stays what it was), the sharding rule
 * covers [0, n) in contiguous blocks in rank order, MUSCLE_NO_MPI keeps MPI out. (The
 * several-rank behaviour is tested with mpirun in tests/dist/mpi.sh.) */
#include "testutil.h"
#include "core/dist.h"

#include <stdlib.h>

static void test_one_rank(void **state) {
    (void)state;
    setenv("MUSCLE_NO_MPI", "1", 1); /* even when this test runs under mpirun */
    assert_int_equal(dist_init(NULL, NULL), 0);
    assert_int_equal(dist_rank(), 0);
    assert_int_equal(dist_size(), 1);
    assert_int_equal(dist_active(), 0);
    float f[3] = {1.5f, -2.0f, 3.25f};
    double d[2] = {0.1, 0.2};
    int64_t l[1] = {7};
    int i[2] = {3, 4}, m = 5;
    assert_int_equal(dist_allreduce_sum_f32(f, 3), 0);
    assert_int_equal(dist_allreduce_sum_f64(d, 2), 0);
    assert_int_equal(dist_allreduce_sum_i64(l, 1), 0);
    assert_int_equal(dist_allreduce_sum_int(i, 2), 0);
    assert_int_equal(dist_allreduce_max_int(&m), 0);
    assert_true(f[0] == 1.5f && f[1] == -2.0f && f[2] == 3.25f);
    assert_true(d[0] == 0.1 && d[1] == 0.2);
    assert_true(l[0] == 7 && i[0] == 3 && i[1] == 4 && m == 5);
    assert_int_equal(dist_bcast(d, sizeof d, 0), 0);
    assert_int_equal(dist_barrier(), 0);
    char *all = NULL;
    size_t n = 0;
    assert_int_equal(dist_gather_bytes("abc\n", 4, &all, &n), 0);
    assert_int_equal(n, 4);
    assert_string_equal(all, "abc\n");
    free(all);
    assert_int_equal(dist_gather_bytes(NULL, 0, &all, &n), 0);
    assert_int_equal(n, 0);
    free(all);
    assert_true(dist_comm_seconds() == 0.0);
    dist_free(0);
}

static void test_shard_rule(void **state) {
    (void)state;
    for (long n = 0; n <= 37; n++)
        for (int size = 1; size <= 9; size++) {
            long prev_hi = 0;
            for (int r = 0; r < size; r++) {
                long lo, hi;
                dist_shard(n, r, size, &lo, &hi);
                assert_int_equal(lo, prev_hi); /* contiguous, in rank order */
                assert_true(hi >= lo);
                assert_true(hi - lo == n / size || hi - lo == n / size + 1); /* balanced */
                prev_hi = hi;
            }
            assert_int_equal(prev_hi, n); /* covers everything */
        }
    long lo, hi;
    dist_shard(8, 0, 1, &lo, &hi); /* one rank: the whole step */
    assert_true(lo == 0 && hi == 8);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_one_rank),
        cmocka_unit_test(test_shard_rule),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
