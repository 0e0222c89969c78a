/*
 * A drained session's snapshot: the round trip of every field, the layout
 * byte for byte, each malformed input rejected with nothing left to free,
 * the bounds at and one past their limits, and the multiset overlap.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "gw/alloc.h"
#include "gw/error.h"
#include "gw/snapshot.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A body of len bytes with the given id, one reference (the caller's). */
static gw_frame_t *body(const char *bytes, size_t len, uint64_t id)
{
    gw_frame_t *f = gw_frame_new(len);

    memcpy(f->data, bytes, len);
    f->id = id;
    return f;
}

/* n heap strings made from fmt and their index. */
static char **strs(size_t n, const char *fmt)
{
    char **s = gw_calloc(n, sizeof(*s));
    char tmp[64];

    for (size_t i = 0; i < n; i++) {
        snprintf(tmp, sizeof(tmp), fmt, i);
        s[i] = gw_strdup(tmp);
    }
    return s;
}

/* A string of n copies of c. */
static char *repeat(char c, size_t n)
{
    char *s = gw_malloc(n + 1);

    memset(s, c, n);
    s[n] = '\0';
    return s;
}

/*
 * A snapshot with every field set: a bounded claim, three guilds and
 * three dispatches, one with NUL and high bytes, one empty, ids at both
 * ends of their range and 0.
 */
static void make_full(gw_snapshot_t *s)
{
    static const char odd[] = {'a', '\0', 'b', '\xff', '\x80', '\0'};

    memset(s, 0, sizeof(*s));
    s->owner = gw_strdup("gw-a.example:7001");
    s->user = gw_strdup("user-42");
    s->bounded = 1;
    s->allowed = strs(2, "g%zu");
    s->nallowed = 2;
    s->guilds = strs(3, "guild-%zu");
    s->nguilds = 3;
    s->seq = 10;
    s->nentries = 3;
    s->entries = gw_calloc(3, sizeof(*s->entries));
    s->entries[0].body = body("\"t\":\"X\"}", 8, 7);
    s->entries[1].body = body(odd, sizeof(odd), UINT64_MAX);
    s->entries[2].body = body("", 0, 0);
}

/* Snapshots with entries whose bodies are empty and ids are ids[0..n). */
static void make_ids(gw_snapshot_t *s, const uint64_t *ids, uint32_t n)
{
    memset(s, 0, sizeof(*s));
    s->owner = gw_strdup("gw-a");
    s->user = gw_strdup("u");
    s->seq = n;
    s->nentries = n;
    s->entries = gw_calloc(n ? n : 1, sizeof(*s->entries));
    for (uint32_t i = 0; i < n; i++)
        s->entries[i].body = body("", 0, ids[i]);
}

static void encode(const gw_snapshot_t *s, gw_buf_t *out)
{
    *out = (gw_buf_t){0};
    gw_snapshot_encode(s, out);
}

/* Decodes from an exact-size copy, so that ASan sees a read past len. */
static int decode(const char *buf, size_t len, gw_snapshot_t *out)
{
    char *copy = gw_malloc(len ? len : 1);
    int rc;

    memcpy(copy, buf, len);
    rc = gw_snapshot_decode(copy, len, out);
    free(copy);
    return rc;
}

/* Rejected, and nothing left behind: *out reads as a zeroed struct. */
static void expect_reject(const char *buf, size_t len)
{
    gw_snapshot_t out, zero;

    memset(&out, 0xa5, sizeof(out));
    memset(&zero, 0, sizeof(zero));
    assert_int_equal(decode(buf, len, &out), GW_EPARSE);
    assert_memory_equal(&out, &zero, sizeof(out));
}

static int encode_decode(const gw_snapshot_t *s, gw_snapshot_t *out)
{
    gw_buf_t b;
    int rc;

    encode(s, &b);
    rc = decode(b.data, b.len, out);
    free(b.data);
    return rc;
}

/* The encoding of s is rejected; s is freed. */
static void expect_encoding_rejected(gw_snapshot_t *s)
{
    gw_buf_t b;

    encode(s, &b);
    expect_reject(b.data, b.len);
    free(b.data);
    gw_snapshot_free(s);
}

/* The encoding of s decodes; both are freed. */
static void expect_encoding_accepted(gw_snapshot_t *s)
{
    gw_snapshot_t got;

    assert_int_equal(encode_decode(s, &got), 0);
    gw_snapshot_free(&got);
    gw_snapshot_free(s);
}

