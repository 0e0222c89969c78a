#include "gw/session.h"

#include "gw/alloc.h"
#include "gw/error.h"
#include "gw/hex.h"

#include <errno.h>
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
    gw_replay_log_init(&set->log);
    gw_slab_init(&set->slab, sizeof(gw_session_t));
}

void gw_sessions_free(gw_sessions_t *set)
{
    size_t left;

    gw_replay_log_free(&set->log);
    left = gw_slab_free(&set->slab);
    if (left > 0)
        gw_error("%zu sessions were never freed", left);
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

/* Fills buf with the kernel's random bytes; past 256 bytes a signal may
 * cut a getrandom short. Fatal on failure: an id must never be guessable. */
static void session_random(uint8_t *buf, size_t len)
{
    ssize_t n;

    while (len > 0) {
        n = getrandom(buf, len, 0);
        if (n < 0 && errno != EINTR) {
            gw_error("getrandom failed: %s", strerror(errno));
            abort();
        }
        if (n > 0) {
            buf += n;
            len -= (size_t)n;
        }
    }
}

/* A new session id, as unguessable as the kernel's CSPRNG (a resume
 * presents it as its secret), from the set's store of its bytes. */
static void session_new_id(gw_sessions_t *set, uint8_t id[GW_SESSION_ID_LEN])
{
    if (set->random_left < GW_SESSION_ID_LEN) {
        session_random(set->random, sizeof(set->random));
        set->random_left = sizeof(set->random);
    }
    set->random_left -= GW_SESSION_ID_LEN;
    memcpy(id, set->random + set->random_left, GW_SESSION_ID_LEN);
}

gw_session_t *gw_session_new(gw_sessions_t *set, gw_ws_t *ws)
{
    gw_session_t *s = gw_slab_alloc(&set->slab);
    uint64_t now = gw_sessions_now(set), first;

    s->ws = ws;
    s->set = set;
    session_new_id(set, s->id);
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
    if (s->parked)
        gw_stat_add(s->set->stats, GW_STAT_PARKED, -1);
    if (s->handing || s->serving)
        gw_stat_add(s->set->stats, GW_STAT_HANDOFFS_WAITING, -1);
    gw_grant_free(&(gw_grant_t){s->allowed, s->nallowed, 0});
    gw_replay_free(s->replay);
    free(s->windows);
    gw_slab_put(&s->set->slab, s);
}

gw_session_windows_t *gw_session_windows(gw_session_t *s)
{
    if (s->windows == NULL)
        s->windows = gw_calloc(1, sizeof(*s->windows));
    return s->windows;
}

void gw_session_grant(gw_session_t *s, gw_grant_t *g)
{
    gw_grant_t old = {s->allowed, s->nallowed, 0};

    gw_grant_free(&old);
    s->allowed = g->allowed;
    s->nallowed = g->nallowed;
    s->exp = g->exp;
    s->warned = 0;
    *g = (gw_grant_t){NULL, 0, 0};
}

void gw_session_ungrant(gw_session_t *s, gw_grant_t *g)
{
    *g = (gw_grant_t){s->allowed, s->nallowed, s->exp};
    s->allowed = NULL;
    s->nallowed = 0;
    s->exp = 0;
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

/* Keeps a dispatch for resume: its body in the worker's log (once per
 * event), its position in the session's buffer. Whether it fit without
 * dropping one (a connected session's oldest just go). */
static inline int session_keep(gw_session_t *s, gw_frame_t *body)
{
    gw_sessions_t *set = s->set;
    const gw_config_t *cfg = set->cfg;
    uint64_t pos;

    if (cfg->resume_window_ms == 0)
        return 1;
    pos = gw_replay_log_add(&set->log, body, cfg->replay_log_bytes);
    return !gw_replay_push(&s->replay, (uint32_t)pos, cfg->replay_size);
}

/* A dispatch for a session that cannot be sent it now (its connection is
 * closing, 4009 or 4011, or gone): kept with its seq, for the resume that
 * may follow; low priority ones (typing, presence) are not. Whether it
 * was kept. */
static int session_hold(gw_session_t *s, const gw_event_t *ev)
{
    if (ev->priority >= 4)
        return 0;
    ++s->seq;
    session_keep(s, ev->body);
    return 1;
}

/* A dispatch for a parked session: held, or, once more have come while
 * it is away than it keeps, the session is lost. */
static void session_dispatch_parked(gw_session_t *s, const gw_event_t *ev)
{
    if (s->lost || !session_hold(s, ev) ||
        s->seq - s->park_seq <= s->set->cfg->replay_size)
        return;
    gw_stat_add(s->set->stats, GW_STAT_RESUME_OVERFLOWS, 1);
    gw_session_forget(s);
}

void gw_session_forget(gw_session_t *s)
{
    s->lost = 1;
    gw_wheel_del(&s->timer);
    gw_wheel_add(&s->set->wheel, &s->timer, gw_sessions_now(s->set));
}

void gw_session_dispatch(gw_session_t *s, const gw_event_t *ev)
{
    char head[GW_RING_HEAD_MAX];
    size_t slen;

    if (!s->identified)
        return;
    if (ev->has_exclude && memcmp(ev->exclude, s->id, GW_SESSION_ID_LEN) == 0)
        return;
    if (s->ws == NULL) {
        session_dispatch_parked(s, ev);
        return;
    }
    if (!gw_ws_is_open(s->ws)) {
        session_hold(s, ev);
        return;
    }
    if (!session_admit(s, ev->priority))
        return;
    /* The per-recipient part: {"seq":N, before the body every recipient
     * shares; the WebSocket layer puts the frame header in front. */
    slen = session_seq_prefix(head + GW_WS_HEADROOM, ++s->seq);
    session_keep(s, ev->body);
    gw_ws_send_shared(s->ws, head + GW_WS_HEADROOM, slen, ev->body);
}

void gw_session_park(gw_session_t *s, uint64_t deadline)
{
    s->ws = NULL;
    s->parked = 1;
    s->park_seq = s->seq;
    gw_stat_add(s->set->stats, GW_STAT_PARKED, 1);
    gw_wheel_del(&s->timer);
    gw_wheel_add(&s->set->wheel, &s->timer, deadline);
}

int gw_session_can_resume(const gw_session_t *s, uint64_t seq)
{
    uint32_t count = gw_replay_count(s->replay);

    if (seq > s->seq)
        return GW_EINVAL;
    if (s->lost || seq < s->seq - count)
        return GW_ECLOSED;
    /* Every body to send again must still be in the log. Their positions
     * mostly rise along the buffer, but not after a drain handoff's
     * restore (gw_session_restore), so each is looked at: at most
     * replay_size, once per resume. */
    for (uint32_t i = count - (uint32_t)(s->seq - seq); i < count; i++)
        if (gw_replay_log_get(&s->set->log, gw_replay_get(s->replay, i)) ==
            NULL)
            return GW_ECLOSED;
    return 0;
}

uint32_t gw_session_resume(gw_session_t *s, gw_ws_t *ws, uint64_t seq)
{
    uint32_t count = gw_replay_count(s->replay);
    uint32_t n = (uint32_t)(s->seq - seq), first = count - n;
    char head[GW_RING_HEAD_MAX];

    if (s->parked)
        gw_stat_add(s->set->stats, GW_STAT_PARKED, -1);
    s->parked = 0;
    s->ws = ws;
    for (uint32_t i = 0; i < n; i++) {
        size_t slen = session_seq_prefix(head + GW_WS_HEADROOM, seq + 1 + i);
        gw_ws_send_shared(
            ws, head + GW_WS_HEADROOM, slen,
            gw_replay_log_get(&s->set->log,
                              gw_replay_get(s->replay, first + i)));
    }
    gw_stat_add(s->set->stats, GW_STAT_REPLAYED, n);
    return n;
}

/* The identities of s's n buffered dispatches, and their positions;
 * -1 when one has left the log. */
static int session_held(const gw_session_t *s, uint32_t n, uint64_t *ids,
                        uint32_t *pos)
{
    for (uint32_t i = 0; i < n; i++) {
        gw_frame_t *f;
        pos[i] = gw_replay_get(s->replay, i);
        f = gw_replay_log_get(&s->set->log, pos[i]);
        if (f == NULL)
            return -1;
        ids[i] = f->id;
    }
    return 0;
}

int gw_session_restore(gw_session_t *s, const gw_snapshot_t *snap,
                       uint32_t *overlap)
{
    const gw_config_t *cfg = s->set->cfg;
    uint32_t n = gw_replay_count(s->replay), kept = 0;
    uint64_t *ids = gw_malloc((n ? n : 1) * sizeof(*ids));
    uint32_t *pos = gw_malloc((n ? n : 1) * sizeof(*pos));
    uint8_t *keep = gw_malloc(n ? n : 1);
    int rc = GW_ECLOSED;

    /* Held since it was made: its seq is what it held, unless some went. */
    if (s->lost || s->seq != n || session_held(s, n, ids, pos) != 0)
        goto Done;
    kept = (uint32_t)gw_snapshot_dedupe(snap, ids, n, keep);
    gw_replay_free(s->replay);
    s->replay = NULL;
    for (uint32_t i = 0; i < snap->nentries; i++)
        gw_replay_push(&s->replay,
                       (uint32_t)gw_replay_log_intern(&s->set->log,
                                                      snap->entries[i].body,
                                                      cfg->replay_log_bytes),
                       cfg->replay_size);
    for (uint32_t i = 0; i < n; i++)
        if (keep[i])
            gw_replay_push(&s->replay, pos[i], cfg->replay_size);
    s->seq = snap->seq + kept;
    s->park_seq = s->seq;
    *overlap = n - kept;
    rc = 0;
Done:
    free(keep);
    free(pos);
    free(ids);
    return rc;
}
