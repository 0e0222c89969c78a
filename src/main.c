/*
 * gatewayd: a real-time WebSocket gateway. This file only reads the command
 * line and the configuration, starts the server and waits for signals.
 */
#include "gw/alloc.h"
#include "gw/authkeys.h"
#include "gw/config.h"
#include "gw/log.h"
#include "gw/server.h"
#include "gw/version.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <uv.h>

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

/* Where the configuration comes from: the file, then the -s overrides. */
typedef struct main_source {
    const char *path;
    char **sets;
    int nsets;
} main_source_t;

/* The main thread's state: the server, the drain in progress, and the
 * configurations SIGHUP made. */
typedef struct main_ctx {
    gw_server_t *srv;
    main_source_t src;
    const gw_config_t *cur; /* the latest configuration */
    gw_config_t **reloads;  /* owned: every SIGHUP's, freed at exit */
    size_t nreloads;
    uv_signal_t sigs[3];
    uv_timer_t drain;  /* polls the connection count while draining */
    uint64_t deadline; /* when the drain gives up waiting */
    int draining;
} main_ctx_t;

/* The file, then the -s overrides in order, so that they win, then the
 * options checked together, then the key files the result names. Returns 0, or
 * -1 with the reason in err. */
static int main_configure(gw_config_t *cfg, const main_source_t *src, char *err,
                          size_t errlen)
{
    if (gw_config_load(cfg, src->path, err, errlen) != 0)
        return -1;
    for (int i = 0; i < src->nsets; i++)
        if (gw_config_set(cfg, src->sets[i], err, errlen) != 0)
            return -1;
    if (gw_config_check(cfg, err, errlen) != 0)
        return -1;
    return gw_authkeys_load(cfg, err, errlen) != 0 ? -1 : 0;
}

/*
 * SIGHUP: reads the configuration again and hands the threads what they
 * can follow at run time; the rest is held back and named. A snapshot is
 * kept until exit, since a thread may still read an older one: they are
 * small, and reloads are rare.
 */
/* The log switches of cfg, which every thread reads (atomics). */
static void main_apply_log(const gw_config_t *cfg)
{
    gw_log_level = gw_log_parse_level(cfg->log_level);
    gw_log_format = gw_log_parse_format(cfg->log_format);
    gw_log_audit = cfg->log_audit;
}

static void main_reload(main_ctx_t *m)
{
    gw_config_t *next = gw_malloc(sizeof(*next));
    char err[512], held[512];

    gw_config_init(next);
    if (main_configure(next, &m->src, err, sizeof(err)) != 0) {
        gw_error("SIGHUP: %s; the configuration is unchanged", err);
        gw_config_free(next);
        free(next);
        return;
    }
    gw_config_keep_restart_only(next, m->cur, held, sizeof(held));
    if (held[0] != '\0')
        gw_warn("SIGHUP: %s changed; that takes a restart, kept as it was",
                held);
    m->reloads =
        gw_realloc(m->reloads, (m->nreloads + 1) * sizeof(*m->reloads));
    m->reloads[m->nreloads++] = next;
    m->cur = next;
    gw_server_reconfigure(m->srv, next);
    /* Said at the old level: a reload that raises it is still logged. */
    gw_info("SIGHUP: configuration reloaded from %s", m->src.path);
    main_apply_log(next);
}

static void main_drain_cb(uv_timer_t *t)
{
    main_ctx_t *m = t->data;

    /* Drained sessions handed off wait for their claim: their clients are
     * resuming elsewhere and ask this instance for them. */
    if ((gw_server_connections(m->srv) == 0 &&
         gw_server_handoffs_waiting(m->srv) == 0) ||
        uv_now(t->loop) >= m->deadline)
        uv_stop(t->loop);
}

/* How long past the drain its handed-off sessions may wait for a claim. */
static uint64_t main_handoff_wait(const gw_config_t *cfg)
{
    return cfg->redis_enabled && cfg->handoff && cfg->resume_window_ms > 0
               ? cfg->handoff_wait_ms
               : 0;
}

/* SIGTERM drains (once); SIGINT, or SIGTERM during a drain, stops now. */
static void main_signal_cb(uv_signal_t *h, int signum)
{
    main_ctx_t *m = h->data;

    if (signum == SIGHUP) {
        main_reload(m);
        return;
    }
    if (signum == SIGTERM && !m->draining) {
        m->draining = 1;
        m->deadline = uv_now(h->loop) + m->srv->cfg->drain_ms +
                      MAIN_DRAIN_GRACE_MS + main_handoff_wait(m->srv->cfg);
        gw_server_drain(m->srv);
        uv_timer_start(&m->drain, main_drain_cb, 0, MAIN_DRAIN_POLL_MS);
        return;
    }
    gw_info("%s: shutting down", strsignal(signum));
    uv_stop(h->loop);
}