static void assert_strs_equal(char **a, char **b, size_t n)
{
    for (size_t i = 0; i < n; i++)
        assert_string_equal(a[i], b[i]);
}

static void assert_snap_equal(const gw_snapshot_t *a, const gw_snapshot_t *b)
{
    assert_string_equal(a->owner, b->owner);
    assert_string_equal(a->user, b->user);
    assert_int_equal(a->bounded, b->bounded);
    assert_int_equal(a->nallowed, b->nallowed);
    assert_strs_equal(a->allowed, b->allowed, a->nallowed);
    assert_int_equal(a->nguilds, b->nguilds);
    assert_strs_equal(a->guilds, b->guilds, a->nguilds);
    assert_int_equal(a->seq, b->seq);
    assert_int_equal(a->nentries, b->nentries);
    for (uint32_t i = 0; i < a->nentries; i++) {
        const gw_frame_t *x = a->entries[i].body, *y = b->entries[i].body;

        assert_int_equal(x->id, y->id);
        assert_int_equal(x->len, y->len);
        assert_memory_equal(x->data, y->data, x->len);
    }
}

/* Every field survives, and encoding takes no reference on a body. */
static void test_round_trip_bounded(void **state)
{
    gw_snapshot_t s, got;
    (void)state;

    make_full(&s);
    assert_int_equal(encode_decode(&s, &got), 0);
    assert_snap_equal(&s, &got);
    assert_int_equal(got.entries[1].body->len, 6);
    assert_int_equal(got.entries[1].body->data[3], '\xff');
    assert_int_equal(got.entries[1].body->id, UINT64_MAX);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(atomic_load(&s.entries[i].body->refs), 1);
        assert_int_equal(atomic_load(&got.entries[i].body->refs), 1);
        assert_ptr_not_equal(got.entries[i].body, s.entries[i].body);
    }
    gw_snapshot_free(&got);
    gw_snapshot_free(&s);
}

/* Unbounded, the claim does not travel: allowed decodes NULL whatever the
 * source held. Bounded with an empty claim stays bounded (allows none). */
static void test_round_trip_claim(void **state)
{
    gw_snapshot_t s, got;
    (void)state;

    make_full(&s);
    s.bounded = 0;
    assert_int_equal(encode_decode(&s, &got), 0);
    assert_int_equal(got.bounded, 0);
    assert_null(got.allowed);
    assert_int_equal(got.nallowed, 0);
    assert_int_equal(got.nguilds, 3);
    gw_snapshot_free(&got);

    s.bounded = 1;
    s.nallowed = 0; /* the strings stay the source's, freed below */
    assert_int_equal(encode_decode(&s, &got), 0);
    assert_int_equal(got.bounded, 1);
    assert_null(got.allowed);
    assert_int_equal(got.nallowed, 0);
    gw_snapshot_free(&got);
    s.nallowed = 2;
    gw_snapshot_free(&s);
}

/* The snapshot written at the open of a handoff has no dispatches. */
static void test_round_trip_no_entries(void **state)
{
    gw_snapshot_t s, got;
    (void)state;

    make_ids(&s, NULL, 0);
    s.seq = 42;
    s.nguilds = 0;
    assert_int_equal(encode_decode(&s, &got), 0);
    assert_int_equal(got.seq, 42);
    assert_int_equal(got.nentries, 0);
    assert_null(got.entries);
    assert_null(got.guilds);
    assert_string_equal(got.owner, "gw-a");
    gw_snapshot_free(&got);
    s.seq = 0;
    expect_encoding_accepted(&s);
}

/* Every bound at its limit: the longest strings, the most of each list. */
static void test_round_trip_at_bounds(void **state)
{
    gw_snapshot_t s, got;
    (void)state;

    make_ids(&s, NULL, 0);
    free(s.owner);
    free(s.user);
    s.owner = repeat('o', GW_SNAPSHOT_MAX_OWNER);
    s.user = repeat('u', GW_SNAPSHOT_MAX_ID);
    s.bounded = 1;
    s.allowed = strs(GW_SNAPSHOT_MAX_ALLOWED, "a%zu");
    s.nallowed = GW_SNAPSHOT_MAX_ALLOWED;
    s.guilds = strs(GW_SNAPSHOT_MAX_GUILDS, "g%zu");
    s.nguilds = GW_SNAPSHOT_MAX_GUILDS;
    s.seq = UINT64_MAX;
    s.nentries = GW_SNAPSHOT_MAX_ENTRIES;
    s.entries = gw_realloc(s.entries, s.nentries * sizeof(*s.entries));
    for (uint32_t i = 0; i < s.nentries; i++)
        s.entries[i].body = body("0123456789", i % 11, (uint64_t)i * 977);
    assert_int_equal(encode_decode(&s, &got), 0);
    assert_snap_equal(&s, &got);
    assert_int_equal(strlen(got.owner), GW_SNAPSHOT_MAX_OWNER);
    assert_string_equal(got.guilds[65534], "g65534");
    assert_int_equal(got.entries[65535].body->id, 65535ULL * 977);
    gw_snapshot_free(&got);
    gw_snapshot_free(&s);
}

