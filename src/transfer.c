#include "gw/transfer.h"

#include "gw/alloc.h"
#include "gw/buf.h"
#include "gw/hex.h"
#include "gw/log.h"
#include "gw/reply.h"
#include "gw/resume.h"
#include "gw/snapshot.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

/* Time a drained session's connection stays open waiting for its offer to
 * be in Redis: past it the connection closes anyway. */
#define TRANSFER_OFFER_WAIT_MS 2000

/*
 * A handoff in progress on this worker. On the old instance: a claimed
 * session, served once the margin is over. On the new one: a resuming
 * connection waiting for the session it restores. The resuming
 * connection's session is named by its id, not held: it may end (its
 * client gives up) without this knowing; the sessions it points to end
 * only through here.
 */
struct gw_transfer {
    gw_transfer_t *next;
    gw_session_t *served; /* old: the claimed session (serving) */
    gw_session_t *held;   /* new: the session holding live events
                             (restoring) once the offer came, or NULL */
    uint8_t requester[GW_SESSION_ID_LEN]; /* new: the resuming connection's
                                             session */
    uint8_t id[GW_SESSION_ID_LEN];        /* the handed-off session's id */
    uint64_t seq;                         /* new: the client's last seq */
    uint64_t deadline; /* loop ms: old: serve then; new: give up then */
    char *user;        /* new, owned: the token's user */
    char *reply;       /* old, owned: the claim's answer address */
};

int gw_transfer_on(const gw_proto_t *p)
{
    const gw_config_t *cfg = p->sessions.cfg;

    return p->hooks.handoff != NULL && cfg->handoff &&
           cfg->resume_window_ms > 0;
}

static gw_transfer_t *transfer_add(gw_proto_t *p, const uint8_t *id,
                                   uint64_t deadline)
{
    gw_transfer_t *t = gw_calloc(1, sizeof(*t));

    memcpy(t->id, id, GW_SESSION_ID_LEN);
    t->deadline = deadline;
    t->next = p->transfers;
    p->transfers = t;
    return t;
}

/* The transfer of session s (served or held), or NULL. */
static gw_transfer_t *transfer_of(const gw_proto_t *p, const gw_session_t *s)
{
    gw_transfer_t *t = p->transfers;

    while (t != NULL && t->served != s && t->held != s)
        t = t->next;
    return t;
}

/* The transfer a resuming connection's session waits on, or NULL. */
static gw_transfer_t *transfer_for(const gw_proto_t *p, const uint8_t *id)
{
    gw_transfer_t *t = p->transfers;

    while (t != NULL && (t->served != NULL ||
                         memcmp(t->requester, id, GW_SESSION_ID_LEN) != 0))
        t = t->next;
    return t;
}

/* Unlinks and frees t; the held session, if any, ends with it. */
static void transfer_free(gw_proto_t *p, gw_transfer_t *t)
{
    gw_transfer_t **pp = &p->transfers;
    gw_session_t *held = t->held;

    while (*pp != t)
        pp = &(*pp)->next;
    *pp = t->next;
    free(t->user);
    free(t->reply);
    free(t);
    if (held != NULL) {
        held->restoring = 0;
        gw_proto_end(p, held);
    }
}

/* Asks the broker for one step of a handoff: 0, or GW_EFULL. */
static int transfer_ask(gw_proto_t *p, gw_handoff_step_t step,
                        const uint8_t *id, const uint8_t *requester,
                        const char *text, const gw_buf_t *blob)
{
    gw_handoff_msg_t m = {
        .step = step,
        .text = text,
        .blob = blob != NULL ? blob->data : NULL,
        .len = blob != NULL ? blob->len : 0,
        .ttl_ms = p->sessions.cfg->resume_window_ms,
    };

    memcpy(m.session, id, GW_SESSION_ID_LEN);
    if (requester != NULL)
        memcpy(m.requester, requester, GW_SESSION_ID_LEN);
    return p->hooks.handoff(p->hooks.data, &m);
}

/*
 * Encodes s into out: who it is and what it joined, and when full its
 * buffered dispatches too: the newest run of them whose bodies are all
 * still in the log (a restored session's may have left out of order).
 * The snapshot borrows s's strings and bodies.
 */
