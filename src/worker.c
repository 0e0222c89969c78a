#include "gw/worker.h"

#include "gw/acceptor.h"
#include "gw/alloc.h"
#include "gw/broker.h"
#include "gw/buf.h"
#include "gw/error.h"
#include "gw/log.h"
#include "gw/peers.h"
#include "gw/route.h"
#include "gw/subreply.h"
#include "gw/tcp.h"
#include "gw/tls.h"
#include "gw/transfer.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define WORKER_TICK_MS 100 /* deadline resolution */
/* Work taken from the queues per loop turn, so that a flood of accepts or
 * events cannot starve reads and writes; the rest waits one turn. */
#define WORKER_ACCEPTS_PER_TURN 256
#define WORKER_EVENTS_PER_TURN 256

/* The index's word: a target's first session here or its last gone, kept
 * until the end of the loop turn. */
static void worker_interest(void *data, gw_interest_kind_t kind, const char *id,
                            int delta)
{
    gw_worker_t *w = data;

    gw_subreply_asked(&w->proto, kind, id, delta);
    if (w->ninterest == w->interest_cap) {
        w->interest_cap = w->interest_cap ? 2 * w->interest_cap : 16;
        w->interest =
            gw_realloc(w->interest, w->interest_cap * sizeof(*w->interest));
    }
    w->interest[w->ninterest++] =
        (gw_interest_change_t){kind, delta, gw_strdup(id)};
}

/*
 * Hands the turn's interest to the broker in one relay. When the relay
 * queue is full it stays for a later turn (the tick makes one at least):
 * a +1 lost would leave a target unheard on this instance.
 */
static void worker_interest_flush(gw_worker_t *w)
{
    gw_relay_t *r;

    if (w->ninterest == 0)
        return;
    r = gw_calloc(1, sizeof(*r));
    r->kind = GW_RELAY_INTEREST;
    r->worker = w->id;
    r->interest = (gw_relay_interest_t){w->interest, w->ninterest};
    if (gw_queue_push(&w->relays, r) != 0) {
        free(r);
        return;
    }
    w->interest = NULL;
    w->ninterest = w->interest_cap = 0;
}

/* Before the loop polls: one write per connection with output, and one
 * relay with the turn's interest. */
static void worker_flush_cb(uv_prepare_t *h)
{
    gw_worker_t *w = h->data;

    gw_transport_loop_flush(&w->ws.io);
    worker_interest_flush(w);
}

static void worker_tick_cb(uv_timer_t *h)
{
    gw_worker_t *w = h->data;
    uint64_t now = uv_now(&w->loop);

    gw_ws_loop_tick(&w->ws, now);
    gw_proto_tick(&w->proto, now);
    if (w->srv->tls != NULL)
        gw_tls_loop_tick(&w->tls, now);
}

static uint64_t worker_now(void *data)
{
    gw_worker_t *w = data;

    return uv_now(&w->loop);
}

/* Queues r for the broker: 0, or GW_EFULL with r freed. */
static int worker_hand_over(gw_worker_t *w, gw_relay_t *r)
{
    if (gw_queue_push(&w->relays, r) == 0)
        return 0;
    gw_relay_free(r);
    return GW_EFULL;
}

/* The protocol's relay: a client's typing.start goes to the broker. */
static int worker_relay_typing(void *data, const char *user, const char *guild,
                               const char *channel)
{
    gw_worker_t *w = data;
    gw_relay_t *r = gw_calloc(1, sizeof(*r));

    r->kind = GW_RELAY_TYPING;
    r->worker = w->id;
    r->typing.user = gw_strdup(user);
    r->typing.guild = gw_strdup(guild);
    r->typing.channel = gw_strdup(channel);
    return worker_hand_over(w, r);
}

