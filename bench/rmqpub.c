#include "rmqpub.h"

#include <amqp.h>
#include <amqp_tcp_socket.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <uv.h>

#include "gw/alloc.h"
#include "util.h"

#define RMQPUB_MASK ((uint64_t)RMQPUB_WINDOW - 1)
#define RMQPUB_CHANNEL 1
#define RMQPUB_TIMEOUT_S 5   /* connect, login, each declaration, close */
#define RMQPUB_CONFIRM_S 10  /* most time without a confirm while owed */
#define RMQPUB_STOP_MS 3000  /* rmqpub_free's wait before shutdown(2) */
#define RMQPUB_IDLE_S 3600   /* most wait for rmqpub_start (--timeout's) */
#define RMQPUB_TURN_US 50000 /* longest wait for frames: stop is seen */
#define RMQPUB_BATCH 1024    /* publishes per turn at most */
#define RMQPUB_FRAMES 4096   /* frames handled per turn at most */
#define RMQPUB_FRAME_MAX 131072
#define RMQPUB_MAX_BODY 65536 /* --payload is at most 65,000 */

/*
 * Shared fields are under mu. rate, count and t0 are written by
 * rmqpub_start() before go, and read by the thread only after it saw go
 * under mu. The rest belongs to the thread alone.
 */
struct rmqpub {
    publish_conf_t conf;
    uv_thread_t thread;
    int threaded; /* thread created: join it */
    uv_mutex_t mu;
    uv_cond_t cv; /* go, stop, exited changed */
    /* shared */
    int state;  /* 0 connecting, 1 ready, -1 failed */
    int go;     /* rmqpub_start() was called */
    int stop;   /* rmqpub_free() was called */
    int over;   /* publishing ended: all confirmed, or failed */
    int exited; /* the thread is about to return */
    int fd;     /* the connection's socket while open, else -1 */
    publish_stats_t shared;
    /* set once by rmqpub_start() */
    double rate;
    uint64_t count, t0;
    /* the thread's */
    amqp_connection_state_t conn;
    publish_stats_t st;
    rmqpub_window_t win;
    uint64_t progress_us; /* last publish or confirm */
    char body[RMQPUB_MAX_BODY];
};

/* ---- the confirm window (pure) ---------------------------------------- */

static int rmqpub_bit(const rmqpub_window_t *w, uint64_t tag)
{
    return (w->bits[(tag & RMQPUB_MASK) >> 3] >> (tag & 7)) & 1;
}

static void rmqpub_bit_flip(rmqpub_window_t *w, uint64_t tag)
{
    w->bits[(tag & RMQPUB_MASK) >> 3] ^= (uint8_t)(1u << (tag & 7));
}

void rmqpub_window_init(rmqpub_window_t *w)
{
    memset(w, 0, sizeof(*w));
    w->low = w->next = 1;
}

int rmqpub_window_room(const rmqpub_window_t *w)
{
    return w->next - w->low < RMQPUB_WINDOW;
}

uint64_t rmqpub_window_publish(rmqpub_window_t *w)
{
    return w->next++;
}

/* Moves low past the tags settled above it, clearing their bits so that
 * the tags a window later find them clear. At most a window of steps. */
static void rmqpub_window_advance(rmqpub_window_t *w)
{
    while (w->low < w->next && rmqpub_bit(w, w->low)) {
        rmqpub_bit_flip(w, w->low);
        w->above--;
        w->low++;
    }
}

uint64_t rmqpub_window_settle(rmqpub_window_t *w, uint64_t tag, int multiple)
{
    uint64_t n = 0;

    if (multiple && tag == 0)
        tag = w->next - 1;
    if (tag < w->low || tag >= w->next)
        return 0;
    if (!multiple) {
        if (rmqpub_bit(w, tag))
            return 0;
        rmqpub_bit_flip(w, tag);
        w->above++;
        rmqpub_window_advance(w);
        return 1;
    }
    /* tag - low < RMQPUB_WINDOW: bounded by the window. */
    for (uint64_t t = w->low; t <= tag; t++) {
        if (rmqpub_bit(w, t)) {
            rmqpub_bit_flip(w, t);
            w->above--;
        } else {
            n++;
        }
    }
    w->low = tag + 1;
    rmqpub_window_advance(w);
    return n;
}

