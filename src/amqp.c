/*
 * The RabbitMQ link. rabbitmq-c blocks, and the broker loop must not, so the
 * work is split in two:
 *
 * - Connecting (TCP connect, login, channels, declarations,
 *   confirm.select, basic.qos, basic.consume) is a uv_queue_work job on
 *   libuv's thread pool (amqp_connect.c). Its after-work callback, back on
 *   the loop, takes the connection over.
 * - Consuming runs on the loop: a uv_poll_t on the socket, and frames read
 *   with a zero timeout until the socket is dry. Deliveries are assembled
 *   here from their method, header and body frames rather than with
 *   amqp_consume_message, because its amqp_read_message waits without a
 *   timeout for the rest of a message that has only partly arrived.
 *
 * Writes from the loop (basic.ack, basic.reject, heartbeats) are a few bytes
 * each, so they find room in the socket buffer; rabbitmq-c bounds a stuck
 * one by the heartbeat deadline.
 *
 * Publishing (client events for the backends) is on the loop too, on a
 * channel of its own in confirm mode: amqp_basic_publish writes at once,
 * and the basic.ack / basic.nack / basic.return that settle it arrive
 * among the consumer's frames. A publish can be big (a client message), and
 * rabbitmq-c's write waits until the kernel has taken all of it: bounded
 * by the heartbeat deadline when the server is gone, but not while it is
 * alive and does not read (a resource alarm blocks publishing connections
 * that way). So a publish is refused while RabbitMQ says it blocks us
 * (connection.blocked), and when the socket's send queue is already half
 * full (gw_amqp_wire_room): what is written then fits in the buffer, or
 * goes into an empty one, to a server that has just read everything. At
 * most max_pending publishes await their confirm, each in a list in tag
 * order; the list ends with the connection, every entry reported lost. The
 * gate tells other threads whether a publish would be taken now.
 *
 * With amqp.routing = "targeted" the queue follows the targets the owner
 * holds: each connection has its bindings (amqp_bind.c) on a channel of
 * their own, written without waiting and answered among the frames read
 * here; the owner's rebind hook asks for every wanted target when a
 * connection comes up.
 *
 * Heartbeats are on (30 s asked, or the server's lower value): a RabbitMQ
 * host that vanishes without a TCP reset is noticed within two intervals,
 * not hours later. rabbitmq-c does the accounting whenever a frame is
 * read, so a timer at half the interval reads (or, while reading is
 * paused, sends a heartbeat frame).
 *
 * Any failure (refused, login, a declaration, a socket error or EOF, a
 * close or consumer cancel from the server) destroys the connection without
 * the polite close, which could wait on a dead socket, and schedules the
 * next attempt after gw_link_backoff. gw_amqp_stop closes politely on the
 * pool. An attempt already running is cut short (gw_amqp_connect_abort),
 * so that a server that accepted and then stays silent does not hold the
 * shutdown.
 *
 * Static helpers are rmq_*: amqp_* is rabbitmq-c's namespace.
 */
#include "gw/amqp.h"

#include "gw/alloc.h"
#include "gw/amqp_bind.h"
#include "gw/amqp_connect.h"
#include "gw/amqp_wire.h"
#include "gw/error.h"
#include "gw/log.h"

#include <amqp.h>
#include <amqp_framing.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define RMQ_SHORTSTR_MAX 255 /* an AMQP short string: names, properties */
/* Bytes of a publish beside its body: method and header frames. */
#define RMQ_PUB_OVERHEAD 1024
#define RMQ_RETRY_MS 10 /* next offer of a delivery the workers refused */
/* Frames read per loop turn, so that a backlog cannot starve the HTTP API
 * and the Redis link on the same loop; the rest is read next turn. */
#define RMQ_FRAMES_PER_TURN 1024

/* One publish awaiting its confirm. */
typedef struct rmq_pending {
    struct rmq_pending *next;
    uint64_t tag;      /* its number on the connection's publish channel */
    void *msg_data;    /* the owner's, handed back with the outcome */
    int returned;      /* basic.return came: it fails, whatever the ack */
    char message_id[]; /* finds it from a basic.return */
} rmq_pending_t;

/* Where a delivery (or a returned publish) is in its frames. */
typedef enum rmq_want {
    RMQ_WANT_DELIVER, /* between deliveries */
    RMQ_WANT_HEADER,
    RMQ_WANT_BODY,
    RMQ_HELD, /* complete; the workers had no room, offered again later */
} rmq_want_t;

