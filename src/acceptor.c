#include "gw/acceptor.h"

#include "gw/addr.h"
#include "gw/alloc.h"
#include "gw/cidr.h"
#include "gw/log.h"
#include "gw/peers.h"
#include "gw/worker.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
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

/* One listening socket: the plain WebSocket port, or the TLS one. */
typedef struct acceptor_port {
    gw_acceptor_t *a;
    int fd;         /* listening socket, owned; -1 once closed or unused */
    int tls;        /* its sockets are handed over as TLS ones */
    int proxy;      /* its sockets begin with a PROXY protocol header */
    uv_poll_t poll; /* readability of fd */
} acceptor_port_t;

enum { ACCEPTOR_PLAIN, ACCEPTOR_TLS, ACCEPTOR_PORTS };

struct gw_acceptor {
    gw_server_t *srv; /* borrowed */
    acceptor_port_t port[ACCEPTOR_PORTS];
    unsigned nports; /* listening: 1, or 2 with TLS */
    uv_thread_t thread;
    uv_loop_t loop;
    uv_timer_t pause; /* resumes accepting after EMFILE */
    uv_async_t stop;  /* main thread -> acceptor: pause or stop */
    atomic_int phase; /* enum acceptor_phase */
    gw_log_limit_t drop_log;
    gw_log_limit_t full_log;  /* over server.max_connections, or EMFILE */
    gw_log_limit_t proxy_log; /* sources outside server.proxy_trusted */
    gw_cidr_t *trusted;       /* owned: server.proxy_trusted */
    size_t ntrusted;
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

static void acceptor_handoff(gw_acceptor_t *a, int fd, int tls,
                             const struct sockaddr_storage *ss, socklen_t len)
{
    gw_server_t *srv = a->srv;
    gw_worker_t *w =
        srv->workers[acceptor_hash(ss, len) % (unsigned)srv->nworkers];

    if (gw_queue_push(&w->fds, gw_accepted(fd, tls)) != 0) {
        gw_stat_add(&a->stats, GW_STAT_ACCEPT_DROPS, 1);
        gw_log_limited(&a->drop_log, GW_LOG_WARN,
                       "acceptor: worker %d queue full, connection dropped",
                       w->id);
        gw_peers_leave(srv->peers);
        close(fd);
    }
}

/*
 * A socket past the cap and the refusals in progress: closed at once, so
 * that its client hears a prompt end instead of waiting in the backlog,
 * and the process keeps the descriptors it reserved for /health, the
 * broker links and its files. Returns whether it was.
 */
static int acceptor_over_cap(gw_acceptor_t *a, int fd)
{
    if (gw_peers_enter(a->srv->peers) == 0)
        return 0;
    close(fd);
    gw_stat_add(&a->stats, GW_STAT_ACCEPT_REFUSED, 1);
    gw_log_limited(&a->full_log, GW_LOG_WARN,
                   "acceptor: %u connections open, over "
                   "server.max_connections; closing new ones as accepted",
                   gw_peers_open(a->srv->peers));
    return 1;
}

/*
 * A port that expects the PROXY protocol takes connections from the
 * proxies of server.proxy_trusted only: anyone else could name whatever
 * client address it liked in a header, to slip past the per-address
 * limits or to get someone else's address throttled, and audit lines
 * would believe it. Nor is such a source served as a direct client: the
 * specification forbids guessing whether a header is there (a header
 * would then be taken as the request itself), and a proxy left out of the
 * list should be noticed at once, not have every client it relays seen
 * as its own address. The socket is closed as accepted, counted and
 * logged (rate-limited). Returns whether it was.
 */
static int acceptor_untrusted(gw_acceptor_t *a, const acceptor_port_t *port,
                              int fd, const struct sockaddr_storage *ss)
{
    char name[GW_ADDR_NAME_MAX] = "?";

    if (!port->proxy ||
        gw_cidr_match(a->trusted, a->ntrusted, (const struct sockaddr *)ss))
        return 0;
    close(fd);
    gw_stat_add(&a->stats, GW_STAT_PROXY_UNTRUSTED, 1);
    if (gw_log_on(GW_LOG_WARN))
        gw_addr_name((const struct sockaddr *)ss, 0, name, sizeof(name));
    gw_log_limited(&a->proxy_log, GW_LOG_WARN,
                   "acceptor: %s is not in server.proxy_trusted, and its port "
                   "expects the PROXY protocol: closed as accepted",
                   name);
    return 1;
}

static void acceptor_resume_cb(uv_timer_t *t);

static void acceptor_poll_cb(uv_poll_t *p, int status, int events);

/* Stops or starts watching every listening socket. */
static void acceptor_watch(gw_acceptor_t *a, int on)
{
    for (unsigned i = 0; i < a->nports; i++)
        if (on)
            uv_poll_start(&a->port[i].poll, UV_READABLE, acceptor_poll_cb);
        else
            uv_poll_stop(&a->port[i].poll);
}

static void acceptor_poll_cb(uv_poll_t *p, int status, int events)
{
    acceptor_port_t *port = p->data;
    gw_acceptor_t *a = port->a;
    (void)events;

    if (status < 0)
        return;
    for (int i = 0; i < ACCEPTOR_BATCH; i++) {
        struct sockaddr_storage ss;
        socklen_t len = sizeof(ss);
        int fd = accept4(port->fd, (struct sockaddr *)&ss, &len,
                         SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd >= 0) {
            if (!acceptor_untrusted(a, port, fd, &ss) &&
                !acceptor_over_cap(a, fd))
                acceptor_handoff(a, fd, port->tls, &ss, len);
            continue;
        }
        if (errno == EINTR || errno == ECONNABORTED)
            continue;
        if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS ||
            errno == ENOMEM) {
            gw_log_limited(&a->full_log, GW_LOG_WARN,
                           "acceptor: %s; pausing accepts for %d ms",
                           strerror(errno), ACCEPTOR_PAUSE_MS);
            acceptor_watch(a, 0);
            uv_timer_start(&a->pause, acceptor_resume_cb, ACCEPTOR_PAUSE_MS, 0);
        }
        return;
    }
}

