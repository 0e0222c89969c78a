#include "echo.h"

#include <amqp.h>
#include <amqp_tcp_socket.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <uv.h>

#include "gw/alloc.h"
#include "relay.h"
#include "util.h"

#define ECHO_CHANNEL 1
#define ECHO_TIMEOUT_S 5     /* connect, login, each declaration, close */
#define ECHO_STOP_MS 3000    /* echo_free's wait before shutdown(2) */
#define ECHO_TURN_US 50000   /* longest wait for frames: stop is seen */
#define ECHO_SHARE_US 100000 /* how often the figures are handed over */
#define ECHO_FRAMES 4096     /* frames handled per turn at most */
#define ECHO_FRAME_MAX 131072
#define ECHO_MAX_BODY 131072 /* a request is at most --payload 65,000 */
#define ECHO_QUEUE_MAX 256   /* bytes of a queue name (AMQP short string) */

/* Where the content frames being read belong. */
typedef enum {
    ECHO_CONTENT_NONE,    /* none expected: skip what comes */
    ECHO_CONTENT_DELIVER, /* a delivery's: kept and answered */
    ECHO_CONTENT_SKIP,    /* a returned answer's, or too big: counted */
} echo_content_t;

/*
 * Shared fields are under mu; the rest belongs to the thread alone.
 */
struct echo {
    echo_conf_t conf;
    uv_thread_t thread;
    int threaded; /* thread created: join it */
    uv_mutex_t mu;
    uv_cond_t cv; /* exited changed */
    /* shared */
    int state;  /* 0 connecting, 1 consuming, -1 failed */
    int stop;   /* echo_free() was called */
    int exited; /* the thread is about to return */
    int fd;     /* the connection's socket while open, else -1 */
    echo_stats_t shared;
    /* the thread's */
    amqp_connection_state_t conn;
    echo_stats_t st;
    uint64_t last_share;
    echo_content_t content;
    uint64_t body_size; /* of the content being read */
    size_t have;        /* bytes of it read */
    char queue[ECHO_QUEUE_MAX];
    char body[ECHO_MAX_BODY];
    char answer[ECHO_MAX_BODY + 256];
};

/* ---- shared state ------------------------------------------------------ */

static double echo_thread_cpu_s(void)
{
    struct timespec ts;

    if (clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts) != 0)
        return 0;
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Hands the thread's figures to the coordinator. */
static void echo_share(echo_t *e)
{
    e->st.cpu_s = echo_thread_cpu_s();
    e->last_share = util_now_us();
    uv_mutex_lock(&e->mu);
    e->shared = e->st;
    uv_mutex_unlock(&e->mu);
}

static void echo_set_state(echo_t *e, int state)
{
    if (state < 0)
        e->st.broken = 1;
    uv_mutex_lock(&e->mu);
    e->state = state;
    uv_mutex_unlock(&e->mu);
    echo_share(e);
}

static void echo_set_fd(echo_t *e, int fd)
{
    uv_mutex_lock(&e->mu);
    e->fd = fd;
    uv_mutex_unlock(&e->mu);
}

static int echo_stopping(echo_t *e)
{
    int stop;

    uv_mutex_lock(&e->mu);
    stop = e->stop;
    uv_mutex_unlock(&e->mu);
    return stop;
}

/* ---- the connection (thread) ------------------------------------------ */

/* 0 when r is normal; otherwise says why. */
static int echo_reply(const echo_t *e, amqp_rpc_reply_t r, const char *what)
{
    if (r.reply_type == AMQP_RESPONSE_NORMAL)
        return 0;
    if (r.reply_type == AMQP_RESPONSE_LIBRARY_EXCEPTION)
        util_warn("echo backend (%s:%d): %s: %s", e->conf.host, e->conf.port,
                  what, amqp_error_string2(r.library_error));
    else
        util_warn("echo backend (%s:%d): %s: refused by the server (method "
                  "0x%08x)",
                  e->conf.host, e->conf.port, what, r.reply.id);
    return -1;
}

