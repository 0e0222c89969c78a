/* The slab: object size, zeroing, reuse, blocks, and the live count. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "gw/slab.h"

static void test_size_rounding(void **state)
{
    gw_slab_t s;
    (void)state;

    gw_slab_init(&s, 168);
    assert_int_equal(s.size, 168);
    gw_slab_init(&s, 41);
    assert_int_equal(s.size, 48);
    gw_slab_init(&s, 1); /* room for the free list's link */
    assert_int_equal(s.size, sizeof(void *));
    gw_slab_free(&s);
}

static void test_zeroed_aligned_distinct(void **state)
{
    gw_slab_t s;
    uint8_t *a, *b;
    (void)state;

    gw_slab_init(&s, 40);
    a = gw_slab_alloc(&s);
    b = gw_slab_alloc(&s);
    assert_int_equal((uintptr_t)a % 8, 0);
    assert_int_equal((uintptr_t)b % 8, 0);
    assert_true(b >= a + 40 || a >= b + 40); /* no overlap */
    for (int i = 0; i < 40; i++)
        assert_int_equal(a[i] | b[i], 0);
    memset(a, 0xAB, 40);
    gw_slab_put(&s, a);
    /* The freed object comes back first, zeroed again. */
    assert_ptr_equal(gw_slab_alloc(&s), a);
    for (int i = 0; i < 40; i++)
        assert_int_equal(a[i], 0);
    assert_int_equal(gw_slab_live(&s), 2);
    gw_slab_put(&s, a);
    gw_slab_put(&s, b);
    gw_slab_put(&s, NULL); /* nothing */
    assert_int_equal(gw_slab_live(&s), 0);
    gw_slab_free(&s);
}

/* Many blocks' worth: every object is distinct and keeps what was written
 * into it while the others come and go. */
static void test_many_blocks(void **state)
{
    enum { N = 3 * GW_SLAB_BLOCK / 24 };
    gw_slab_t s;
    uint64_t **p = calloc(N, sizeof(*p));
    uint64_t **freed = calloc((N + 1) / 2, sizeof(*freed));
    (void)state;

    assert_non_null(p);
    assert_non_null(freed);
    gw_slab_init(&s, 24);
    for (size_t i = 0; i < N; i++) {
        p[i] = gw_slab_alloc(&s);
        p[i][0] = i;
        p[i][2] = ~(uint64_t)i;
    }
    assert_int_equal(gw_slab_live(&s), N);
    for (size_t i = 0; i < N; i += 2) { /* every other one back */
        gw_slab_put(&s, p[i]);
        freed[i / 2] = p[i];
        p[i] = NULL;
    }
    assert_int_equal(gw_slab_live(&s), N - (N + 1) / 2);
    /* Taken again, last freed first: no new memory while any is free. */
    for (size_t i = 0; i < N; i += 2) {
        p[i] = gw_slab_alloc(&s);
        assert_ptr_equal(p[i], freed[(N + 1) / 2 - 1 - i / 2]);
        p[i][0] = i;
        p[i][2] = ~(uint64_t)i;
    }
    for (size_t i = 0; i < N; i++) {
        assert_int_equal(p[i][0], i);
        assert_int_equal(p[i][2], ~(uint64_t)i);
    }
    for (size_t i = 0; i < N; i++)
        gw_slab_put(&s, p[i]);
    assert_int_equal(gw_slab_live(&s), 0);
    gw_slab_free(&s);
    free(p);
    free(freed);
}

/* After gw_slab_free the slab is empty and usable again. */
static void test_free_and_reuse(void **state)
{
    gw_slab_t s;
    (void)state;

    gw_slab_init(&s, 336);
    for (int i = 0; i < 500; i++)
        gw_slab_put(&s, gw_slab_alloc(&s));
    (void)gw_slab_alloc(&s);
    assert_int_equal(gw_slab_free(&s), 1); /* the one still out */
    assert_null(s.blocks);
    assert_int_equal(gw_slab_live(&s), 0);
    void *p = gw_slab_alloc(&s);
    assert_non_null(p);
    gw_slab_put(&s, p);
    assert_int_equal(gw_slab_free(&s), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_size_rounding),
        cmocka_unit_test(test_zeroed_aligned_distinct),
        cmocka_unit_test(test_many_blocks),
        cmocka_unit_test(test_free_and_reuse),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