/* One live connection, owned by the loop from its connect job's end until
 * its poll handle's close callback, which frees it. */
typedef struct rmq_session {
    uv_poll_t poll;
    gw_amqp_t *link;
    amqp_connection_state_t conn;
    rmq_want_t want;
    uint64_t tag; /* delivery tag of the delivery in progress */
    char key[RMQ_SHORTSTR_MAX + 1]; /* its routing key */
    size_t key_len;
    char *body; /* its body; NULL while none, or when over the limit */
    size_t len; /* body size announced by the header */
    size_t got; /* body bytes received so far */
    int paused; /* poll stopped: delivery held, or turn budget spent */
    int polite; /* closed by gw_amqp_stop: say goodbye to the server */
    gw_amqp_bind_t *binds; /* owned: targeted routing's, or NULL */
    int rebuilding;        /* in the rebind hook: its binds are the
                              rebuild's, behind the sessions' changes */
    /* Publishing, on GW_AMQP_CHANNEL_PUBLISH: */
    rmq_pending_t *pending; /* awaiting their confirm, oldest first */
    rmq_pending_t **tailp;  /* the last entry's next, to append */
    uint32_t npending;
    uint64_t next_tag; /* publishes so far; RabbitMQ numbers them alike */
    rmq_want_t ret;    /* where a basic.return is in its frames */
    uint64_t ret_left; /* its body bytes still to skip */
    int blocked;       /* connection.blocked: RabbitMQ reads no publish */
} rmq_session_t;

struct gw_amqp {
    uv_loop_t *loop;
    gw_amqp_hooks_t hooks;
    gw_stats_t *stats;       /* borrowed: the owner's */
    gw_link_status_t status; /* as /health reports it */
    gw_amqp_connect_t *job;  /* owned; NULL when disabled */
    int job_busy;            /* job queued or running on the pool */
    rmq_session_t *session;  /* the live connection, or NULL */
    uv_timer_t timer;        /* reconnect delay, or resume reading */
    uv_timer_t beat;         /* heartbeat tick while up */
    uint32_t max_body;       /* larger messages are dead-lettered */
    uint32_t max_pending;    /* publishes that may await their confirm */
    uint32_t min_ms, max_ms;
    unsigned attempt; /* failures since the link was last up */
    uint64_t seed;    /* backoff jitter */
    char why[256];    /* last failure logged, to log only changes */
    unsigned refs;    /* owner + open handles + busy job */
    int stopping;
};

static void rmq_connect(gw_amqp_t *a);

/* ---- publishes awaiting their confirm (loop) ------------------------ */

/* Tells other threads what a publish would meet now. */
static void rmq_gate_update(gw_amqp_t *a)
{
    rmq_session_t *s = a->session;

    atomic_store_explicit(&a->hooks.gate->open, s != NULL && !s->blocked,
                          memory_order_relaxed);
    atomic_store_explicit(&a->hooks.gate->unconfirmed,
                          s != NULL ? s->npending : 0, memory_order_relaxed);
}

static void rmq_pending_add(rmq_session_t *s, void *msg_data, const char *id)
{
    size_t n = id != NULL ? strlen(id) : 0;
    rmq_pending_t *p = gw_malloc(sizeof(*p) + n + 1);

    p->next = NULL;
    p->tag = ++s->next_tag;
    p->msg_data = msg_data;
    p->returned = 0;
    memcpy(p->message_id, id != NULL ? id : "", n + 1);
    *s->tailp = p;
    s->tailp = &p->next;
    s->npending++;
}

/*
 * Settles the publish numbered tag, or with `multiple` every one up to it
 * (tag 0: all of them), as a basic.ack (status 0) or basic.nack (GW_EIO)
 * says; a returned one fails whatever the ack says. Each is unlinked before
 * its callback runs.
 */
static void rmq_confirm(rmq_session_t *s, uint64_t tag, int multiple,
                        int status)
{
    gw_amqp_t *a = s->link;
    rmq_pending_t **pp = &s->pending, *p;

    if (multiple && tag == 0)
        tag = UINT64_MAX;
    while ((p = *pp) != NULL && p->tag <= tag) {
        if (!multiple && p->tag != tag) {
            pp = &p->next;
            continue;
        }
        *pp = p->next;
        if (*pp == NULL)
            s->tailp = pp;
        s->npending--;
        a->hooks.confirm(a->hooks.data, p->msg_data,
                         p->returned ? GW_EIO : status);
        free(p);
    }
    rmq_gate_update(a);
}

