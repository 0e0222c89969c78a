/* Redis Cluster's key space: slots (vectors from a real redis-server's
 * CLUSTER KEYSLOT), CLUSTER SLOTS replies read into a map, -MOVED. */
#include "gw/error.h"
#include "gw/slotmap.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <hiredis/hiredis.h>

/* The reply of RESP text, through hiredis's own reader. */
static redisReply *reply_of(const char *resp)
{
    redisReader *r = redisReaderCreate();
    void *out = NULL;

    assert_int_equal(redisReaderFeed(r, resp, strlen(resp)), REDIS_OK);
    assert_int_equal(redisReaderGetReply(r, &out), REDIS_OK);
    assert_non_null(out);
    redisReaderFree(r);
    return out;
}

static void test_slot_vectors(void **state)
{
    static const struct {
        const char *key;
        unsigned slot;
    } v[] = {
        {"123456789", 12739}, /* CRC16 check value 0x31C3 */
        {"foo", 12182},
        {"bar", 5061},
        {"hello", 866},
        {"{user1000}.following", 3443},
        {"{user1000}.followers", 3443}, /* one tag, one slot */
        {"foo{}{bar}", 8363},           /* an empty tag is no tag */
        {"foo{{bar}}zap", 4015},        /* the tag is "{bar" */
        {"foo{bar}{zap}", 5061},        /* the first tag: "bar" */
        {"{}", 15257},
        {"", 0},
        {"a{b", 13340}, /* no closing brace: the whole key */
        {"gateway_events:guild:g1", 1125},
        {"gateway_events:user:u1", 12909},
    };
    (void)state;
    for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++)
        if (gw_slot_of(v[i].key, strlen(v[i].key)) != v[i].slot)
            fail_msg("%s: %u, not %u", v[i].key,
                     gw_slot_of(v[i].key, strlen(v[i].key)), v[i].slot);
}

/* Three masters with a replica each, as redis 7 answers CLUSTER SLOTS
 * (a fourth element of metadata on each node). */
static const char three_masters[] =
    "*3\r\n"
    "*4\r\n:0\r\n:5460\r\n"
    "*4\r\n$9\r\n127.0.0.1\r\n:7001\r\n$2\r\nid\r\n*0\r\n"
    "*4\r\n$9\r\n127.0.0.1\r\n:7004\r\n$2\r\nr1\r\n*0\r\n"
    "*4\r\n:5461\r\n:10922\r\n"
    "*3\r\n$9\r\n127.0.0.1\r\n:7002\r\n$2\r\nid\r\n"
    "*3\r\n$9\r\n127.0.0.1\r\n:7005\r\n$2\r\nr2\r\n"
    "*3\r\n:10923\r\n:16383\r\n"
    "*3\r\n$0\r\n\r\n:7003\r\n$2\r\nid\r\n";

static void test_cluster_slots_read(void **state)
{
    gw_slotmap_t *m = malloc(sizeof(*m));
    redisReply *r = reply_of(three_masters);

    (void)state;
    gw_slotmap_init(m);
    assert_int_equal(gw_slotmap_covered(m), 0);
    assert_int_equal(gw_slotmap_parse(m, r), 0);
    assert_int_equal(m->nshards, 3); /* replicas are not shards */
    assert_int_equal(gw_slotmap_covered(m), GW_SLOTS);
    assert_int_equal(m->owner[0], gw_slotmap_find(m, "127.0.0.1", 7001));
    assert_int_equal(m->owner[5461], gw_slotmap_find(m, "127.0.0.1", 7002));
    assert_int_equal(m->owner[16383], gw_slotmap_find(m, "", 7003));
    assert_int_equal(gw_slotmap_find(m, "127.0.0.1", 7004), -1);
    freeReplyObject(r);
    gw_slotmap_free(m);
    free(m);
}

/* A slot range split over two entries of one master is one shard; slots
 * no entry names stay unserved. */
static void test_ranges_and_holes(void **state)
{
    gw_slotmap_t *m = malloc(sizeof(*m));
    redisReply *r = reply_of("*2\r\n"
                             "*3\r\n:0\r\n:99\r\n*2\r\n$1\r\na\r\n:1\r\n"
                             "*3\r\n:200\r\n:299\r\n*2\r\n$1\r\na\r\n:1\r\n");

    (void)state;
    gw_slotmap_init(m);
    assert_int_equal(gw_slotmap_parse(m, r), 0);
    assert_int_equal(m->nshards, 1);
    assert_int_equal(gw_slotmap_covered(m), 200);
    assert_int_equal(m->owner[150], GW_SLOT_NONE);
    freeReplyObject(r);
    gw_slotmap_free(m);
    free(m);
}

