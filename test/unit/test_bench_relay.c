/* gwbench's relay scenario, its pure parts (bench/relay.h): the request
 * text, nonces found in what gatewayd sends, error codes, the table of
 * pending requests, and the echo backend's answer to what gatewayd
 * publishes upstream. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "relay.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <string.h>

static const uint8_t *u8(const char *s)
{
    return (const uint8_t *)s;
}

static void test_request_text(void **state)
{
    char out[512];
    size_t n = relay_request(out, sizeof(out), 17, 42, 123456789, 0);
    cJSON *doc, *data;
    (void)state;

    assert_true(n > 0);
    assert_int_equal(strlen(out), n);
    doc = cJSON_Parse(out);
    assert_non_null(doc);
    assert_string_equal(cJSON_GetObjectItem(doc, "event")->valuestring,
                        RELAY_REQUEST_EVENT);
    assert_string_equal(cJSON_GetObjectItem(doc, "nonce")->valuestring,
                        "17.42");
    data = cJSON_GetObjectItem(doc, "data");
    assert_true(cJSON_GetObjectItem(data, "cts")->valuedouble == 123456789.0);
    assert_string_equal(cJSON_GetObjectItem(data, "pad")->valuestring, "");
    cJSON_Delete(doc);
}

/* Padded to the payload exactly, whatever the numbers' lengths. */
static void test_request_padded(void **state)
{
    char out[512];
    uint32_t idx[] = {0, 9, 4294967295u};
    uint64_t seq[] = {0, 123456, UINT64_MAX / 10};
    (void)state;

    for (size_t i = 0; i < 3; i++) {
        size_t n = relay_request(out, sizeof(out), idx[i], seq[i], 1, 200);
        cJSON *doc = cJSON_Parse(out);

        assert_int_equal(n, 200);
        assert_int_equal(strlen(out), 200);
        assert_non_null(doc);
        cJSON_Delete(doc);
    }
    /* Exactly the room for the text and its NUL, then one byte short. */
    assert_int_equal(relay_request(out, 201, 1, 2, 3, 200), 200);
    assert_int_equal(relay_request(out, 200, 1, 2, 3, 200), 0);
    assert_int_equal(relay_request(out, 16, 1, 2, 3, 0), 0);
}

static void test_nonce_in_messages(void **state)
{
    uint32_t i = 0;
    uint64_t s = 0;
    char req[256];
    (void)state;

    /* A dispatch of gatewayd's, an error, and our own request. */
    static const char dispatch[] = "{\"seq\":12,\"event\":\"bench.res\","
                                   "\"nonce\":\"7.42\",\"data\":{\"x\":1}}";
    static const char error[] = "{\"event\":\"error\",\"nonce\":\"4294967295."
                                "18446744073709551\",\"data\":{\"code\":"
                                "\"overloaded\",\"message\":\"m\"}}";

    assert_int_equal(relay_nonce_find(u8(dispatch), strlen(dispatch), &i, &s),
                     0);
    assert_int_equal(i, 7);
    assert_int_equal(s, 42);
    assert_int_equal(relay_nonce_find(u8(error), strlen(error), &i, &s), 0);
    assert_int_equal(i, 4294967295u);
    assert_true(s == 18446744073709551ull);
    relay_request(req, sizeof(req), 3, 99, 5, 0);
    assert_int_equal(relay_nonce_find(u8(req), strlen(req), &i, &s), 0);
    assert_int_equal(i, 3);
    assert_int_equal(s, 99);
}

static void test_nonce_not_ours(void **state)
{
    static const char *const bad[] = {
        "{\"event\":\"error\",\"data\":{}}",      /* none */
        "{\"nonce\":\"req-17\"}",                 /* not digits */
        "{\"nonce\":\"17\"}",                     /* no dot */
        "{\"nonce\":\".5\"}",                     /* no index */
        "{\"nonce\":\"5.\"}",                     /* no seq */
        "{\"nonce\":\"4294967296.1\"}",           /* index too large */
        "{\"nonce\":\"12345678901.1\"}",          /* index too long */
        "{\"nonce\":\"1.12345678901234567890\"}", /* seq too long */
        "{\"nonce\":\"1.2x\"}",                   /* junk after seq */
        "{\"nonce\":\"1.2",                       /* cut short */
        "{\"nonce\": \"1.2\"}",                   /* not gatewayd's spelling */
    };
    uint32_t i;
    uint64_t s;
    (void)state;

    for (size_t k = 0; k < sizeof(bad) / sizeof(bad[0]); k++)
        assert_int_equal(relay_nonce_find(u8(bad[k]), strlen(bad[k]), &i, &s),
                         -1);
}