/* A basic.return names its publish by the message id it carried. */
static void rmq_mark_returned(rmq_session_t *s, amqp_bytes_t id)
{
    for (rmq_pending_t *p = s->pending; p != NULL && id.len > 0; p = p->next) {
        if (strlen(p->message_id) == id.len &&
            memcmp(p->message_id, id.bytes, id.len) == 0) {
            p->returned = 1;
            return;
        }
    }
}

/* ---- lifetime ------------------------------------------------------- */

static void rmq_unref(gw_amqp_t *a)
{
    if (--a->refs > 0)
        return;
    if (a->job != NULL)
        gw_amqp_connect_free(a->job);
    free(a);
}

static void rmq_handle_closed_cb(uv_handle_t *h)
{
    rmq_unref(h->data);
}

static void rmq_close_done(uv_work_t *req, int status)
{
    gw_amqp_connect_t *job = req->data;

    (void)status; /* never cancelled */
    job->link->job_busy = 0;
    rmq_unref(job->link);
}

/* Hands the job's connection to the pool for the polite close; the job's
 * reference on the link is released when that is done. */
static void rmq_close_politely(gw_amqp_t *a, amqp_connection_state_t conn)
{
    a->job->conn = conn;
    a->job_busy = 1;
    uv_queue_work(a->loop, &a->job->req, gw_amqp_connect_close_work,
                  rmq_close_done);
}

static void rmq_session_closed_cb(uv_handle_t *h)
{
    rmq_session_t *s = h->data;
    gw_amqp_t *a = s->link;

    /* The session's reference passes to the close job, or is dropped. */
    if (s->polite) {
        rmq_close_politely(a, s->conn);
    } else {
        amqp_destroy_connection(s->conn);
        rmq_unref(a);
    }
    free(s->body);
    free(s);
}

/* Stops reading; the connection is destroyed once the poll handle is
 * closed, so its socket is never closed under a watched descriptor. A
 * delivery not yet acknowledged is redelivered by RabbitMQ; publishes not
 * yet confirmed are reported lost. */
static void rmq_session_close(gw_amqp_t *a, int polite)
{
    rmq_session_t *s = a->session;

    a->session = NULL;
    uv_timer_stop(&a->beat);
    s->polite = polite;
    /* Bindings queued or in flight end here: the next connection binds
     * every wanted target again. */
    if (s->binds != NULL)
        gw_amqp_bind_free(s->binds);
    s->binds = NULL;
    /* Nothing more will be confirmed on this connection: the rest is lost
     * to us, whether or not RabbitMQ has it. */
    rmq_confirm(s, 0, 1, GW_ECLOSED);
    uv_close((uv_handle_t *)&s->poll, rmq_session_closed_cb);
}

/* ---- state ---------------------------------------------------------- */

static void rmq_retry_cb(uv_timer_t *t)
{
    rmq_connect(t->data);
}

/* Ends the connection or attempt and schedules the next one. Logs the
 * first failure and then only a change of reason, not every retry. */
static void rmq_fail(gw_amqp_t *a, const char *why)
{
    uint64_t delay =
        gw_link_backoff(a->attempt, a->min_ms, a->max_ms, &a->seed);

    if (a->attempt == 0 || strcmp(a->why, why) != 0)
        gw_warn("amqp: link down: %s; retrying with backoff", why);
    else
        gw_debug("amqp: attempt %u failed: %s", a->attempt + 1, why);
    snprintf(a->why, sizeof(a->why), "%s", why);
    a->attempt++;
    if (a->session != NULL)
        rmq_session_close(a, 0);
    gw_link_set(&a->status, GW_LINK_DOWN);
    uv_timer_start(&a->timer, rmq_retry_cb, delay, 0);
}

/* ---- consuming (loop) ----------------------------------------------- */

static void rmq_resume_cb(uv_timer_t *t);

/* Stops reading for delay_ms; the timer then resumes. */
static void rmq_pause(rmq_session_t *s, uint64_t delay_ms)
{
    s->paused = 1;
    uv_poll_stop(&s->poll);
    uv_timer_start(&s->link->timer, rmq_resume_cb, delay_ms, 0);
}

