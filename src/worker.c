#include "gw/worker.h"

#include "gw/alloc.h"
#include "gw/broker.h"
#include "gw/conn.h"
#include "gw/error.h"
#include "gw/index.h"
#include "gw/log.h"
#include "gw/proto.h"
#include "gw/ws.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define WORKER_TICK_MS 100 /* wheel resolution */
/* Work taken from the queues per loop turn, so that a flood of accepts or
 * events cannot starve reads and writes; the rest waits one turn. */
#define WORKER_ACCEPTS_PER_TURN 256
#define WORKER_EVENTS_PER_TURN 256
#define WORKER_RING_CHUNKS_KEPT 4096

void gw_worker_want_flush(gw_worker_t *w, gw_conn_t *c)
{
    if (c->queued)
        return;
    c->queued = 1;
    c->next_pending = w->pending;
    w->pending = c;
}

/* Before the loop polls: one write per connection with output. */
static void worker_flush_cb(uv_prepare_t *h)
{
    gw_worker_t *w = h->data;

    while (w->pending != NULL) {
        gw_conn_t *c = w->pending;
        w->pending = c->next_pending;
        c->queued = 0;
        if (c->released)
            free(c);
        else
            gw_conn_flush(c);
    }
}

static void worker_timer_fire(gw_wheel_node_t *node, void *data)
{
    gw_conn_t *c = (gw_conn_t *)((char *)node - offsetof(gw_conn_t, timer));
    (void)data;

    gw_conn_timeout(c);
}

static void worker_tick_cb(uv_timer_t *h)
{
    gw_worker_t *w = h->data;

    gw_wheel_advance(&w->wheel, uv_now(&w->loop), worker_timer_fire, NULL);
}

int gw_worker_relay_typing(gw_worker_t *w, const char *user, const char *guild,
                           const char *channel)
{
    gw_relay_t *r = gw_malloc(sizeof(*r));

    r->user = gw_strdup(user);
    r->guild = gw_strdup(guild);
    r->channel = gw_strdup(channel);
    if (gw_queue_push(&w->relays, r) == 0)
        return 0;
    free(r->user);
    free(r->guild);
    free(r->channel);
    free(r);
    return GW_EFULL;
}

/* One event's fan-out on this worker. */
typedef struct worker_fanout {
    const gw_event_t *ev;
    const gw_user_t *skip; /* sessions of this user are skipped, or NULL */
} worker_fanout_t;

static void worker_deliver_one(gw_conn_t *c, void *data)
{
    worker_fanout_t *f = data;

    if (f->skip == NULL || c->user != f->skip)
        gw_conn_dispatch(c, f->ev);
}

/* Fans one event out to this worker's recipients, by reference. */
static void worker_deliver(gw_worker_t *w, gw_event_t *ev)
{
    worker_fanout_t f = {ev, NULL};

    gw_stat_add(&w->stats, GW_STAT_EVENTS_IN, 1);
    /* Resolved once per event, so each recipient costs a pointer compare. */
    if (ev->exclude_user != NULL)
        f.skip = gw_index_user(w, ev->exclude_user);
    switch (ev->target) {
    case GW_TARGET_GUILD: {
        gw_guild_t *g = gw_index_guild(w, ev->ids[0]);
        for (gw_member_t *m = g ? g->members : NULL; m != NULL; m = m->next)
            worker_deliver_one(m->conn, &f);
        break;
    }
    case GW_TARGET_USERS:
        for (size_t i = 0; i < ev->nids; i++) {
            gw_user_t *u = gw_index_user(w, ev->ids[i]);
            for (gw_conn_t *c = u ? u->sessions : NULL; c != NULL;
                 c = c->user_next)
                worker_deliver_one(c, &f);
        }
        break;
    case GW_TARGET_ALL: gw_index_each_session(w, worker_deliver_one, &f); break;
    }
    gw_stats_latency(&w->stats, (uv_hrtime() - ev->ingress_ns) / 1000);
    gw_event_unref(ev);
}

static void worker_close_all(uv_handle_t *h, void *arg)
{
    (void)arg;
    if (h->type == UV_TCP && h->data != NULL) {
        gw_conn_t *c = h->data;
        gw_conn_close(c, GW_CLOSE_DRAINING, "server shutting down");
        gw_conn_flush(c);
        gw_conn_abort(c);
    } else if (!uv_is_closing(h)) {
        uv_close(h, NULL);
    }
}