static int echo_check(const echo_t *e, const char *what)
{
    return echo_reply(e, amqp_get_rpc_reply(e->conn), what);
}

static int echo_declare_exchange(echo_t *e, const char *name)
{
    amqp_exchange_declare(e->conn, ECHO_CHANNEL, amqp_cstring_bytes(name),
                          amqp_cstring_bytes("topic"), 0, 1, 0, 0,
                          amqp_empty_table);
    return echo_check(e, "exchange.declare");
}

/* An exclusive, auto-deleted queue named by the server, bound to the
 * upstream exchange with the binding key, consumed with automatic acks. */
static int echo_queue(echo_t *e)
{
    amqp_queue_declare_ok_t *ok = amqp_queue_declare(
        e->conn, ECHO_CHANNEL, amqp_empty_bytes, 0, 0, 1, 1, amqp_empty_table);

    if (echo_check(e, "queue.declare") != 0 || ok == NULL)
        return -1;
    /* The name lives in rabbitmq-c's buffers until the next release. */
    snprintf(e->queue, sizeof(e->queue), "%.*s", (int)ok->queue.len,
             (const char *)ok->queue.bytes);
    amqp_queue_bind(e->conn, ECHO_CHANNEL, amqp_cstring_bytes(e->queue),
                    amqp_cstring_bytes(e->conf.upstream),
                    amqp_cstring_bytes(e->conf.binding), amqp_empty_table);
    if (echo_check(e, "queue.bind") != 0)
        return -1;
    amqp_basic_consume(e->conn, ECHO_CHANNEL, amqp_cstring_bytes(e->queue),
                       amqp_empty_bytes, 0, 1, 1, amqp_empty_table);
    return echo_check(e, "basic.consume");
}

/* Connects, logs in, declares and consumes. No heartbeats: the run is
 * short and a broker that stops shows as answers that stop. */
static int echo_open(echo_t *e)
{
    struct timeval tv = {.tv_sec = ECHO_TIMEOUT_S};
    amqp_socket_t *sock = NULL;
    int rc;

    if ((e->conn = amqp_new_connection()) != NULL)
        sock = amqp_tcp_socket_new(e->conn);
    if (sock == NULL) {
        util_warn("echo backend: cannot create a connection");
        return -1;
    }
    rc = amqp_socket_open_noblock(sock, e->conf.host, e->conf.port, &tv);
    if (rc != AMQP_STATUS_OK) {
        util_warn("echo backend: connect to %s:%d: %s", e->conf.host,
                  e->conf.port, amqp_error_string2(rc));
        return -1;
    }
    echo_set_fd(e, amqp_get_sockfd(e->conn));
    amqp_set_handshake_timeout(e->conn, &tv);
    amqp_set_rpc_timeout(e->conn, &tv);
    if (echo_reply(e,
                   amqp_login(e->conn, "/", 0, ECHO_FRAME_MAX, 0,
                              AMQP_SASL_METHOD_PLAIN, "guest", "guest"),
                   "login") != 0)
        return -1;
    amqp_channel_open(e->conn, ECHO_CHANNEL);
    if (echo_check(e, "channel.open") != 0 ||
        echo_declare_exchange(e, e->conf.upstream) != 0 ||
        echo_declare_exchange(e, e->conf.exchange) != 0 || echo_queue(e) != 0)
        return -1;
    amqp_maybe_release_buffers(e->conn);
    return 0;
}

/* Polite when all went well (bounded by the RPC timeout). */
static void echo_close(echo_t *e, int polite)
{
    if (e->conn == NULL)
        return;
    if (polite)
        amqp_connection_close(e->conn, AMQP_REPLY_SUCCESS);
    /* Before the descriptor is closed, so that echo_free() never shuts
     * down a descriptor that has been reused. */
    echo_set_fd(e, -1);
    amqp_destroy_connection(e->conn);
    e->conn = NULL;
}