/*
 * Offers the complete delivery to the callback and settles it: ack when
 * the workers have it, reject (dead-letter) when it is invalid or over the
 * size limit, hold and pause when the workers have no room. Returns 0 to
 * read on, or GW_EFULL / GW_ECLOSED to stop reading.
 */
static int rmq_deliver(rmq_session_t *s)
{
    gw_amqp_t *a = s->link;
    int rc =
        a->hooks.message(s->key, s->key_len, s->body, s->len, a->hooks.data);

    if (s->body == NULL)
        rc = GW_ETOOBIG;
    if (rc == GW_EFULL) {
        if (s->want != RMQ_HELD)
            gw_debug("amqp: worker queues full; delivery held");
        s->want = RMQ_HELD;
        rmq_pause(s, RMQ_RETRY_MS);
        return GW_EFULL;
    }
    free(s->body);
    s->body = NULL;
    s->want = RMQ_WANT_DELIVER;
    rc = rc == 0
             ? amqp_basic_ack(s->conn, GW_AMQP_CHANNEL_CONSUME, s->tag, 0)
             : amqp_basic_reject(s->conn, GW_AMQP_CHANNEL_CONSUME, s->tag, 0);
    if (rc != AMQP_STATUS_OK) {
        rmq_fail(a, amqp_error_string2(rc));
        return GW_ECLOSED;
    }
    return 0;
}

static int rmq_protocol_error(rmq_session_t *s, const char *what)
{
    rmq_fail(s->link, what);
    return GW_ECLOSED;
}

/*
 * After a write from outside the reading: rabbitmq-c reads the socket in a
 * write that has to wait (amqp_basic_publish also when the server's
 * heartbeat is due); what it read then waits in its buffers, which the poll
 * does not see: the timer drains them.
 */
static void rmq_wrote(rmq_session_t *s)
{
    if (!s->paused &&
        (amqp_frames_enqueued(s->conn) || amqp_data_in_buffer(s->conn)))
        rmq_pause(s, 0);
}

/* Writes what is queued, as far as there is room; fails the link when a
 * write does. */
static int rmq_binds_pump(rmq_session_t *s)
{
    char why[GW_AMQP_BIND_WHY];

    if (s->binds == NULL)
        return 0;
    if (gw_amqp_bind_pump(s->binds, why) != 0)
        return rmq_protocol_error(s, why);
    rmq_wrote(s);
    return 0;
}

/* RabbitMQ stops reading a publishing connection during a resource alarm
 * (memory, disk), and says so first: publishes are refused until it lifts,
 * rather than left to fill the socket. */
static void rmq_blocked(rmq_session_t *s, const amqp_method_t *m)
{
    const amqp_connection_blocked_t *b = m->decoded;

    s->blocked = m->id == AMQP_CONNECTION_BLOCKED_METHOD;
    if (s->blocked)
        gw_warn("amqp: RabbitMQ blocks publishing: %.*s", (int)b->reason.len,
                (const char *)b->reason.bytes);
    else
        gw_info("amqp: RabbitMQ takes publishes again");
    rmq_gate_update(s->link);
}

/* A delivery begins: its tag, and its routing key, which is in
 * rabbitmq-c's frame memory only until the next frame is read. */
static int rmq_deliver_method(rmq_session_t *s, const amqp_basic_deliver_t *d)
{
    if (s->want != RMQ_WANT_DELIVER)
        return rmq_protocol_error(s, "basic.deliver inside a delivery");
    if (d->routing_key.len > RMQ_SHORTSTR_MAX)
        return rmq_protocol_error(s, "a routing key over 255 bytes");
    s->tag = d->delivery_tag;
    s->key_len = d->routing_key.len;
    if (s->key_len > 0) /* an empty one may have no bytes at all */
        memcpy(s->key, d->routing_key.bytes, s->key_len);
    s->key[s->key_len] = '\0';
    s->want = RMQ_WANT_HEADER;
    return 0;
}

