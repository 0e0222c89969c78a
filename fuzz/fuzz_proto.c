/*
 * The gateway protocol on arbitrary client messages: one session, opened
 * and (when the first byte says so) identified, then fed the rest of the
 * input as messages cut at each newline, over a stand-in WebSocket layer
 * (the gw_ws_* below, which the linker takes instead of ws.o) and hooks
 * that refuse or accept as the input says. Whatever arrives, every answer
 * must be a JSON object, and once the connection goes the session must
 * leave nothing in the index.
 */
#include "gw/error.h"
#include "gw/json.h"
#include "gw/proto.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* sub "fuzz-user", exp 2100-01-01, HS256 with "fuzz-secret". */
#define FUZZ_TOKEN                                                             \
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJmdXp6LXVzZXIiLCJleHAi"    \
    "OjQxMDI0NDQ4MDB9.INTUiVG06AxqBwaCHCXwdKbH9I4D5ZR7dKV_PeRWwJI"

static gw_ws_t fake_ws;
static int hook_rc; /* what the relay hooks answer */

/* ---- the WebSocket layer, played here ---- */

void gw_ws_send_text(gw_ws_t *ws, const char *text, size_t len)
{
    cJSON *doc;

    if (ws->state != GW_WS_OPEN)
        return;
    doc = gw_json_parse(text, len);
    if (!cJSON_IsObject(doc))
        abort(); /* an answer that is not a JSON object */
    cJSON_Delete(doc);
}

void gw_ws_send_shared(gw_ws_t *ws, char *prefix, size_t plen, gw_frame_t *body)
{
    (void)ws;
    (void)prefix;
    (void)plen;
    (void)body;
}

int gw_ws_admit(gw_ws_t *ws, uint32_t room, unsigned *dropped)
{
    (void)ws;
    (void)room;
    *dropped = 0;
    return 0;
}

void gw_ws_close(gw_ws_t *ws, uint16_t code, const char *reason)
{
    (void)code;
    (void)reason;
    if (ws->state == GW_WS_OPEN)
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
    if (fake_ws.data != NULL)
        fn(&fake_ws, arg);
}

/* Every session id names this one worker (proto.workers is 0): a resume
 * is never handed to another. */
void gw_ws_hand_off(gw_ws_t *ws)
{
    (void)ws;
    abort();
}

/* ---- the owner's hooks ---- */

static uint64_t fuzz_now(void *data)
{
    (void)data;
    return 1000;
}

static int fuzz_typing(void *data, const char *user, const char *guild,
                       const char *channel)
{
    (void)data;
    (void)user;
    (void)guild;
    (void)channel;
    return hook_rc;
}

static int fuzz_upstream(void *data, const gw_session_t *s, const char *event,
                         const char *json, size_t len, const char *nonce)
{
    (void)data;
    (void)nonce;
    /* What goes up is identified, named, and its data is JSON. */
    if (!s->identified || event[0] == '\0' || !gw_json_valid(json, len))
        abort();
    return hook_rc;
}

static int fuzz_sync(void *data, const gw_session_t *s, const char *scope,
                     const char *json, size_t len, const char *nonce)
{
    (void)data;
    (void)scope;
    (void)nonce;
    if (!s->identified || !gw_json_valid(json, len))
        abort();
    return hook_rc;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static gw_config_t cfg;
    static gw_stats_t stats;
    static gw_index_t ix;
    static gw_proto_t p;
    static int ready;
    static const char identify[] =
        "{\"event\":\"identify\",\"data\":{\"userId\":\"fuzz-user\","
        "\"token\":\"" FUZZ_TOKEN "\",\"guildIds\":[\"g1\",\"g2\"]}}";
    static const int rcs[] = {0, GW_EFULL, GW_ECLOSED};
    size_t pos = 1;

    if (!ready) {
        cfg = (gw_config_t){.jwt_algorithms = "HS256",
                            .jwt_secret = "fuzz-secret",
                            .jwt_audience = "",
                            .jwt_issuer = "",
                            .heartbeat_interval_ms = 1000,
                            .max_guilds_per_session = 4,
                            .typing_limit = 3,
                            .typing_window_ms = 1000,
                            .event_rate = 0,
                            .event_burst = 10,
                            .write_ring_size = 8,
                            .relay_events = "",
                            .relay_limit = 5,
                            .relay_window_ms = 1000,
                            .sync_limit = 2,
                            .sync_window_ms = 1000};
        gw_log_level = GW_LOG_ERROR + 1;
        gw_index_init(&ix, &stats, 0, NULL);
        gw_proto_init(&p, NULL, &ix, &cfg, &stats,
                      &(gw_proto_hooks_t){.now = fuzz_now,
                                          .relay_typing = fuzz_typing,
                                          .relay_upstream = fuzz_upstream,
                                          .relay_sync = fuzz_sync});
        ready = 1;
    }
    if (size == 0)
        return 0;
    hook_rc = rcs[(data[0] >> 1) % 3];
    fake_ws = (gw_ws_t){.state = GW_WS_OPEN};
    gw_proto_ws_cb.on_open(&p, &fake_ws, NULL);
    if (data[0] & 1)
        gw_proto_ws_cb.on_message(fake_ws.data, identify, sizeof(identify) - 1);
    while (pos < size && fake_ws.state == GW_WS_OPEN) {
        const uint8_t *nl = memchr(data + pos, '\n', size - pos);
        size_t n = nl ? (size_t)(nl - (data + pos)) : size - pos;
        gw_proto_ws_cb.on_message(fake_ws.data, (const char *)data + pos, n);
        pos += n + 1;
    }
    gw_proto_ws_cb.on_close(fake_ws.data, 0, 0);
    fake_ws.data = NULL;
    if (gw_index_user(&ix, "fuzz-user") != NULL ||
        gw_index_guild(&ix, "g1") != NULL ||
        gw_stat_get(&stats, GW_STAT_SESSIONS) != 0)
        abort();
    return 0;
}