/* ---- answering (thread) ------------------------------------------------ */

/* The answer to the delivery in e->body, published at once. Mandatory, so
 * that an answer no queue takes comes back; transient. */
static int echo_answer(echo_t *e)
{
    amqp_basic_properties_t props = {
        ._flags = AMQP_BASIC_CONTENT_TYPE_FLAG | AMQP_BASIC_DELIVERY_MODE_FLAG,
        .content_type = amqp_cstring_bytes("application/json"),
        .delivery_mode = AMQP_DELIVERY_NONPERSISTENT,
    };
    uint64_t now = util_now_us(), cts = 0;
    long n =
        relay_answer(e->body, e->have, now, e->answer, sizeof(e->answer), &cts);
    amqp_bytes_t body;
    int rc;

    e->st.received++;
    if (cts > 0 && cts <= now)
        stats_hist_record(&e->st.up, now - cts);
    if (n < 0) {
        e->st.bad++;
        return 0;
    }
    body.len = (size_t)n;
    body.bytes = e->answer;
    rc = amqp_basic_publish(
        e->conn, ECHO_CHANNEL, amqp_cstring_bytes(e->conf.exchange),
        amqp_cstring_bytes(e->conf.routing_key), 1, 0, &props, body);
    if (rc != AMQP_STATUS_OK) {
        util_warn("echo backend: basic.publish: %s", amqp_error_string2(rc));
        return -1;
    }
    e->st.answered++;
    return 0;
}

/* A header frame: the size of the content that follows. */
static int echo_header(echo_t *e, const amqp_frame_t *f)
{
    e->body_size = f->payload.properties.body_size;
    e->have = 0;
    if (e->content == ECHO_CONTENT_DELIVER && e->body_size > ECHO_MAX_BODY) {
        e->st.received++;
        e->st.bad++;
        e->content = ECHO_CONTENT_SKIP;
    }
    if (e->body_size == 0 && e->content == ECHO_CONTENT_DELIVER) {
        e->content = ECHO_CONTENT_NONE;
        return echo_answer(e);
    }
    return 0;
}

/* A body frame: kept for a delivery, answered once complete. */
static int echo_body(echo_t *e, const amqp_frame_t *f)
{
    const amqp_bytes_t *b = &f->payload.body_fragment;

    if (e->content == ECHO_CONTENT_NONE)
        return 0;
    if (e->content == ECHO_CONTENT_DELIVER && e->have + b->len <= ECHO_MAX_BODY)
        memcpy(e->body + e->have, b->bytes, b->len);
    e->have += b->len;
    if (e->have < e->body_size)
        return 0;
    if (e->content == ECHO_CONTENT_SKIP) {
        e->content = ECHO_CONTENT_NONE;
        return 0;
    }
    e->content = ECHO_CONTENT_NONE;
    return echo_answer(e);
}

static int echo_method(echo_t *e, const amqp_method_t *m)
{
    switch (m->id) {
    case AMQP_BASIC_DELIVER_METHOD: e->content = ECHO_CONTENT_DELIVER; break;
    case AMQP_BASIC_RETURN_METHOD:
        e->st.returned++;
        e->content = ECHO_CONTENT_SKIP;
        break;
    case AMQP_CHANNEL_CLOSE_METHOD:
    case AMQP_CONNECTION_CLOSE_METHOD:
    case AMQP_BASIC_CANCEL_METHOD:
        util_warn("echo backend: the server closed the channel or cancelled "
                  "the consumer (method 0x%08x)",
                  m->id);
        return -1;
    default: break;
    }
    return 0;
}

static int echo_frame(echo_t *e, const amqp_frame_t *f)
{
    switch (f->frame_type) {
    case AMQP_FRAME_METHOD: return echo_method(e, &f->payload.method);
    case AMQP_FRAME_HEADER: return echo_header(e, f);
    case AMQP_FRAME_BODY: return echo_body(e, f);
    default: return 0; /* heartbeats */
    }
}

