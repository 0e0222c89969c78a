#include "cluster.h"

#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "target.h"
#include "util.h"

#define CLUSTER_START_MS 15000
#define CLUSTER_POLL_MS 20
#define CLUSTER_HTTP_MS 500

static void cluster_sleep_ms(int ms)
{
    poll(NULL, 0, ms);
}

/* A free port none of the first n of taken is (the kernel may hand out a
 * port again once its probe socket closed); -1 when none could be had. */
static int cluster_port(int *taken, unsigned n)
{
    for (int tries = 0; tries < 20; tries++) {
        int port = target_free_port();
        unsigned i = 0;

        while (i < n && taken[i] != port)
            i++;
        if (port > 0 && i == n)
            return taken[n] = port;
    }
    return -1;
}

int cluster_init(cluster_t *c, unsigned n)
{
    int taken[2 * CLUSTER_MAX_INST + 1];
    unsigned k = 0;

    memset(c, 0, sizeof(*c));
    if (n == 0 || n > CLUSTER_MAX_INST) {
        util_warn("1 to %d instances, not %u", CLUSTER_MAX_INST, n);
        return -1;
    }
    c->n = n;
    for (unsigned i = 0; i < n; i++) {
        c->gw[i].status = -1;
        if ((c->gw[i].ws_port = cluster_port(taken, k++)) <= 0 ||
            (c->gw[i].http_port = cluster_port(taken, k++)) <= 0)
            goto Error;
    }
    if ((c->proxy_port = cluster_port(taken, k)) <= 0)
        goto Error;
    return 0;
Error:
    util_warn("not enough free loopback ports");
    return -1;
}

static int cluster_write_config(const cluster_conf_t *cc,
                                const cluster_inst_t *in, const char *path)
{
    const opts_t *o = cc->o;
    FILE *f = fopen(path, "w");

    if (f == NULL)
        return -1;
    fprintf(
        f,
        "[server]\nbind = \"127.0.0.1\"\nws_port = %d\nhttp_port = %d\n"
        "workers = %ld\n\n[session]\nheartbeat_interval_ms = %ld\n\n"
        "[auth]\njwt_secret = \"%s\"\n\n[http]\npublish_api_key = \"%s\"\n\n"
        "[broker]\ninstance_id = \"%s\"\n\n",
        in->ws_port, in->http_port, o->workers, o->heartbeat_ms, o->jwt_secret,
        o->api_key, in->id);
    /* Presence is measured on its own (bench/presence.sh). */
    fprintf(f,
            "[redis]\nenabled = true\nhost = \"%s\"\nport = %d\n"
            "channel = \"%s\"\n\n[amqp]\nenabled = false\n\n"
            "[presence]\nenabled = false\n\n[log]\nlevel = \"warn\"\n",
            cc->redis_host, cc->redis_port, cc->channel);
    return fclose(f);
}

/* Healthy, and its Redis link up. */
static int cluster_ready(const cluster_inst_t *in)
{
    char body[2048];

    return target_get("127.0.0.1", in->http_port, "/health", NULL, body,
                      sizeof(body), CLUSTER_HTTP_MS) == 200 &&
           strstr(body, "\"redis\":\"up\"") != NULL;
}

static int cluster_start_gw(cluster_t *c, const cluster_conf_t *cc, unsigned i)
{
    cluster_inst_t *in = &c->gw[i];
    char conf[160], log[48];
    char *argv[4 + 2 * (CLUSTER_MAX_SETS + OPTS_MAX_LIST)];
    int argc = 0;

    snprintf(in->id, sizeof(in->id), "%s%u", cc->id_prefix, i + 1);
    snprintf(conf, sizeof(conf), "%s/%s.toml", cc->dir, in->id);
    snprintf(log, sizeof(log), "%s.log", in->id);
    if (cluster_write_config(cc, in, conf) != 0) {
        util_warn("cannot write %s", conf);
        return -1;
    }
    argv[argc++] = (char *)cc->o->gatewayd;
    argv[argc++] = "-c";
    argv[argc++] = conf;
    for (size_t k = 0; cc->sets != NULL && cc->sets[k] != NULL; k++) {
        if (k == CLUSTER_MAX_SETS)
            util_die("cluster: more than %d settings", CLUSTER_MAX_SETS);
        argv[argc++] = "-s";
        argv[argc++] = (char *)cc->sets[k];
    }
    for (size_t k = 0; k < cc->o->gw_set.n; k++) {
        argv[argc++] = "-s";
        argv[argc++] = (char *)cc->o->gw_set.v[k];
    }
    argv[argc] = NULL;
    in->pid = target_spawn(argv, NULL, 0, cc->dir, log);
    if (in->pid < 0) {
        in->pid = 0;
        return -1;
    }
    return 0;
}

