/*
 * The gateway protocol alone: sessions driven through the WebSocket
 * layer's callbacks, on top of a stand-in for that layer (the gw_ws_*
 * functions below, which the linker takes instead of ws.o) that records
 * what the protocol sends and closes, and a clock the test sets. Links
 * proto, session, index, jwt and json; no socket, loop or worker.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "gw/error.h"
#include "gw/proto.h"
#include "gw/snapshot.h"
#include "gw/transfer.h"

#include <mbedtls/base64.h>
#include <mbedtls/md.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define SECRET "proto-test-secret"
#define NOUT 16

/* ---- the WebSocket layer, played by the test ---- */

typedef struct fake {
    gw_ws_t ws; /* first: the protocol sees only this */
    char out[NOUT][512];
    int nout;
    uint16_t close_code;
    int handed_off;       /* gw_ws_hand_off was called */
    uint32_t room;        /* what the last gw_ws_admit asked for */
    int admit_rc;         /* what it answers */
    unsigned admit_drops; /* and drops with GW_EFULL */
} fake_t;

static fake_t fakes[4];

static fake_t *fake_of(gw_ws_t *ws)
{
    return (fake_t *)ws;
}

static void fake_record(gw_ws_t *ws, const char *a, size_t alen, const char *b,
                        size_t blen)
{
    fake_t *f = fake_of(ws);

    assert_true(f->nout < NOUT && alen + blen < sizeof(f->out[0]));
    memcpy(f->out[f->nout], a, alen);
    memcpy(f->out[f->nout] + alen, b, blen);
    f->out[f->nout++][alen + blen] = '\0';
}

void gw_ws_send_text(gw_ws_t *ws, const char *text, size_t len)
{
    if (ws->state == GW_WS_OPEN)
        fake_record(ws, text, len, "", 0);
}

void gw_ws_send_shared(gw_ws_t *ws, char *prefix, size_t plen, gw_frame_t *body)
{
    fake_record(ws, prefix, plen, body->data, body->len);
}

int gw_ws_admit(gw_ws_t *ws, uint32_t room, unsigned *dropped)
{
    fake_of(ws)->room = room;
    *dropped = fake_of(ws)->admit_drops;
    return fake_of(ws)->admit_rc;
}

void gw_ws_close(gw_ws_t *ws, uint16_t code, const char *reason)
{
    (void)reason;
    if (ws->state != GW_WS_OPEN)
        return;
    fake_of(ws)->close_code = code;
    ws->state = GW_WS_CLOSING;
}

void gw_ws_abort(gw_ws_t *ws)
{
    ws->state = GW_WS_CLOSING;
}

void gw_ws_flush(gw_ws_t *ws)
{
    (void)ws;
}

void gw_ws_loop_each(gw_ws_loop_t *l, void (*fn)(gw_ws_t *, void *), void *arg)
{
    (void)l;
    for (int i = 0; i < 4; i++)
        if (fakes[i].ws.data != NULL)
            fn(&fakes[i].ws, arg);
}

void gw_ws_hand_off(gw_ws_t *ws)
{
    fake_of(ws)->handed_off = 1;
}

/* ---- the owner's hooks: a clock and a relay ---- */

static uint64_t clock_ms;
static int relays, relay_rc, ups, up_rc, syncs, sync_rc;
static char sync_scope[80];
static char relayed[128];
static char up_event[80], up_data[256], up_nonce[80];

static uint64_t test_now(void *data)
{
    (void)data;
    return clock_ms;
}

static int test_relay(void *data, const char *user, const char *guild,
                      const char *channel)
{
    (void)data;
    relays++;
    snprintf(relayed, sizeof(relayed), "%s/%s/%s", user, guild, channel);
    return relay_rc;
}

static int test_upstream(void *data, const gw_session_t *s, const char *event,
                         const char *json, size_t len, const char *nonce)
{
    (void)data;
    assert_true(s->identified);
    ups++;
    snprintf(up_event, sizeof(up_event), "%s", event);
    snprintf(up_data, sizeof(up_data), "%.*s", (int)len, json);
    snprintf(up_nonce, sizeof(up_nonce), "%s", nonce ? nonce : "(none)");
    return up_rc;
}

static int test_sync(void *data, const gw_session_t *s, const char *scope,
                     const char *json, size_t len, const char *nonce)
{
    (void)data;
    (void)s;
    syncs++;
    snprintf(sync_scope, sizeof(sync_scope), "%s", scope ? scope : "(none)");
    snprintf(up_data, sizeof(up_data), "%.*s", (int)len, json);
    snprintf(up_nonce, sizeof(up_nonce), "%s", nonce ? nonce : "(none)");
    return sync_rc;
}

/* What the presence hook heard, one line per call:
 * "user before->after leaving-or-not". */
static char presence_log[8][64];
static int npresence;

static void test_presence(void *data, const gw_user_t *u,
                          const gw_session_t *leaving, uint32_t before,
                          uint32_t after)
{
    (void)data;
    if (npresence++ >= 8)
        return; /* counted; the first eight are kept */
    snprintf(presence_log[npresence - 1], sizeof(presence_log[0]),
             "%s %u->%u%s", u->id, before, after, leaving ? " leaving" : "");
}

/* What the hand_over hook was given last. */
static struct {
    int calls, fd;
    gw_transport_state_t *state;
    char rest[32], user[32];
    uint8_t id[GW_SESSION_ID_LEN];
    uint64_t seq;
    uint32_t exp;
    int nallowed;     /* of the grant, -1 for none */
    char allowed[32]; /* its first guild */
} handed;

static void test_hand_over(void *data, int fd, gw_transport_state_t *state,
                           const uint8_t *rest, size_t len,
                           const uint8_t id[GW_SESSION_ID_LEN], uint64_t seq,
                           const char *user, gw_grant_t *grant)
{
    (void)data;
    handed.calls++;
    handed.exp = grant->exp;
    handed.nallowed = grant->allowed ? grant->nallowed : -1;
    snprintf(handed.allowed, sizeof(handed.allowed), "%s",
             grant->nallowed ? grant->allowed[0] : "");
    gw_grant_free(grant); /* taken, as the worker's hook takes it */
    handed.fd = fd;
    handed.state = state;
    snprintf(handed.rest, sizeof(handed.rest), "%.*s", (int)len, rest);
    snprintf(handed.user, sizeof(handed.user), "%s", user);
    memcpy(handed.id, id, GW_SESSION_ID_LEN);
    handed.seq = seq;
}

/* The drain handoff's steps asked of the broker, copied. */
static struct {
    int n;
    gw_handoff_step_t step[8];
    uint8_t session[8][GW_SESSION_ID_LEN], requester[8][GW_SESSION_ID_LEN];
    char text[8][64];
    char blob[8][4096];
    size_t len[8];
    int has_blob[8];
} asked;

static int test_handoff(void *data, const gw_handoff_msg_t *m)
{
    int i = asked.n++;

    (void)data;
    assert_true(i < 8 && m->len <= sizeof(asked.blob[0]));
    asked.step[i] = m->step;
    memcpy(asked.session[i], m->session, GW_SESSION_ID_LEN);
    memcpy(asked.requester[i], m->requester, GW_SESSION_ID_LEN);
    snprintf(asked.text[i], sizeof(asked.text[i]), "%s",
             m->text ? m->text : "");
    asked.has_blob[i] = m->blob != NULL;
    if (m->blob != NULL)
        memcpy(asked.blob[i], m->blob, m->len);
    asked.len[i] = m->len;
    return 0;
}

