/*
 * gatewayd: a real-time WebSocket gateway. This file only reads the command
 * line and the configuration, starts the server and waits for signals.
 */
#include "gw/config.h"
#include "gw/log.h"
#include "gw/server.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <uv.h>

#define GATEWAYD_VERSION "0.1.0"

static void usage(FILE *out)
{
    fprintf(
        out,
        "usage: gatewayd [-c FILE] [-s section.key=value]... [-t] [-v] [-h]\n"
        "  -c FILE   configuration file (default conf/gateway.toml)\n"
        "  -s K=V    override one option, e.g. -s server.workers=4\n"
        "  -t        check the configuration, print it, and exit\n"
        "  -v        print the version and exit\n");
}

/* Time a drain may take beyond its window: the last close handshakes. */
#define MAIN_DRAIN_GRACE_MS 4000
#define MAIN_DRAIN_POLL_MS 100

/* The main thread's state: the server and the drain in progress. */
typedef struct main_ctx {
    gw_server_t *srv;
    uv_signal_t sigs[3];
    uv_timer_t drain;  /* polls the connection count while draining */
    uint64_t deadline; /* when the drain gives up waiting */
    int draining;
} main_ctx_t;

static void main_drain_cb(uv_timer_t *t)
{
    main_ctx_t *m = t->data;

    if (gw_server_connections(m->srv) == 0 || uv_now(t->loop) >= m->deadline)
        uv_stop(t->loop);
}

/* SIGTERM drains (once); SIGINT, or SIGTERM during a drain, stops now. */
static void main_signal_cb(uv_signal_t *h, int signum)
{
    main_ctx_t *m = h->data;

    if (signum == SIGHUP) {
        gw_warn("SIGHUP: configuration reload is not supported yet; ignored");
        return;
    }
    if (signum == SIGTERM && !m->draining) {
        m->draining = 1;
        m->deadline =
            uv_now(h->loop) + m->srv->cfg->drain_ms + MAIN_DRAIN_GRACE_MS;
        gw_server_drain(m->srv);
        uv_timer_start(&m->drain, main_drain_cb, 0, MAIN_DRAIN_POLL_MS);
        return;
    }
    gw_info("%s: shutting down", strsignal(signum));
    uv_stop(h->loop);
}

/* Watches the signals on the main thread's loop. */
static void main_watch(uv_loop_t *loop, main_ctx_t *m)
{
    const int nums[3] = {SIGTERM, SIGINT, SIGHUP};

    uv_timer_init(loop, &m->drain);
    m->drain.data = m;
    for (int i = 0; i < 3; i++) {
        uv_signal_init(loop, &m->sigs[i]);
        m->sigs[i].data = m;
        uv_signal_start(&m->sigs[i], main_signal_cb, nums[i]);
    }
}

/* Closing the watchers restores the default actions, so this happens only
 * once the server has stopped: a signal during the stop must not kill it. */
static void main_unwatch(uv_loop_t *loop, main_ctx_t *m)
{
    for (int i = 0; i < 3; i++)
        uv_close((uv_handle_t *)&m->sigs[i], NULL);
    uv_close((uv_handle_t *)&m->drain, NULL);
    uv_run(loop, UV_RUN_DEFAULT);
}

/* The file, then the -s overrides in order, so that they win. */
static int main_configure(gw_config_t *cfg, const char *path, char **sets,
                          int nsets)
{
    char err[512];

    if (gw_config_load(cfg, path, err, sizeof(err)) != 0)
        goto Error;
    for (int i = 0; i < nsets; i++)
        if (gw_config_set(cfg, sets[i], err, sizeof(err)) != 0)
            goto Error;
    gw_log_level = gw_log_parse_level(cfg->log_level);
    return 0;
Error:
    fprintf(stderr, "gatewayd: %s\n", err);
    return -1;
}

/* Runs the server until a signal stops it; the process's exit status. */
static int main_serve(const gw_config_t *cfg)
{
    uv_loop_t *loop = uv_default_loop();
    gw_server_t srv = {0};
    main_ctx_t m = {.srv = &srv};
    int rc = 1;

    /* A peer that resets the socket must cost an EPIPE, not the process. */
    signal(SIGPIPE, SIG_IGN);
    main_watch(loop, &m);
    if (gw_server_start(&srv, cfg) == 0) {
        /* Until SIGINT, a second SIGTERM, or the end of a drain. The loop is
         * closed after the server, so that its descriptors are not recycled
         * while other threads still open sockets. */
        uv_run(loop, UV_RUN_DEFAULT);
        gw_server_stop(&srv);
        gw_info("stopped");
        rc = 0;
    }
    main_unwatch(loop, &m);
    uv_loop_close(loop);
    return rc;
}

int main(int argc, char **argv)
{
    const char *path = "conf/gateway.toml";
    char **sets = calloc((size_t)argc, sizeof(*sets));
    int opt, check = 0, nsets = 0, rc;
    gw_config_t cfg;

    while ((opt = getopt(argc, argv, "c:s:tvh")) != -1) {
        switch (opt) {
        case 'c': path = optarg; break;
        case 's': sets[nsets++] = optarg; break;
        case 't': check = 1; break;
        case 'v': printf("gatewayd %s\n", GATEWAYD_VERSION); goto Exit;
        case 'h': usage(stdout); goto Exit;
        default:
            usage(stderr);
            free(sets);
            return 2;
        }
    }
    gw_config_init(&cfg);
    if (main_configure(&cfg, path, sets, nsets) != 0) {
        rc = 1;
    } else if (check) {
        gw_config_dump(&cfg, stdout);
        printf("# configuration %s is valid\n", path);
        rc = 0;
    } else {
        rc = main_serve(&cfg);
    }
    gw_config_free(&cfg);
    free(sets);
    return rc;
Exit:
    free(sets);
    return 0;
}