static int rmq_method(rmq_session_t *s, const amqp_method_t *m)
{
    char why[256];

    switch (m->id) {
    case AMQP_BASIC_DELIVER_METHOD: return rmq_deliver_method(s, m->decoded);
    case AMQP_BASIC_CANCEL_METHOD:
        return rmq_protocol_error(s, "the server cancelled the consumer");
    case AMQP_CONNECTION_BLOCKED_METHOD:
    case AMQP_CONNECTION_UNBLOCKED_METHOD: rmq_blocked(s, m); return 0;
    case AMQP_CONNECTION_CLOSE_METHOD:
    case AMQP_CHANNEL_CLOSE_METHOD:
        gw_amqp_wire_close_text(m, why, sizeof(why));
        return rmq_protocol_error(s, why);
    default: gw_debug("amqp: method 0x%08x ignored", m->id); return 0;
    }
}

static int rmq_header(rmq_session_t *s, uint64_t size)
{
    if (s->want != RMQ_WANT_HEADER)
        return rmq_protocol_error(s, "content header outside a delivery");
    s->len = (size_t)size;
    s->got = 0;
    /* Over the limit: the body frames are read and dropped, then the
     * delivery is rejected. */
    if (size <= s->link->max_body)
        s->body = gw_malloc(size > 0 ? (size_t)size : 1);
    s->want = RMQ_WANT_BODY;
    return size == 0 ? rmq_deliver(s) : 0;
}

static int rmq_body(rmq_session_t *s, amqp_bytes_t part)
{
    if (s->want != RMQ_WANT_BODY || part.len > s->len - s->got)
        return rmq_protocol_error(s, "content body outside a delivery");
    if (s->body != NULL)
        memcpy(s->body + s->got, part.bytes, part.len);
    s->got += part.len;
    return s->got == s->len ? rmq_deliver(s) : 0;
}

/* The publish channel's methods: confirms, returns, or its end. */
static int rmq_pub_method(rmq_session_t *s, const amqp_method_t *m)
{
    const amqp_basic_ack_t *ack = m->decoded;
    const amqp_basic_nack_t *nack = m->decoded;
    char why[256];

    switch (m->id) {
    case AMQP_BASIC_ACK_METHOD:
        rmq_confirm(s, ack->delivery_tag, ack->multiple, 0);
        return 0;
    case AMQP_BASIC_NACK_METHOD:
        rmq_confirm(s, nack->delivery_tag, nack->multiple, GW_EIO);
        return 0;
    case AMQP_BASIC_RETURN_METHOD: /* its ack follows its content */
        if (s->ret != RMQ_WANT_DELIVER)
            return rmq_protocol_error(s, "basic.return inside a return");
        s->ret = RMQ_WANT_HEADER;
        return 0;
    case AMQP_CHANNEL_CLOSE_METHOD:
        gw_amqp_wire_close_text(m, why, sizeof(why));
        return rmq_protocol_error(s, why);
    default: gw_debug("amqp: method 0x%08x ignored", m->id); return 0;
    }
}

/* A returned publish's content: its properties name it (the ack that
 * follows settles it); its body is skipped. */
static int rmq_pub_content(rmq_session_t *s, const amqp_frame_t *f)
{
    if (f->frame_type == AMQP_FRAME_HEADER && s->ret == RMQ_WANT_HEADER) {
        const amqp_basic_properties_t *p = f->payload.properties.decoded;
        if (p->_flags & AMQP_BASIC_MESSAGE_ID_FLAG)
            rmq_mark_returned(s, p->message_id);
        s->ret_left = f->payload.properties.body_size;
    } else if (f->frame_type == AMQP_FRAME_BODY && s->ret == RMQ_WANT_BODY &&
               f->payload.body_fragment.len <= s->ret_left) {
        s->ret_left -= f->payload.body_fragment.len;
    } else {
        return rmq_protocol_error(s, "content outside a return");
    }
    s->ret = s->ret_left > 0 ? RMQ_WANT_BODY : RMQ_WANT_DELIVER;
    return 0;
}

/* A frame of the binding channel, which only targeted routing opens. */
static int rmq_bind_frame(rmq_session_t *s, const amqp_frame_t *f)
{
    char why[GW_AMQP_BIND_WHY];

    if (s->binds == NULL)
        return rmq_protocol_error(s, "a frame on a channel never opened");
    if (gw_amqp_bind_frame(s->binds, f, why) != 0)
        return rmq_protocol_error(s, why);
    return 0;
}

