#include "gw/session.h"

#include "gw/alloc.h"
#include "gw/error.h"
#include "gw/hex.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#define SESSION_TICK_MS 100 /* deadline resolution */

void gw_sessions_init(gw_sessions_t *set, gw_clock_cb now, void *now_data,
                      const gw_config_t *cfg, gw_stats_t *stats)
{
    *set = (gw_sessions_t){
        .cfg = cfg, .stats = stats, .now = now, .now_data = now_data};
    gw_wheel_init(&set->wheel, SESSION_TICK_MS, now(now_data));
}

/*
 * When the first server heartbeat is due: up to a quarter interval early,
 * at a point of the session's own (two random bytes of its id), so that
 * sessions that connected in the same moment, after a deploy or in a
 * reconnect storm, do not beat in step for the rest of their lives.
 */
static uint32_t session_first_beat(uint32_t interval,
                                   const uint8_t id[GW_SESSION_ID_LEN])
{
    uint32_t r =
        (uint32_t)id[GW_SESSION_ID_LEN - 2] << 8 | id[GW_SESSION_ID_LEN - 1];

    return interval - (uint32_t)((uint64_t)(interval / 4) * r >> 16);
}

gw_session_t *gw_session_new(gw_sessions_t *set, gw_ws_t *ws)
{
    gw_session_t *s = gw_calloc(1, sizeof(*s));
    uint64_t now = gw_sessions_now(set), first;

    s->ws = ws;
    s->set = set;
    if (getrandom(s->id, sizeof(s->id), 0) != sizeof(s->id)) {
        gw_error("getrandom failed");
        abort();
    }
    gw_bucket_init(&s->events, now, set->cfg->event_burst);
    s->last_ack_ms = (uint32_t)now;
    first = now + session_first_beat(set->cfg->heartbeat_interval_ms, s->id);
    s->next_hb_ms = (uint32_t)first;
    gw_wheel_add(&set->wheel, &s->timer, first);
    return s;
}

void gw_session_free(gw_session_t *s)
{
    gw_wheel_del(&s->timer);
    if (s->identified)
        gw_stat_add(s->set->stats, GW_STAT_SESSIONS, -1);
    for (uint32_t i = 0; i < s->nallowed; i++)
        free(s->allowed[i]);
    free(s->allowed);
    free(s);
}

void gw_session_id_hex(const gw_session_t *s,
                       char out[2 * GW_SESSION_ID_LEN + 1])
{
    gw_hex_encode(s->id, GW_SESSION_ID_LEN, out);
    out[2 * GW_SESSION_ID_LEN] = '\0';
}

void gw_session_close(gw_session_t *s, uint16_t code, const char *reason)
{
    if (s->ws != NULL)
        gw_ws_close(s->ws, code, reason);
}

void gw_session_slow_consumer(gw_session_t *s, unsigned dropped)
{
    gw_sessions_t *set = s->set;

    gw_stat_add(set->stats, GW_STAT_RING_DROPS, dropped);
    gw_stat_add(set->stats, GW_STAT_SLOW_CONSUMER_CLOSES, 1);
    gw_log_limited(&set->slow_log, GW_LOG_WARN,
                   "conn %" PRIu64 ": slow consumer, %u queued frames dropped",
                   s->ws ? s->ws->id : 0, dropped);
    gw_session_close(s, GW_CLOSE_SLOW_CONSUMER, "slow consumer");
}

/*
 * Eighths of the ring at which an event of each priority is shed instead of
 * queued: low priorities go first under pressure (seed 002), critical ones
 * only meet the slow-consumer close.
 */
static const uint8_t session_shed_eighths[5] = {8, 8, 7, 6, 4};
static const gw_stat_t session_shed_stat[5] = {
    0, 0, GW_STAT_SHED_P2, GW_STAT_SHED_P3, GW_STAT_SHED_P4};

/* The ring looked full: written out first, then shed or closed 4010. */
static int session_admit_full(gw_session_t *s, uint32_t room, int p)
{
    unsigned dropped;

    switch (gw_ws_admit(s->ws, room, &dropped)) {
    case 0: return 1;
    case GW_EAGAIN: gw_stat_add(s->set->stats, session_shed_stat[p], 1); break;
    case GW_EFULL: gw_session_slow_consumer(s, dropped); break;
    default: break; /* closed by the flush */
    }
    return 0;
}

/* Whether the connection's ring can take a message of priority p; the
 * common answer costs a compare, here, once per delivery. */
static inline int session_admit(gw_session_t *s, int p)
{
    uint32_t room = (uint32_t)((uint64_t)s->set->cfg->write_ring_size *
                               session_shed_eighths[p] / 8);

    return gw_ws_queued(s->ws) < room || session_admit_full(s, room, p);
}

void gw_session_send(gw_session_t *s, const char *json, size_t len)
{
    if (s->ws == NULL || !gw_ws_is_open(s->ws) || !session_admit(s, 1))
        return;
    gw_ws_send_text(s->ws, json, len);
}

/* Writes {"seq":N, into out (at least 28 bytes); returns its length. By
 * hand, because snprintf cost more than the rest of a dispatch. */
_Static_assert(GW_WS_HEADROOM + 28 <= GW_RING_HEAD_MAX,
               "a ring entry's head holds the frame header and the prefix");
static size_t session_seq_prefix(char *out, uint64_t seq)
{
    char digits[20];
    size_t n = 0, len = sizeof("{\"seq\":") - 1;

    do
        digits[n++] = (char)('0' + seq % 10);
    while ((seq /= 10) != 0);
    memcpy(out, "{\"seq\":", len);
    while (n > 0)
        out[len++] = digits[--n];
    out[len++] = ',';
    return len;
}

void gw_session_dispatch(gw_session_t *s, const gw_event_t *ev)
{
    char head[GW_RING_HEAD_MAX];
    size_t slen;

    if (s->ws == NULL || !gw_ws_is_open(s->ws) || !s->identified)
        return;
    if (ev->has_exclude && memcmp(ev->exclude, s->id, GW_SESSION_ID_LEN) == 0)
        return;
    if (!session_admit(s, ev->priority))
        return;
    /* The per-recipient part: {"seq":N, before the body every recipient
     * shares; the WebSocket layer puts the frame header in front. */
    slen = session_seq_prefix(head + GW_WS_HEADROOM, ++s->seq);
    gw_ws_send_shared(s->ws, head + GW_WS_HEADROOM, slen, ev->body);
}