/* What is not a CLUSTER SLOTS reply is refused, and the map kept. */
#define R(text)                                                                \
    {                                                                          \
        text, sizeof(text) - 1                                                 \
    }
static const struct {
    const char *text;
    size_t len; /* one holds a NUL */
} bad_replies[] = {
    R("+OK\r\n"),
    R("*1\r\n:5\r\n"),                                    /* not an entry */
    R("*1\r\n*2\r\n:0\r\n:1\r\n"),                        /* no master */
    R("*1\r\n*3\r\n:5\r\n:4\r\n*2\r\n$1\r\na\r\n:1\r\n"), /* end < start */
    R("*1\r\n*3\r\n:0\r\n:16384\r\n*2\r\n$1\r\na\r\n:1\r\n"),
    R("*1\r\n*3\r\n:-1\r\n:3\r\n*2\r\n$1\r\na\r\n:1\r\n"),
    R("*1\r\n*3\r\n:0\r\n:3\r\n*2\r\n$1\r\na\r\n:0\r\n"), /* port 0 */
    R("*1\r\n*3\r\n:0\r\n:3\r\n*2\r\n$1\r\na\r\n:65536\r\n"),
    R("*1\r\n*3\r\n:0\r\n:3\r\n*2\r\n:1\r\n:1\r\n"),           /* host int */
    R("*1\r\n*3\r\n:0\r\n:3\r\n*1\r\n$1\r\na\r\n"),            /* no port */
    R("*1\r\n*3\r\n$1\r\n0\r\n:3\r\n*2\r\n$1\r\na\r\n:1\r\n"), /* "0" */
    R("*1\r\n*3\r\n:0\r\n:3\r\n*2\r\n$3\r\na\0b\r\n:1\r\n"),   /* NUL */
    /* two masters claim slot 5 */
    R("*2\r\n*3\r\n:0\r\n:5\r\n*2\r\n$1\r\na\r\n:1\r\n"
      "*3\r\n:5\r\n:9\r\n*2\r\n$1\r\nb\r\n:1\r\n"),
};

static void test_bad_replies_keep_the_map(void **state)
{
    gw_slotmap_t *m = malloc(sizeof(*m));
    redisReply *good = reply_of(three_masters);

    (void)state;
    gw_slotmap_init(m);
    assert_int_equal(gw_slotmap_parse(m, good), 0);
    for (size_t i = 0; i < sizeof(bad_replies) / sizeof(bad_replies[0]); i++) {
        redisReader *rd = redisReaderCreate();
        void *r = NULL;

        assert_int_equal(
            redisReaderFeed(rd, bad_replies[i].text, bad_replies[i].len),
            REDIS_OK);
        assert_int_equal(redisReaderGetReply(rd, &r), REDIS_OK);
        assert_non_null(r);
        if (gw_slotmap_parse(m, r) != GW_EPARSE)
            fail_msg("case %zu was taken", i);
        assert_int_equal(m->nshards, 3);
        assert_int_equal(gw_slotmap_covered(m), GW_SLOTS);
        freeReplyObject(r);
        redisReaderFree(rd);
    }
    assert_int_equal(gw_slotmap_parse(m, NULL), GW_EPARSE);
    freeReplyObject(good);
    gw_slotmap_free(m);
    free(m);
}

static void test_moved(void **state)
{
    static const char *bad[] = {
        "ASK 3999 127.0.0.1:6381",
        "MOVED",
        "MOVED 3999",
        "MOVED 16384 h:1",
        "MOVED 1 h:0",
        "MOVED 1 h:65536",
        "MOVED 1 h",
        "MOVED x h:1",
        "MOVED 1 h:1x",
        "MOVED  h:1",
        "MOVED 1 h:",
        "MOVED 123456 h:1",
    };
    gw_slot_moved_t mv;

    (void)state;
    assert_int_equal(gw_slot_moved("MOVED 3999 127.0.0.1:6381", 25, &mv), 0);
    assert_int_equal(mv.slot, 3999);
    assert_string_equal(mv.host, "127.0.0.1");
    assert_int_equal(mv.port, 6381);
    assert_int_equal(gw_slot_moved("MOVED 0 ::1:7000", 16, &mv), 0);
    assert_string_equal(mv.host, "::1");
    assert_int_equal(mv.port, 7000);
    assert_int_equal(gw_slot_moved("MOVED 16383 :7003", 17, &mv), 0);
    assert_string_equal(mv.host, "");
    assert_int_equal(mv.slot, 16383);
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        if (gw_slot_moved(bad[i], strlen(bad[i]), &mv) != GW_EPARSE)
            fail_msg("taken: %s", bad[i]);
}