static void transfer_snapshot(const gw_proto_t *p, const gw_session_t *s,
                              int full, gw_buf_t *out)
{
    const gw_replay_log_t *log = &s->set->log;
    uint32_t count = full ? gw_replay_count(s->replay) : 0, first = 0;
    gw_snapshot_t snap = {
        .owner = (char *)p->instance,
        .user = (char *)s->user->id,
        .bounded = s->allowed != NULL,
        .allowed = s->allowed,
        .nallowed = s->nallowed,
        .seq = s->seq,
    };

    snap.guilds = gw_malloc((s->nguilds ? s->nguilds : 1) * sizeof(char *));
    for (const gw_member_t *m = s->guilds; m != NULL; m = m->session_next)
        snap.guilds[snap.nguilds++] = m->guild->id;
    for (uint32_t i = count; i > 0; i--)
        if (gw_replay_log_get(log, gw_replay_get(s->replay, i - 1)) == NULL) {
            first = i;
            break;
        }
    snap.entries = gw_malloc((count - first + 1) * sizeof(*snap.entries));
    for (uint32_t i = first; i < count; i++)
        snap.entries[snap.nentries++].body =
            gw_replay_log_get(log, gw_replay_get(s->replay, i));
    gw_snapshot_encode(&snap, out);
    free(snap.guilds);
    free(snap.entries);
}

/* ---- the old instance ------------------------------------------------- */

void gw_transfer_offer(gw_proto_t *p, gw_session_t *s)
{
    gw_buf_t blob = {0};

    if (!s->identified || s->handing || !gw_transfer_on(p)) {
        gw_session_close(s, GW_CLOSE_DRAINING, "server draining");
        return;
    }
    transfer_snapshot(p, s, 0, &blob);
    if (transfer_ask(p, GW_HANDOFF_OPEN, s->id, NULL, NULL, &blob) != 0) {
        gw_session_close(s, GW_CLOSE_DRAINING, "server draining");
    } else {
        s->handing = 1;
        gw_stat_add(s->set->stats, GW_STAT_HANDOFFS_WAITING, 1);
        gw_wheel_add(&s->set->wheel, &s->timer,
                     gw_sessions_now(s->set) + TRANSFER_OFFER_WAIT_MS);
    }
    free(blob.data);
}

/* The offer of drained session s is in Redis (ok) or could not be made:
 * its connection closes now, so that the client cannot ask the next
 * instance before the offer is there. */
static void transfer_opened(gw_session_t *s, int ok)
{
    if (s == NULL || !s->handing)
        return;
    if (!ok) {
        s->handing = 0;
        gw_stat_add(s->set->stats, GW_STAT_HANDOFFS_WAITING, -1);
    }
    gw_session_close(s, GW_CLOSE_DRAINING, "server draining");
}

/*
 * Asks for a serve: the snapshot, or none (lost). Until the broker says
 * it is done (GW_ACTION_SERVED) it counts as waiting, so that a draining
 * instance does not exit with the serve still on its way to Redis.
 */
static int transfer_send(gw_proto_t *p, const uint8_t *id, const char *reply,
                         const gw_buf_t *blob)
{
    int rc = transfer_ask(p, GW_HANDOFF_SERVE, id, NULL, reply, blob);

    if (rc == 0)
        gw_stat_add(p->sessions.stats, GW_STAT_HANDOFFS_WAITING, 1);
    return rc;
}

/* The margin is over: the claimed session goes, whole, and ends here. */
static void transfer_serve(gw_proto_t *p, gw_transfer_t *t)
{
    gw_session_t *s = t->served;
    gw_buf_t blob = {0};

    if (!s->lost)
        transfer_snapshot(p, s, 1, &blob);
    if (transfer_send(p, s->id, t->reply, s->lost ? NULL : &blob) == 0)
        gw_stat_add(s->set->stats, GW_STAT_HANDOFFS_SERVED, 1);
    free(blob.data);
    transfer_free(p, t);
    /* Claimed before its close completed: the client is elsewhere. */
    if (s->ws != NULL) {
        gw_ws_set_data(s->ws, NULL);
        gw_ws_close(s->ws, GW_CLOSE_TAKEN_OVER, "session resumed elsewhere");
        s->ws = NULL;
        gw_proto_presence(p, s, -1);
    }
    gw_proto_end(p, s);
}