uint64_t rmqpub_window_pending(const rmqpub_window_t *w)
{
    return w->next - w->low - w->above;
}

/* ---- shared state ------------------------------------------------------ */

/* Publishes the thread's figures to the coordinator. */
static void rmqpub_share(rmqpub_t *q)
{
    uv_mutex_lock(&q->mu);
    q->shared = q->st;
    uv_mutex_unlock(&q->mu);
}

static void rmqpub_set_state(rmqpub_t *q, int state)
{
    if (state < 0)
        q->st.broken = 1;
    uv_mutex_lock(&q->mu);
    q->state = state;
    q->shared = q->st;
    uv_mutex_unlock(&q->mu);
}

static void rmqpub_set_fd(rmqpub_t *q, int fd)
{
    uv_mutex_lock(&q->mu);
    q->fd = fd;
    uv_mutex_unlock(&q->mu);
}

static int rmqpub_stopping(rmqpub_t *q)
{
    int stop;

    uv_mutex_lock(&q->mu);
    stop = q->stop;
    uv_mutex_unlock(&q->mu);
    return stop;
}

/* Waits for rmqpub_start() (1) or rmqpub_free() (0). */
static int rmqpub_wait_go(rmqpub_t *q)
{
    uint64_t end = util_now_us() + RMQPUB_IDLE_S * 1000000ull, now;
    int go;

    uv_mutex_lock(&q->mu);
    while (!q->go && !q->stop && (now = util_now_us()) < end)
        uv_cond_timedwait(&q->cv, &q->mu, (end - now) * 1000);
    go = q->go && !q->stop;
    uv_mutex_unlock(&q->mu);
    return go;
}

/* ---- the connection (thread) ------------------------------------------ */

/* Describes a close from the server, or a library error. */
static void rmqpub_describe(const amqp_rpc_reply_t *r, char *buf, size_t cap)
{
    const amqp_method_t *m = &r->reply;

    if (r->reply_type == AMQP_RESPONSE_LIBRARY_EXCEPTION) {
        snprintf(buf, cap, "%s", amqp_error_string2(r->library_error));
    } else if (r->reply_type != AMQP_RESPONSE_SERVER_EXCEPTION) {
        snprintf(buf, cap, "no reply");
    } else if (m->id == AMQP_CONNECTION_CLOSE_METHOD) {
        const amqp_connection_close_t *c = m->decoded;

        snprintf(buf, cap, "connection closed: %u %.*s", c->reply_code,
                 (int)c->reply_text.len, (const char *)c->reply_text.bytes);
    } else if (m->id == AMQP_CHANNEL_CLOSE_METHOD) {
        const amqp_channel_close_t *c = m->decoded;

        snprintf(buf, cap, "channel closed: %u %.*s", c->reply_code,
                 (int)c->reply_text.len, (const char *)c->reply_text.bytes);
    } else {
        snprintf(buf, cap, "unexpected method 0x%08x", m->id);
    }
}

/* 0 when r is normal; otherwise says why. */
static int rmqpub_reply(const rmqpub_t *q, amqp_rpc_reply_t r, const char *what)
{
    char text[256];

    if (r.reply_type == AMQP_RESPONSE_NORMAL)
        return 0;
    rmqpub_describe(&r, text, sizeof(text));
    util_warn("amqp publisher (%s:%d): %s: %s", q->conf.host, q->conf.port,
              what, text);
    return -1;
}

static int rmqpub_check(const rmqpub_t *q, const char *what)
{
    return rmqpub_reply(q, amqp_get_rpc_reply(q->conn), what);
}

/* Connects, logs in and readies channel 1: the exchange as gatewayd
 * declares it (so either may come first) and confirm mode. No heartbeats:
 * a broker that stops answering shows as confirms that stop coming. */
