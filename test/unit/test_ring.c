/* The write ring: ordering, partial writes, chunk reuse, discard. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "gw/ring.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static gw_frame_t *frame_of(const char *s)
{
    gw_frame_t *f = gw_frame_new(strlen(s));
    memcpy(f->data, s, strlen(s));
    return f;
}

/* Concatenates what gw_ring_iov describes. */
static size_t ring_bytes(const gw_ring_t *r, char *out, unsigned max_iov)
{
    uv_buf_t iov[256];
    size_t n, off = 0;
    unsigned k = gw_ring_iov(r, iov, max_iov, &n);

    for (unsigned i = 0; i < k; i++) {
        memcpy(out + off, iov[i].base, iov[i].len);
        off += iov[i].len;
    }
    assert_int_equal(off, n);
    out[off] = '\0';
    return off;
}

static void test_order_and_heads(void **state)
{
    gw_ring_pool_t pool = {.max_free = 4};
    gw_ring_t r = {0};
    char out[4096];
    (void)state;

    gw_ring_push(&r, &pool, frame_of("body1"), (const uint8_t *)"h1:", 3);
    gw_ring_push(&r, &pool, frame_of("body2"), NULL, 0);
    gw_ring_push(&r, &pool, frame_of("body3"), (const uint8_t *)"h3:", 3);
    assert_int_equal(r.count, 3);
    ring_bytes(&r, out, 256);
    assert_string_equal(out, "h1:body1body2h3:body3");
    gw_ring_clear(&r, &pool);
    assert_int_equal(r.count, 0);
    assert_null(r.first);
    gw_ring_pool_free(&pool);
}

static void test_partial_consume(void **state)
{
    gw_ring_pool_t pool = {.max_free = 4};
    gw_ring_t r = {0};
    char out[4096];
    (void)state;

    gw_ring_push(&r, &pool, frame_of("abcdef"), (const uint8_t *)"HH", 2);
    gw_ring_push(&r, &pool, frame_of("xyz"), (const uint8_t *)"K", 1);
    gw_ring_consume(&r, &pool, 1); /* inside the head */
    ring_bytes(&r, out, 256);
    assert_string_equal(out, "Habcdef"
                             "Kxyz");
    gw_ring_consume(&r, &pool, 4); /* inside the body */
    ring_bytes(&r, out, 256);
    assert_string_equal(out, "def"
                             "Kxyz");
    gw_ring_consume(&r, &pool, 3); /* exactly the first entry */
    assert_int_equal(r.count, 1);
    ring_bytes(&r, out, 256);
    assert_string_equal(out, "Kxyz");
    gw_ring_consume(&r, &pool, 4);
    assert_int_equal(r.count, 0);
    gw_ring_pool_free(&pool);
}

/* Many entries across chunks, consumed in odd-sized steps, with the iov
 * limit forcing several rounds: the byte stream must come out intact. */
static void test_many_chunks_stream(void **state)
{
    gw_ring_pool_t pool = {.max_free = 2};
    gw_ring_t r = {0};
    char expect[65536], got[65536], buf[4096], head[8];
    size_t elen = 0, glen = 0;
    (void)state;

    for (int i = 0; i < 200; i++) {
        char body[32];
        int hl = snprintf(head, sizeof(head), "<%d>", i % 100);
        snprintf(body, sizeof(body), "message-%d;", i);
        gw_ring_push(&r, &pool, frame_of(body), (const uint8_t *)head,
                     (size_t)hl);
        memcpy(expect + elen, head, (size_t)hl);
        elen += (size_t)hl;
        memcpy(expect + elen, body, strlen(body));
        elen += strlen(body);
    }
    while (r.count > 0) {
        size_t n = ring_bytes(&r, buf, 6); /* at most 3 entries per round */
        size_t take = n < 7 ? n : 7;
        memcpy(got + glen, buf, take);
        glen += take;
        gw_ring_consume(&r, &pool, take);
    }
    assert_int_equal(glen, elen);
    assert_memory_equal(got, expect, elen);
    assert_true(pool.nfree <= 2);
    gw_ring_pool_free(&pool);
}