/* ---- tokens ---- */

/* Appends base64url(data) without padding. */
static void b64url(char *out, size_t cap, const void *data, size_t n)
{
    size_t len;

    assert_int_equal(
        mbedtls_base64_encode((unsigned char *)out, cap, &len, data, n), 0);
    while (len > 0 && out[len - 1] == '=')
        len--;
    out[len] = '\0';
    for (char *p = out; *p; p++)
        *p = *p == '+' ? '-' : *p == '/' ? '_' : *p;
}

/* An HS256 token for `sub`, with a "guilds" claim unless guilds is NULL. */
static const char *token(const char *sub, const char *guilds)
{
    static char tok[1024];
    char payload[256], mac_b64[64];
    uint8_t mac[32];
    size_t n;

    snprintf(payload, sizeof(payload), "{\"sub\":\"%s\",\"exp\":%lld%s%s%s}",
             sub, (long long)time(NULL) + 3600, guilds ? ",\"guilds\":" : "",
             guilds ? guilds : "", "");
    b64url(tok, sizeof(tok), "{\"alg\":\"HS256\",\"typ\":\"JWT\"}", 27);
    n = strlen(tok);
    tok[n++] = '.';
    b64url(tok + n, sizeof(tok) - n, payload, strlen(payload));
    n = strlen(tok);
    assert_int_equal(
        mbedtls_md_hmac(mbedtls_md_info_from_type(MBEDTLS_MD_SHA256),
                        (const uint8_t *)SECRET, strlen(SECRET),
                        (const uint8_t *)tok, n, mac),
        0);
    b64url(mac_b64, sizeof(mac_b64), mac, sizeof(mac));
    snprintf(tok + n, sizeof(tok) - n, ".%s", mac_b64);
    return tok;
}

/* ---- fixture ---- */

typedef struct fx {
    gw_proto_t p;
    gw_index_t ix;
    gw_config_t cfg;
    gw_stats_t stats;
} fx_t;

static int fx_setup(void **state)
{
    fx_t *f = calloc(1, sizeof(*f));

    memset(fakes, 0, sizeof(fakes));
    clock_ms = 0;
    relays = relay_rc = ups = up_rc = syncs = sync_rc = npresence = 0;
    memset(&handed, 0, sizeof(handed));
    memset(&asked, 0, sizeof(asked));
    f->cfg.jwt_algorithms = "HS256";
    f->cfg.jwt_secret = SECRET;
    f->cfg.heartbeat_interval_ms = 1000;
    f->cfg.max_guilds_per_session = 3;
    f->cfg.typing_limit = 2;
    f->cfg.typing_window_ms = 1000;
    f->cfg.event_rate = 100;
    f->cfg.event_burst = 100;
    f->cfg.write_ring_size = 8;
    f->cfg.relay_events = "";
    f->cfg.relay_limit = 3;
    f->cfg.relay_window_ms = 1000;
    f->cfg.sync_limit = 2;
    f->cfg.sync_window_ms = 1000;
    gw_index_init(&f->ix, &f->stats, 0, NULL);
    gw_proto_init(&f->p, NULL, &f->ix, &f->cfg, &f->stats,
                  &(gw_proto_hooks_t){.now = test_now,
                                      .relay_typing = test_relay,
                                      .relay_upstream = test_upstream,
                                      .relay_sync = test_sync,
                                      .presence = test_presence,
                                      .hand_over = test_hand_over});
    f->p.workers = 8;
    *state = f;
    return 0;
}

/* The connection goes away: what the WebSocket layer reports last. */
static void drop(int i)
{
    if (fakes[i].ws.data == NULL)
        return;
    gw_proto_ws_cb.on_close(fakes[i].ws.data, 0, 0);
    fakes[i].ws.data = NULL;
}

static int fx_teardown(void **state)
{
    fx_t *f = *state;

    for (int i = 0; i < 4; i++)
        drop(i);
    assert_int_equal(f->stats.v[GW_STAT_SESSIONS], 0);
    assert_int_equal(f->stats.v[GW_STAT_GUILDS], 0);
    gw_proto_free(&f->p);
    gw_index_free(&f->ix);
    free(f);
    return 0;
}

/* Opens connection i (with an upgrade token, or NULL). */
static gw_session_t *open_conn(fx_t *f, int i, const char *tok)
{
    fakes[i].ws.state = GW_WS_OPEN;
    fakes[i].ws.id = (uint64_t)i;
    gw_proto_ws_cb.on_open(&f->p, &fakes[i].ws, tok);
    return fakes[i].ws.data;
}

static void say(int i, const char *msg)
{
    gw_proto_ws_cb.on_message(fakes[i].ws.data, msg, strlen(msg));
}

/* Checks that connection i's next output contains `want`. */
static void expect(int i, int k, const char *want)
{
    assert_true(k < fakes[i].nout);
    if (strstr(fakes[i].out[k], want) == NULL)
        fail_msg("output %d of %d: %s\n  lacks: %s", k, i, fakes[i].out[k],
                 want);
}

static gw_session_t *identified(fx_t *f, int i, const char *user,
                                const char *guilds)
{
    char msg[1200];
    gw_session_t *s = open_conn(f, i, NULL);

    snprintf(msg, sizeof(msg),
             "{\"event\":\"identify\",\"data\":{\"userId\":\"%s\","
             "\"token\":\"%s\",\"guildIds\":%s}}",
             user, token(user, NULL), guilds);
    say(i, msg);
    assert_true(s->identified);
    fakes[i].nout = 0;
    return s;
}

/* ---- tests ---- */

static void test_ready_then_identify(void **state)
{
    fx_t *f = *state;
    char msg[1200], sid[2 * GW_SESSION_ID_LEN + 1], want[96];
    gw_session_t *s = open_conn(f, 0, NULL);

    gw_session_id_hex(s, sid);
    snprintf(want, sizeof(want), "\"sessionId\":\"%s\"", sid);
    expect(0, 0, "{\"event\":\"ready\"");
    expect(0, 0, want);
    expect(0, 0, "\"heartbeatInterval\":1000");
    snprintf(msg, sizeof(msg),
             "{\"event\":\"identify\",\"data\":{\"userId\":\"u1\","
             "\"token\":\"%s\",\"guildIds\":[\"g1\",\"g3\",\"\",7]}}",
             token("u1", "[\"g1\",\"g2\"]"));
    say(0, msg);
    expect(0, 1, "\"event\":\"identified\"");
    expect(0, 1, "\"userId\":\"u1\"");
    expect(0, 1, "\"guildIds\":[\"g1\"]"); /* g3 not in the token */
    assert_non_null(gw_index_user(&f->ix, "u1"));
    assert_ptr_equal(gw_index_guild(&f->ix, "g1")->members->session, s);
    assert_null(gw_index_guild(&f->ix, "g3"));
    assert_int_equal(f->stats.v[GW_STAT_SESSIONS], 1);
}

static void test_token_in_upgrade_identifies(void **state)
{
    fx_t *f = *state;
    gw_session_t *s = open_conn(f, 0, token("u2", "[\"g1\",\"g2\"]"));

    assert_true(s->identified);
    expect(0, 0, "\"event\":\"ready\"");
    expect(0, 1, "\"guildIds\":[\"g1\",\"g2\"]");
    assert_int_equal(gw_index_guild(&f->ix, "g2")->count, 1);
}