static int rmq_frame(rmq_session_t *s, const amqp_frame_t *f)
{
    if (f->channel == GW_AMQP_CHANNEL_BIND)
        return rmq_bind_frame(s, f);
    if (f->channel == GW_AMQP_CHANNEL_PUBLISH)
        return f->frame_type == AMQP_FRAME_METHOD
                   ? rmq_pub_method(s, &f->payload.method)
                   : rmq_pub_content(s, f);
    switch (f->frame_type) {
    case AMQP_FRAME_METHOD: return rmq_method(s, &f->payload.method);
    case AMQP_FRAME_HEADER:
        return rmq_header(s, f->payload.properties.body_size);
    case AMQP_FRAME_BODY: return rmq_body(s, f->payload.body_fragment);
    default: return 0; /* rabbitmq-c consumes heartbeats itself */
    }
}

/*
 * Reads frames until nothing complete is left (in the socket or in
 * rabbitmq-c's buffers), reading stops, or the turn's budget is spent.
 */
static void rmq_drain(rmq_session_t *s)
{
    struct timeval zero = {0, 0};
    amqp_frame_t f;
    int rc;

    for (int n = 0; n < RMQ_FRAMES_PER_TURN; n++) {
        rc = amqp_simple_wait_frame_noblock(s->conn, &f, &zero);
        if (rc == AMQP_STATUS_TIMEOUT) {
            /* Dry: bindings that waited for room in the socket go now. */
            rmq_binds_pump(s);
            return;
        }
        if (rc != AMQP_STATUS_OK) {
            rmq_fail(s->link, amqp_error_string2(rc));
            return;
        }
        rc = rmq_frame(s, &f);
        /* Every frame's content has been copied out by now. */
        amqp_maybe_release_buffers(s->conn);
        if (rc != 0)
            return;
    }
    /* Resume from the timer, not the poll: what rabbitmq-c has buffered
     * would not make the socket readable again. */
    rmq_pause(s, 0);
}

static void rmq_readable_cb(uv_poll_t *h, int status, int events)
{
    rmq_session_t *s = h->data;

    (void)events;
    if (status < 0) /* libuv reports a socket error (POLLERR) as EBADF */
        rmq_fail(s->link, "connection lost");
    else
        rmq_drain(s);
}

static void rmq_resume(rmq_session_t *s)
{
    s->paused = 0;
    uv_poll_start(&s->poll, UV_READABLE, rmq_readable_cb);
    rmq_drain(s);
}

static void rmq_resume_cb(uv_timer_t *t)
{
    gw_amqp_t *a = t->data;
    rmq_session_t *s = a->session;

    if (s->want == RMQ_HELD && rmq_deliver(s) != 0)
        return;
    rmq_resume(s);
}

static void rmq_beat_cb(uv_timer_t *t)
{
    gw_amqp_t *a = t->data;
    rmq_session_t *s = a->session;
    amqp_frame_t hb = {.frame_type = AMQP_FRAME_HEARTBEAT, .channel = 0};
    int rc;

    /* Reading sends a heartbeat when one is due and fails the read when
     * the server has been silent too long. */
    if (!s->paused) {
        rmq_drain(s);
        return;
    }
    rc = amqp_send_frame(s->conn, &hb);
    if (rc != AMQP_STATUS_OK)
        rmq_fail(a, amqp_error_string2(rc));
}

/* ---- targeted routing's bindings (loop) ------------------------------ */

void gw_amqp_targets(gw_amqp_t *a, int on, const gw_interest_target_t *t,
                     size_t n)
{
    rmq_session_t *s = a->session;

    if (s == NULL || s->binds == NULL)
        return;
    gw_amqp_bind_targets(
        s->binds, s->rebuilding ? GW_AMQP_LANE_REBUILD : GW_AMQP_LANE_NOW, on,
        t, n);
    rmq_binds_pump(s);
}

/* ---- publishing (loop) ---------------------------------------------- */

/* Sets one optional short-string property. */
static int rmq_prop(amqp_basic_properties_t *p, amqp_bytes_t *field,
                    amqp_flags_t flag, const char *value)
{
    if (value == NULL)
        return 0;
    if (strlen(value) > RMQ_SHORTSTR_MAX)
        return GW_EINVAL;
    *field = amqp_cstring_bytes(value);
    p->_flags |= flag;
    return 0;
}