static void test_discard_keeps_started_entry(void **state)
{
    gw_ring_pool_t pool = {.max_free = 4};
    gw_ring_t r = {0};
    char out[4096];
    (void)state;

    for (int i = 0; i < 40; i++)
        gw_ring_push(&r, &pool, frame_of("0123456789"), NULL, 0);
    gw_ring_consume(&r, &pool, 3);
    assert_int_equal(gw_ring_discard_unsent(&r, &pool, 0), 39);
    assert_int_equal(r.count, 1);
    ring_bytes(&r, out, 256);
    assert_string_equal(out, "3456789");
    gw_ring_push(&r, &pool, frame_of("close"), NULL, 0);
    ring_bytes(&r, out, 256);
    assert_string_equal(out, "3456789close");
    gw_ring_clear(&r, &pool);
    /* Nothing started: everything goes. */
    gw_ring_push(&r, &pool, frame_of("a"), NULL, 0);
    assert_int_equal(gw_ring_discard_unsent(&r, &pool, 0), 1);
    assert_int_equal(r.count, 0);
    gw_ring_pool_free(&pool);
}

/*
 * A write in progress points into the ring: the entries it covers must stay,
 * at the same addresses, whatever the chunk boundaries.
 */
static void test_discard_keeps_inflight_in_place(void **state)
{
    gw_ring_pool_t pool = {.max_free = 64};
    (void)state;

    for (unsigned busy_entries = 1; busy_entries <= 40; busy_entries++) {
        gw_ring_t r = {0};
        uv_buf_t before[256], after[256];
        size_t n1, n2;
        char out[4096];

        for (int i = 0; i < 50; i++)
            gw_ring_push(&r, &pool, frame_of("0123456789"),
                         (const uint8_t *)"HH", 2);
        gw_ring_consume(&r, &pool, 5); /* partly into the first entry */
        unsigned k1 = gw_ring_iov(&r, before, 256, &n1);
        /* busy ends inside entry number busy_entries */
        size_t busy = 7 + (busy_entries - 1) * 12 - 1;
        assert_int_equal(gw_ring_discard_unsent(&r, &pool, busy),
                         50 - busy_entries);
        assert_int_equal(r.count, busy_entries);
        unsigned k2 = gw_ring_iov(&r, after, 256, &n2);
        assert_true(k2 <= k1);
        for (unsigned j = 0; j < k2; j++) {
            assert_ptr_equal(after[j].base, before[j].base);
            assert_int_equal(after[j].len, before[j].len);
        }
        assert_int_equal(n2, 7 + (busy_entries - 1) * 12);
        /* The ring stays usable: append, drain, clear. */
        gw_ring_push(&r, &pool, frame_of("close"), NULL, 0);
        ring_bytes(&r, out, 256);
        assert_int_equal(strlen(out), n2 + 5);
        assert_string_equal(out + n2, "close");
        gw_ring_consume(&r, &pool, n2 + 5);
        assert_int_equal(r.count, 0);
        gw_ring_clear(&r, &pool);
    }
    gw_ring_pool_free(&pool);
}

/* A shared frame stays alive while any ring holds it. */
static void test_shared_frame_refs(void **state)
{
    gw_ring_pool_t pool = {.max_free = 4};
    gw_ring_t a = {0}, b = {0};
    gw_frame_t *f = frame_of("shared");
    (void)state;

    gw_ring_push(&a, &pool, gw_frame_ref(f), NULL, 0);
    gw_ring_push(&b, &pool, gw_frame_ref(f), NULL, 0);
    gw_frame_unref(f);
    assert_int_equal(atomic_load(&f->refs), 2);
    gw_ring_consume(&a, &pool, 6);
    assert_int_equal(atomic_load(&f->refs), 1);
    gw_ring_clear(&b, &pool); /* frees it: ASan would flag a leak or reuse */
    gw_ring_pool_free(&pool);
}

static void test_frame_header(void **state)
{
    uint8_t h[10];
    (void)state;

    assert_int_equal(gw_frame_header(h, 1, 125), 2);
    assert_int_equal(h[0], 0x81);
    assert_int_equal(h[1], 125);
    assert_int_equal(gw_frame_header(h, 1, 126), 4);
    assert_int_equal(h[1], 126);
    assert_int_equal(h[2] << 8 | h[3], 126);
    assert_int_equal(gw_frame_header(h, 2, 65535), 4);
    assert_int_equal(gw_frame_header(h, 1, 65536), 10);
    assert_int_equal(h[1], 127);
    assert_int_equal(h[7], 1);
    assert_int_equal(h[8], 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_order_and_heads),
        cmocka_unit_test(test_partial_consume),
        cmocka_unit_test(test_many_chunks_stream),
        cmocka_unit_test(test_discard_keeps_started_entry),
        cmocka_unit_test(test_discard_keeps_inflight_in_place),
        cmocka_unit_test(test_shared_frame_refs),
        cmocka_unit_test(test_frame_header),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