/* Each failure closes with its own code from SPEC section 3. */
static void test_close_codes(void **state)
{
    static const struct {
        const char *msg;
        uint16_t code;
    } cases[] = {
        {"not json", GW_CLOSE_DECODE},
        {"[1,2]", GW_CLOSE_BAD_ENVELOPE},
        {"{\"event\":\"identify\",\"data\":[]}", GW_CLOSE_BAD_ENVELOPE},
        {"{\"event\":\"identify\",\"data\":{\"userId\":\"u1\"}}",
         GW_CLOSE_BAD_ENVELOPE},
        {"{\"event\":\"guild_subscribe\",\"data\":{\"guildId\":\"g\"}}",
         GW_CLOSE_NOT_AUTHENTICATED},
        {"{\"event\":\"anything\",\"data\":{}}", GW_CLOSE_NOT_AUTHENTICATED},
        {"{\"event\":\"identify\",\"data\":{\"userId\":\"u1\","
         "\"token\":\"a.b.c\"}}",
         GW_CLOSE_AUTH_FAILED},
    };
    fx_t *f = *state;

    for (size_t k = 0; k < sizeof(cases) / sizeof(cases[0]); k++) {
        open_conn(f, 0, NULL);
        say(0, cases[k].msg);
        if (fakes[0].close_code != cases[k].code)
            fail_msg("%s: closed %u, want %u", cases[k].msg,
                     fakes[0].close_code, cases[k].code);
        drop(0);
        fakes[0] = (fake_t){0};
    }
    assert_int_equal(f->stats.v[GW_STAT_AUTH_FAILURES], 1);
}

static void test_identify_as_another_user_fails(void **state)
{
    fx_t *f = *state;
    char msg[1200];

    open_conn(f, 0, NULL);
    snprintf(msg, sizeof(msg),
             "{\"event\":\"identify\",\"data\":{\"userId\":\"u1\","
             "\"token\":\"%s\"}}",
             token("u9", NULL));
    say(0, msg);
    assert_int_equal(fakes[0].close_code, GW_CLOSE_AUTH_FAILED);
    assert_null(gw_index_user(&f->ix, "u1"));
    assert_null(gw_index_user(&f->ix, "u9"));
}

static void test_identify_twice_is_4005(void **state)
{
    fx_t *f = *state;
    char msg[1200];

    identified(f, 0, "u1", "[]");
    snprintf(msg, sizeof(msg),
             "{\"event\":\"identify\",\"data\":{\"userId\":\"u1\","
             "\"token\":\"%s\"}}",
             token("u1", NULL));
    say(0, msg);
    assert_int_equal(fakes[0].close_code, GW_CLOSE_ALREADY_AUTHENTICATED);
}

static void test_unknown_event_is_an_error(void **state)
{
    fx_t *f = *state;

    identified(f, 0, "u1", "[]");
    say(0, "{\"event\":\"Chat.Send\",\"data\":{}}");
    expect(0, 0, "\"code\":\"unknown_event\"");
    assert_int_equal(fakes[0].ws.state, GW_WS_OPEN);
}

/* A client event that is not a built-in goes up with its data as sent and
 * its nonce; what cannot go up is answered with the nonce. */
static void test_relay_upstream(void **state)
{
    fx_t *f = *state;

    f->cfg.relay_limit = 10;
    identified(f, 0, "u1", "[]");
    say(0, "{\"event\":\"chat.send\",\"nonce\":\"n\\\"1\","
           "\"data\":{ \"text\": \"hi\", \"userId\": \"forged\" }}");
    assert_int_equal(ups, 1);
    assert_string_equal(up_event, "chat.send");
    assert_string_equal(up_data,
                        "{ \"text\": \"hi\", \"userId\": \"forged\" }");
    assert_string_equal(up_nonce, "n\"1");
    assert_int_equal(fakes[0].nout, 0); /* the backend answers, not us */
    say(0, "{\"event\":\"location.update\"}");
    assert_string_equal(up_data, "{}");
    assert_string_equal(up_nonce, "(none)");
    up_rc = GW_ECLOSED;
    say(0, "{\"event\":\"chat.send\",\"nonce\":\"n2\",\"data\":{}}");
    assert_string_equal(fakes[0].out[0],
                        "{\"event\":\"error\",\"nonce\":\"n2\",\"data\":{"
                        "\"code\":\"unavailable\",\"message\":\"the backends "
                        "cannot be reached\"}}");
    up_rc = GW_EFULL;
    say(0, "{\"event\":\"chat.send\",\"data\":{}}");
    expect(0, 1, "\"code\":\"overloaded\"");
    assert_int_equal(f->stats.v[GW_STAT_RELAY_UNAVAILABLE], 1);
    assert_int_equal(f->stats.v[GW_STAT_RELAY_OVERLOADED], 1);
    assert_int_equal(fakes[0].ws.state, GW_WS_OPEN);
}

/* Names that cannot be routing keys, and names outside relay.events, stay
 * unknown; a bad nonce is a bad request; the window limits. */
static void test_relay_refusals(void **state)
{
    static const char *unknown[] = {
        "{\"event\":\"Chat.send\"}",
        "{\"event\":\"9lives\"}",
        "{\"event\":\"chat send\"}",
        "{\"event\":\"a\\u0000b\"}",
        "{\"event\":\"x2345678901234567890123456789012345678901234567890"
        "12345678901234\"}",
        "{\"event\":\"presence.update\"}", /* not in relay.events */
    };
    fx_t *f = *state;
    int k = 0;

    f->cfg.relay_events = "chat.*, location.update";
    identified(f, 0, "u1", "[]");
    for (size_t i = 0; i < sizeof(unknown) / sizeof(unknown[0]); i++) {
        say(0, unknown[i]);
        expect(0, k++, "\"code\":\"unknown_event\"");
    }
    say(0, "{\"event\":\"location.update\",\"nonce\":7}");
    expect(0, k++, "\"code\":\"invalid_request\"");
    say(0, "{\"event\":\"chat.x\",\"nonce\":\"0123456789012345678901234567890"
           "12345678901234567890123456789012345\"}");
    expect(0, k++, "\"code\":\"invalid_request\"");
    assert_int_equal(ups, 0);
    for (int i = 0; i < 4; i++)
        say(0, "{\"event\":\"chat.x\",\"nonce\":\"r\"}");
    assert_int_equal(ups, 3);
    expect(0, k++, "{\"event\":\"error\",\"nonce\":\"r\"");
    expect(0, k - 1, "\"code\":\"rate_limited\"");
    assert_int_equal(f->stats.v[GW_STAT_RELAY_LIMITED], 1);
    clock_ms += 1000;
    say(0, "{\"event\":\"chat.x\"}");
    assert_int_equal(ups, 4);
}

/* sync_request goes to the broker with its scope and nonce, limited per
 * session; a bad scope or nonce is a bad request. */