static int rmq_props(amqp_basic_properties_t *p, const gw_amqp_props_t *in)
{
    memset(p, 0, sizeof(*p));
    p->_flags = AMQP_BASIC_CONTENT_TYPE_FLAG | AMQP_BASIC_DELIVERY_MODE_FLAG |
                AMQP_BASIC_TIMESTAMP_FLAG | AMQP_BASIC_APP_ID_FLAG;
    p->content_type = amqp_cstring_bytes("application/json");
    p->delivery_mode = AMQP_DELIVERY_PERSISTENT;
    p->timestamp = in->timestamp;
    p->app_id = amqp_cstring_bytes("gatewayd");
    if (rmq_prop(p, &p->message_id, AMQP_BASIC_MESSAGE_ID_FLAG,
                 in->message_id) != 0 ||
        rmq_prop(p, &p->correlation_id, AMQP_BASIC_CORRELATION_ID_FLAG,
                 in->correlation_id) != 0 ||
        rmq_prop(p, &p->reply_to, AMQP_BASIC_REPLY_TO_FLAG, in->reply_to) != 0)
        return GW_EINVAL;
    return 0;
}

int gw_amqp_publish(gw_amqp_t *a, const char *routing_key, const char *body,
                    size_t len, const gw_amqp_props_t *props, void *msg_data)
{
    rmq_session_t *s = a->session;
    amqp_basic_properties_t p;
    amqp_bytes_t content = {.len = len, .bytes = (void *)body};
    int rc;

    if (s == NULL || s->blocked)
        return GW_ECLOSED;
    if (s->npending >= a->max_pending ||
        !gw_amqp_wire_room(s->conn, len + RMQ_PUB_OVERHEAD))
        return GW_EFULL;
    if (strlen(routing_key) > RMQ_SHORTSTR_MAX || rmq_props(&p, props) != 0)
        return GW_EINVAL;
    /* Mandatory: a message no queue takes comes back (basic.return) rather
     * than vanish, and its client hears so. */
    rc = amqp_basic_publish(s->conn, GW_AMQP_CHANNEL_PUBLISH,
                            amqp_cstring_bytes(a->job->upstream),
                            amqp_cstring_bytes(routing_key), 1, 0, &p, content);
    if (rc != AMQP_STATUS_OK) {
        /* Part of it may be on the wire: the connection is out of step. */
        rmq_fail(a, amqp_error_string2(rc));
        return GW_ECLOSED;
    }
    rmq_pending_add(s, msg_data, props->message_id);
    rmq_gate_update(a);
    rmq_wrote(s);
    return 0;
}

/* ---- connecting (loop) ---------------------------------------------- */

static void rmq_session_log(const gw_amqp_t *a)
{
    const gw_amqp_connect_t *job = a->job;

    if (!job->targeted)
        gw_info("amqp: up: consuming %s on %s:%d (exchange %s, bindings "
                "\"%s\"), publishing to %s",
                job->queue, job->host, job->port, job->exchange, job->keys,
                job->upstream);
    else
        gw_info("amqp: up: consuming %s on %s:%d (exchange %s, targeted "
                "bindings through %s%s%s), publishing to %s",
                job->queue, job->host, job->port, job->exchange,
                job->generation, job->previous ? ", replacing " : "",
                job->previous ? job->previous : "", job->upstream);
}

static void rmq_bound(void *data, const char *pattern, size_t len)
{
    gw_amqp_t *a = data;

    if (a->hooks.bound != NULL)
        a->hooks.bound(a->hooks.data, pattern, len);
}

/*
 * Targeted routing: the new connection binds every wanted target to its
 * generation (the owner's rebind hook asks for them), then deletes the
 * generation before, which kept routing meanwhile. 0, or GW_ECLOSED when a
 * write failed and took the link down.
 */
static int rmq_session_binds(gw_amqp_t *a, rmq_session_t *s)
{
    const gw_amqp_connect_t *job = a->job;

    if (!job->targeted)
        return 0;
    s->binds = gw_amqp_bind_new(s->conn, job->exchange, job->generation,
                                a->stats, rmq_bound, a);
    s->rebuilding = 1;
    if (a->hooks.rebind != NULL)
        a->hooks.rebind(a->hooks.data);
    if (a->session != s)
        return GW_ECLOSED;
    s->rebuilding = 0;
    if (job->previous != NULL)
        gw_amqp_bind_retire(s->binds, job->previous);
    return rmq_binds_pump(s);
}