static int rmqpub_open(rmqpub_t *q)
{
    struct timeval tv = {.tv_sec = RMQPUB_TIMEOUT_S};
    amqp_socket_t *sock = NULL;
    int rc;

    if ((q->conn = amqp_new_connection()) != NULL)
        sock = amqp_tcp_socket_new(q->conn);
    if (sock == NULL) {
        util_warn("amqp publisher: cannot create a connection");
        return -1;
    }
    rc = amqp_socket_open_noblock(sock, q->conf.host, q->conf.port, &tv);
    if (rc != AMQP_STATUS_OK) {
        util_warn("amqp publisher: connect to %s:%d: %s", q->conf.host,
                  q->conf.port, amqp_error_string2(rc));
        return -1;
    }
    rmqpub_set_fd(q, amqp_get_sockfd(q->conn));
    amqp_set_handshake_timeout(q->conn, &tv);
    amqp_set_rpc_timeout(q->conn, &tv);
    if (rmqpub_reply(q,
                     amqp_login(q->conn, "/", 0, RMQPUB_FRAME_MAX, 0,
                                AMQP_SASL_METHOD_PLAIN, "guest", "guest"),
                     "login") != 0)
        return -1;
    amqp_channel_open(q->conn, RMQPUB_CHANNEL);
    if (rmqpub_check(q, "channel.open") != 0)
        return -1;
    amqp_exchange_declare(
        q->conn, RMQPUB_CHANNEL, amqp_cstring_bytes(q->conf.exchange),
        amqp_cstring_bytes("topic"), 0, 1, 0, 0, amqp_empty_table);
    if (rmqpub_check(q, "exchange.declare") != 0)
        return -1;
    amqp_confirm_select(q->conn, RMQPUB_CHANNEL);
    return rmqpub_check(q, "confirm.select");
}

/* Polite when the run ended well (bounded by the RPC timeout); otherwise
 * the socket is just closed. */
static void rmqpub_close(rmqpub_t *q, int polite)
{
    if (q->conn == NULL)
        return;
    if (polite)
        amqp_connection_close(q->conn, AMQP_REPLY_SUCCESS);
    /* Before the descriptor is closed, so that rmqpub_free() never shuts
     * down a descriptor that has been reused. */
    rmqpub_set_fd(q, -1);
    amqp_destroy_connection(q->conn);
    q->conn = NULL;
}

/* ---- publishing (thread) ----------------------------------------------- */

static uint64_t rmqpub_due_us(const rmqpub_t *q, uint64_t n)
{
    return q->t0 + (uint64_t)((double)n * 1e6 / q->rate);
}

/* Mandatory, so that an event no queue takes comes back (basic.return);
 * transient: the benchmark measures fan-out, not the broker's disk. */
static int rmqpub_publish_one(rmqpub_t *q)
{
    amqp_basic_properties_t props = {
        ._flags = AMQP_BASIC_CONTENT_TYPE_FLAG | AMQP_BASIC_DELIVERY_MODE_FLAG,
        .content_type = amqp_cstring_bytes("application/json"),
        .delivery_mode = AMQP_DELIVERY_NONPERSISTENT,
    };
    uint64_t now = util_now_us(), due = rmqpub_due_us(q, q->st.sent);
    amqp_bytes_t body;
    int rc;

    if (now > due && now - due > q->st.max_lag_us)
        q->st.max_lag_us = now - due;
    body.len =
        publish_envelope(&q->conf, q->st.sent, now, q->body, sizeof(q->body));
    body.bytes = q->body;
    rc = amqp_basic_publish(
        q->conn, RMQPUB_CHANNEL, amqp_cstring_bytes(q->conf.exchange),
        amqp_cstring_bytes(q->conf.routing_key), 1, 0, &props, body);
    if (rc != AMQP_STATUS_OK) {
        util_warn("amqp publisher: basic.publish: %s", amqp_error_string2(rc));
        return -1;
    }
    rmqpub_window_publish(&q->win);
    q->st.sent++;
    q->progress_us = now;
    return 0;
}

