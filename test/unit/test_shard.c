/* What a sharded subscriber connection's replies say (gw_shard_reply_read):
 * messages, confirmations with their counts, errors, and what is none of
 * those, read from RESP text by hiredis's own reader. */
#include "gw/shard.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <hiredis/hiredis.h>

static redisReply *reply_of(const char *resp, size_t len)
{
    redisReader *r = redisReaderCreate();
    void *out = NULL;

    assert_int_equal(redisReaderFeed(r, resp, len), REDIS_OK);
    assert_int_equal(redisReaderGetReply(r, &out), REDIS_OK);
    assert_non_null(out);
    redisReaderFree(r);
    return out;
}

/* The reply of text read into *out (the reply is kept until the next
 * call, and freed by read_done). */
static redisReply *last;

static gw_shard_reply_kind_t read_text(const char *text, size_t len,
                                       gw_shard_reply_t *out)
{
    gw_shard_reply_kind_t k;

    if (last != NULL)
        freeReplyObject(last);
    last = reply_of(text, len);
    k = gw_shard_reply_read(last, out);
    assert_int_equal(k, out->kind);
    return k;
}

static int read_done(void **state)
{
    (void)state;
    if (last != NULL)
        freeReplyObject(last);
    last = NULL;
    return 0;
}

#define READ(text, out) read_text(text, sizeof(text) - 1, out)

static void test_messages_and_confirmations(void **state)
{
    gw_shard_reply_t r;

    (void)state;
    assert_int_equal(
        READ("*3\r\n$8\r\nsmessage\r\n$4\r\nch:1\r\n$3\r\na\0b\r\n", &r),
        GW_SHARD_MESSAGE);
    assert_int_equal(r.clen, 4);
    assert_memory_equal(r.channel, "ch:1", 4);
    assert_int_equal(r.len, 3); /* binary-safe */
    assert_memory_equal(r.payload, "a\0b", 3);
    assert_int_equal(READ("*3\r\n$10\r\nssubscribe\r\n$1\r\nc\r\n:7\r\n", &r),
                     GW_SHARD_SUBSCRIBED);
    assert_int_equal(r.count, 7);
    assert_memory_equal(r.channel, "c", 1);
    assert_int_equal(
        READ("*3\r\n$12\r\nsunsubscribe\r\n$2\r\ncd\r\n:0\r\n", &r),
        GW_SHARD_UNSUBSCRIBED);
    assert_int_equal(r.count, 0);
    assert_int_equal(r.clen, 2);
    assert_int_equal(READ("-MOVED 15495 127.0.0.1:7002\r\n", &r),
                     GW_SHARD_ERROR);
    assert_string_equal(r.payload, "MOVED 15495 127.0.0.1:7002");
    assert_int_equal(r.len, 26);
}

/* Replies of other shapes are none of the kinds above. */
static void test_other_replies(void **state)
{
    static const struct {
        const char *text;
        size_t len;
    } other[] = {
#define T(s) {s, sizeof(s) - 1}
        T("+OK\r\n"),
        T(":1\r\n"),
        T("$-1\r\n"),
        T("*0\r\n"),
        T("*2\r\n$4\r\npong\r\n$0\r\n\r\n"),
        /* classic pub/sub is not ours */
        T("*3\r\n$7\r\nmessage\r\n$1\r\nc\r\n$1\r\nx\r\n"),
        T("*3\r\n$9\r\nsubscribe\r\n$1\r\nc\r\n:1\r\n"),
        /* the right word, the wrong shape */
        T("*3\r\n$8\r\nsmessage\r\n$1\r\nc\r\n:1\r\n"),
        T("*3\r\n$10\r\nssubscribe\r\n$1\r\nc\r\n$1\r\n1\r\n"),
        T("*3\r\n:1\r\n$1\r\nc\r\n:1\r\n"),
        T("*3\r\n$10\r\nssubscribe\r\n:1\r\n:1\r\n"),
        T("*4\r\n$8\r\nsmessage\r\n$1\r\nc\r\n$1\r\nx\r\n$1\r\ny\r\n"),
        T("*3\r\n$8\r\nSMESSAGE\r\n$1\r\nc\r\n$1\r\nx\r\n"),
        T("*3\r\n$9\r\nsmessagex\r\n$1\r\nc\r\n$1\r\nx\r\n"),
#undef T
    };
    gw_shard_reply_t r;

    (void)state;
    for (size_t i = 0; i < sizeof(other) / sizeof(other[0]); i++)
        if (read_text(other[i].text, other[i].len, &r) != GW_SHARD_OTHER)
            fail_msg("case %zu read as %d", i, r.kind);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_messages_and_confirmations, read_done),
        cmocka_unit_test_teardown(test_other_replies, read_done),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