static void rmq_session_start(gw_amqp_t *a, amqp_connection_state_t conn)
{
    rmq_session_t *s = gw_calloc(1, sizeof(*s));
    uint64_t beat_ms = (uint64_t)amqp_get_heartbeat(conn) * 1000 / 2;
    int rc = uv_poll_init(a->loop, &s->poll, amqp_get_sockfd(conn));

    if (rc != 0) {
        amqp_destroy_connection(conn);
        free(s);
        rmq_fail(a, uv_strerror(rc));
        return;
    }
    s->poll.data = s;
    s->link = a;
    s->conn = conn;
    s->tailp = &s->pending;
    a->session = s;
    a->refs++;
    if (beat_ms > 0)
        uv_timer_start(&a->beat, rmq_beat_cb, beat_ms, beat_ms);
    rmq_session_log(a);
    gw_link_set(&a->status, GW_LINK_UP);
    rmq_gate_update(a);
    a->attempt = 0;
    a->why[0] = '\0';
    if (rmq_session_binds(a, s) != 0)
        return;
    /* Deliveries that came with the consume-ok are already buffered. */
    rmq_resume(s);
}

static void rmq_connect_done(uv_work_t *req, int status)
{
    gw_amqp_connect_t *job = req->data;
    gw_amqp_t *a = job->link;
    amqp_connection_state_t conn = job->conn;

    (void)status; /* UV_ECANCELED leaves conn NULL, as a failure does */
    a->job_busy = 0;
    job->conn = NULL;
    if (a->stopping) {
        if (conn != NULL)
            rmq_close_politely(a, conn); /* keeps the job's reference */
        else
            rmq_unref(a);
        return;
    }
    rmq_unref(a); /* the job's; the owner's reference is still held */
    if (conn == NULL)
        rmq_fail(a, job->err);
    else
        rmq_session_start(a, conn);
}

static void rmq_connect(gw_amqp_t *a)
{
    /* A retry stays down: the link has been down since the failure. */
    if (a->status.state == GW_LINK_DISABLED)
        gw_link_set(&a->status, GW_LINK_CONNECTING);
    a->job_busy = 1;
    a->refs++;
    uv_queue_work(a->loop, &a->job->req, gw_amqp_connect_work,
                  rmq_connect_done);
}

/* ---- public --------------------------------------------------------- */

gw_amqp_t *gw_amqp_start(uv_loop_t *loop, const gw_config_t *cfg,
                         const char *instance_id, gw_stats_t *stats,
                         const gw_amqp_hooks_t *hooks)
{
    gw_amqp_t *a = gw_calloc(1, sizeof(*a));

    a->loop = loop;
    a->stats = stats;
    a->hooks = *hooks;
    a->refs = 1;
    gw_link_init(&a->status, GW_LINK_DISABLED);
    if (!cfg->amqp_enabled)
        return a;
    a->job = gw_amqp_connect_new(a, cfg, instance_id);
    a->max_body = cfg->max_body_size;
    a->max_pending = cfg->relay_max_unconfirmed;
    a->min_ms = cfg->reconnect_min_ms;
    a->max_ms = cfg->reconnect_max_ms;
    a->seed = uv_hrtime() ^ (uint64_t)(uintptr_t)a;
    uv_timer_init(loop, &a->timer);
    uv_timer_init(loop, &a->beat);
    a->timer.data = a->beat.data = a;
    a->refs += 2;
    rmq_connect(a);
    return a;
}

gw_link_status_t gw_amqp_link(const gw_amqp_t *a)
{
    return a->status;
}

void gw_amqp_stop(gw_amqp_t *a)
{
    if (a == NULL || a->stopping)
        return;
    a->stopping = 1;
    if (a->job != NULL) {
        /* A job already running is cut short; its after-work callback
         * sees `stopping` and closes what it connected. */
        if (a->job_busy) {
            uv_cancel((uv_req_t *)&a->job->req);
            gw_amqp_connect_abort(a->job);
        }
        if (a->session != NULL)
            rmq_session_close(a, 1);
        uv_close((uv_handle_t *)&a->timer, rmq_handle_closed_cb);
        uv_close((uv_handle_t *)&a->beat, rmq_handle_closed_cb);
    }
    rmq_unref(a);
}