/* A relay of a client's request, with what the backends are told. */
static gw_relay_t *worker_request(gw_worker_t *w, gw_relay_kind_t kind,
                                  const gw_session_t *s, const char *event,
                                  const char *json, size_t len,
                                  const char *nonce)
{
    gw_relay_t *r = gw_calloc(1, sizeof(*r));
    gw_relay_request_t *q = &r->request;
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    r->kind = kind;
    r->worker = w->id;
    q->user = gw_strdup(s->user->id);
    q->event = gw_strdup(event);
    q->data = gw_malloc(len + 1);
    memcpy(q->data, json, len);
    q->data[len] = '\0';
    q->nonce = nonce ? gw_strdup(nonce) : NULL;
    memcpy(q->session, s->id, GW_SESSION_ID_LEN);
    q->received_ms =
        (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
    return r;
}

/* The protocol's way up: a client's event goes to the broker, unless the
 * broker says now that it cannot take it. */
static int worker_relay_upstream(void *data, const gw_session_t *s,
                                 const char *event, const char *json,
                                 size_t len, const char *nonce)
{
    gw_worker_t *w = data;
    int rc = gw_broker_upstream_admit(w->srv->broker);

    if (rc != 0)
        return rc;
    return worker_hand_over(
        w, worker_request(w, GW_RELAY_UPSTREAM, s, event, json, len, nonce));
}

/* A sync_request: the broker looks in Redis, and sends it up on a miss. */
static int worker_relay_sync(void *data, const gw_session_t *s,
                             const char *scope, const char *json, size_t len,
                             const char *nonce)
{
    gw_worker_t *w = data;
    gw_relay_t *r =
        worker_request(w, GW_RELAY_SYNC, s, "sync_request", json, len, nonce);

    r->request.scope = scope ? gw_strdup(scope) : NULL;
    return worker_hand_over(w, r);
}

/* Writes the JSON array of the guilds of u's online sessions here,
 * `leaving` left out; or, when none is left (after == 0), the guilds of
 * `leaving` (what an offline is announced to). */
static void worker_guilds(gw_buf_t *o, const gw_user_t *u,
                          const gw_session_t *leaving, uint32_t after)
{
    const gw_guild_t **seen = NULL;
    size_t n = 0, cap = 0;
    const char *sep = "";

    gw_buf_printf(o, "[");
    for (const gw_session_t *s = u->sessions; s != NULL; s = s->user_next) {
        if (after == 0 ? s != leaving : s == leaving || s->parked)
            continue;
        for (const gw_member_t *m = s->guilds; m != NULL; m = m->session_next) {
            size_t i = 0;
            while (i < n && seen[i] != m->guild)
                i++;
            if (i < n)
                continue;
            if (n == cap) {
                cap = cap ? 2 * cap : 16;
                seen = gw_realloc(seen, cap * sizeof(*seen));
            }
            seen[n++] = m->guild;
            gw_buf_printf(o, "%s", sep);
            gw_buf_json_string(o, m->guild->id);
            sep = ",";
        }
    }
    gw_buf_printf(o, "]");
    free(seen);
}

/* Hands a presence report over; one that does not fit is replaced by a
 * census, which the broker takes when it sees the flag. */
static void worker_presence_report(gw_worker_t *w, const char *user,
                                   uint32_t before, uint32_t after,
                                   gw_buf_t *guilds, int counted)
{
    gw_relay_t *r = gw_calloc(1, sizeof(*r));
    size_t len;

    r->kind = GW_RELAY_PRESENCE;
    r->worker = w->id;
    r->presence = (gw_relay_presence_t){
        .user = user ? gw_strdup(user) : NULL,
        .guilds = guilds ? gw_buf_steal(guilds, &len) : NULL,
        .census = w->census,
        .counted = counted,
        .before = before,
        .after = after,
    };
    if (worker_hand_over(w, r) != 0) {
        gw_stat_add(&w->stats, GW_STAT_PRESENCE_LOST, 1);
        atomic_store(&w->presence_lost, 1);
    }
}

/* The protocol's word that a user's sessions here changed. */
static void worker_presence(void *data, const gw_user_t *u,
                            const gw_session_t *leaving, uint32_t before,
                            uint32_t after)
{
    gw_worker_t *w = data;
    gw_buf_t guilds = {0};

    if (!w->cfg->presence_enabled)
        return;
    worker_guilds(&guilds, u, leaving, after);
    worker_presence_report(w, u->id, before, after, &guilds, 0);
}

static void worker_census_one(gw_user_t *u, void *data)
{
    gw_worker_t *w = data;
    uint32_t online = gw_user_online(u);
    gw_buf_t guilds = {0};

    if (online == 0)
        return;
    worker_guilds(&guilds, u, NULL, online);
    worker_presence_report(w, u->id, 0, online, &guilds, 1);
}

/* The broker asks for every user held here, then the end mark. */
static void worker_census(gw_worker_t *w, uint32_t census)
{
    w->census = census;
    if (!w->cfg->presence_enabled)
        return;
    gw_index_each_user(&w->index, worker_census_one, w);
    worker_presence_report(w, NULL, 0, 0, NULL, 1);
}

/* The protocol's way to move a resuming connection to the session's
 * worker, through the broker (the only producer of worker queues). */
static void worker_hand_over_conn(void *data, int fd,
                                  gw_transport_state_t *state,
                                  const uint8_t *rest, size_t len,
                                  const uint8_t id[GW_SESSION_ID_LEN],
                                  uint64_t seq, const char *user,
                                  gw_grant_t *grant)
{
    gw_worker_t *w = data;
    gw_relay_t *r = gw_calloc(1, sizeof(*r));
    gw_relay_handover_t *h = &r->handover;

    r->kind = GW_RELAY_HANDOVER;
    r->worker = w->id;
    h->fd = fd;
    h->state = state;
    memcpy(h->session, id, GW_SESSION_ID_LEN);
    h->seq = seq;
    h->grant = *grant;
    *grant = (gw_grant_t){NULL, 0, 0};
    h->user = gw_strdup(user);
    h->rest = gw_malloc(len ? len : 1);
    memcpy(h->rest, rest, len);
    h->len = len;
    if (worker_hand_over(w, r) != 0) {
        gw_stat_add(&w->stats, GW_STAT_RESUME_HAND_OFF_FAILED, 1);
        gw_warn("worker %d: relay queue full: a resuming connection dropped",
                w->id);
    }
}

/* The protocol's step of a drain handoff, to the broker. */
static int worker_handoff(void *data, const gw_handoff_msg_t *m)
{
    gw_worker_t *w = data;
    gw_relay_t *r = gw_calloc(1, sizeof(*r));

    r->kind = GW_RELAY_HANDOFF;
    r->worker = w->id;
    r->handoff = *m;
    r->handoff.text = m->text != NULL ? gw_strdup(m->text) : NULL;
    if (m->blob != NULL) {
        char *blob = gw_malloc(m->len ? m->len : 1);
        memcpy(blob, m->blob, m->len);
        r->handoff.blob = blob;
    }
    return worker_hand_over(w, r);
}

/* A connection handed over to resume a session held here: a TLS one
 * carries on with the session that came with it, a plain one is TCP. */
static void worker_adopt(gw_worker_t *w, gw_event_t *ev)
{
    gw_ws_t *ws = gw_ws_adopt(&w->ws, ev->fd, ev->state, gw_tcp_open);

    ev->fd = -1; /* the ws layer's now, or closed */
    ev->state = NULL;
    if (ws == NULL)
        return;
    gw_grant_t grant = {ev->ids, (uint16_t)ev->nids, ev->exp};

    ev->ids = NULL; /* the session's now */
    ev->nids = 0;
    gw_proto_adopt(&w->proto, ws, ev->session, ev->seq, ev->arg, &grant);
    gw_ws_input(ws, (const uint8_t *)ev->body->data, ev->body->len);
}

/* One event's fan-out on this worker. */
typedef struct worker_fanout {
    gw_worker_t *w;
    gw_event_t *ev;        /* a reference is taken to keep it (subreply.c) */
    const gw_user_t *skip; /* sessions of this user are skipped, or NULL */
} worker_fanout_t;

static void worker_deliver_one(gw_session_t *s, void *data)
{
    worker_fanout_t *f = data;

    if (f->skip != NULL && s->user == f->skip)
        return;
    /* A dispatch, the common case, goes straight to the session, unless
     * its answer is held (subreply.c): then behind it. */
    if (s->held && (f->ev->action == GW_ACTION_DISPATCH ||
                    f->ev->action == GW_ACTION_SEND)) {
        gw_event_ref(f->ev);
        gw_subreply_later(&f->w->proto, s, f->ev);
    } else if (f->ev->action == GW_ACTION_DISPATCH)
        gw_session_dispatch(s, f->ev);
    else
        gw_proto_apply(&f->w->proto, s, f->ev);
}

/* Fans one event out to this worker's recipients, by reference. */
static void worker_deliver(gw_worker_t *w, gw_event_t *ev)
{
    worker_fanout_t f = {w, ev, NULL};

    if (ev->action == GW_ACTION_CENSUS || ev->action == GW_ACTION_ADOPT ||
        ev->action == GW_ACTION_SUBSCRIBED ||
        gw_action_is_handoff(ev->action)) {
        if (ev->action == GW_ACTION_CENSUS)
            worker_census(w, ev->census);
        else if (ev->action == GW_ACTION_SUBSCRIBED)
            gw_subreply_confirmed(&w->proto, (gw_interest_kind_t)ev->code,
                                  ev->arg);
        else if (ev->action == GW_ACTION_ADOPT)
            worker_adopt(w, ev);
        else
            gw_transfer_event(&w->proto, ev);
        gw_event_unref(ev);
        return;
    }
    gw_stat_add(&w->stats, GW_STAT_EVENTS_IN, 1);
    /* Resolved once per event, so each recipient costs a pointer compare. */
    if (ev->exclude_user != NULL)
        f.skip = gw_index_user(&w->index, ev->exclude_user);
    switch (ev->target) {
    case GW_TARGET_GUILD: {
        gw_guild_t *g = gw_index_guild(&w->index, ev->ids[0]);
        for (gw_member_t *m = g ? g->members : NULL; m != NULL; m = m->next)
            worker_deliver_one(m->session, &f);
        break;
    }
    case GW_TARGET_USERS:
        for (size_t i = 0; i < ev->nids; i++) {
            gw_user_t *u = gw_index_user(&w->index, ev->ids[i]);
            for (gw_session_t *s = u ? u->sessions : NULL; s != NULL;
                 s = s->user_next)
                worker_deliver_one(s, &f);
        }
        break;
    case GW_TARGET_ALL:
        gw_index_each_session(&w->index, worker_deliver_one, &f);
        break;
    case GW_TARGET_SESSION: {
        gw_session_t *s = gw_index_session(&w->index, ev->session);
        if (s != NULL)
            worker_deliver_one(s, &f);
        break;
    }
    }
    gw_stats_latency(&w->stats, (uv_hrtime() - ev->ingress_ns) / 1000);
    gw_event_unref(ev);
}

static void worker_close_handle(uv_handle_t *h, void *arg)
{
    (void)arg;
    if (!uv_is_closing(h))
        uv_close(h, NULL);
}

/* A socket from the acceptor that will not be served: closed and no
 * longer counted against server.max_connections. */
static void worker_close_accepted(gw_worker_t *w, void *p)
{
    close(gw_accepted_fd(p));
    gw_peers_leave(w->srv->peers);
}

static void worker_shutdown(gw_worker_t *w)
{
    void *p;

    gw_proto_shutdown(&w->proto);
    /* The flush will not run again: closes are reported by their own
     * callbacks from now on. */
    gw_transport_loop_stop(&w->ws.io);
    uv_walk(&w->loop, worker_close_handle, NULL);
    while ((p = gw_queue_pop(&w->events)) != NULL)
        gw_event_unref(p);
    while ((p = gw_queue_pop(&w->fds)) != NULL)
        worker_close_accepted(w, p);
}

/* The transport of a socket accepted on a port that expects the PROXY
 * protocol (server.proxy_protocol, tls.proxy_protocol): its header first. */
static int worker_open_proxied_tcp(gw_transport_t *t, gw_transport_loop_t *l,
                                   int fd)
{
    int rc = gw_tcp_open(t, l, fd);

    if (rc == 0)
        gw_transport_expect_proxy(t);
    return rc;
}

static int worker_open_proxied_tls(gw_transport_t *t, gw_transport_loop_t *l,
                                   int fd)
{
    int rc = gw_tls_open(t, l, fd);

    if (rc == 0)
        gw_transport_expect_proxy(t);
    return rc;
}

/* Opens an accepted socket's transport: TLS for the TLS port, each with
 * the PROXY header first where its port expects one. */
static gw_ws_transport_open worker_opener(const gw_worker_t *w, int tls)
{
    static const gw_ws_transport_open open[2][2] = {
        {gw_tcp_open, gw_tls_open},
        {worker_open_proxied_tcp, worker_open_proxied_tls},
    };
    int proxied = tls ? w->cfg->tls_proxy_protocol : w->cfg->proxy_protocol;

    return open[proxied != 0][tls != 0];
}

static void worker_start_drain(gw_worker_t *w)
{
    void *p;

    w->draining = 1;
    while ((p = gw_queue_pop(&w->fds)) != NULL)
        worker_close_accepted(w, p);
    gw_proto_drain(&w->proto, w->cfg->drain_ms);
}

/* Takes a snapshot from a SIGHUP: every layer reads it at its next use. */
static void worker_take_config(gw_worker_t *w)
{
    const gw_config_t *cfg;

    /* Every wake-up passes here: a plain load first, the exchange only
     * when a snapshot is waiting. The wake-up that came with it orders the
     * load after its store. */
    if (atomic_load_explicit(&w->next_cfg, memory_order_relaxed) == NULL)
        return;
    cfg = atomic_exchange_explicit(&w->next_cfg, NULL, memory_order_acq_rel);
    if (cfg == NULL)
        return;
    w->cfg = cfg;
    w->ws.cfg = cfg;
    gw_proto_reconfigure(&w->proto, cfg);
}

static void worker_wake_cb(gw_wake_t *wk)
{
    gw_worker_t *w = wk->data;
    void *p;
    int n;

    if (atomic_load(&w->stopping)) {
        worker_shutdown(w);
        return;
    }
    worker_take_config(w);
    if (!w->draining && atomic_load(&w->drain))
        worker_start_drain(w);
    for (n = 0; n < WORKER_ACCEPTS_PER_TURN && (p = gw_queue_pop(&w->fds)); n++)
        gw_ws_accept(&w->ws, gw_accepted_fd(p),
                     worker_opener(w, gw_accepted_tls(p)));
    for (n = 0; n < WORKER_EVENTS_PER_TURN && (p = gw_queue_pop(&w->events));
         n++)
        worker_deliver(w, p);
    if (gw_queue_depth(&w->fds) > 0 || gw_queue_depth(&w->events) > 0)
        gw_wake_signal(&w->wake);
}

static void worker_main(void *arg)
{
    gw_worker_t *w = arg;
    char name[16];

    /* At most 15 bytes: "gw-worker-" and the id. */
    snprintf(name, sizeof(name), "gw-worker-%d", w->id);
    pthread_setname_np(pthread_self(), name);
    uv_run(&w->loop, UV_RUN_DEFAULT);
}

/* The server found io_uring usable: this worker's ring, or sendmsg if the
 * kernel will not give one more (a memory-lock limit), said once. */
static void worker_write_path(gw_worker_t *w)
{
    int rc;

    if (!w->srv->io_uring)
        return;
    if ((rc = gw_transport_loop_uring(&w->ws.io, NULL, NULL)) != 0)
        gw_warn("worker %d: no io_uring (%s): writes with sendmsg", w->id,
                uv_strerror(rc));
}

gw_worker_t *gw_worker_start(gw_server_t *srv, int id)
{
    gw_worker_t *w = gw_calloc(1, sizeof(*w));
    const gw_config_t *cfg = srv->cfg;

    w->id = id;
    w->srv = srv;
    w->cfg = cfg;
    atomic_init(&w->next_cfg, NULL);
    atomic_init(&w->presence_lost, 0);
    uv_loop_init(&w->loop);
    if (gw_wake_init(&w->loop, &w->wake, worker_wake_cb, w) != 0) {
        gw_error("worker %d: cannot create its wake-up eventfd", id);
        abort();
    }
    uv_prepare_init(&w->loop, &w->flush);
    uv_timer_init(&w->loop, &w->tick);
    w->flush.data = w->tick.data = w;
    uv_prepare_start(&w->flush, worker_flush_cb);
    uv_timer_start(&w->tick, worker_tick_cb, WORKER_TICK_MS, WORKER_TICK_MS);
    gw_queue_init(&w->fds, cfg->queue_size, &w->wake);
    gw_queue_init(&w->events, cfg->queue_size, &w->wake);
    gw_queue_init(&w->relays, cfg->queue_size,
                  gw_broker_relay_wake(srv->broker));
    /* Only targeted links want to hear of the tables' targets. */
    gw_index_init(&w->index, &w->stats, (uint8_t)id,
                  gw_route_interested(cfg)
                      ? &(gw_index_hooks_t){worker_interest, w}
                      : NULL);
    gw_ws_loop_init(&w->ws, &w->loop, &gw_proto_ws_cb, &w->proto, cfg,
                    srv->peers, &w->stats, id);
    worker_write_path(w);
    if (srv->tls != NULL) {
        gw_tls_loop_init(&w->tls, srv->tls, (unsigned)id);
        w->ws.io.ops_data = &w->tls;
    }
    gw_proto_init(&w->proto, &w->ws, &w->index, cfg, &w->stats,
                  &(gw_proto_hooks_t){
                      .now = worker_now,
                      .relay_typing = worker_relay_typing,
                      .relay_upstream = worker_relay_upstream,
                      .relay_sync = worker_relay_sync,
                      .presence = worker_presence,
                      .hand_over = worker_hand_over_conn,
                      .handoff = cfg->redis_enabled && cfg->handoff
                                     ? worker_handoff
                                     : NULL,
                      .data = w,
                  });
    w->proto.workers = (unsigned)srv->nworkers;
    w->proto.sessions.guard = srv->guard;
    w->proto.instance = gw_broker_instance_id(srv->broker);
    if (gw_route_waited(cfg))
        gw_subreply_start(&w->proto, cfg->redis_subscribe_wait_ms);
    if (uv_thread_create(&w->thread, worker_main, w) != 0) {
        gw_error("worker %d: cannot start its thread", id);
        abort();
    }
    return w;
}

void gw_worker_reconfigure(gw_worker_t *w, const gw_config_t *cfg)
{
    atomic_store_explicit(&w->next_cfg, cfg, memory_order_release);
    gw_wake_signal(&w->wake);
}

void gw_worker_drain(gw_worker_t *w)
{
    atomic_store(&w->drain, 1);
    gw_wake_signal(&w->wake);
}

void gw_worker_stop(gw_worker_t *w)
{
    atomic_store(&w->stopping, 1);
    gw_wake_signal(&w->wake);
    uv_thread_join(&w->thread);
}

void gw_worker_free(gw_worker_t *w)
{
    gw_relay_t *r;

    while ((r = gw_queue_pop(&w->relays)) != NULL)
        gw_relay_free(r);
    uv_loop_close(&w->loop);
    gw_wake_free(&w->wake);
    gw_proto_free(&w->proto);
    gw_ws_loop_free(&w->ws);
    if (w->srv->tls != NULL)
        gw_tls_loop_free(&w->tls);
    gw_index_free(&w->index);
    gw_interest_changes_free(w->interest, w->ninterest);
    gw_queue_free(&w->fds);
    gw_queue_free(&w->events);
    gw_queue_free(&w->relays);
    free(w);
}