/* The layout documented in src/snapshot.c, byte for byte: a change to it
 * must change the version. */
static void test_layout(void **state)
{
    static const char want[] = "GWS\x01"
                               "\x01"
                               "A"
                               "\x02"
                               "uu"
                               "\x01"
                               "\x01\x00"
                               "\x01"
                               "a"
                               "\x00\x00"
                               "\x05\x04\x03\x02\x01\x00\x00\x00"
                               "\x01\x00\x00\x00"
                               "\x08\x07\x06\x05\x04\x03\x02\x01"
                               "\x02\x00\x00\x00"
                               "{}";
    gw_snapshot_t s;
    gw_buf_t b;
    (void)state;

    make_ids(&s, (const uint64_t[]){0x0102030405060708}, 1);
    free(s.owner);
    free(s.user);
    s.owner = gw_strdup("A");
    s.user = gw_strdup("uu");
    s.bounded = 1;
    s.allowed = strs(1, "a");
    s.nallowed = 1;
    s.seq = 0x0102030405;
    gw_frame_unref(s.entries[0].body);
    s.entries[0].body = body("{}", 2, 0x0102030405060708);
    encode(&s, &b);
    assert_int_equal(b.len, sizeof(want) - 1);
    assert_memory_equal(b.data, want, b.len);
    free(b.data);
    gw_snapshot_free(&s);
}

/* Every proper prefix of a valid encoding is a truncation. */
static void test_rejects_truncation(void **state)
{
    gw_snapshot_t s;
    gw_buf_t b;
    (void)state;

    make_full(&s);
    encode(&s, &b);
    for (size_t len = 0; len < b.len; len++)
        expect_reject(b.data, len);
    gw_snapshot_free(&s);
    free(b.data);
}

static void test_rejects_trailing_byte(void **state)
{
    gw_snapshot_t s;
    gw_buf_t b;
    (void)state;

    make_full(&s);
    encode(&s, &b);
    gw_buf_append(&b, "", 1);
    expect_reject(b.data, b.len);
    gw_snapshot_free(&s);
    free(b.data);
}

/* Each byte of the magic and the version, and an unknown flag. */
static void test_rejects_magic_and_flags(void **state)
{
    gw_snapshot_t s;
    gw_buf_t b;
    size_t flags;
    (void)state;

    make_full(&s);
    encode(&s, &b);
    for (size_t i = 0; i < 4; i++) {
        b.data[i] ^= 0x20;
        expect_reject(b.data, b.len);
        b.data[i] ^= 0x20;
    }
    b.data[3] = 2;
    expect_reject(b.data, b.len);
    b.data[3] = 1;
    flags = 4 + 1 + strlen(s.owner) + 1 + strlen(s.user);
    assert_int_equal(b.data[flags], 1);
    b.data[flags] = 3;
    expect_reject(b.data, b.len);
    b.data[flags] = 2;
    expect_reject(b.data, b.len);
    gw_snapshot_free(&s);
    free(b.data);
}

static void test_rejects_more_entries_than_seq(void **state)
{
    gw_snapshot_t s;
    (void)state;

    make_full(&s); /* three entries */
    s.seq = 2;
    expect_encoding_rejected(&s);
    make_full(&s);
    s.seq = 3;
    expect_encoding_accepted(&s);
}

/* An empty id, or one cut short by a NUL, in each place an id goes. */
static void test_rejects_empty_and_nul(void **state)
{
    char **fields[] = {NULL, NULL, NULL, NULL};
    gw_snapshot_t s;
    gw_buf_t b;
    char *at;
    (void)state;

    for (size_t i = 0; i < 4; i++) {
        make_full(&s);
        fields[0] = &s.owner;
        fields[1] = &s.user;
        fields[2] = &s.allowed[1];
        fields[3] = &s.guilds[2];
        (*fields[i])[0] = '\0';
        expect_encoding_rejected(&s);
    }
    make_full(&s);
    encode(&s, &b);
    at = memmem(b.data, b.len, "guild-1", 7);
    assert_non_null(at);
    at[5] = '\0';
    expect_reject(b.data, b.len);
    free(b.data);
    gw_snapshot_free(&s);
}