/* Seed lists as redis.cluster_nodes writes them. */
static void test_seed_lists(void **state)
{
    static const char *bad[] = {
        "h",        "h:",    ":7000",    "h:0",       "h:65536",  "h:70000x",
        "::1:7000", "[::1]", "[]:7000",  "[::1:7000", "a b:1",    "h:1,,h:2",
        ",h:1",     "h:-1",  "h:123456", "[a]b:1",    "h\x01x:1", "h:1 2",
    };
    const char *s = " 127.0.0.1:7000,redis-1.example:7001 , [::1]:7002,";
    gw_slot_node_t n;

    (void)state;
    assert_int_equal(gw_slot_node_next(&s, &n), 1);
    assert_string_equal(n.host, "127.0.0.1");
    assert_int_equal(n.port, 7000);
    assert_int_equal(gw_slot_node_next(&s, &n), 1);
    assert_string_equal(n.host, "redis-1.example");
    assert_int_equal(n.port, 7001);
    assert_int_equal(gw_slot_node_next(&s, &n), 1);
    assert_string_equal(n.host, "::1");
    assert_int_equal(n.port, 7002);
    assert_int_equal(gw_slot_node_next(&s, &n), 0);
    s = "  ";
    assert_int_equal(gw_slot_node_next(&s, &n), 0);
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        int rc;
        s = bad[i];
        while ((rc = gw_slot_node_next(&s, &n)) == 1)
            ;
        if (rc != GW_EPARSE)
            fail_msg("taken: %s", bad[i]);
    }
}

static gw_slotmap_t *map_of(const char *resp)
{
    gw_slotmap_t *m = malloc(sizeof(*m));
    redisReply *r = reply_of(resp);

    gw_slotmap_init(m);
    assert_int_equal(gw_slotmap_parse(m, r), 0);
    freeReplyObject(r);
    return m;
}

static void map_free(gw_slotmap_t *m)
{
    gw_slotmap_free(m);
    free(m);
}

/* The channels of one turn: one group per slot, sorted by shard and slot,
 * the order of the caller kept within a slot, unserved slots last. */
static void test_grouping_by_shard_and_slot(void **state)
{
    /* a serves 0-8191, b 8192-12999; 13000-16383 unserved. */
    gw_slotmap_t *m =
        map_of("*2\r\n"
               "*3\r\n:0\r\n:8191\r\n*2\r\n$1\r\na\r\n:1\r\n"
               "*3\r\n:8192\r\n:12999\r\n*2\r\n$1\r\nb\r\n:2\r\n");
    const char *names[] = {
        "gateway_events:user:u1",  /* 12909: b */
        "{user1000}.following",    /* 3443: a */
        "gateway_events:guild:g1", /* 1125: a */
        "foo",                     /* 12182: b */
        "{user1000}.followers",    /* 3443: a, after .following */
        "{}",                      /* 15257: nobody */
        "123456789",               /* 12739: b */
    };
    size_t n = sizeof(names) / sizeof(names[0]), lens[7], order[7];
    gw_slot_group_t g[7];
    static const size_t want_order[] = {2, 1, 4, 3, 6, 0, 5};
    size_t ng;

    (void)state;
    for (size_t i = 0; i < n; i++)
        lens[i] = strlen(names[i]);
    ng = gw_slotmap_group(m, names, lens, n, order, g);
    assert_int_equal(ng, 6);
    for (size_t i = 0; i < n; i++)
        assert_int_equal(order[i], want_order[i]);
    assert_int_equal(g[0].shard, 0);
    assert_int_equal(g[0].slot, 1125);
    assert_int_equal(g[1].slot, 3443);
    assert_int_equal(g[1].first, 1);
    assert_int_equal(g[1].n, 2);
    assert_int_equal(g[2].shard, 1);
    assert_int_equal(g[2].slot, 12182);
    assert_int_equal(g[3].slot, 12739);
    assert_int_equal(g[4].slot, 12909);
    assert_int_equal(g[5].shard, GW_SLOT_NONE);
    assert_int_equal(g[5].slot, 15257);
    assert_int_equal(g[5].first, 6);
    assert_int_equal(gw_slotmap_group(m, names, lens, 0, order, g), 0);
    map_free(m);
}