static void test_sync_request(void **state)
{
    fx_t *f = *state;

    identified(f, 0, "u1", "[]");
    say(0, "{\"event\":\"sync_request\",\"nonce\":\"s1\","
           "\"data\":{\"scope\":\"profile:v2\"}}");
    assert_int_equal(syncs, 1);
    assert_string_equal(sync_scope, "profile:v2");
    assert_string_equal(up_nonce, "s1");
    assert_string_equal(up_data, "{\"scope\":\"profile:v2\"}");
    say(0, "{\"event\":\"sync_request\"}");
    assert_string_equal(sync_scope, "(none)");
    assert_string_equal(up_data, "{}");
    say(0, "{\"event\":\"sync_request\",\"nonce\":\"s3\"}");
    assert_int_equal(syncs, 2);
    assert_string_equal(fakes[0].out[0],
                        "{\"event\":\"error\",\"nonce\":\"s3\",\"data\":{"
                        "\"code\":\"rate_limited\",\"message\":\"too many "
                        "sync requests\"}}");
    assert_int_equal(f->stats.v[GW_STAT_SYNC_LIMITED], 1);
    clock_ms += 1000;
    say(0, "{\"event\":\"sync_request\",\"data\":{\"scope\":\"a b\"}}");
    expect(0, 1, "\"code\":\"invalid_request\"");
    say(0, "{\"event\":\"sync_request\",\"data\":{\"scope\":\"\"}}");
    expect(0, 2, "\"code\":\"invalid_request\"");
    say(0, "{\"event\":\"sync_request\",\"nonce\":[]}");
    expect(0, 3, "\"code\":\"invalid_request\"");
    sync_rc = GW_EFULL;
    say(0, "{\"event\":\"sync_request\",\"nonce\":\"s9\"}");
    expect(0, 4, "\"nonce\":\"s9\"");
    expect(0, 4, "\"code\":\"overloaded\"");
    assert_int_equal(syncs, 3);
}

/* Heartbeats on the test's clock: one every interval, and a session
 * silent for two intervals is closed 4009. */
static void test_heartbeat_deadlines(void **state)
{
    fx_t *f = *state;
    gw_session_t *s = open_conn(f, 0, NULL);

    /* The first beat comes up to a quarter interval early, at a point the
     * session's id picks: sessions that connected together do not beat
     * together. */
    assert_true(s->next_hb_ms >= 750 && s->next_hb_ms <= 1000);
    fakes[0].nout = 0;
    clock_ms = 700;
    gw_proto_tick(&f->p, clock_ms);
    assert_int_equal(fakes[0].nout, 0);
    clock_ms = 1000;
    gw_proto_tick(&f->p, clock_ms);
    assert_int_equal(fakes[0].nout, 1);
    expect(0, 0, "{\"event\":\"heartbeat\"");
    clock_ms = 1500;
    say(0, "{\"event\":\"heartbeat_ack\"}");
    clock_ms = 1700;
    say(0, "{\"event\":\"heartbeat\"}");
    expect(0, 1, "{\"event\":\"heartbeat_ack\"");
    clock_ms = 3600; /* 1.9 intervals after the last sign of life */
    gw_proto_tick(&f->p, clock_ms);
    assert_int_equal(fakes[0].close_code, 0);
    clock_ms = 3700;
    gw_proto_tick(&f->p, clock_ms);
    assert_int_equal(fakes[0].close_code, GW_CLOSE_SESSION_TIMEOUT);
}

static void test_subscribe_limits(void **state)
{
    fx_t *f = *state;
    gw_session_t *s = identified(f, 0, "u1", "[\"g1\"]");

    say(0, "{\"event\":\"guild_subscribe\",\"data\":{\"guildId\":\"g2\"}}");
    say(0, "{\"event\":\"guild_subscribe\",\"data\":{\"guildId\":\"g2\"}}");
    say(0, "{\"event\":\"guild_subscribe\",\"data\":{\"guildId\":\"g3\"}}");
    say(0, "{\"event\":\"guild_subscribe\",\"data\":{\"guildId\":\"g4\"}}");
    say(0, "{\"event\":\"guild_subscribe\",\"data\":{\"guildId\":5}}");
    expect(0, 0, "\"event\":\"guild_subscribed\",\"data\":{\"guildId\":\"g2\"");
    expect(0, 1, "\"guild_subscribed\""); /* already a member: same answer */
    expect(0, 2, "\"guildId\":\"g3\"");
    expect(0, 3, "\"code\":\"limit_exceeded\"");
    expect(0, 4, "\"code\":\"invalid_request\"");
    assert_int_equal(s->nguilds, 3);
    say(0, "{\"event\":\"guild_unsubscribe\",\"data\":{\"guildId\":\"g1\"}}");
    expect(0, 5, "\"event\":\"guild_unsubscribed\"");
    assert_null(gw_index_guild(&f->ix, "g1"));
    assert_int_equal(s->nguilds, 2);
}

static void test_subscribe_outside_the_token_is_forbidden(void **state)
{
    fx_t *f = *state;

    open_conn(f, 0, token("u1", "[\"g1\"]"));
    fakes[0].nout = 0;
    say(0, "{\"event\":\"guild_subscribe\",\"data\":{\"guildId\":\"g2\"}}");
    expect(0, 0, "\"code\":\"forbidden\"");
    assert_null(gw_index_guild(&f->ix, "g2"));
}

static void test_typing_limits(void **state)
{
    fx_t *f = *state;
    const char *typing = "{\"event\":\"typing.start\",\"data\":"
                         "{\"guildId\":\"g1\",\"channelId\":\"c1\"}}";

    identified(f, 0, "u1", "[]");
    say(0, typing);
    expect(0, 0, "\"code\":\"forbidden\"");
    say(0, "{\"event\":\"guild_subscribe\",\"data\":{\"guildId\":\"g1\"}}");
    say(0, typing);
    say(0, typing);
    say(0, typing); /* the third in the window */
    assert_int_equal(relays, 2);
    assert_string_equal(relayed, "u1/g1/c1");
    expect(0, 2, "\"code\":\"rate_limited\"");
    assert_int_equal(f->stats.v[GW_STAT_TYPING_LIMITED], 1);
    clock_ms += 1000; /* a new window */
    relay_rc = GW_EFULL;
    say(0, typing);
    expect(0, 3, "\"code\":\"overloaded\"");
    say(0, "{\"event\":\"typing.start\",\"data\":{\"guildId\":\"g1\"}}");
    expect(0, 4, "\"code\":\"invalid_request\"");
}

static void test_flood_is_4008(void **state)
{
    fx_t *f = *state;

    f->cfg.event_rate = 1;
    f->cfg.event_burst = 3;
    open_conn(f, 0, NULL);
    for (int i = 0; i < 3; i++)
        say(0, "{\"event\":\"heartbeat\"}");
    assert_int_equal(fakes[0].close_code, 0);
    say(0, "{\"event\":\"heartbeat\"}");
    assert_int_equal(fakes[0].close_code, GW_CLOSE_RATE_LIMITED);
    assert_int_equal(f->stats.v[GW_STAT_RATE_LIMITED_CLOSES], 1);
}

static gw_event_t *event_of(const char *body, int priority)
{
    gw_event_t *ev = calloc(1, sizeof(*ev));

    ev->priority = priority;
    ev->body = gw_frame_new(strlen(body));
    memcpy(ev->body->data, body, strlen(body));
    return ev;
}

static void event_free(gw_event_t *ev)
{
    gw_frame_unref(ev->body);
    free(ev);
}

/* The seq prefix per recipient, the exclusion, and the room asked of the
 * ring per priority once it looks full: all of it for 1, half for 4. */