/* Only the head of a message is searched: a nonce deep inside data is not
 * the message's. */
static void test_nonce_only_in_head(void **state)
{
    char msg[1024];
    uint32_t i;
    uint64_t s;
    int n;
    (void)state;

    n = snprintf(msg, sizeof(msg),
                 "{\"seq\":1,\"event\":\"x\",\"data\":{\"p\":"
                 "\"%0400d\",\"nonce\":\"1.2\"}}",
                 0);
    assert_int_equal(relay_nonce_find(u8(msg), (size_t)n, &i, &s), -1);
}

static void test_error_codes(void **state)
{
    static const struct {
        const char *msg;
        relay_err_t code;
    } cases[] = {
        {"{\"data\":{\"code\":\"unavailable\",\"message\":\"m\"}}",
         RELAY_ERR_UNAVAILABLE},
        {"{\"data\":{\"code\":\"overloaded\"}}", RELAY_ERR_OVERLOADED},
        {"{\"data\":{\"code\":\"rate_limited\"}}", RELAY_ERR_RATE_LIMITED},
        {"{\"data\":{\"code\":\"unknown_event\"}}", RELAY_ERR_OTHER},
        {"{\"data\":{\"code\":\"unavailable_x\"}}", RELAY_ERR_OTHER},
        {"{\"data\":{\"code\":\"overload", RELAY_ERR_OTHER},
        {"{\"data\":{}}", RELAY_ERR_OTHER},
    };
    (void)state;

    for (size_t k = 0; k < sizeof(cases) / sizeof(cases[0]); k++)
        assert_int_equal(
            relay_error_code(u8(cases[k].msg), strlen(cases[k].msg)),
            cases[k].code);
}

static void test_table_match_once(void **state)
{
    relay_table_t t;
    uint64_t sent = 0;
    int expired = 1;
    (void)state;

    relay_table_init(&t, 10);
    assert_int_equal(relay_table_send(&t, 5, 1000, &expired), 0);
    assert_int_equal(expired, 0);
    assert_int_equal(relay_table_send(&t, 6, 2000, &expired), 1);
    assert_int_equal(t.pending, 2);
    /* Out of order, each once. */
    assert_int_equal(relay_table_answer(&t, 6, 6, 1, &sent), RELAY_MATCH);
    assert_int_equal(sent, 2000);
    assert_int_equal(relay_table_answer(&t, 6, 6, 1, &sent), RELAY_UNKNOWN);
    assert_int_equal(relay_table_answer(&t, 5, 5, 0, &sent), RELAY_MATCH);
    assert_int_equal(sent, 1000);
    assert_int_equal(t.pending, 0);
    /* Never sent, or sent by another client. */
    assert_int_equal(relay_table_answer(&t, 5, 5, 2, &sent), RELAY_UNKNOWN);
    relay_table_send(&t, 7, 3000, &expired);
    assert_int_equal(relay_table_answer(&t, 8, 8, 2, &sent), RELAY_UNKNOWN);
    assert_int_equal(t.pending, 1);
    relay_table_free(&t);
    assert_null(t.slot);
}

/* An answer on the wrong session is counted and the request stays
 * pending for its own. */
static void test_table_misrouted(void **state)
{
    relay_table_t t;
    uint64_t sent = 0;
    int expired;
    (void)state;

    relay_table_init(&t, 1);
    relay_table_send(&t, 3, 77, &expired);
    assert_int_equal(relay_table_answer(&t, 4, 3, 0, &sent), RELAY_MISROUTED);
    assert_int_equal(t.pending, 1);
    assert_int_equal(relay_table_answer(&t, 3, 3, 0, &sent), RELAY_MATCH);
    assert_int_equal(sent, 77);
    relay_table_free(&t);
}

