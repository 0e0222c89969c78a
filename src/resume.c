#include "gw/resume.h"

#include "gw/alloc.h"
#include "gw/bound.h"
#include "gw/error.h"
#include "gw/hex.h"
#include "gw/reply.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int gw_resume_fields(const cJSON *data, uint8_t id[GW_SESSION_ID_LEN],
                     const char **token, uint64_t *seq)
{
    const cJSON *sid = cJSON_GetObjectItemCaseSensitive(data, "sessionId");
    const cJSON *tok = cJSON_GetObjectItemCaseSensitive(data, "token");
    const cJSON *n = cJSON_GetObjectItemCaseSensitive(data, "seq");

    if (!cJSON_IsString(sid) || !cJSON_IsString(tok) || !cJSON_IsNumber(n) ||
        n->valuedouble < 0 || n->valuedouble > 9007199254740992.0 ||
        n->valuedouble != (double)(uint64_t)n->valuedouble)
        return GW_EINVAL;
    *token = tok->valuestring;
    *seq = (uint64_t)n->valuedouble;
    /* A malformed id names no session: invalid, not a protocol error. */
    if (strlen(sid->valuestring) != 2 * GW_SESSION_ID_LEN ||
        gw_hex_decode(sid->valuestring, GW_SESSION_ID_LEN, id) != 0)
        memset(id, 0xff, GW_SESSION_ID_LEN);
    return 0;
}

/* Re-arms a resumed session's deadlines: its heartbeat starts again from
 * now, and its timer fires at the next tick, where the protocol works out
 * the next deadline, the resume token's exp among them. */
static void resume_rearm(gw_session_t *t)
{
    uint64_t now = gw_sessions_now(t->set);
    uint32_t interval = t->set->cfg->heartbeat_interval_ms;

    t->last_ack_ms = (uint32_t)now;
    t->next_hb_ms = (uint32_t)(now + interval);
    gw_wheel_add(&t->set->wheel, &t->timer, now);
}

void gw_resume_take_over(gw_proto_t *p, gw_session_t *s, gw_session_t *t,
                         uint64_t seq)
{
    gw_ws_t *ws = s->ws, *old = t->ws;
    char sid[2 * GW_SESSION_ID_LEN + 1], buf[128];
    gw_grant_t grant;
    uint32_t n;
    int was_parked = t->parked;

    if (old != NULL) {
        gw_ws_set_data(old, NULL);
        gw_ws_close(old, GW_CLOSE_TAKEN_OVER, "session resumed elsewhere");
    }
    gw_ws_set_data(ws, t);
    /* The resume's token is the session's from now on. */
    gw_session_ungrant(s, &grant);
    gw_session_grant(t, &grant);
    s->ws = NULL;
    gw_proto_end(p, s);
    n = gw_session_resume(t, ws, seq);
    gw_session_id_hex(t, sid);
    snprintf(buf, sizeof(buf),
             "{\"event\":\"resumed\",\"data\":{\"sessionId\":\"%s\","
             "\"replayed\":%" PRIu32 "}}",
             sid, n);
    gw_session_send(t, buf, strlen(buf));
    resume_rearm(t);
    gw_stat_add(t->set->stats, GW_STAT_RESUMED, 1);
    if (was_parked)
        gw_proto_presence(p, t, 1);
    gw_bound_enforce(p, t);
}

int gw_resume_here(gw_proto_t *p, gw_session_t *s, const uint8_t *id,
                   const char *user, uint64_t seq)
{
    gw_session_t *t = gw_index_session(p->index, id);
    int rc;

    /* A session in a drain handoff is the handoff's. */
    if (t == NULL || t->restoring || t->serving)
        return GW_ENOENT;
    rc = strcmp(t->user->id, user) != 0 ? GW_ECLOSED
                                        : gw_session_can_resume(t, seq);
    if (rc == GW_EINVAL)
        gw_session_close(s, GW_CLOSE_INVALID_SEQ, "seq ahead of the session");
    else if (rc != 0)
        gw_reply_invalid_session(s);
    else
        gw_resume_take_over(p, s, t, seq);
    return 0;
}

/* A resume on its way to the worker that holds the session: the
 * connection's data while it leaves this loop. */
typedef struct resume_moving {
    gw_proto_t *p;
    uint8_t id[GW_SESSION_ID_LEN];
    uint64_t seq;
    gw_grant_t grant; /* owned: what the resume's token grants */
    char *user;       /* owned */
} resume_moving_t;

void gw_resume_elsewhere(gw_proto_t *p, gw_session_t *s, const uint8_t *id,
                         const char *user, uint64_t seq)
{
    resume_moving_t *h = gw_malloc(sizeof(*h));
    gw_ws_t *ws = s->ws;

    gw_stat_add(s->set->stats, GW_STAT_RESUME_HANDED, 1);
    *h = (resume_moving_t){p, {0}, seq, {NULL, 0, 0}, gw_strdup(user)};
    gw_session_ungrant(s, &h->grant);
    memcpy(h->id, id, GW_SESSION_ID_LEN);
    gw_ws_set_data(ws, h);
    s->ws = NULL;
    gw_proto_end(p, s);
    gw_ws_hand_off(ws);
}

void gw_resume_hand_off_cb(void *data, int fd, gw_transport_state_t *state,
                           const uint8_t *rest, size_t len)
{
    resume_moving_t *h = data;
    gw_proto_t *p = h->p;

    /* The WebSocket layer closed it instead: the client resumes again on
     * a new connection. */
    if (fd < 0)
        gw_stat_add(p->sessions.stats, GW_STAT_RESUME_HAND_OFF_FAILED, 1);
    else
        p->hooks.hand_over(p->hooks.data, fd, state, rest, len, h->id, h->seq,
                           h->user, &h->grant);
    gw_grant_free(&h->grant);
    free(h->user);
    free(h);
}