static void test_dispatch_seq_and_shedding(void **state)
{
    fx_t *f = *state;
    gw_session_t *s = identified(f, 0, "u1", "[]");
    gw_event_t *ev = event_of("\"event\":\"m\",\"data\":{}}", 1);
    gw_ring_t *ring = &fakes[0].ws.transport.ring;

    gw_session_dispatch(s, ev);
    ring->count = 7; /* room for one more critical event, checked inline */
    gw_session_dispatch(s, ev);
    assert_string_equal(fakes[0].out[0],
                        "{\"seq\":1,\"event\":\"m\",\"data\":{}}");
    assert_string_equal(fakes[0].out[1],
                        "{\"seq\":2,\"event\":\"m\",\"data\":{}}");
    assert_int_equal(fakes[0].room, 0); /* the ring was never asked */
    ring->count = 8; /* looks full: asked, and it made room */
    gw_session_dispatch(s, ev);
    assert_int_equal(fakes[0].room, 8);
    assert_int_equal(fakes[0].nout, 3);
    ev->has_exclude = 1;
    memcpy(ev->exclude, s->id, GW_SESSION_ID_LEN);
    gw_session_dispatch(s, ev);
    assert_int_equal(fakes[0].nout, 3);
    ev->has_exclude = 0;
    ev->priority = 4;
    ring->count = 4;
    fakes[0].admit_rc = GW_EAGAIN;
    gw_session_dispatch(s, ev);
    assert_int_equal(fakes[0].room, 4);
    assert_int_equal(fakes[0].nout, 3);
    assert_int_equal(f->stats.v[GW_STAT_SHED_P4], 1);
    fakes[0].admit_rc = GW_EFULL;
    fakes[0].admit_drops = 5;
    gw_session_dispatch(s, ev);
    assert_int_equal(fakes[0].close_code, GW_CLOSE_SLOW_CONSUMER);
    assert_int_equal(f->stats.v[GW_STAT_RING_DROPS], 5);
    ring->count = 0;
    gw_session_dispatch(s, ev); /* closing: nothing more */
    assert_int_equal(fakes[0].nout, 3);
    assert_int_equal(s->seq, 3);
    event_free(ev);
}

/* A drain spreads the closes over the window, and turns away newcomers. */
static void test_drain(void **state)
{
    fx_t *f = *state;

    identified(f, 0, "u1", "[]");
    identified(f, 1, "u2", "[]");
    gw_proto_drain(&f->p, 1000);
    clock_ms = 100; /* the wheel's resolution */
    gw_proto_tick(&f->p, clock_ms);
    assert_int_equal(fakes[0].close_code + fakes[1].close_code,
                     GW_CLOSE_DRAINING);
    clock_ms = 600;
    gw_proto_tick(&f->p, clock_ms);
    assert_int_equal(fakes[0].close_code, GW_CLOSE_DRAINING);
    assert_int_equal(fakes[1].close_code, GW_CLOSE_DRAINING);
    assert_null(open_conn(f, 2, NULL));
    assert_int_equal(fakes[2].close_code, GW_CLOSE_DRAINING);
}

/* When its connection goes, the session leaves the index. */
static void test_close_leaves_the_index(void **state)
{
    fx_t *f = *state;

    identified(f, 0, "u1", "[\"g1\"]");
    identified(f, 1, "u1", "[\"g1\"]");
    assert_int_equal(gw_index_user(&f->ix, "u1")->count, 2);
    drop(0);
    assert_int_equal(gw_index_user(&f->ix, "u1")->count, 1);
    assert_int_equal(gw_index_guild(&f->ix, "g1")->count, 1);
    drop(1);
    assert_null(gw_index_user(&f->ix, "u1"));
    assert_null(gw_index_guild(&f->ix, "g1"));
}

/* The owner hears each change of a user's sessions here, and of their
 * guilds when no other session of the user has the guild. */
static void test_presence_changes(void **state)
{
    fx_t *f = *state;

    identified(f, 0, "u1", "[\"g1\"]");
    identified(f, 1, "u1", "[\"g1\"]");
    open_conn(f, 2, NULL); /* never identified: not a presence change */
    say(0, "{\"event\":\"guild_subscribe\",\"data\":{\"guildId\":\"g2\"}}");
    say(1, "{\"event\":\"guild_subscribe\",\"data\":{\"guildId\":\"g2\"}}");
    say(0, "{\"event\":\"guild_unsubscribe\",\"data\":{\"guildId\":\"g1\"}}");
    drop(2);
    drop(0);
    drop(1);
    assert_int_equal(npresence, 5);
    assert_string_equal(presence_log[0], "u1 0->1");
    assert_string_equal(presence_log[1], "u1 1->2");
    assert_string_equal(presence_log[2], "u1 2->2"); /* g2 is new to u1 */
    /* Session 1's g2 and session 0's leaving g1 change nothing of u1's. */
    assert_string_equal(presence_log[3], "u1 2->1 leaving");
    assert_string_equal(presence_log[4], "u1 1->0 leaving");
}

/* A resume of a session that another worker holds: the fresh session
 * ends, the connection leaves with what the token said, and the owner's
 * hook carries it on. */
static void test_resume_elsewhere_hands_the_connection_over(void **state)
{
    fx_t *f = *state;
    gw_transport_state_t moving = {0};
    char msg[1200];
    gw_session_t *s = open_conn(f, 0, NULL);

    snprintf(msg, sizeof(msg),
             "{\"event\":\"resume\",\"data\":{\"sessionId\":"
             "\"07000000000000000000000000000abc\",\"token\":\"%s\","
             "\"seq\":42}}",
             token("u9", "[\"g1\"]"));
    assert_non_null(s);
    say(0, msg);
    assert_int_equal(fakes[0].handed_off, 1);
    assert_int_equal(f->stats.v[GW_STAT_SESSIONS], 0);
    /* The WebSocket layer lets go of the socket: the hook gets it. */
    gw_proto_ws_cb.on_hand_off(fakes[0].ws.data, 9, &moving,
                               (const uint8_t *)"xy", 2);
    fakes[0].ws.data = NULL;
    assert_int_equal(handed.calls, 1);
    assert_int_equal(handed.fd, 9);
    assert_ptr_equal(handed.state, &moving); /* the transport's, as it is */
    assert_string_equal(handed.rest, "xy");
    assert_string_equal(handed.user, "u9");
    /* The resume's token goes along: it becomes the session's. */
    assert_in_range(handed.exp, (uint32_t)time(NULL) + 3590,
                    (uint32_t)time(NULL) + 3600);
    assert_int_equal(handed.nallowed, 1);
    assert_string_equal(handed.allowed, "g1");
    assert_int_equal(handed.seq, 42);
    assert_int_equal(handed.id[0], 7);
    assert_int_equal(handed.id[15], 0xbc);
}

/* A connection that could not leave (its output not all written, or a
 * TLS session that cannot move) was closed by the WebSocket layer: the
 * hook hears nothing, and the failure is counted. */
static void test_resume_elsewhere_dropped_is_counted(void **state)
{
    fx_t *f = *state;
    char msg[1200];

    assert_non_null(open_conn(f, 0, NULL));
    snprintf(msg, sizeof(msg),
             "{\"event\":\"resume\",\"data\":{\"sessionId\":"
             "\"07000000000000000000000000000abc\",\"token\":\"%s\","
             "\"seq\":1}}",
             token("u9", NULL));
    say(0, msg);
    assert_int_equal(fakes[0].handed_off, 1);
    gw_proto_ws_cb.on_hand_off(fakes[0].ws.data, -1, NULL, NULL, 0);
    fakes[0].ws.data = NULL;
    assert_int_equal(handed.calls, 0);
    assert_int_equal(f->stats.v[GW_STAT_RESUME_HANDED], 1);
    assert_int_equal(f->stats.v[GW_STAT_RESUME_HAND_OFF_FAILED], 1);
}

/* The connection ends as given: the session parks, or ends. */
static void end_conn(int i, uint16_t sent, uint16_t received)
{
    gw_proto_ws_cb.on_close(fakes[i].ws.data, sent, received);
    fakes[i].ws.data = NULL;
}