/* The signals the main thread's loop watches, in m->sigs. */
static const int main_signals[3] = {SIGTERM, SIGINT, SIGHUP};

/* Watches the signals on the main thread's loop. */
static void main_watch(uv_loop_t *loop, main_ctx_t *m)
{
    uv_timer_init(loop, &m->drain);
    m->drain.data = m;
    for (int i = 0; i < 3; i++) {
        uv_signal_init(loop, &m->sigs[i]);
        m->sigs[i].data = m;
        uv_signal_start(&m->sigs[i], main_signal_cb, main_signals[i]);
    }
}

/*
 * Only once the server has stopped: a signal during the stop must not kill
 * it. Closing the watchers restores the default actions, which would let a
 * SIGTERM arriving while the process exits (the sanitizers' checks at exit
 * take a while) kill it; so the three are blocked meanwhile, then ignored.
 */
static void main_unwatch(uv_loop_t *loop, main_ctx_t *m)
{
    sigset_t set;

    sigemptyset(&set);
    for (int i = 0; i < 3; i++)
        sigaddset(&set, main_signals[i]);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    for (int i = 0; i < 3; i++)
        uv_close((uv_handle_t *)&m->sigs[i], NULL);
    uv_close((uv_handle_t *)&m->drain, NULL);
    uv_run(loop, UV_RUN_DEFAULT);
    for (int i = 0; i < 3; i++)
        signal(main_signals[i], SIG_IGN);
}

/*
 * The last line of a start-up on the shipped development secret, as `make
 * run` starts: where a newcomer goes next (README, "Quick start"). Other
 * configurations start quietly.
 */
static void main_hint(const gw_config_t *cfg)
{
    if (strcmp(cfg->jwt_secret, GW_CONFIG_DEV_JWT_SECRET) != 0)
        return;
    gw_info("development secret in use (never in production); try it: "
            "./gwctl tail --dev --user u1 --guild g1 & then ./gwctl publish "
            "--guild g1 --event message.create, and the dashboard "
            "http://localhost:%d/dashboard (README, \"Quick start\")",
            cfg->http_port);
}

/* Runs the server until a signal stops it; the process's exit status. */
static int main_serve(const gw_config_t *cfg, const main_source_t *src)
{
    uv_loop_t *loop = uv_default_loop();
    gw_server_t srv = {0};
    main_ctx_t m = {.srv = &srv, .src = *src, .cur = cfg};
    int rc = 1;

    /* A peer that resets the socket must cost an EPIPE, not the process. */
    signal(SIGPIPE, SIG_IGN);
    main_watch(loop, &m);
    if (gw_server_start(&srv, cfg) == 0) {
        main_hint(cfg);
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
    for (size_t i = 0; i < m.nreloads; i++) {
        gw_config_free(m.reloads[i]);
        free(m.reloads[i]);
    }
    free(m.reloads);
    return rc;
}

int main(int argc, char **argv)
{
    main_source_t src = {"conf/gateway.toml",
                         calloc((size_t)argc, sizeof(char *)), 0};
    char **sets = src.sets, err[512];
    int opt, check = 0, rc;
    gw_config_t cfg;

    while ((opt = getopt(argc, argv, "c:s:tvh")) != -1) {
        switch (opt) {
        case 'c': src.path = optarg; break;
        case 's': sets[src.nsets++] = optarg; break;
        case 't': check = 1; break;
        case 'v': printf("gatewayd %s\n", GW_VERSION); goto Exit;
        case 'h': usage(stdout); goto Exit;
        default:
            usage(stderr);
            free(sets);
            return 2;
        }
    }
    gw_config_init(&cfg);
    if (main_configure(&cfg, &src, err, sizeof(err)) != 0) {
        fprintf(stderr, "gatewayd: %s\n", err);
        rc = 1;
    } else if (check) {
        gw_config_dump(&cfg, stdout);
        printf("# configuration %s is valid\n", src.path);
        rc = 0;
    } else {
        main_apply_log(&cfg);
        rc = main_serve(&cfg, &src);
    }
    gw_config_free(&cfg);
    free(sets);
    return rc;
Exit:
    free(sets);
    return 0;
}