/* A slot is reused a table later: what still waits there is given up, and
 * its late answer is unknown. */
static void test_table_expiry(void **state)
{
    relay_table_t t;
    uint64_t sent = 0, size;
    int expired = 0, expired_total = 0;
    (void)state;

    relay_table_init(&t, 1);
    size = t.mask + 1;
    assert_int_equal(size, RELAY_MIN_SLOTS);
    for (uint64_t k = 0; k < size; k++) {
        relay_table_send(&t, 1, k, &expired);
        expired_total += expired;
    }
    assert_int_equal(expired_total, 0);
    assert_int_equal(relay_table_answer(&t, 1, 1, 1, &sent), RELAY_MATCH);
    /* Slot 0 still waits, slot 1 was answered. */
    assert_int_equal(relay_table_send(&t, 1, 9, &expired), size);
    assert_int_equal(expired, 1);
    assert_int_equal(relay_table_send(&t, 1, 9, &expired), size + 1);
    assert_int_equal(expired, 0);
    assert_int_equal(relay_table_answer(&t, 1, 1, 0, &sent), RELAY_UNKNOWN);
    assert_int_equal(relay_table_answer(&t, 1, 1, size, &sent), RELAY_MATCH);
    assert_int_equal(t.pending, size - 1);
    relay_table_free(&t);
}

static void test_table_size_bounds(void **state)
{
    relay_table_t t;
    (void)state;

    relay_table_init(&t, RELAY_MIN_SLOTS + 1);
    assert_int_equal(t.mask + 1, 2 * RELAY_MIN_SLOTS);
    relay_table_free(&t);
    relay_table_init(&t, UINT64_MAX);
    assert_int_equal(t.mask + 1, RELAY_MAX_SLOTS);
    relay_table_free(&t);
}

/* What gatewayd publishes upstream (src/broker.c's envelope). */
static const char upstream[] =
    "{\"event\":\"bench.req\",\"data\":{\"cts\":3215678901,\"pad\":\"xx\"},"
    "\"userId\":\"u17\",\"sessionId\":\"00112233445566778899aabbccddeeff\","
    "\"instanceId\":\"gwbench\",\"nonce\":\"17.42\",\"receivedAt\":"
    "1764633600000}";

static void test_answer_envelope(void **state)
{
    char out[512];
    uint64_t cts = 0;
    long n = relay_answer(upstream, strlen(upstream), 3215679000ull, out,
                          sizeof(out), &cts);
    cJSON *doc, *data;
    (void)state;

    assert_true(n > 0);
    assert_int_equal(strlen(out), (size_t)n);
    assert_true(cts == 3215678901ull);
    doc = cJSON_Parse(out);
    assert_non_null(doc);
    assert_string_equal(cJSON_GetObjectItem(doc, "event")->valuestring,
                        RELAY_ANSWER_EVENT);
    assert_string_equal(cJSON_GetObjectItem(doc, "sessionId")->valuestring,
                        "00112233445566778899aabbccddeeff");
    assert_string_equal(cJSON_GetObjectItem(doc, "nonce")->valuestring,
                        "17.42");
    /* Nothing else of the request's envelope goes back. */
    assert_null(cJSON_GetObjectItem(doc, "userId"));
    assert_null(cJSON_GetObjectItem(doc, "guildId"));
    data = cJSON_GetObjectItem(doc, "data");
    assert_true(cJSON_GetObjectItem(data, "cts")->valuedouble == 3215678901.0);
    assert_true(cJSON_GetObjectItem(data, "ets")->valuedouble == 3215679000.0);
    assert_string_equal(cJSON_GetObjectItem(data, "pad")->valuestring, "xx");
    /* The stamps are written as integers, which the client reads. */
    assert_non_null(strstr(out, "\"ets\":3215679000"));
    assert_non_null(strstr(out, "\"cts\":3215678901"));
    cJSON_Delete(doc);
    /* Too small a buffer. */
    assert_int_equal(relay_answer(upstream, strlen(upstream), 1, out, 64, &cts),
                     -1);
}