/* Which ends park a session (docs/continuity.md), and the window. */
static void test_what_parks(void **state)
{
    fx_t *f = *state;
    static const struct {
        uint16_t sent, received;
        int parks;
    } cases[] = {
        {0, 0, 1},                        /* reset, end of stream */
        {GW_CLOSE_SESSION_TIMEOUT, 0, 1}, /* heartbeats stopped */
        {GW_CLOSE_DRAINING, 0, 1},        /* drained */
        {0, 4000, 1},                     /* the client's own code */
        {0, 1000, 0},                     /* the client is done */
        {0, 1001, 0},
        {GW_CLOSE_SLOW_CONSUMER, 0, 0}, /* lost what it missed */
        {GW_CLOSE_AUTH_FAILED, 0, 0},
        {GW_WS_CLOSE_PROTOCOL_ERROR, 0, 0},
    };

    f->cfg.resume_window_ms = 1000;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        gw_session_t *s = identified(f, 0, "u1", "[\"g1\"]");
        uint64_t parked = f->stats.v[GW_STAT_PARKED];

        end_conn(0, cases[i].sent, cases[i].received);
        assert_int_equal(f->stats.v[GW_STAT_PARKED] - parked, cases[i].parks);
        if (cases[i].parks)
            assert_true(s->parked && s->ws == NULL);
    }
    /* Parked ones stay in the index until their window ends. */
    assert_int_equal(gw_index_user(&f->ix, "u1")->count -
                         gw_user_online(gw_index_user(&f->ix, "u1")),
                     4);
    clock_ms += 1200;
    gw_proto_tick(&f->p, clock_ms);
    assert_null(gw_index_user(&f->ix, "u1"));
    assert_int_equal(f->stats.v[GW_STAT_PARKED], 0);
    assert_int_equal(f->stats.v[GW_STAT_RESUME_EXPIRED], 4);
}

/* A resume's token is the session's from then on, its guild bound too:
 * the guilds it no longer allows are left, after `resumed`. */
static void test_resume_takes_the_new_tokens_guild_bound(void **state)
{
    fx_t *f = *state;
    char msg[1200], sid[2 * GW_SESSION_ID_LEN + 1];
    gw_session_t *s = open_conn(f, 0, NULL);

    f->cfg.resume_window_ms = 1000;
    snprintf(msg, sizeof(msg),
             "{\"event\":\"identify\",\"data\":{\"userId\":\"u1\","
             "\"token\":\"%s\",\"guildIds\":[\"g1\",\"g2\"]}}",
             token("u1", "[\"g1\",\"g2\"]"));
    say(0, msg);
    assert_int_equal(s->nguilds, 2);
    end_conn(0, 0, 4000);
    assert_true(s->parked);
    gw_session_id_hex(s, sid);
    open_conn(f, 1, NULL);
    snprintf(msg, sizeof(msg),
             "{\"event\":\"resume\",\"data\":{\"sessionId\":\"%s\","
             "\"token\":\"%s\",\"seq\":%llu}}",
             sid, token("u1", "[\"g1\"]"), (unsigned long long)s->seq);
    say(1, msg);
    expect(1, 1, "\"event\":\"resumed\"");
    expect(1, 2, "\"event\":\"guild_unsubscribed\"");
    expect(1, 2, "\"guildId\":\"g2\"");
    assert_int_equal(s->nguilds, 1);
    assert_int_equal(s->nallowed, 1);
    assert_null(gw_index_guild(&f->ix, "g2"));
    assert_non_null(gw_index_guild(&f->ix, "g1"));
    f->cfg.resume_window_ms = 0;
}

/* A session id names its worker and slot; the rest is random, and it is
 * what decides: a slot's next session, or a guess, is not the old one. */
/* Sessions opened in one moment spread their first beats over a quarter
 * interval. */
static void test_first_heartbeats_spread(void **state)
{
    fx_t *f = *state;
    uint32_t lo = UINT32_MAX, hi = 0;

    for (int i = 0; i < 4; i++) {
        gw_session_t *s = open_conn(f, i, NULL);
        lo = s->next_hb_ms < lo ? s->next_hb_ms : lo;
        hi = s->next_hb_ms > hi ? s->next_hb_ms : hi;
        assert_true(s->next_hb_ms >= 750 && s->next_hb_ms <= 1000);
    }
    /* Four random points in 250 ms all within 2 ms: about 2^-21. */
    assert_true(hi - lo > 2);
}

static void test_session_ids_and_slots(void **state)
{
    fx_t *f = *state;
    gw_session_t *a = identified(f, 0, "u1", "[]");
    gw_session_t *b = open_conn(f, 1, NULL);
    uint8_t old[GW_SESSION_ID_LEN], guess[GW_SESSION_ID_LEN];

    assert_int_equal(a->id[0], 0); /* the tag this index was given */
    assert_int_equal(gw_session_id_worker(a->id), 0);
    assert_memory_equal(a->id + 1, "\0\0\0\0", 4); /* slot 0 */
    assert_memory_equal(b->id + 1, "\0\0\0\1", 4); /* slot 1 */
    assert_ptr_equal(gw_index_session(&f->ix, a->id), a);
    assert_null(gw_index_session(&f->ix, b->id)); /* not identified */
    memcpy(guess, a->id, GW_SESSION_ID_LEN);
    guess[15] ^= 1;
    assert_null(gw_index_session(&f->ix, guess));
    guess[15] ^= 1;
    guess[0] = 1; /* another worker's */
    assert_null(gw_index_session(&f->ix, guess));
    guess[0] = 0;
    guess[4] = 9; /* past the slots */
    assert_null(gw_index_session(&f->ix, guess));
    memcpy(old, a->id, GW_SESSION_ID_LEN);
    drop(0);
    assert_null(gw_index_session(&f->ix, old));
    fakes[0] = (fake_t){0};
    a = identified(f, 0, "u2", "[]"); /* takes the freed slot 0 */
    assert_memory_equal(a->id, old, 5);
    assert_memory_not_equal(a->id, old, GW_SESSION_ID_LEN);
    assert_null(gw_index_session(&f->ix, old));
    assert_ptr_equal(gw_index_session(&f->ix, a->id), a);
}

/* ---- the drain handoff (docs/continuity.md section 3) ---- */

/* Handoffs on: Redis is there (the hook), and resume. */
static void handoffs_on(fx_t *f, const char *instance)
{
    f->cfg.resume_window_ms = 10000;
    f->cfg.replay_size = 16;
    f->cfg.replay_log_bytes = 1 << 20;
    f->cfg.handoff = 1;
    f->cfg.handoff_margin_ms = 200;
    f->cfg.handoff_timeout_ms = 1000;
    f->p.hooks.handoff = test_handoff;
    f->p.instance = instance;
}

static void handoff_event(fx_t *f, gw_action_t action, const uint8_t *to,
                          const char *blob, size_t len, const char *arg)
{
    gw_event_t *ev = gw_event_handoff(action, to, blob, len, arg);

    gw_transfer_event(&f->p, ev);
    gw_event_unref(ev);
}

static void advance(fx_t *f, uint64_t ms)
{
    clock_ms += ms;
    gw_proto_tick(&f->p, clock_ms);
}

/* A dispatch with identity id to guild g1's members here. */
static void to_guild(fx_t *f, const char *body, uint64_t id)
{
    gw_event_t *ev = event_of(body, 1);
    gw_guild_t *g = gw_index_guild(&f->ix, "g1");

    ev->body->id = id;
    for (gw_member_t *m = g->members; m != NULL; m = m->next)
        gw_session_dispatch(m->session, ev);
    event_free(ev);
}