static void worker_shutdown(gw_worker_t *w)
{
    void *p;
    int fd;

    uv_walk(&w->loop, worker_close_all, NULL);
    /* Every connection is closing now and its close callback frees it;
     * the flush that would have freed queued ones will not run again. */
    while (w->pending != NULL) {
        w->pending->queued = 0;
        w->pending = w->pending->next_pending;
    }
    while ((p = gw_queue_pop(&w->events)) != NULL)
        gw_event_unref(p);
    while ((p = gw_queue_pop(&w->fds)) != NULL) {
        fd = (int)(intptr_t)p;
        close(fd);
    }
}

typedef struct worker_drain_walk {
    uint64_t now, window;
    unsigned n, i;
} worker_drain_walk_t;

static void worker_count_conn(uv_handle_t *h, void *arg)
{
    worker_drain_walk_t *d = arg;

    if (h->type == UV_TCP && !uv_is_closing(h))
        d->n++;
}

/* Gives each connection its slot in the window: evenly spread closes let
 * the clients reconnect elsewhere without a thundering herd. */
static void worker_drain_conn(uv_handle_t *h, void *arg)
{
    worker_drain_walk_t *d = arg;
    gw_conn_t *c = h->data;

    if (h->type != UV_TCP || uv_is_closing(h))
        return;
    gw_wheel_add(&c->worker->wheel, &c->timer,
                 d->now + d->window * d->i++ / (d->n ? d->n : 1));
}

static void worker_start_drain(gw_worker_t *w)
{
    worker_drain_walk_t d = {uv_now(&w->loop), w->cfg->drain_ms, 0, 0};
    void *p;

    w->draining = 1;
    while ((p = gw_queue_pop(&w->fds)) != NULL)
        close((int)(intptr_t)p);
    uv_walk(&w->loop, worker_count_conn, &d);
    uv_walk(&w->loop, worker_drain_conn, &d);
}

/* The token verifier of the current configuration. */
static void worker_jwt_init(gw_worker_t *w)
{
    const gw_config_t *cfg = w->cfg;

    w->jwt = (gw_jwt_verifier_t){
        .alg = cfg->jwt_algorithm,
        .secret = (const uint8_t *)cfg->jwt_secret,
        .secret_len = strlen(cfg->jwt_secret),
        .audience = cfg->jwt_audience,
        .issuer = cfg->jwt_issuer,
        .leeway_s = 0,
    };
    gw_jwt_verifier_init(&w->jwt);
}

/* Takes a snapshot from a SIGHUP: everything reads w->cfg at its next use,
 * so only the verifier, prepared from the secret, is made again. */
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
    gw_jwt_verifier_free(&w->jwt);
    worker_jwt_init(w);
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
        gw_conn_accept(w, (int)(intptr_t)p);
    for (n = 0; n < WORKER_EVENTS_PER_TURN && (p = gw_queue_pop(&w->events));
         n++)
        worker_deliver(w, p);
    if (gw_queue_depth(&w->fds) > 0 || gw_queue_depth(&w->events) > 0)
        gw_wake_signal(&w->wake);
}

static void worker_main(void *arg)
{
    gw_worker_t *w = arg;

    uv_run(&w->loop, UV_RUN_DEFAULT);
}

gw_worker_t *gw_worker_start(gw_server_t *srv, int id)
{
    gw_worker_t *w = gw_calloc(1, sizeof(*w));
    const gw_config_t *cfg = srv->cfg;

    w->id = id;
    w->srv = srv;
    w->cfg = cfg;
    atomic_init(&w->next_cfg, NULL);
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
    gw_wheel_init(&w->wheel, WORKER_TICK_MS, uv_now(&w->loop));
    gw_index_init(w);
    gw_ws_worker_init(w);
    w->ring_pool.max_free = WORKER_RING_CHUNKS_KEPT;
    worker_jwt_init(w);
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
    gw_jwt_verifier_free(&w->jwt);
    gw_ws_worker_free(w);
    gw_index_free(w);
    gw_ring_pool_free(&w->ring_pool);
    gw_queue_free(&w->fds);
    gw_queue_free(&w->events);
    gw_queue_free(&w->relays);
    free(w);
}