/* Another instance claimed session id (s here, or no longer): it is
 * served once the margin is over (at once without one), or answered lost
 * now. */
static void transfer_claimed(gw_proto_t *p, gw_session_t *s, const uint8_t *id,
                             const char *reply)
{
    gw_transfer_t *t;

    if (s == NULL || !s->handing || s->lost) {
        transfer_send(p, id, reply, NULL);
        return;
    }
    s->handing = 0;
    s->serving = 1;
    t = transfer_add(
        p, id, gw_sessions_now(s->set) + p->sessions.cfg->handoff_margin_ms);
    t->served = s;
    t->reply = gw_strdup(reply);
    /* Without a margin there is nothing to wait for: every event before
     * the claim came through this worker's queue before it did. */
    if (p->sessions.cfg->handoff_margin_ms == 0)
        transfer_serve(p, t);
}

/* ---- the new instance ------------------------------------------------- */

/* The resume of a handed-off session cannot be served (`why`): the
 * connection, if it is still there, identifies afresh. */
static void transfer_fail(gw_proto_t *p, gw_transfer_t *t, const char *why)
{
    gw_session_t *s = gw_index_find(p->index, t->requester);
    char sid[2 * GW_SESSION_ID_LEN + 1];

    gw_stat_add(p->sessions.stats, GW_STAT_HANDOFFS_FAILED, 1);
    if (gw_log_on(GW_LOG_INFO)) {
        gw_hex_encode(t->id, GW_SESSION_ID_LEN, sid);
        sid[2 * GW_SESSION_ID_LEN] = '\0';
        gw_info("conn %" PRIu64 ": session %s of another instance cannot be "
                "restored: %s",
                s != NULL ? gw_session_conn_id(s) : 0, sid, why);
    }
    transfer_free(p, t);
    if (s != NULL)
        gw_reply_invalid_session(s);
}

void gw_transfer_restore(gw_proto_t *p, gw_session_t *s, const uint8_t *id,
                         const char *user, uint64_t seq)
{
    const gw_config_t *cfg = p->sessions.cfg;
    gw_transfer_t *t =
        transfer_add(p, id,
                     gw_sessions_now(s->set) + cfg->handoff_margin_ms +
                         cfg->handoff_timeout_ms);

    memcpy(t->requester, s->id, GW_SESSION_ID_LEN);
    t->user = gw_strdup(user);
    t->seq = seq;
    if (transfer_ask(p, GW_HANDOFF_LOOKUP, id, s->id, NULL, NULL) != 0)
        transfer_fail(p, t, "the broker is busy");
}

/* A session of snap's user, bound and joined as snap says, parked: from
 * now on it holds every dispatch that reaches it. Takes snap's allowed. */
static gw_session_t *transfer_hold(gw_proto_t *p, gw_snapshot_t *snap)
{
    const gw_config_t *cfg = p->sessions.cfg;
    gw_session_t *h = gw_session_new(&p->sessions, NULL);

    gw_index_place(p->index, h);
    gw_index_add_session(p->index, h, snap->user);
    h->identified = 1;
    gw_stat_add(h->set->stats, GW_STAT_SESSIONS, 1);
    if (snap->bounded) {
        h->allowed = snap->allowed ? snap->allowed : gw_calloc(1, 1);
        h->nallowed = snap->nallowed;
        snap->allowed = NULL;
        snap->nallowed = 0;
    }
    for (uint16_t i = 0; i < snap->nguilds; i++)
        if (h->nguilds < cfg->max_guilds_per_session)
            gw_index_join(p->index, h, snap->guilds[i]);
    gw_session_park(h, gw_sessions_now(h->set) + cfg->resume_window_ms);
    h->restoring = 1;
    return h;
}

/* The offer came (or none): a session holds live events first, then the
 * claim goes, so that nothing falls between the two instances. */
