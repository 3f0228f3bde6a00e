/* tests/core/test_heap.c - core/heap.h: pops in the order of a sort by the same comparison,
 * with interleaved pushes and pops, many equal keys (ties broken by a sequence number),
 * and growth from empty. */
#include "testutil.h"
#include "core/heap.h"

typedef struct {
    int key;
    int seq;
} Item;

static inline int item_before(const Item *a, const Item *b) {
    return a->key < b->key || (a->key == b->key && a->seq < b->seq);
}

HEAP_DEFINE(ItemHeap, item_heap, Item, item_before)

static int cmp_item(const void *a, const void *b) {
    const Item *x = a, *y = b;
    return item_before(x, y) ? -1 : item_before(y, x) ? 1 : 0;
}

static void test_heap_order(void **state) {
    (void)state;
    enum { N = 5000 };
    static Item all[N], out[N];
    uint64_t r = 12345;
    ItemHeap h = {0};
    int pushed = 0, popped = 0;
    /* interleaved: push 3, pop 1, ...; then drain */
    while (pushed < N) {
        for (int k = 0; k < 3 && pushed < N; k++) {
            r = r * 6364136223846793005ull + 1442695040888963407ull;
            Item it = {(int)((r >> 33) % 50), pushed}; /* many equal keys */
            all[pushed++] = it;
            assert_int_equal(item_heap_push(&h, it), 0);
        }
        out[popped++] = item_heap_pop(&h);
    }
    while (h.n) out[popped++] = item_heap_pop(&h);
    assert_int_equal(popped, N);
    free(h.v);
    /* every pop is the least of what was in the heap at that moment: replay with a sorted reference */
    static Item live[N];
    int nl = 0, pi = 0, pu = 0;
    while (pu < N) {
        for (int k = 0; k < 3 && pu < N; k++) live[nl++] = all[pu++];
        qsort(live, (size_t)nl, sizeof *live, cmp_item);
        assert_int_equal(out[pi].key, live[0].key);
        assert_int_equal(out[pi].seq, live[0].seq);
        pi++;
        memmove(live, live + 1, (size_t)--nl * sizeof *live);
    }
    qsort(live, (size_t)nl, sizeof *live, cmp_item);
    for (int i = 0; i < nl; i++) {
        assert_int_equal(out[pi + i].key, live[i].key);
        assert_int_equal(out[pi + i].seq, live[i].seq);
    }
    /* one element in, one out */
    ItemHeap one = {0};
    assert_int_equal(item_heap_push(&one, (Item){7, 0}), 0);
    assert_int_equal(item_heap_pop(&one).key, 7);
    assert_int_equal(one.n, 0);
    free(one.v);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_heap_order),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