static size_t bits_count(const uint8_t *bits)
{
    size_t n = 0;

    for (unsigned s = 0; s < GW_SLOTS; s++)
        n += (size_t)gw_slot_marked(bits, s);
    return n;
}

/* What a new CLUSTER SLOTS changed: a migrated slot, a failed-over master
 * (a new address for its slots), slots no longer served; shard indices
 * that differ between the maps do not count. */
static void test_topology_changes(void **state)
{
    gw_slotmap_t *before =
        map_of("*3\r\n"
               "*3\r\n:0\r\n:5460\r\n*2\r\n$1\r\na\r\n:1\r\n"
               "*3\r\n:5461\r\n:10922\r\n*2\r\n$1\r\nb\r\n:1\r\n"
               "*3\r\n:10923\r\n:16383\r\n*2\r\n$1\r\nc\r\n:1\r\n");
    /* The same shards listed in another order: no change. */
    gw_slotmap_t *same =
        map_of("*3\r\n"
               "*3\r\n:10923\r\n:16383\r\n*2\r\n$1\r\nc\r\n:1\r\n"
               "*3\r\n:0\r\n:5460\r\n*2\r\n$1\r\na\r\n:1\r\n"
               "*3\r\n:5461\r\n:10922\r\n*2\r\n$1\r\nb\r\n:1\r\n");
    /* Slot 100 migrated from a to c; b failed over to b2; c lost
     * 16000-16383. */
    gw_slotmap_t *after =
        map_of("*5\r\n"
               "*3\r\n:0\r\n:99\r\n*2\r\n$1\r\na\r\n:1\r\n"
               "*3\r\n:100\r\n:100\r\n*2\r\n$1\r\nc\r\n:1\r\n"
               "*3\r\n:101\r\n:5460\r\n*2\r\n$1\r\na\r\n:1\r\n"
               "*3\r\n:5461\r\n:10922\r\n*2\r\n$2\r\nb2\r\n:1\r\n"
               "*3\r\n:10923\r\n:15999\r\n*2\r\n$1\r\nc\r\n:1\r\n");
    uint8_t *bits = calloc(GW_SLOT_BYTES, 1);
    gw_slotmap_t *empty = malloc(sizeof(*empty));

    (void)state;
    gw_slotmap_init(empty);
    assert_int_equal(gw_slotmap_diff(before, same, bits), 0);
    assert_int_equal(bits_count(bits), 0);
    assert_int_equal(gw_slotmap_diff(before, after, bits), 1 + 5462 + 384);
    assert_true(gw_slot_marked(bits, 100));
    assert_false(gw_slot_marked(bits, 99));
    assert_false(gw_slot_marked(bits, 101));
    assert_true(gw_slot_marked(bits, 5461));
    assert_true(gw_slot_marked(bits, 10922));
    assert_false(gw_slot_marked(bits, 10923));
    assert_false(gw_slot_marked(bits, 15999));
    assert_true(gw_slot_marked(bits, 16000));
    assert_int_equal(bits_count(bits), 1 + 5462 + 384);
    /* From nothing, every slot served is new; bits already set stay. */
    memset(bits, 0, GW_SLOT_BYTES);
    gw_slot_mark(bits, 16383);
    assert_int_equal(gw_slotmap_diff(empty, after, bits), GW_SLOTS - 384);
    assert_int_equal(bits_count(bits), GW_SLOTS - 383);
    free(bits);
    map_free(empty);
    map_free(before);
    map_free(same);
    map_free(after);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_slot_vectors),
        cmocka_unit_test(test_cluster_slots_read),
        cmocka_unit_test(test_ranges_and_holes),
        cmocka_unit_test(test_bad_replies_keep_the_map),
        cmocka_unit_test(test_moved),
        cmocka_unit_test(test_seed_lists),
        cmocka_unit_test(test_grouping_by_shard_and_slot),
        cmocka_unit_test(test_topology_changes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
