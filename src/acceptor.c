#include "gw/acceptor.h"

#include "gw/alloc.h"
#include "gw/log.h"
#include "gw/worker.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* Accepts per readiness event, so that a connect storm cannot keep this
 * thread from noticing a stop request; the rest waits one loop turn. */
#define ACCEPTOR_BATCH 128
/* After EMFILE/ENFILE, pause accepting instead of spinning on a readable
 * socket we cannot drain. */
#define ACCEPTOR_PAUSE_MS 100
#define ACCEPTOR_BACKLOG 4096

/*
 * Where the acceptor thread is in its life, set by the main thread and read
 * by the acceptor's loop. Ordered: each phase only moves to a later one,
 * and from ACCEPTOR_PAUSED on nothing is accepted any more.
 */
enum acceptor_phase {
    ACCEPTOR_ACCEPTING, /* the listening socket is watched */
    ACCEPTOR_PAUSED,    /* the socket is closed; the loop still runs */
    ACCEPTOR_STOPPING,  /* the loop's handles close and the thread ends */
};

struct gw_acceptor {
    gw_server_t *srv; /* borrowed */
    int fd;           /* listening socket, owned */
    uv_thread_t thread;
    uv_loop_t loop;
    uv_poll_t poll;   /* readability of fd */
    uv_timer_t pause; /* resumes accepting after EMFILE */
    uv_async_t stop;  /* main thread -> acceptor: pause or stop */
    atomic_int phase; /* enum acceptor_phase */
    gw_log_limit_t drop_log;
    gw_stats_t stats;
};

const gw_stats_t *gw_acceptor_stats(const gw_acceptor_t *a)
{
    return &a->stats;
}

/* Spreads sockets over workers by peer address and port. */
static unsigned acceptor_hash(const struct sockaddr_storage *ss, socklen_t len)
{
    const unsigned char *p = (const unsigned char *)ss;
    unsigned h = 2166136261u;

    for (socklen_t i = 0; i < len; i++)
        h = (h ^ p[i]) * 16777619u;
    /* FNV's low bits depend only on the inputs' low bits, and Linux picks
     * even ephemeral ports for connect(): mix the high bits down before the
     * caller takes the hash modulo the number of workers. */
    h ^= h >> 16;
    h *= 0x85ebca6bu;
    h ^= h >> 13;
    h *= 0xc2b2ae35u;
    h ^= h >> 16;
    return h;
}

static void acceptor_handoff(gw_acceptor_t *a, int fd,
                             const struct sockaddr_storage *ss, socklen_t len)
{
    gw_server_t *srv = a->srv;
    gw_worker_t *w =
        srv->workers[acceptor_hash(ss, len) % (unsigned)srv->nworkers];

    if (gw_queue_push(&w->fds, (void *)(intptr_t)fd) != 0) {
        gw_stat_add(&a->stats, GW_STAT_ACCEPT_DROPS, 1);
        gw_log_limited(&a->drop_log, GW_LOG_WARN,
                       "acceptor: worker %d queue full, connection dropped",
                       w->id);
        close(fd);
    }
}

static void acceptor_resume_cb(uv_timer_t *t);

static void acceptor_poll_cb(uv_poll_t *p, int status, int events)
{
    gw_acceptor_t *a = p->data;
    (void)events;

    if (status < 0)
        return;
    for (int i = 0; i < ACCEPTOR_BATCH; i++) {
        struct sockaddr_storage ss;
        socklen_t len = sizeof(ss);
        int fd = accept4(a->fd, (struct sockaddr *)&ss, &len,
                         SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd >= 0) {
            acceptor_handoff(a, fd, &ss, len);
            continue;
        }
        if (errno == EINTR || errno == ECONNABORTED)
            continue;
        if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS ||
            errno == ENOMEM) {
            gw_warn("acceptor: %s; pausing accepts for %d ms", strerror(errno),
                    ACCEPTOR_PAUSE_MS);
            uv_poll_stop(&a->poll);
            uv_timer_start(&a->pause, acceptor_resume_cb, ACCEPTOR_PAUSE_MS, 0);
        }
        return;
    }
}