/* Publishes what is due by now, while the window has room. */
static int rmqpub_publish_due(rmqpub_t *q)
{
    uint64_t due =
        (uint64_t)(q->rate * (double)(util_now_us() - q->t0) / 1e6) + 1;

    if (due > q->count)
        due = q->count;
    for (int i = 0; i < RMQPUB_BATCH && q->st.sent < due; i++) {
        if (!rmqpub_window_room(&q->win))
            return 0;
        if (rmqpub_publish_one(q) != 0)
            return -1;
    }
    return 0;
}

static int rmqpub_frame(rmqpub_t *q, const amqp_frame_t *f)
{
    const amqp_method_t *m = &f->payload.method;
    amqp_rpc_reply_t r = {.reply_type = AMQP_RESPONSE_SERVER_EXCEPTION};

    /* Content frames of a returned message, heartbeats: nothing to do. */
    if (f->frame_type != AMQP_FRAME_METHOD)
        return 0;
    switch (m->id) {
    case AMQP_BASIC_ACK_METHOD: {
        const amqp_basic_ack_t *a = m->decoded;

        q->st.acked +=
            rmqpub_window_settle(&q->win, a->delivery_tag, a->multiple);
        q->progress_us = util_now_us();
        return 0;
    }
    case AMQP_BASIC_NACK_METHOD: {
        const amqp_basic_nack_t *n = m->decoded;

        q->st.failed +=
            rmqpub_window_settle(&q->win, n->delivery_tag, n->multiple);
        q->progress_us = util_now_us();
        return 0;
    }
    case AMQP_BASIC_RETURN_METHOD: q->st.returned++; return 0;
    case AMQP_CHANNEL_CLOSE_METHOD:
    case AMQP_CONNECTION_CLOSE_METHOD:
        r.reply = *m;
        return rmqpub_reply(q, r, "while publishing");
    default: return 0;
    }
}

/*
 * Waits up to wait_us (rounded up to whole milliseconds) for the socket to
 * be readable. Not rabbitmq-c's own timeout: it polls in whole
 * milliseconds rounded down and spins through the remainder, a core's worth
 * at 1,000 events/s.
 */
static void rmqpub_wait(rmqpub_t *q, uint64_t wait_us)
{
    struct pollfd pfd = {.fd = amqp_get_sockfd(q->conn), .events = POLLIN};

    if (wait_us == 0 || amqp_frames_enqueued(q->conn) ||
        amqp_data_in_buffer(q->conn))
        return;
    poll(&pfd, 1, (int)((wait_us + 999) / 1000));
}

/* Handles the frames that come within wait_us, then those already there;
 * reads never block (a zero timeout is one poll(2) of 0 ms). */
static int rmqpub_read(rmqpub_t *q, uint64_t wait_us)
{
    struct timeval zero = {0, 0};
    amqp_frame_t f;

    rmqpub_wait(q, wait_us);
    for (int i = 0; i < RMQPUB_FRAMES; i++) {
        int rc = amqp_simple_wait_frame_noblock(q->conn, &f, &zero);

        if (rc == AMQP_STATUS_TIMEOUT)
            break;
        if (rc != AMQP_STATUS_OK) {
            util_warn("amqp publisher: lost the connection: %s",
                      amqp_error_string2(rc));
            return -1;
        }
        if (rmqpub_frame(q, &f) != 0)
            return -1;
    }
    amqp_maybe_release_buffers(q->conn);
    return 0;
}

/* Until the next event is due, at most a turn. */
static uint64_t rmqpub_wait_us(const rmqpub_t *q)
{
    uint64_t now = util_now_us(), due;

    if (q->st.sent >= q->count || !rmqpub_window_room(&q->win))
        return RMQPUB_TURN_US;
    due = rmqpub_due_us(q, q->st.sent);
    if (due <= now)
        return 0;
    return due - now < RMQPUB_TURN_US ? due - now : RMQPUB_TURN_US;
}

/* Publishes count events and collects their confirms. Each turn is
 * bounded by RMQPUB_TURN_US; the loop ends when all are confirmed, on
 * rmqpub_free(), on an error, or after RMQPUB_CONFIRM_S without progress. */