/* The drained session is offered before its connection closes, keeps
 * buffering once parked, and is served whole once the claim's margin is
 * over; then it is gone. */
static void test_a_drained_session_is_offered_then_served(void **state)
{
    fx_t *f = *state;
    gw_session_t *s;
    uint8_t id[GW_SESSION_ID_LEN];
    gw_snapshot_t snap;

    handoffs_on(f, "gwA");
    s = identified(f, 0, "u1", "[\"g1\"]");
    memcpy(id, s->id, GW_SESSION_ID_LEN);
    to_guild(f, "\"event\":\"m\",\"data\":{\"i\":1}}", 11);
    gw_proto_drain(&f->p, 0);
    advance(f, 100);
    assert_int_equal(asked.n, 1);
    assert_int_equal(asked.step[0], GW_HANDOFF_OPEN);
    assert_memory_equal(asked.session[0], id, GW_SESSION_ID_LEN);
    assert_int_equal(gw_snapshot_decode(asked.blob[0], asked.len[0], &snap), 0);
    assert_string_equal(snap.owner, "gwA");
    assert_string_equal(snap.user, "u1");
    assert_int_equal(snap.nguilds, 1);
    assert_string_equal(snap.guilds[0], "g1");
    assert_int_equal(snap.seq, 1);
    assert_int_equal(snap.nentries, 0); /* the offer: no dispatches */
    gw_snapshot_free(&snap);
    assert_int_equal(fakes[0].close_code, 0); /* not before the offer */
    assert_int_equal(f->stats.v[GW_STAT_HANDOFFS_WAITING], 1);

    handoff_event(f, GW_ACTION_OPENED, id, NULL, 0, NULL);
    assert_int_equal(fakes[0].close_code, GW_CLOSE_DRAINING);
    to_guild(f, "\"event\":\"m\",\"data\":{\"i\":2}}", 12); /* closing */
    end_conn(0, GW_CLOSE_DRAINING, 0);
    assert_true(s->parked && s->handing);
    to_guild(f, "\"event\":\"m\",\"data\":{\"i\":3}}", 13); /* parked */

    handoff_event(f, GW_ACTION_CLAIM, id, NULL, 0, "R\ngwB");
    to_guild(f, "\"event\":\"m\",\"data\":{\"i\":4}}", 14); /* margin */
    advance(f, 100);
    assert_int_equal(asked.n, 1);
    advance(f, 200);
    assert_int_equal(asked.n, 2);
    assert_int_equal(asked.step[1], GW_HANDOFF_SERVE);
    assert_string_equal(asked.text[1], "R\ngwB");
    assert_int_equal(gw_snapshot_decode(asked.blob[1], asked.len[1], &snap), 0);
    assert_int_equal(snap.seq, 4);
    assert_int_equal(snap.nentries, 4);
    for (uint32_t i = 0; i < 4; i++) {
        char want[64];
        snprintf(want, sizeof(want), "\"event\":\"m\",\"data\":{\"i\":%u}}",
                 i + 1);
        assert_int_equal(snap.entries[i].body->id, 11 + i);
        assert_memory_equal(snap.entries[i].body->data, want, strlen(want));
    }
    gw_snapshot_free(&snap);
    assert_null(gw_index_session(&f->ix, id));
    assert_int_equal(f->stats.v[GW_STAT_HANDOFFS_SERVED], 1);
    /* Waiting until the broker says the serve is done. */
    assert_int_equal(f->stats.v[GW_STAT_HANDOFFS_WAITING], 1);
    handoff_event(f, GW_ACTION_SERVED, id, NULL, 0, NULL);
    assert_int_equal(f->stats.v[GW_STAT_HANDOFFS_WAITING], 0);
}

/* A claim for a session that is not (or no longer) offered here is
 * answered lost at once; an offer that failed closes the connection and
 * leaves an ordinary parked session. */
static void test_a_claim_of_nothing_is_answered_lost(void **state)
{
    fx_t *f = *state;
    const uint8_t nobody[GW_SESSION_ID_LEN] = {0, 0, 0, 9, 9};
    gw_session_t *s;

    handoffs_on(f, "gwA");
    handoff_event(f, GW_ACTION_CLAIM, nobody, NULL, 0, "R\ngwB");
    assert_int_equal(asked.n, 1);
    assert_int_equal(asked.step[0], GW_HANDOFF_SERVE);
    assert_false(asked.has_blob[0]);
    assert_int_equal(f->stats.v[GW_STAT_HANDOFFS_WAITING], 1);
    handoff_event(f, GW_ACTION_SERVED, nobody, NULL, 0, NULL);
    assert_int_equal(f->stats.v[GW_STAT_HANDOFFS_WAITING], 0);
    s = identified(f, 0, "u1", "[]");
    gw_proto_drain(&f->p, 0);
    advance(f, 100);
    assert_int_equal(asked.step[1], GW_HANDOFF_OPEN);
    {
        gw_event_t *ev =
            gw_event_handoff(GW_ACTION_OPENED, s->id, NULL, 0, NULL);
        ev->code = 1;
        gw_transfer_event(&f->p, ev);
        gw_event_unref(ev);
    }
    assert_int_equal(fakes[0].close_code, GW_CLOSE_DRAINING);
    assert_false(s->handing);
    assert_int_equal(f->stats.v[GW_STAT_HANDOFFS_WAITING], 0);
    f->cfg.resume_window_ms = 0;
}

/* Without a margin the claimed session is served at once. */
static void test_no_margin_serves_at_once(void **state)
{
    fx_t *f = *state;
    gw_session_t *s;
    uint8_t id[GW_SESSION_ID_LEN];

    handoffs_on(f, "gwA");
    f->cfg.handoff_margin_ms = 0;
    s = identified(f, 0, "u1", "[\"g1\"]");
    memcpy(id, s->id, GW_SESSION_ID_LEN);
    gw_proto_drain(&f->p, 0);
    advance(f, 100);
    handoff_event(f, GW_ACTION_OPENED, id, NULL, 0, NULL);
    end_conn(0, GW_CLOSE_DRAINING, 0);
    handoff_event(f, GW_ACTION_CLAIM, id, NULL, 0, "R\ngwB");
    assert_int_equal(asked.n, 2);
    assert_int_equal(asked.step[1], GW_HANDOFF_SERVE);
    assert_null(gw_index_session(&f->ix, id));
}

/* The encoding of a snapshot of u1 in g1 from gwA: seq, and dispatches
 * i = first.. with identities 10 + i. */
static size_t snapshot_of(char *out, size_t cap, uint64_t seq, uint32_t n,
                          uint32_t first, const char *user)
{
    char *guilds[] = {(char *)"g1"};
    gw_snapshot_entry_t entries[8];
    gw_snapshot_t snap = {.owner = (char *)"gwA",
                          .user = (char *)user,
                          .guilds = guilds,
                          .nguilds = 1,
                          .seq = seq,
                          .entries = entries,
                          .nentries = n};
    gw_buf_t b = {0};
    size_t len;

    for (uint32_t i = 0; i < n; i++) {
        char body[64];
        int k = snprintf(body, sizeof(body),
                         "\"event\":\"m\",\"data\":{\"i\":%u}}", first + i);
        entries[i].body = gw_frame_new((size_t)k);
        memcpy(entries[i].body->data, body, (size_t)k);
        entries[i].body->id = 10 + first + i;
    }
    gw_snapshot_encode(&snap, &b);
    for (uint32_t i = 0; i < n; i++)
        gw_frame_unref(entries[i].body);
    assert_true(b.len <= cap);
    memcpy(out, b.data, b.len);
    len = b.len;
    free(b.data);
    return len;
}