static void test_answer_refuses(void **state)
{
    static const char *const bad[] = {
        "not json",
        "{\"event\":\"bench.req\",\"sessionId\":\"ab\"}", /* no nonce */
        "{\"event\":\"bench.req\",\"nonce\":\"1.2\"}",    /* no session */
        "{\"sessionId\":1,\"nonce\":\"1.2\"}",
        "[1,2]",
    };
    char out[256];
    uint64_t cts = 7;
    (void)state;

    for (size_t k = 0; k < sizeof(bad) / sizeof(bad[0]); k++) {
        assert_int_equal(
            relay_answer(bad[k], strlen(bad[k]), 1, out, sizeof(out), &cts),
            -1);
        assert_int_equal(cts, 0);
    }
}

/* data that is no object becomes one; a stamp already there is replaced,
 * not doubled. */
static void test_answer_data_forms(void **state)
{
    static const char none[] = "{\"sessionId\":\"s\",\"nonce\":\"1.2\"}";
    static const char stamped[] =
        "{\"sessionId\":\"s\",\"nonce\":\"1.2\",\"data\":{\"ets\":5}}";
    char out[256];
    uint64_t cts = 9;
    (void)state;

    assert_true(relay_answer(none, strlen(none), 8, out, sizeof(out), &cts) >
                0);
    assert_int_equal(cts, 0);
    assert_string_equal(out, "{\"event\":\"" RELAY_ANSWER_EVENT
                             "\",\"sessionId\":\"s\",\"nonce\":\"1.2\","
                             "\"data\":{\"ets\":8}}");
    assert_true(
        relay_answer(stamped, strlen(stamped), 8, out, sizeof(out), &cts) > 0);
    assert_non_null(strstr(out, "\"data\":{\"ets\":8}}"));
}

/* A request, as gatewayd wraps it, answered, as gatewayd delivers it:
 * the client finds its own request again. */
static void test_round_trip(void **state)
{
    char req[256], up[512], ans[512], msg[600], *data;
    uint32_t i;
    uint64_t s, cts;
    cJSON *doc;
    long n;
    (void)state;

    relay_request(req, sizeof(req), 4321, 8765, 1111, 120);
    doc = cJSON_Parse(req);
    data = cJSON_PrintUnformatted(cJSON_GetObjectItem(doc, "data"));
    snprintf(up, sizeof(up),
             "{\"event\":\"bench.req\",\"data\":%s,\"userId\":\"u4321\","
             "\"sessionId\":\"abc\",\"instanceId\":\"i\",\"nonce\":\"%s\","
             "\"receivedAt\":1}",
             data, cJSON_GetObjectItem(doc, "nonce")->valuestring);
    cJSON_free(data);
    cJSON_Delete(doc);
    n = relay_answer(up, strlen(up), 2222, ans, sizeof(ans), &cts);
    assert_true(n > 0);
    assert_int_equal(cts, 1111);
    /* gatewayd's dispatch: seq, event, nonce, data. */
    doc = cJSON_Parse(ans);
    data = cJSON_PrintUnformatted(cJSON_GetObjectItem(doc, "data"));
    snprintf(msg, sizeof(msg),
             "{\"seq\":3,\"event\":\"bench.res\",\"nonce\":\"%s\",\"data\":%s}",
             cJSON_GetObjectItem(doc, "nonce")->valuestring, data);
    cJSON_free(data);
    cJSON_Delete(doc);
    assert_int_equal(relay_nonce_find(u8(msg), strlen(msg), &i, &s), 0);
    assert_int_equal(i, 4321);
    assert_int_equal(s, 8765);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_request_text),
        cmocka_unit_test(test_request_padded),
        cmocka_unit_test(test_nonce_in_messages),
        cmocka_unit_test(test_nonce_not_ours),
        cmocka_unit_test(test_nonce_only_in_head),
        cmocka_unit_test(test_error_codes),
        cmocka_unit_test(test_table_match_once),
        cmocka_unit_test(test_table_misrouted),
        cmocka_unit_test(test_table_expiry),
        cmocka_unit_test(test_table_size_bounds),
        cmocka_unit_test(test_answer_envelope),
        cmocka_unit_test(test_answer_refuses),
        cmocka_unit_test(test_answer_data_forms),
        cmocka_unit_test(test_round_trip),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