static void acceptor_resume_cb(uv_timer_t *t)
{
    gw_acceptor_t *a = t->data;

    if (atomic_load(&a->phase) == ACCEPTOR_ACCEPTING)
        uv_poll_start(&a->poll, UV_READABLE, acceptor_poll_cb);
}

/* The socket closes only after libuv has stopped watching it. */
static void acceptor_poll_close_cb(uv_handle_t *h)
{
    gw_acceptor_t *a = h->data;

    close(a->fd);
    a->fd = -1;
}

static void acceptor_stop_cb(uv_async_t *h)
{
    gw_acceptor_t *a = h->data;

    if (!uv_is_closing((uv_handle_t *)&a->poll)) {
        uv_timer_stop(&a->pause);
        uv_close((uv_handle_t *)&a->poll, acceptor_poll_close_cb);
    }
    if (atomic_load(&a->phase) < ACCEPTOR_STOPPING)
        return;
    uv_close((uv_handle_t *)&a->pause, NULL);
    uv_close((uv_handle_t *)&a->stop, NULL);
}

static void acceptor_main(void *arg)
{
    gw_acceptor_t *a = arg;

    uv_run(&a->loop, UV_RUN_DEFAULT);
}

/* Opens the listening socket on bind:port, IPv4 or IPv6; -1 on failure. */
static int acceptor_listen(const char *bind_addr, int port)
{
    struct sockaddr_storage ss;
    int fd, one = 1;

    memset(&ss, 0, sizeof(ss));
    if (uv_ip4_addr(bind_addr, port, (struct sockaddr_in *)&ss) != 0 &&
        uv_ip6_addr(bind_addr, port, (struct sockaddr_in6 *)&ss) != 0) {
        gw_error("bad bind address: %s", bind_addr);
        return -1;
    }
    fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        goto Error;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (bind(fd, (struct sockaddr *)&ss,
             ss.ss_family == AF_INET6 ? sizeof(struct sockaddr_in6)
                                      : sizeof(struct sockaddr_in)) != 0 ||
        listen(fd, ACCEPTOR_BACKLOG) != 0)
        goto Error;
    return fd;
Error:
    gw_error("cannot listen on %s:%d: %s", bind_addr, port, strerror(errno));
    if (fd >= 0)
        close(fd);
    return -1;
}

gw_acceptor_t *gw_acceptor_start(gw_server_t *srv)
{
    gw_acceptor_t *a = gw_calloc(1, sizeof(*a));

    a->srv = srv;
    a->fd = acceptor_listen(srv->cfg->bind, srv->cfg->ws_port);
    if (a->fd < 0) {
        free(a);
        return NULL;
    }
    uv_loop_init(&a->loop);
    uv_poll_init(&a->loop, &a->poll, a->fd);
    uv_timer_init(&a->loop, &a->pause);
    uv_async_init(&a->loop, &a->stop, acceptor_stop_cb);
    a->poll.data = a->pause.data = a->stop.data = a;
    atomic_init(&a->phase, ACCEPTOR_ACCEPTING);
    uv_poll_start(&a->poll, UV_READABLE, acceptor_poll_cb);
    if (uv_thread_create(&a->thread, acceptor_main, a) != 0) {
        gw_error("cannot start the acceptor thread");
        abort();
    }
    return a;
}

void gw_acceptor_pause(gw_acceptor_t *a)
{
    atomic_store(&a->phase, ACCEPTOR_PAUSED);
    uv_async_send(&a->stop);
}

void gw_acceptor_stop(gw_acceptor_t *a)
{
    atomic_store(&a->phase, ACCEPTOR_STOPPING);
    uv_async_send(&a->stop);
    uv_thread_join(&a->thread);
    uv_loop_close(&a->loop);
    free(a);
}