static int cluster_wait_gw(cluster_t *c, const cluster_conf_t *cc, unsigned i)
{
    for (int waited = 0; waited < CLUSTER_START_MS; waited += CLUSTER_POLL_MS) {
        if (cluster_ready(&c->gw[i]))
            return 0;
        if (cluster_exited(c, i))
            break;
        cluster_sleep_ms(CLUSTER_POLL_MS);
    }
    util_warn("%s did not become healthy with Redis up (see %s/%s.log)",
              c->gw[i].id, cc->dir, c->gw[i].id);
    return -1;
}

/* HAProxy on port answers an HTTP request (with whatever status the
 * instance behind it gives a GET / that is no upgrade). */
static int cluster_listens(int port)
{
    char out[16];

    return target_get("127.0.0.1", port, "/", NULL, out, sizeof(out),
                      CLUSTER_HTTP_MS) > 0;
}

/* HAProxy reads its addresses from the environment (deploy/haproxy.cfg);
 * they are set in ours before the fork, which only it reads. */
static void cluster_proxy_env(const cluster_t *c, const cluster_conf_t *cc)
{
    char v[64];

    snprintf(v, sizeof(v), "127.0.0.1:%d", c->proxy_port);
    setenv("GW_LISTEN", v, 1);
    for (unsigned i = 0; i < c->n; i++) {
        char name[32];

        snprintf(name, sizeof(name), "GW%u_ADDR", i + 1);
        snprintf(v, sizeof(v), "127.0.0.1:%d", c->gw[i].ws_port);
        setenv(name, v, 1);
        snprintf(name, sizeof(name), "GW%u_HEALTH", i + 1);
        snprintf(v, sizeof(v), "%d", c->gw[i].http_port);
        setenv(name, v, 1);
    }
    snprintf(v, sizeof(v), "%lu", cc->maxconn);
    setenv("GW_MAXCONN", v, 1);
    snprintf(v, sizeof(v), "%lu", cc->per_ip);
    setenv("GW_CONN_PER_IP", v, 1);
    setenv("GW_CONN_RATE_PER_IP", v, 1);
}

static int cluster_start_proxy(cluster_t *c, const cluster_conf_t *cc)
{
    char *argv[] = {"haproxy", "-db", "-f", (char *)cc->haproxy_cfg, NULL};

    cluster_proxy_env(c, cc);
    c->proxy_pid = target_spawn(argv, NULL, 0, cc->dir, "haproxy.log");
    if (c->proxy_pid < 0) {
        c->proxy_pid = 0;
        return -1;
    }
    for (int waited = 0; waited < CLUSTER_START_MS; waited += CLUSTER_POLL_MS) {
        if (cluster_listens(c->proxy_port))
            return 0;
        if (waitpid(c->proxy_pid, NULL, WNOHANG) == c->proxy_pid) {
            c->proxy_pid = 0;
            break;
        }
        cluster_sleep_ms(CLUSTER_POLL_MS);
    }
    util_warn("haproxy -f %s did not listen on port %d (see %s/haproxy.log)",
              cc->haproxy_cfg, c->proxy_port, cc->dir);
    return -1;
}

int cluster_start(cluster_t *c, const cluster_conf_t *cc)
{
    for (unsigned i = 0; i < c->n; i++)
        if (cluster_start_gw(c, cc, i) != 0)
            return -1;
    for (unsigned i = 0; i < c->n; i++)
        if (cluster_wait_gw(c, cc, i) != 0)
            return -1;
    return cc->haproxy_cfg != NULL ? cluster_start_proxy(c, cc) : 0;
}

int cluster_get(const cluster_t *c, unsigned i, const char *path, char *out,
                size_t cap, int timeout_ms)
{
    if (i >= c->n || c->gw[i].http_port <= 0)
        return -1;
    return target_get("127.0.0.1", c->gw[i].http_port, path, NULL, out, cap,
                      timeout_ms);
}

int cluster_signal(const cluster_t *c, unsigned i, int sig)
{
    if (i >= c->n || c->gw[i].pid <= 0)
        return -1;
    return kill(c->gw[i].pid, sig);
}

int cluster_exited(cluster_t *c, unsigned i)
{
    cluster_inst_t *in = &c->gw[i];
    siginfo_t si;

    if (in->pid <= 0)
        return in->status >= 0;
    /* Seen exited but not reaped: a zombie's /proc still has its CPU. */
    memset(&si, 0, sizeof(si));
    if (waitid(P_PID, (id_t)in->pid, &si, WEXITED | WNOHANG | WNOWAIT) != 0 ||
        si.si_pid != in->pid)
        return 0;
    in->exit_ok = proc_read_cpu(in->pid, &in->at_exit) == 0;
    if (waitpid(in->pid, &in->status, 0) != in->pid)
        in->status = 0;
    in->pid = 0;
    return 1;
}

void cluster_stop(cluster_t *c)
{
    if (c->proxy_pid > 0)
        target_stop_pid(c->proxy_pid, SIGTERM);
    c->proxy_pid = 0;
    for (unsigned i = 0; i < c->n; i++) {
        if (c->gw[i].pid <= 0 || cluster_exited(c, i))
            continue;
        c->gw[i].status = target_stop_pid(c->gw[i].pid, SIGINT);
        c->gw[i].pid = 0;
    }
}
