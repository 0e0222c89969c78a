#include "gw/subreply.h"

#include "gw/alloc.h"
#include "gw/log.h"
#include "gw/subwait.h"

#include <stdlib.h>
#include <string.h>

_Static_assert(GW_SUBWAIT_ID_LEN == GW_SESSION_ID_LEN,
               "a held answer names its session by its id");

/* A held answer is due: its session, if still here and connected, has it
 * (what it says was true when it was held: the session joined). */
static void subreply_due_cb(void *data, const gw_subwait_answer_t *a, int late)
{
    gw_proto_t *p = data;
    gw_session_t *s = gw_index_session(p->index, a->session);

    if (late) {
        gw_stat_add(p->sessions.stats, GW_STAT_SUBSCRIBE_LATE, 1);
        gw_log_limited(&p->subwait_log, GW_LOG_WARN,
                       "proto: a subscription not confirmed within "
                       "redis.subscribe_wait_ms: a client answered anyway");
    }
    if (s == NULL || s->ws == NULL)
        return;
    for (int i = 0; i < GW_SUBWAIT_MSGS && a->text[i] != NULL; i++)
        gw_session_send(s, a->text[i], a->len[i]);
}

void gw_subreply_start(gw_proto_t *p, uint64_t wait_ms)
{
    p->subwait = gw_subwait_new(wait_ms, subreply_due_cb, p);
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

    if (p->subwait == NULL || gw_subwait_idle(p->subwait))
        return 0;
    if (guild == NULL)
        t = subreply_targets(s, &n);
    memcpy(a->session, s->id, GW_SESSION_ID_LEN);
    held = gw_subwait_hold(p->subwait, a, t, n, gw_sessions_now(&p->sessions));
    if (t != &one)
        free(t);
    if (held)
        gw_stat_add(p->sessions.stats, GW_STAT_SUBSCRIBE_HELD, 1);
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
    if (!subreply_hold(p, s, &a, guild)) {
        gw_session_send(s, text, a.len[0]);
        if (then != NULL)
            gw_session_send(s, then, a.len[1]);
    }
    cJSON_free(text);
}

void gw_subreply_tick(gw_proto_t *p, uint64_t now_ms)
{
    if (p->subwait != NULL)
        gw_subwait_expire(p->subwait, now_ms);
}

void gw_subreply_cancel(gw_proto_t *p, const gw_session_t *s)
{
    if (p->subwait != NULL && gw_subwait_held(p->subwait) > 0)
        gw_subwait_cancel(p->subwait, s->id);
}
