#include "gw/subreply.h"

#include "gw/alloc.h"
#include "gw/log.h"
#include "gw/subwait.h"

#include <stdlib.h>
#include <string.h>

_Static_assert(GW_SUBWAIT_ID_LEN == GW_SESSION_ID_LEN,
               "a held answer names its session by its id");

/* A dispatch behind a held answer. */
typedef struct subreply_later {
    uint8_t session[GW_SESSION_ID_LEN];
    gw_event_t *ev; /* owned reference */
} subreply_later_t;

struct gw_subreply {
    gw_subwait_t *sw;        /* owned */
    subreply_later_t *later; /* owned array, in arrival order */
    size_t nlater, cap;
    gw_log_limit_t log; /* answers sent at the bound, dispatches let go */
};

/* Delivers one kept dispatch to s, as the fan-out would have. */
static void subreply_deliver(gw_session_t *s, const gw_event_t *ev)
{
    if (ev->action == GW_ACTION_SEND)
        gw_session_send(s, ev->body->data, ev->body->len);
    else
        gw_session_dispatch(s, ev);
}

/* The dispatches kept for session id leave the list, in order: delivered
 * to s, or, for NULL, dropped. */
static void subreply_release(gw_subreply_t *r, const uint8_t *id,
                             gw_session_t *s)
{
    size_t keep = 0;

    for (size_t i = 0; i < r->nlater; i++) {
        subreply_later_t *l = &r->later[i];
        if (memcmp(l->session, id, GW_SESSION_ID_LEN) != 0) {
            r->later[keep++] = *l;
            continue;
        }
        if (s != NULL)
            subreply_deliver(s, l->ev);
        gw_event_unref(l->ev);
    }
    r->nlater = keep;
}

/* A held answer is due: its session, if still here and connected, has it
 * (what it says was true when it was held: the session joined), then
 * what waited behind it. */
static void subreply_due_cb(void *data, const gw_subwait_answer_t *a, int late)
{
    gw_proto_t *p = data;
    gw_subreply_t *r = p->subreply;
    gw_session_t *s = gw_index_session(p->index, a->session);

    if (late) {
        gw_stat_add(p->sessions.stats, GW_STAT_SUBSCRIBE_LATE, 1);
        gw_log_limited(&r->log, GW_LOG_WARN,
                       "proto: a subscription not confirmed within "
                       "redis.subscribe_wait_ms: a client answered anyway");
    }
    if (s == NULL || s->ws == NULL) {
        subreply_release(r, a->session, NULL);
        return;
    }
    s->held = 0;
    for (int i = 0; i < GW_SUBWAIT_MSGS && a->text[i] != NULL; i++)
        gw_session_send(s, a->text[i], a->len[i]);
    subreply_release(r, a->session, s);
}

void gw_subreply_start(gw_proto_t *p, uint64_t wait_ms)
{
    p->subreply = gw_calloc(1, sizeof(*p->subreply));
    p->subreply->sw = gw_subwait_new(wait_ms, subreply_due_cb, p);
}

void gw_subreply_free(gw_proto_t *p)
{
    gw_subreply_t *r = p->subreply;

    if (r == NULL)
        return;
    for (size_t i = 0; i < r->nlater; i++)
        gw_event_unref(r->later[i].ev);
    free(r->later);
    gw_subwait_free(r->sw);
    free(r);
    p->subreply = NULL;
}

/* The targets of an identified: s's guilds and its user (heap). */
static gw_interest_target_t *subreply_targets(const gw_session_t *s, size_t *n)
{
    gw_interest_target_t *t = gw_malloc((s->nguilds + 1u) * sizeof(*t));
    size_t k = 0;

    t[k++] = (gw_interest_target_t){GW_INTEREST_USER, s->user->id};
    for (const gw_member_t *m = s->guilds; m != NULL; m = m->session_next)
        t[k++] = (gw_interest_target_t){GW_INTEREST_GUILD, m->guild->id};
    *n = k;
    return t;
}

/* Whether the answer a for s is held for a pending target. */
static int subreply_hold(gw_proto_t *p, gw_session_t *s, gw_subwait_answer_t *a,
                         const char *guild)
{
    gw_interest_target_t one = {GW_INTEREST_GUILD, guild}, *t = &one;
    size_t n = 1;
    int held;

    if (p->subreply == NULL || gw_subwait_idle(p->subreply->sw))
        return 0;
    if (guild == NULL)
        t = subreply_targets(s, &n);
    memcpy(a->session, s->id, GW_SESSION_ID_LEN);
    held = gw_subwait_hold(p->subreply->sw, a, t, n,
                           gw_sessions_now(&p->sessions));
    if (t != &one)
        free(t);
    if (held) {
        s->held = 1;
        gw_stat_add(p->sessions.stats, GW_STAT_SUBSCRIBE_HELD, 1);
    }
    return held;
}

void gw_subreply_send(gw_proto_t *p, gw_session_t *s, cJSON *doc,
                      const char *then, const char *guild)
{
    char *text = cJSON_PrintUnformatted(doc);
    gw_subwait_answer_t a = {.text = {text, then}};

    if (text == NULL) {
        gw_error("proto: out of memory encoding an answer");
        abort();
    }
    cJSON_Delete(doc);
    a.len[0] = strlen(text);
    a.len[1] = then != NULL ? strlen(then) : 0;
    if (subreply_hold(p, s, &a, guild)) {
        cJSON_free(text);
        return;
    }
    for (int i = 0; i < GW_SUBWAIT_MSGS && a.text[i] != NULL; i++) {
        /* Behind an answer held already, this one waits too: in order. */
        if (s->held)
            gw_subreply_later(p, s,
                              gw_event_private(s->id, a.text[i], a.len[i]));
        else
            gw_session_send(s, a.text[i], a.len[i]);
    }
    cJSON_free(text);
}

void gw_subreply_later(gw_proto_t *p, gw_session_t *s, gw_event_t *ev)
{
    gw_subreply_t *r = p->subreply;

    if (r->nlater == GW_SUBREPLY_LATER) {
        gw_log_limited(&r->log, GW_LOG_WARN,
                       "proto: too many dispatches behind held answers: one "
                       "goes before its session's answer");
        subreply_deliver(s, ev);
        gw_event_unref(ev);
        return;
    }
    if (r->nlater == r->cap) {
        r->cap = r->cap ? 2 * r->cap : 16;
        r->later = gw_realloc(r->later, r->cap * sizeof(*r->later));
    }
    memcpy(r->later[r->nlater].session, s->id, GW_SESSION_ID_LEN);
    r->later[r->nlater++].ev = ev;
}

void gw_subreply_asked(gw_proto_t *p, gw_interest_kind_t kind, const char *id,
                       int delta)
{
    if (p->subreply == NULL || kind == GW_INTEREST_SESSION)
        return;
    if (delta > 0)
        gw_subwait_asked(p->subreply->sw, kind, id);
    else
        gw_subwait_released(p->subreply->sw, kind, id);
}

void gw_subreply_confirmed(gw_proto_t *p, gw_interest_kind_t kind,
                           const char *id)
{
    if (p->subreply != NULL)
        gw_subwait_confirmed(p->subreply->sw, kind, id);
}

void gw_subreply_tick(gw_proto_t *p, uint64_t now_ms)
{
    if (p->subreply != NULL)
        gw_subwait_expire(p->subreply->sw, now_ms);
}

void gw_subreply_cancel(gw_proto_t *p, gw_session_t *s)
{
    if (!s->held)
        return;
    s->held = 0;
    gw_subwait_cancel(p->subreply->sw, s->id);
    subreply_release(p->subreply, s->id, NULL);
}