/* Each string one byte over its bound; an owner that its length byte
 * cannot count is written empty rather than cut. */
static void test_rejects_long_strings(void **state)
{
    gw_snapshot_t s;
    gw_buf_t b;
    (void)state;

    make_full(&s);
    free(s.user);
    s.user = repeat('u', GW_SNAPSHOT_MAX_ID + 1);
    expect_encoding_rejected(&s);
    make_full(&s);
    free(s.allowed[0]);
    s.allowed[0] = repeat('a', GW_SNAPSHOT_MAX_ID + 1);
    expect_encoding_rejected(&s);
    make_full(&s);
    free(s.guilds[1]);
    s.guilds[1] = repeat('g', GW_SNAPSHOT_MAX_ID + 1);
    expect_encoding_rejected(&s);
    make_full(&s);
    free(s.owner);
    s.owner = repeat('o', GW_SNAPSHOT_MAX_OWNER + 1);
    encode(&s, &b);
    assert_int_equal(b.data[4], 0); /* not 256 cut to a byte */
    assert_int_equal(b.data[5], strlen(s.user));
    free(b.data);
    expect_encoding_rejected(&s);
}

static void test_rejects_counts_over_bounds(void **state)
{
    gw_snapshot_t s;
    (void)state;

    /* The allowed guilds' bound is their count's width: nothing to
     * exceed. */
    make_ids(&s, NULL, 0);
    s.nentries = GW_SNAPSHOT_MAX_ENTRIES + 1;
    s.seq = s.nentries;
    s.entries = gw_realloc(s.entries, s.nentries * sizeof(*s.entries));
    for (uint32_t i = 0; i < s.nentries; i++)
        s.entries[i].body = body("", 0, i);
    expect_encoding_rejected(&s);
}

/* One body of the largest size decodes; one byte more does not. */
static void test_rejects_long_body(void **state)
{
    gw_snapshot_t s;
    (void)state;

    make_ids(&s, (const uint64_t[]){1}, 1);
    gw_frame_unref(s.entries[0].body);
    s.entries[0].body = gw_frame_new(GW_SNAPSHOT_MAX_BODY);
    memset(s.entries[0].body->data, 'x', GW_SNAPSHOT_MAX_BODY);
    expect_encoding_accepted(&s);
    make_ids(&s, (const uint64_t[]){1}, 1);
    gw_frame_unref(s.entries[0].body);
    s.entries[0].body = gw_frame_new(GW_SNAPSHOT_MAX_BODY + 1);
    memset(s.entries[0].body->data, 'x', GW_SNAPSHOT_MAX_BODY + 1);
    expect_encoding_rejected(&s);
}

/* Bodies of 64 MiB in all decode; one byte more does not. The entries
 * share one frame, each holding its own reference. */
static void test_rejects_total_bytes(void **state)
{
    uint32_t n = GW_SNAPSHOT_MAX_BYTES / GW_SNAPSHOT_MAX_BODY;
    gw_frame_t *big = gw_frame_new(GW_SNAPSHOT_MAX_BODY);
    gw_snapshot_t s;
    (void)state;

    memset(big->data, 'y', big->len);
    for (int extra = 0; extra < 2; extra++) {
        make_ids(&s, NULL, 0);
        s.nentries = n + (uint32_t)extra;
        s.seq = s.nentries;
        s.entries = gw_realloc(s.entries, s.nentries * sizeof(*s.entries));
        for (uint32_t i = 0; i < n; i++)
            s.entries[i].body = gw_frame_ref(big);
        if (extra)
            s.entries[n].body = body("z", 1, 0);
        if (extra)
            expect_encoding_rejected(&s);
        else
            expect_encoding_accepted(&s);
    }
    assert_int_equal(atomic_load(&big->refs), 1);
    gw_frame_unref(big);
}

/* A zeroed snapshot frees; a freed one is zeroed and frees again. */
static void test_free_zeroed(void **state)
{
    gw_snapshot_t s, zero;
    (void)state;

    memset(&s, 0, sizeof(s));
    memset(&zero, 0, sizeof(zero));
    gw_snapshot_free(&s);
    make_full(&s);
    gw_snapshot_free(&s);
    assert_memory_equal(&s, &zero, sizeof(s));
    gw_snapshot_free(&s);
}