/* The connection resuming the drained session of another instance. */
static gw_session_t *resuming(fx_t *f, const char *user, uint64_t seq)
{
    char msg[1200];
    gw_session_t *s = open_conn(f, 0, NULL);

    snprintf(msg, sizeof(msg),
             "{\"event\":\"resume\",\"data\":{\"sessionId\":"
             "\"00000000000000000000000000000abc\",\"token\":\"%s\","
             "\"seq\":%llu}}",
             token(user, NULL), (unsigned long long)seq);
    say(0, msg);
    fakes[0].nout = 0;
    return s;
}

/* The new instance holds live events before it claims, and restores the
 * session from the snapshot, dropping what both had, with seq going on:
 * nothing lost, nothing twice. */
static void test_a_resume_restores_a_drained_session(void **state)
{
    fx_t *f = *state;
    gw_session_t *s;
    char blob[4096];
    size_t len;

    handoffs_on(f, "gwB");
    s = resuming(f, "u1", 1);
    assert_int_equal(asked.n, 1);
    assert_int_equal(asked.step[0], GW_HANDOFF_LOOKUP);
    assert_memory_equal(asked.requester[0], s->id, GW_SESSION_ID_LEN);
    len = snapshot_of(blob, sizeof(blob), 1, 0, 0, "u1");
    handoff_event(f, GW_ACTION_FOUND, s->id, blob, len, NULL);
    assert_int_equal(asked.n, 2);
    assert_int_equal(asked.step[1], GW_HANDOFF_CLAIM);
    assert_string_equal(asked.text[1], "gwA");
    /* Held from now on: i = 2 reached both instances, i = 3 only here. */
    to_guild(f, "\"event\":\"m\",\"data\":{\"i\":2}}", 12);
    to_guild(f, "\"event\":\"m\",\"data\":{\"i\":3}}", 13);
    assert_int_equal(fakes[0].nout, 0);
    len = snapshot_of(blob, sizeof(blob), 2, 2, 1, "u1");
    handoff_event(f, GW_ACTION_RESTORE, s->id, blob, len, NULL);
    assert_int_equal(fakes[0].nout, 3);
    assert_string_equal(fakes[0].out[0],
                        "{\"seq\":2,\"event\":\"m\",\"data\":{\"i\":2}}");
    assert_string_equal(fakes[0].out[1],
                        "{\"seq\":3,\"event\":\"m\",\"data\":{\"i\":3}}");
    expect(0, 2, "\"event\":\"resumed\"");
    expect(0, 2, "\"replayed\":2");
    assert_int_equal(f->stats.v[GW_STAT_HANDOFFS_RESTORED], 1);
    assert_int_equal(f->stats.v[GW_STAT_HANDOFF_OVERLAP], 1);
    to_guild(f, "\"event\":\"m\",\"data\":{\"i\":4}}", 14);
    assert_string_equal(fakes[0].out[3],
                        "{\"seq\":4,\"event\":\"m\",\"data\":{\"i\":4}}");
    f->cfg.resume_window_ms = 0;
}

/* Every failure is invalid_session and a new ready, never a replay: no
 * offer, another user's, no answer in time; the held session ends. */
static void test_a_restore_that_fails_is_invalid_session(void **state)
{
    fx_t *f = *state;
    gw_session_t *s;
    char blob[4096];
    size_t len;

    handoffs_on(f, "gwB");
    f->cfg.heartbeat_interval_ms = 10000; /* no beat in the way */
    s = resuming(f, "u1", 0);
    handoff_event(f, GW_ACTION_FOUND, s->id, NULL, 0, NULL);
    expect(0, 0, "\"event\":\"invalid_session\"");
    expect(0, 1, "\"event\":\"ready\"");
    drop(0);

    s = resuming(f, "u2", 0);
    len = snapshot_of(blob, sizeof(blob), 1, 0, 0, "u1");
    handoff_event(f, GW_ACTION_FOUND, s->id, blob, len, NULL);
    expect(0, 0, "\"event\":\"invalid_session\"");
    assert_int_equal(asked.n, 2); /* no claim for another user's */
    drop(0);

    s = resuming(f, "u1", 0);
    handoff_event(f, GW_ACTION_FOUND, s->id, blob, len, NULL);
    assert_non_null(gw_index_user(&f->ix, "u1")); /* held */
    advance(f, 1100);
    assert_int_equal(fakes[0].nout, 0);
    advance(f, 200);
    expect(0, 0, "\"event\":\"invalid_session\"");
    assert_null(gw_index_user(&f->ix, "u1"));
    assert_int_equal(f->stats.v[GW_STAT_HANDOFFS_FAILED], 3);
    assert_int_equal(f->stats.v[GW_STAT_RESUME_INVALID], 3);
    /* The answer that comes late finds nothing waiting. */
    handoff_event(f, GW_ACTION_RESTORE, s->id, blob, len, NULL);
    assert_int_equal(fakes[0].nout, 2);
}

/* A resuming connection that goes while it waits: its held session ends
 * with the answer, or the deadline. */
static void test_a_waiting_connection_that_goes(void **state)
{
    fx_t *f = *state;
    gw_session_t *s;
    uint8_t id[GW_SESSION_ID_LEN];
    char blob[4096];
    size_t len;

    handoffs_on(f, "gwB");
    s = resuming(f, "u1", 0);
    memcpy(id, s->id, GW_SESSION_ID_LEN);
    len = snapshot_of(blob, sizeof(blob), 1, 0, 0, "u1");
    handoff_event(f, GW_ACTION_FOUND, id, blob, len, NULL);
    drop(0);
    assert_non_null(gw_index_user(&f->ix, "u1"));
    handoff_event(f, GW_ACTION_RESTORE, id, blob, len, NULL);
    assert_null(gw_index_user(&f->ix, "u1"));
    assert_int_equal(f->stats.v[GW_STAT_SESSIONS], 0);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, fx_setup, fx_teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_ready_then_identify),
        T(test_token_in_upgrade_identifies),
        T(test_close_codes),
        T(test_identify_as_another_user_fails),
        T(test_identify_twice_is_4005),
        T(test_unknown_event_is_an_error),
        T(test_relay_upstream),
        T(test_relay_refusals),
        T(test_sync_request),
        T(test_heartbeat_deadlines),
        T(test_subscribe_limits),
        T(test_subscribe_outside_the_token_is_forbidden),
        T(test_typing_limits),
        T(test_flood_is_4008),
        T(test_dispatch_seq_and_shedding),
        T(test_drain),
        T(test_close_leaves_the_index),
        T(test_presence_changes),
        T(test_what_parks),
        T(test_resume_elsewhere_hands_the_connection_over),
        T(test_resume_elsewhere_dropped_is_counted),
        T(test_resume_takes_the_new_tokens_guild_bound),
        T(test_session_ids_and_slots),
        T(test_first_heartbeats_spread),
        T(test_a_drained_session_is_offered_then_served),
        T(test_a_claim_of_nothing_is_answered_lost),
        T(test_no_margin_serves_at_once),
        T(test_a_resume_restores_a_drained_session),
        T(test_a_restore_that_fails_is_invalid_session),
        T(test_a_waiting_connection_that_goes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