static void acceptor_resume_cb(uv_timer_t *t)
{
    gw_acceptor_t *a = t->data;

    if (atomic_load(&a->phase) == ACCEPTOR_ACCEPTING)
        acceptor_watch(a, 1);
}

/* A socket closes only after libuv has stopped watching it. */
static void acceptor_poll_close_cb(uv_handle_t *h)
{
    acceptor_port_t *port = h->data;

    close(port->fd);
    port->fd = -1;
}

static void acceptor_stop_cb(uv_async_t *h)
{
    gw_acceptor_t *a = h->data;

    uv_timer_stop(&a->pause);
    for (unsigned i = 0; i < a->nports; i++)
        if (!uv_is_closing((uv_handle_t *)&a->port[i].poll))
            uv_close((uv_handle_t *)&a->port[i].poll, acceptor_poll_close_cb);
    if (atomic_load(&a->phase) < ACCEPTOR_STOPPING)
        return;
    uv_close((uv_handle_t *)&a->pause, NULL);
    uv_close((uv_handle_t *)&a->stop, NULL);
}

static void acceptor_main(void *arg)
{
    gw_acceptor_t *a = arg;

    pthread_setname_np(pthread_self(), "gw-acceptor");
    uv_run(&a->loop, UV_RUN_DEFAULT);
}

/*
 * Opens the listening socket on bind:port, IPv4 or IPv6; -1 on failure.
 * TCP_NODELAY here is inherited by every socket it accepts (Linux copies
 * the listener's options): a frame goes out as it is written, without a
 * setsockopt per connection.
 */
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
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
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

/* Parses server.proxy_trusted, which the configuration's check passed;
 * a list that did not would trust nobody. */
static void acceptor_trust(gw_acceptor_t *a, const char *list)
{
    int n = gw_cidr_parse(list, NULL, 0, NULL);

    a->ntrusted = n > 0 ? (size_t)n : 0;
    a->trusted = gw_calloc(a->ntrusted + 1, sizeof(*a->trusted));
    gw_cidr_parse(list, a->trusted, a->ntrusted, NULL);
}

gw_acceptor_t *gw_acceptor_start(gw_server_t *srv)
{
    gw_acceptor_t *a = gw_calloc(1, sizeof(*a));
    const gw_config_t *cfg = srv->cfg;

    a->srv = srv;
    a->nports = srv->tls != NULL ? 2 : 1;
    for (unsigned i = 0; i < a->nports; i++)
        a->port[i] = (acceptor_port_t){
            a,
            -1,
            i == ACCEPTOR_TLS,
            i == ACCEPTOR_TLS ? cfg->tls_proxy_protocol : cfg->proxy_protocol,
            {0}};
    acceptor_trust(a, cfg->proxy_trusted);
    for (unsigned i = 0; i < a->nports; i++) {
        a->port[i].fd = acceptor_listen(
            cfg->bind, i == ACCEPTOR_TLS ? cfg->tls_port : cfg->ws_port);
        if (a->port[i].fd < 0)
            goto Error;
    }
    uv_loop_init(&a->loop);
    for (unsigned i = 0; i < a->nports; i++) {
        uv_poll_init(&a->loop, &a->port[i].poll, a->port[i].fd);
        a->port[i].poll.data = &a->port[i];
    }
    uv_timer_init(&a->loop, &a->pause);
    uv_async_init(&a->loop, &a->stop, acceptor_stop_cb);
    a->pause.data = a->stop.data = a;
    atomic_init(&a->phase, ACCEPTOR_ACCEPTING);
    acceptor_watch(a, 1);
    if (uv_thread_create(&a->thread, acceptor_main, a) != 0) {
        gw_error("cannot start the acceptor thread");
        abort();
    }
    return a;
Error:
    for (unsigned i = 0; i < a->nports; i++)
        if (a->port[i].fd >= 0)
            close(a->port[i].fd);
    free(a->trusted);
    free(a);
    return NULL;
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
    free(a->trusted);
    free(a);
}