static int rmqpub_run(rmqpub_t *q)
{
    q->progress_us = util_now_us();
    for (;;) {
        uint64_t owed;

        if (rmqpub_stopping(q) || rmqpub_publish_due(q) != 0)
            return -1;
        owed = rmqpub_window_pending(&q->win);
        if (q->st.sent >= q->count && owed == 0)
            return 0;
        if (owed > 0 &&
            util_now_us() - q->progress_us > RMQPUB_CONFIRM_S * 1000000ull) {
            util_warn("amqp publisher: no confirm for %d s (%llu owed)",
                      RMQPUB_CONFIRM_S, (unsigned long long)owed);
            return -1;
        }
        if (rmqpub_read(q, rmqpub_wait_us(q)) != 0)
            return -1;
        rmqpub_share(q);
    }
}

/* Publishing is over (the coordinator may go on) before the polite close,
 * which costs a round trip. */
static void rmqpub_thread(void *arg)
{
    rmqpub_t *q = arg;
    int ok = rmqpub_open(q) == 0;

    rmqpub_set_state(q, ok ? 1 : -1);
    if (ok && rmqpub_wait_go(q) && rmqpub_run(q) != 0)
        ok = 0;
    uv_mutex_lock(&q->mu);
    q->st.broken |= !ok;
    q->shared = q->st;
    q->over = 1;
    uv_mutex_unlock(&q->mu);
    rmqpub_close(q, ok);
    uv_mutex_lock(&q->mu);
    q->exited = 1;
    uv_cond_broadcast(&q->cv);
    uv_mutex_unlock(&q->mu);
}

/* ---- the coordinator's side ------------------------------------------- */

rmqpub_t *rmqpub_new(const publish_conf_t *conf)
{
    rmqpub_t *q = gw_calloc(1, sizeof(*q));

    q->conf = *conf;
    q->fd = -1;
    rmqpub_window_init(&q->win);
    uv_mutex_init(&q->mu);
    uv_cond_init(&q->cv);
    if (uv_thread_create(&q->thread, rmqpub_thread, q) != 0) {
        util_warn("amqp publisher: cannot start its thread");
        q->state = -1;
        q->shared.broken = 1;
        q->over = q->exited = 1;
        return q;
    }
    q->threaded = 1;
    return q;
}

int rmqpub_ready(rmqpub_t *q)
{
    int state;

    uv_mutex_lock(&q->mu);
    state = q->state;
    uv_mutex_unlock(&q->mu);
    return state;
}

void rmqpub_start(rmqpub_t *q, double rate, uint64_t count)
{
    uv_mutex_lock(&q->mu);
    q->rate = rate;
    q->count = count;
    q->t0 = util_now_us();
    q->go = 1;
    uv_cond_broadcast(&q->cv);
    uv_mutex_unlock(&q->mu);
}

int rmqpub_done(rmqpub_t *q)
{
    int done;

    uv_mutex_lock(&q->mu);
    done = q->over || q->shared.broken;
    uv_mutex_unlock(&q->mu);
    return done;
}

void rmqpub_stats(rmqpub_t *q, publish_stats_t *out)
{
    uv_mutex_lock(&q->mu);
    *out = q->shared;
    uv_mutex_unlock(&q->mu);
}

void rmqpub_free(rmqpub_t *q)
{
    uint64_t end = util_now_us() + RMQPUB_STOP_MS * 1000ull, now;

    uv_mutex_lock(&q->mu);
    q->stop = 1;
    uv_cond_broadcast(&q->cv);
    while (!q->exited && (now = util_now_us()) < end)
        uv_cond_timedwait(&q->cv, &q->mu, (end - now) * 1000);
    /* Still in a blocking call: make it fail now. The thread still owns
     * the descriptor and closes it. */
    if (!q->exited && q->fd >= 0)
        shutdown(q->fd, SHUT_RDWR);
    uv_mutex_unlock(&q->mu);
    if (q->threaded)
        uv_thread_join(&q->thread);
    uv_cond_destroy(&q->cv);
    uv_mutex_destroy(&q->mu);
    free(q);
}