/* Waits up to a turn for the socket to be readable, unless rabbitmq-c
 * holds data already. */
static void echo_wait(echo_t *e)
{
    struct pollfd pfd = {.fd = amqp_get_sockfd(e->conn), .events = POLLIN};

    if (amqp_frames_enqueued(e->conn) || amqp_data_in_buffer(e->conn))
        return;
    poll(&pfd, 1, ECHO_TURN_US / 1000);
}

/* Handles the frames that came within a turn; reads never block. */
static int echo_read(echo_t *e)
{
    struct timeval zero = {0, 0};
    amqp_frame_t f;

    echo_wait(e);
    for (int i = 0; i < ECHO_FRAMES; i++) {
        int rc = amqp_simple_wait_frame_noblock(e->conn, &f, &zero);

        if (rc == AMQP_STATUS_TIMEOUT)
            break;
        if (rc != AMQP_STATUS_OK) {
            util_warn("echo backend: lost the connection: %s",
                      amqp_error_string2(rc));
            return -1;
        }
        rc = echo_frame(e, &f);
        /* Every frame's content has been copied out by now. */
        amqp_maybe_release_buffers(e->conn);
        if (rc != 0)
            return -1;
    }
    return 0;
}

/* Answers until echo_free() or an error; each turn is bounded. */
static int echo_run(echo_t *e)
{
    while (!echo_stopping(e)) {
        if (echo_read(e) != 0)
            return -1;
        if (util_now_us() - e->last_share >= ECHO_SHARE_US)
            echo_share(e);
    }
    return 0;
}

static void echo_thread(void *arg)
{
    echo_t *e = arg;
    int ok = echo_open(e) == 0;

    echo_set_state(e, ok ? 1 : -1);
    if (ok && echo_run(e) != 0)
        ok = 0;
    e->st.broken |= !ok;
    echo_share(e);
    echo_close(e, ok);
    uv_mutex_lock(&e->mu);
    e->exited = 1;
    uv_cond_broadcast(&e->cv);
    uv_mutex_unlock(&e->mu);
}

/* ---- the coordinator's side ------------------------------------------- */

echo_t *echo_new(const echo_conf_t *conf)
{
    echo_t *e = gw_calloc(1, sizeof(*e));

    e->conf = *conf;
    e->fd = -1;
    stats_hist_reset(&e->st.up);
    stats_hist_reset(&e->shared.up);
    uv_mutex_init(&e->mu);
    uv_cond_init(&e->cv);
    if (uv_thread_create(&e->thread, echo_thread, e) != 0) {
        util_warn("echo backend: cannot start its thread");
        e->state = -1;
        e->shared.broken = 1;
        e->exited = 1;
        return e;
    }
    e->threaded = 1;
    return e;
}

int echo_ready(echo_t *e)
{
    int state;

    uv_mutex_lock(&e->mu);
    state = e->state;
    uv_mutex_unlock(&e->mu);
    return state;
}

void echo_stats(echo_t *e, echo_stats_t *out)
{
    uv_mutex_lock(&e->mu);
    *out = e->shared;
    uv_mutex_unlock(&e->mu);
}

void echo_free(echo_t *e)
{
    uint64_t end = util_now_us() + ECHO_STOP_MS * 1000ull, now;

    uv_mutex_lock(&e->mu);
    e->stop = 1;
    while (!e->exited && (now = util_now_us()) < end)
        uv_cond_timedwait(&e->cv, &e->mu, (end - now) * 1000);
    /* Still in a blocking call: make it fail now. The thread still owns
     * the descriptor and closes it. */
    if (!e->exited && e->fd >= 0)
        shutdown(e->fd, SHUT_RDWR);
    uv_mutex_unlock(&e->mu);
    if (e->threaded)
        uv_thread_join(&e->thread);
    uv_cond_destroy(&e->cv);
    uv_mutex_destroy(&e->mu);
    free(e);
}