/* Runs the overlap of ids (in the snapshot) and held; checks keep. */
static void expect_dedupe(const uint64_t *ids, uint32_t nids,
                          const uint64_t *held, const uint8_t *want, size_t n)
{
    gw_snapshot_t s;
    uint8_t keep[16];
    size_t kept = 0;

    assert_true(n <= sizeof(keep));
    for (size_t i = 0; i < n; i++)
        kept += want[i];
    memset(keep, 0xee, sizeof(keep));
    make_ids(&s, ids, nids);
    assert_int_equal(gw_snapshot_dedupe(&s, held, n, keep), kept);
    assert_memory_equal(keep, want, n);
    gw_snapshot_free(&s);
}

static void test_dedupe_none_and_all(void **state)
{
    (void)state;
    expect_dedupe((const uint64_t[]){1, 2, 3}, 3, (const uint64_t[]){4, 5},
                  (const uint8_t[]){1, 1}, 2);
    expect_dedupe((const uint64_t[]){1, 2, 3}, 3, (const uint64_t[]){3, 1, 2},
                  (const uint8_t[]){0, 0, 0}, 3);
    expect_dedupe(NULL, 0, (const uint64_t[]){1, 2}, (const uint8_t[]){1, 1},
                  2);
}

/* An id twice in the snapshot cancels two held; once, only the first. */
static void test_dedupe_multiset(void **state)
{
    (void)state;
    expect_dedupe((const uint64_t[]){5, 9, 5}, 3,
                  (const uint64_t[]){5, 5, 5, 9, 9},
                  (const uint8_t[]){0, 0, 1, 0, 1}, 5);
    expect_dedupe((const uint64_t[]){5}, 1, (const uint64_t[]){6, 5, 7, 5},
                  (const uint8_t[]){1, 0, 1, 1}, 4);
}

/* Id 0 is none: it never cancels, on either side. */
static void test_dedupe_zero_never_matches(void **state)
{
    (void)state;
    expect_dedupe((const uint64_t[]){0, 0, 1}, 3,
                  (const uint64_t[]){0, 1, 0, 1}, (const uint8_t[]){1, 0, 1, 1},
                  4);
}

static void test_dedupe_nothing_held(void **state)
{
    gw_snapshot_t s;
    (void)state;

    make_full(&s);
    assert_int_equal(gw_snapshot_dedupe(&s, NULL, 0, NULL), 0);
    gw_snapshot_free(&s);
}

/* The largest both sides: snapshot ids 1..32768 twice each (in reverse),
 * held 1..65536 once each: the first half cancelled, the second kept. */
static void test_dedupe_large(void **state)
{
    uint32_t n = GW_SNAPSHOT_MAX_ENTRIES;
    uint64_t *ids = gw_malloc(n * sizeof(*ids));
    uint64_t *held = gw_malloc(n * sizeof(*held));
    uint8_t *keep = gw_malloc(n);
    gw_snapshot_t s;
    (void)state;

    for (uint32_t i = 0; i < n; i++) {
        ids[i] = n / 2 - i / 2;
        held[i] = i + 1;
    }
    make_ids(&s, ids, n);
    assert_int_equal(gw_snapshot_dedupe(&s, held, n, keep), n / 2);
    for (uint32_t i = 0; i < n; i++)
        assert_int_equal(keep[i], i >= n / 2);
    gw_snapshot_free(&s);
    free(ids);
    free(held);
    free(keep);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip_bounded),
        cmocka_unit_test(test_round_trip_claim),
        cmocka_unit_test(test_round_trip_no_entries),
        cmocka_unit_test(test_round_trip_at_bounds),
        cmocka_unit_test(test_layout),
        cmocka_unit_test(test_rejects_truncation),
        cmocka_unit_test(test_rejects_trailing_byte),
        cmocka_unit_test(test_rejects_magic_and_flags),
        cmocka_unit_test(test_rejects_more_entries_than_seq),
        cmocka_unit_test(test_rejects_empty_and_nul),
        cmocka_unit_test(test_rejects_long_strings),
        cmocka_unit_test(test_rejects_counts_over_bounds),
        cmocka_unit_test(test_rejects_long_body),
        cmocka_unit_test(test_rejects_total_bytes),
        cmocka_unit_test(test_free_zeroed),
        cmocka_unit_test(test_dedupe_none_and_all),
        cmocka_unit_test(test_dedupe_multiset),
        cmocka_unit_test(test_dedupe_zero_never_matches),
        cmocka_unit_test(test_dedupe_nothing_held),
        cmocka_unit_test(test_dedupe_large),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