static void transfer_found(gw_proto_t *p, gw_transfer_t *t,
                           const gw_frame_t *body)
{
    gw_snapshot_t snap;

    if (body == NULL || gw_snapshot_decode(body->data, body->len, &snap) != 0) {
        transfer_fail(p, t,
                      body ? "its offer is not a snapshot"
                           : "no instance offers it");
        return;
    }
    if (strcmp(snap.user, t->user) != 0) {
        transfer_fail(p, t, "it is another user's");
        goto Done;
    }
    t->held = transfer_hold(p, &snap);
    if (transfer_ask(p, GW_HANDOFF_CLAIM, t->id, t->requester, snap.owner,
                     NULL) != 0)
        transfer_fail(p, t, "the broker is busy");
Done:
    gw_snapshot_free(&snap);
}

/* The old instance's snapshot came (or will not): the held session
 * becomes the one resumed, and the waiting connection takes it over. */
static void transfer_restored(gw_proto_t *p, gw_transfer_t *t, gw_session_t *s,
                              const gw_frame_t *body)
{
    gw_session_t *held = t->held;
    uint64_t seq = t->seq;
    gw_snapshot_t snap = {0};
    uint32_t overlap;

    if (held == NULL || body == NULL ||
        gw_snapshot_decode(body->data, body->len, &snap) != 0) {
        transfer_fail(p, t,
                      body ? "its snapshot does not decode"
                           : "claimed before, or lost");
        return;
    }
    if (strcmp(snap.user, t->user) != 0 || seq + snap.nentries < snap.seq ||
        gw_session_restore(held, &snap, &overlap) != 0 ||
        (seq <= snap.seq && gw_session_can_resume(held, seq) != 0)) {
        transfer_fail(p, t, "it no longer holds what the client missed");
        goto Done;
    }
    if (seq > snap.seq) {
        transfer_free(p, t);
        gw_session_close(s, GW_CLOSE_INVALID_SEQ, "seq ahead of the session");
        goto Done;
    }
    t->held = NULL;
    held->restoring = 0;
    transfer_free(p, t);
    gw_stat_add(p->sessions.stats, GW_STAT_HANDOFFS_RESTORED, 1);
    gw_stat_add(p->sessions.stats, GW_STAT_HANDOFF_OVERLAP, overlap);
    gw_resume_take_over(p, s, held, seq);
Done:
    gw_snapshot_free(&snap);
}

/* An answer for a resuming connection: its transfer goes on, or ends
 * quietly when the connection is gone. */
static void transfer_answer(gw_proto_t *p, const gw_event_t *ev)
{
    gw_transfer_t *t = transfer_for(p, ev->session);
    /* A resuming connection's session is not identified. */
    gw_session_t *s = gw_index_find(p->index, ev->session);

    if (t == NULL)
        return;
    if (s == NULL)
        transfer_free(p, t);
    else if (ev->action == GW_ACTION_FOUND && t->held == NULL)
        transfer_found(p, t, ev->body);
    else if (ev->action == GW_ACTION_RESTORE)
        transfer_restored(p, t, s, ev->body);
}

void gw_transfer_event(gw_proto_t *p, const gw_event_t *ev)
{
    switch (ev->action) {
    case GW_ACTION_OPENED:
        transfer_opened(gw_index_session(p->index, ev->session), ev->code == 0);
        break;
    case GW_ACTION_CLAIM:
        transfer_claimed(p, gw_index_session(p->index, ev->session),
                         ev->session, ev->arg);
        break;
    case GW_ACTION_SERVED:
        gw_stat_add(p->sessions.stats, GW_STAT_HANDOFFS_WAITING, -1);
        break;
    case GW_ACTION_FOUND:
    case GW_ACTION_RESTORE: transfer_answer(p, ev); break;
    default: break;
    }
}

void gw_transfer_timer(gw_proto_t *p, gw_session_t *s)
{
    gw_transfer_t *t = transfer_of(p, s);

    if (s->serving)
        transfer_serve(p, t);
    else
        transfer_fail(p, t, "more came than it could hold");
}

void gw_transfer_due(gw_proto_t *p, uint64_t now)
{
    gw_transfer_t *t, *next;

    for (t = p->transfers; t != NULL; t = next) {
        next = t->next;
        if (now < t->deadline)
            continue;
        if (t->served != NULL)
            transfer_serve(p, t);
        else
            transfer_fail(p, t, "its instance did not answer in time");
    }
}

void gw_transfer_drop(gw_proto_t *p)
{
    while (p->transfers != NULL)
        transfer_free(p, p->transfers);
}
