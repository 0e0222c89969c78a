#include "target.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "gw/alloc.h"
#include "util.h"

#define TARGET_START_TIMEOUT_MS 15000
#define TARGET_STOP_TIMEOUT_MS 5000
/* A RabbitMQ node boots in seconds, more on a busy machine; a clean stop
 * flushes its state. Both as test/e2e allows them. */
#define TARGET_RABBIT_START_MS 60000
#define TARGET_RABBIT_STOP_MS 15000
#define TARGET_RABBIT_SCRIPT "/usr/lib/rabbitmq/bin/rabbitmq-server"
#define TARGET_ENV_OWN 16 /* variables set for the node */

extern char **environ;

int target_free_port(void)
{
    struct sockaddr_in sa = {.sin_family = AF_INET};
    socklen_t len = sizeof(sa);
    int fd = socket(AF_INET, SOCK_STREAM, 0), port = -1;

    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd >= 0 && bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0 &&
        getsockname(fd, (struct sockaddr *)&sa, &len) == 0)
        port = ntohs(sa.sin_port);
    if (fd >= 0)
        close(fd);
    return port;
}

/* A blocking connection to host:port whose reads and writes give up after
 * timeout_ms; -1 when it fails. */
static int target_dial(const char *host, int port, int timeout_ms)
{
    struct sockaddr_in sa = {.sin_family = AF_INET};
    struct timeval tv = {timeout_ms / 1000, (timeout_ms % 1000) * 1000};
    int fd;

    sa.sin_port = htons((uint16_t)port);
    if (inet_pton(AF_INET, host, &sa.sin_addr) != 1)
        return -1;
    if ((fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0)
        return -1;
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

/* Sends req and reads until the peer closes or out is full. */
static ssize_t target_exchange(int fd, const char *req, char *out, size_t cap)
{
    size_t have = 0;
    ssize_t n;

    if (write(fd, req, strlen(req)) != (ssize_t)strlen(req))
        return -1;
    while (have + 1 < cap && (n = read(fd, out + have, cap - 1 - have)) > 0)
        have += (size_t)n;
    out[have] = '\0';
    return (ssize_t)have;
}

int target_get(const char *host, int port, const char *path,
               const char *api_key, char *out, size_t cap, int timeout_ms)
{
    char req[2048], key[160] = "", *body;
    int fd, status = -1, n;

    if (api_key != NULL)
        snprintf(key, sizeof(key), "X-API-Key: %s\r\n", api_key);
    n = snprintf(req, sizeof(req),
                 "GET %s HTTP/1.1\r\nHost: %s:%d\r\n%sConnection: close\r\n"
                 "\r\n",
                 path, host, port, key);
    if (n < 0 || (size_t)n >= sizeof(req) ||
        (fd = target_dial(host, port, timeout_ms)) < 0)
        return -1;
    if (target_exchange(fd, req, out, cap) > 12 &&
        sscanf(out, "HTTP/1.%*d %d", &status) == 1 &&
        (body = strstr(out, "\r\n\r\n")) != NULL)
        memmove(out, body + 4, strlen(body + 4) + 1);
    close(fd);
    return status;
}

int target_http_get(const target_t *t, const char *path, char *out, size_t cap,
                    int timeout_ms)
{
    return target_get(t->host, t->http_port, path, NULL, out, cap, timeout_ms);
}

int target_http_get_inst(const target_t *t, unsigned i, const char *path,
                         const char *api_key, char *out, size_t cap,
                         int timeout_ms)
{
    if (i >= t->ninst || t->inst[i].http_port == 0)
        return -1;
    return target_get(t->inst[i].host, t->inst[i].http_port, path, api_key, out,
                      cap, timeout_ms);
}

static int target_redis_ping(const target_t *t)
{
    char out[64];
    int fd = target_dial(t->redis_host, t->redis_port, 500), ok;

    if (fd < 0)
        return 0;
    ok = write(fd, "PING\r\n", 6) == 6 && read(fd, out, sizeof(out)) > 0 &&
         strncmp(out, "+PONG", 5) == 0;
    close(fd);
    return ok;
}

/* Where a RESP bulk string ("$<n>\r\n" and n bytes) ends in buf, once
 * its header is there; 0 before. */
static size_t target_bulk_end(const char *buf)
{
    const char *eol = strstr(buf, "\r\n");

    if (buf[0] != '$' || eol == NULL)
        return 0;
    return (size_t)(eol + 2 - buf) + strtoull(buf + 1, NULL, 10);
}

int target_redis_info(const target_t *t, const char *section, char *out,
                      size_t cap)
{
    char req[64];
    size_t have = 0, end = 0, head;
    ssize_t n;
    int fd, len = snprintf(req, sizeof(req), "INFO %s\r\n", section);

    if (t->redis_port == 0 || len <= 0 || (size_t)len >= sizeof(req) ||
        cap < 2 || (fd = target_dial(t->redis_host, t->redis_port, 1000)) < 0)
        return -1;
    out[0] = '\0';
    if (write(fd, req, (size_t)len) == len)
        while (have + 1 < cap &&
               ((end = target_bulk_end(out)) == 0 || have < end) &&
               (n = read(fd, out + have, cap - 1 - have)) > 0)
            out[have += (size_t)n] = '\0';
    close(fd);
    if (end == 0 || have < end)
        return -1;
    head = (size_t)(strstr(out, "\r\n") + 2 - out);
    memmove(out, out + head, end - head);
    out[end - head] = '\0';
    return 0;
}

/* A RabbitMQ node that has booted answers the AMQP 0-9-1 protocol header
 * with connection.start, a method frame (type 1). The connection is then
 * dropped: the broker logs it and moves on. */
static int target_amqp_ping(const char *host, int port)
{
    static const char hdr[8] = {'A', 'M', 'Q', 'P', 0, 0, 9, 1};
    char out[8];
    int fd = target_dial(host, port, 1000), ok;

    if (fd < 0)
        return 0;
    ok = write(fd, hdr, sizeof(hdr)) == (ssize_t)sizeof(hdr) &&
         read(fd, out, sizeof(out)) > 0 && out[0] == 1;
    close(fd);
    return ok;
}

static int target_port_open(int port)
{
    int fd = target_dial("127.0.0.1", port, 500);

    if (fd < 0)
        return 0;
    close(fd);
    return 1;
}

pid_t target_spawn(char *const argv[], char *const envp[], int group,
                   const char *dir, const char *log)
{
    char path[160];
    pid_t pid;
    int fd;

    snprintf(path, sizeof(path), "%s/%s", dir, log);
    if ((pid = fork()) != 0)
        return pid;
    if (group)
        setsid();
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    fd = open(path, O_WRONLY | O_CREAT | O_APPEND, 0644);
    if (fd >= 0) {
        dup2(fd, 1);
        dup2(fd, 2);
    }
    if (envp != NULL)
        execve(argv[0], argv, envp);
    else
        execvp(argv[0], argv);
    fprintf(stderr, "exec %s: %s\n", argv[0], strerror(errno));
    _exit(127);
}

static void target_sleep_ms(int ms)
{
    poll(NULL, 0, ms);
}

static int target_start_redis(target_t *t)
{
    char port[16];
    char *argv[] = {"redis-server",
                    "--bind",
                    "127.0.0.1",
                    "--port",
                    port,
                    "--save",
                    "",
                    "--appendonly",
                    "no",
                    "--dir",
                    t->dir,
                    "--daemonize",
                    "no",
                    "--client-output-buffer-limit",
                    "pubsub 256mb 128mb 60",
                    NULL};

    snprintf(t->redis_host, sizeof(t->redis_host), "127.0.0.1");
    t->redis_port = target_free_port();
    snprintf(port, sizeof(port), "%d", t->redis_port);
    if ((t->redis_pid = target_spawn(argv, NULL, 0, t->dir, "redis.log")) < 0)
        return -1;
    for (int waited = 0; waited < TARGET_START_TIMEOUT_MS; waited += 20) {
        if (target_redis_ping(t))
            return 0;
        if (waitpid(t->redis_pid, NULL, WNOHANG) == t->redis_pid) {
            t->redis_pid = 0;
            break;
        }
        target_sleep_ms(20);
    }
    util_warn("redis-server did not answer PING (see %s/redis.log)", t->dir);
    return -1;
}

/* ---- a private RabbitMQ node ------------------------------------------ */

/* A NULL-terminated environment for execve: ours without HOME, RABBITMQ_*
 * and ERL_*, then up to TARGET_ENV_OWN variables of our own (allocated,
 * from index own). */
typedef struct target_env {
    char **v;
    size_t n, own;
} target_env_t;

static void target_env_init(target_env_t *e)
{
    size_t n = 0;

    while (environ[n] != NULL)
        n++;
    e->v = gw_calloc(n + TARGET_ENV_OWN + 1, sizeof(char *));
    e->n = 0;
    for (size_t i = 0; i < n; i++)
        if (strncmp(environ[i], "HOME=", 5) != 0 &&
            strncmp(environ[i], "RABBITMQ_", 9) != 0 &&
            strncmp(environ[i], "ERL_", 4) != 0)
            e->v[e->n++] = environ[i];
    e->own = e->n;
}

static void target_env_add(target_env_t *e, const char *name, const char *value)
{
    size_t len = strlen(name) + strlen(value) + 2;

    if (e->n - e->own >= TARGET_ENV_OWN)
        util_die("target_env_add: more than %d variables", TARGET_ENV_OWN);
    e->v[e->n] = gw_malloc(len);
    snprintf(e->v[e->n++], len, "%s=%s", name, value);
}

static void target_env_free(target_env_t *e)
{
    for (size_t i = e->own; i < e->n; i++)
        free(e->v[i]);
    free(e->v);
}

/* Three distinct free ports: AMQP, distribution, epmd. */
static int target_rabbit_ports(int ports[3])
{
    for (int tries = 0; tries < 20; tries++) {
        for (int i = 0; i < 3; i++)
            ports[i] = target_free_port();
        if (ports[0] > 0 && ports[1] > 0 && ports[2] > 0 &&
            ports[0] != ports[1] && ports[0] != ports[2] &&
            ports[1] != ports[2])
            return 0;
    }
    return -1;
}

static int target_write_file(const char *dir, const char *name,
                             const char *text)
{
    char path[192];
    FILE *f;

    snprintf(path, sizeof(path), "%s/%s", dir, name);
    if ((f = fopen(path, "w")) == NULL)
        return -1;
    fputs(text, f);
    return fclose(f);
}

/* dir/rabbitmq: data, logs, HOME, a config listening on 127.0.0.1:port
 * only, no plugins, an empty env file (the system's is not read). */
static int target_rabbit_files(const char *rdir, int port)
{
    static const char *const subs[] = {"", "/mnesia", "/log", "/home"};
    char path[160], conf[512];

    for (size_t i = 0; i < sizeof(subs) / sizeof(subs[0]); i++) {
        snprintf(path, sizeof(path), "%s%s", rdir, subs[i]);
        if (mkdir(path, 0700) != 0 && errno != EEXIST)
            return -1;
    }
    /* The tmp file system may be small: the default disk limit (50 MB
     * free) would block publishers. */
    snprintf(conf, sizeof(conf),
             "listeners.tcp.1 = 127.0.0.1:%d\n"
             "loopback_users.guest = true\n"
             "disk_free_limit.absolute = 1MB\n"
             "log.console = false\n"
             "log.file.level = warning\n",
             port);
    if (target_write_file(rdir, "rabbitmq.conf", conf) != 0 ||
        target_write_file(rdir, "enabled_plugins", "[].\n") != 0 ||
        target_write_file(rdir, "rabbitmq-env.conf", "") != 0)
        return -1;
    return 0;
}

static void target_rabbit_env(target_env_t *e, const char *rdir,
                              const int ports[3])
{
    static const struct {
        const char *name, *file;
    } files[] = {
        {"HOME", "home"},
        {"RABBITMQ_MNESIA_BASE", "mnesia"},
        {"RABBITMQ_LOG_BASE", "log"},
        {"RABBITMQ_CONFIG_FILE", "rabbitmq.conf"},
        {"RABBITMQ_ADVANCED_CONFIG_FILE", "advanced.config"},
        {"RABBITMQ_ENABLED_PLUGINS_FILE", "enabled_plugins"},
        {"RABBITMQ_CONF_ENV_FILE", "rabbitmq-env.conf"},
        {"RABBITMQ_PID_FILE", "rabbitmq.pid"},
    };
    char v[192];

    target_env_init(e);
    for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
        snprintf(v, sizeof(v), "%s/%s", rdir, files[i].file);
        target_env_add(e, files[i].name, v);
    }
    snprintf(v, sizeof(v), "gwbench-%d@localhost", ports[0]);
    target_env_add(e, "RABBITMQ_NODENAME", v);
    target_env_add(e, "RABBITMQ_NODE_IP_ADDRESS", "127.0.0.1");
    snprintf(v, sizeof(v), "%d", ports[0]);
    target_env_add(e, "RABBITMQ_NODE_PORT", v);
    snprintf(v, sizeof(v), "%d", ports[1]);
    target_env_add(e, "RABBITMQ_DIST_PORT", v);
    snprintf(v, sizeof(v), "%d", ports[2]);
    target_env_add(e, "ERL_EPMD_PORT", v);
    target_env_add(e, "ERL_EPMD_ADDRESS", "127.0.0.1");
    /* Distribution on loopback only; epmd is ours. */
    target_env_add(e, "RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS",
                   "-kernel inet_dist_use_interface {127,0,0,1} "
                   "-start_epmd false");
}

static int target_start_epmd(target_t *t, int port)
{
    char p[16];
    char *argv[] = {"epmd", "-port", p, "-address", "127.0.0.1", NULL};

    snprintf(p, sizeof(p), "%d", port);
    if ((t->epmd_pid = target_spawn(argv, NULL, 0, t->dir, "epmd.log")) < 0) {
        t->epmd_pid = 0;
        return -1;
    }
    for (int waited = 0; waited < TARGET_START_TIMEOUT_MS; waited += 20) {
        if (target_port_open(port))
            return 0;
        if (waitpid(t->epmd_pid, NULL, WNOHANG) == t->epmd_pid) {
            t->epmd_pid = 0;
            break;
        }
        target_sleep_ms(20);
    }
    util_warn("private epmd on port %d did not start (see %s/epmd.log)", port,
              t->dir);
    return -1;
}

/* 1 once pid has exited; it is left a zombie (WNOWAIT), so that its process
 * group id stays ours until target_stop_group() reaps it. */
static int target_exited(pid_t pid)
{
    siginfo_t si;

    memset(&si, 0, sizeof(si));
    return waitid(P_PID, (id_t)pid, &si, WEXITED | WNOHANG | WNOWAIT) == 0 &&
           si.si_pid == pid;
}

static int target_wait_rabbit(target_t *t)
{
    for (int waited = 0; waited < TARGET_RABBIT_START_MS; waited += 100) {
        if (target_amqp_ping(t->amqp_host, t->amqp_port))
            return 0;
        if (target_exited(t->rabbit_pid))
            break;
        target_sleep_ms(100);
    }
    util_warn("rabbitmq-server did not accept AMQP on port %d (see "
              "%s/rabbitmq.log and %s/rabbitmq/log)",
              t->amqp_port, t->dir, t->dir);
    return -1;
}

/* Starts epmd and the node; on failure target_close() stops what did
 * start. */
static int target_start_rabbit(target_t *t)
{
    char rdir[96];
    char *argv[] = {TARGET_RABBIT_SCRIPT, NULL};
    int ports[3];
    target_env_t env;

    if (access(TARGET_RABBIT_SCRIPT, X_OK) != 0) {
        util_warn("%s is missing (make bench-deps)", TARGET_RABBIT_SCRIPT);
        return -1;
    }
    snprintf(rdir, sizeof(rdir), "%s/rabbitmq", t->dir);
    if (target_rabbit_ports(ports) != 0 ||
        target_rabbit_files(rdir, ports[0]) != 0) {
        util_warn("cannot prepare %s", rdir);
        return -1;
    }
    snprintf(t->amqp_host, sizeof(t->amqp_host), "127.0.0.1");
    t->amqp_port = ports[0];
    if (target_start_epmd(t, ports[2]) != 0)
        return -1;
    target_rabbit_env(&env, rdir, ports);
    t->rabbit_pid = target_spawn(argv, env.v, 1, t->dir, "rabbitmq.log");
    target_env_free(&env);
    if (t->rabbit_pid < 0) {
        t->rabbit_pid = 0;
        return -1;
    }
    return target_wait_rabbit(t);
}

static int target_write_config(const target_t *t, const opts_t *o,
                               const char *path)
{
    FILE *f = fopen(path, "w");

    if (f == NULL)
        return -1;
    fprintf(f,
            "[server]\nbind = \"127.0.0.1\"\nws_port = %d\nhttp_port = %d\n"
            "workers = %ld\n\n[session]\nheartbeat_interval_ms = %ld\n"
            "typing_limit = %ld\n\n[auth]\njwt_secret = \"%s\"\n\n"
            "[http]\npublish_api_key = \"%s\"\n\n"
            "[broker]\ninstance_id = \"gwbench\"\n\n"
            "[redis]\nenabled = %s\nhost = \"%s\"\nport = %d\n\n",
            t->ws_port, t->http_port, o->workers, o->heartbeat_ms,
            o->typing_limit, o->jwt_secret, o->api_key,
            t->redis_port ? "true" : "false",
            t->redis_port ? t->redis_host : "127.0.0.1",
            t->redis_port ? t->redis_port : 6379);
    /* Not durable: the queue goes with the connection, so that a shared
     * broker (--amqp) keeps no queue of ours filling up after the run. */
    fprintf(f,
            "[amqp]\nenabled = %s\nhost = \"%s\"\nport = %d\n"
            "exchange = \"%s\"\nupstream_exchange = \"%s\"\n"
            "durable = false\n\n[log]\nlevel = \"warn\"\n\n"
            /* The scenarios measure fan-out, memory and relays alone;
             * presence has its own (bench/presence.sh), and --gw-set
             * presence.enabled=true measures it beside them. */
            "[presence]\nenabled = false\n",
            t->amqp_port ? "true" : "false",
            t->amqp_port ? t->amqp_host : "127.0.0.1",
            t->amqp_port ? t->amqp_port : 5672, o->exchange, o->upstream);
    if (t->tls_port != 0)
        fprintf(f,
                "\n[tls]\nenabled = true\nport = %d\ncert_file = \"%s\"\n"
                "key_file = \"%s\"\n",
                t->tls_port, o->tls_cert, o->tls_key);
    return fclose(f);
}

/* Healthy: /health answers 200, and the broker link we use is up (for
 * AMQP: the exchange, the queue and its binding are declared). */
static int target_gw_ready(const target_t *t)
{
    char body[2048];

    if (target_http_get(t, "/health", body, sizeof(body), 500) != 200)
        return 0;
    if (t->redis_port != 0 && strstr(body, "\"redis\":\"up\"") == NULL)
        return 0;
    return t->amqp_port == 0 || strstr(body, "\"amqp\":\"up\"") != NULL;
}

static int target_start_gatewayd(target_t *t, const opts_t *o)
{
    char conf[128];
    char *argv[4 + 2 * OPTS_MAX_LIST];
    int argc = 0;

    t->ws_port = target_free_port();
    t->http_port = target_free_port();
    if (o->tls_cert != NULL && o->tls_key != NULL)
        t->tls_port = target_free_port();
    snprintf(conf, sizeof(conf), "%s/gateway.toml", t->dir);
    if (target_write_config(t, o, conf) != 0)
        return -1;
    argv[argc++] = (char *)o->gatewayd;
    argv[argc++] = "-c";
    argv[argc++] = conf;
    for (size_t i = 0; i < o->gw_set.n; i++) {
        argv[argc++] = "-s";
        argv[argc++] = (char *)o->gw_set.v[i];
    }
    argv[argc] = NULL;
    if ((t->gw_pid = target_spawn(argv, NULL, 0, t->dir, "gatewayd.log")) < 0)
        return -1;
    t->pid = t->gw_pid;
    for (int waited = 0; waited < TARGET_START_TIMEOUT_MS; waited += 20) {
        if (target_gw_ready(t))
            return 0;
        if (!target_alive(t))
            break;
        target_sleep_ms(20);
    }
    util_warn("%s did not become healthy (see %s/gatewayd.log)", o->gatewayd,
              t->dir);
    return -1;
}

/* "ws://HOST:PORT/path", "wss://..." or "http://HOST:PORT/path" into its
 * parts; only loopback hosts are accepted. */
static int target_parse_url(const char *url, const char *scheme, char *host,
                            size_t hcap, int *port, char *path, size_t pcap)
{
    size_t sl = strlen(scheme);
    const char *h = url + sl, *colon, *slash;

    if (strncmp(url, scheme, sl) != 0 || (colon = strchr(h, ':')) == NULL)
        return -1;
    if ((size_t)(colon - h) >= hcap)
        return -1;
    memcpy(host, h, (size_t)(colon - h));
    host[colon - h] = '\0';
    *port = atoi(colon + 1);
    slash = strchr(colon, '/');
    snprintf(path, pcap, "%s", slash ? slash : "/");
    if (strncmp(host, "127.", 4) != 0 || *port <= 0 || *port > 65535)
        return -1;
    return 0;
}

/* Instance i of the --target, --http-url and --pid lists. */
static int target_external_inst(target_t *t, const opts_t *o, unsigned i)
{
    target_inst_t *in = &t->inst[i];
    const char *url = o->target.v[i];
    int wss = strncmp(url, "wss://", 6) == 0;
    char host[64], path[128];

    if (target_parse_url(url, wss ? "wss://" : "ws://", in->host,
                         sizeof(in->host), wss ? &in->tls_port : &in->ws_port,
                         in->path, sizeof(in->path)) != 0) {
        util_warn("--target must be ws:// or wss://127.x.y.z:PORT[/path]");
        return -1;
    }
    if (i < o->http_url.n &&
        (target_parse_url(o->http_url.v[i], "http://", host, sizeof(host),
                          &in->http_port, path, sizeof(path)) != 0 ||
         strcmp(host, in->host) != 0)) {
        util_warn("--http-url must be http://HOST:PORT on its --target's "
                  "host");
        return -1;
    }
    if (i < o->pid.n)
        in->pid = (pid_t)atol(o->pid.v[i]);
    return 0;
}

/* Every --target is an instance; the first also fills t's own fields. */
static int target_external(target_t *t, const opts_t *o)
{
    char host[64];
    int port;

    if (o->target.n > TARGET_MAX_INST ||
        (o->http_url.n > 0 && o->http_url.n != o->target.n) ||
        (o->pid.n > 0 && o->pid.n != o->target.n)) {
        util_warn("at most %d --target, and as many --http-url and --pid "
                  "when given",
                  TARGET_MAX_INST);
        return -1;
    }
    for (t->ninst = 0; t->ninst < o->target.n; t->ninst++)
        if (target_external_inst(t, o, t->ninst) != 0)
            return -1;
    snprintf(t->host, sizeof(t->host), "%s", t->inst[0].host);
    snprintf(t->path, sizeof(t->path), "%s", t->inst[0].path);
    t->ws_port = t->inst[0].ws_port;
    t->tls_port = t->inst[0].tls_port;
    t->pid = t->inst[0].pid;
    t->http_port = t->inst[0].http_port;
    if (o->publish_url == NULL)
        return 0;
    if (target_parse_url(o->publish_url, "http://", host, sizeof(host), &port,
                         t->http_path, sizeof(t->http_path)) != 0 ||
        strcmp(host, t->host) != 0) {
        util_warn("--publish-url must be http://HOST:PORT/path on the "
                  "--target host");
        return -1;
    }
    t->http_port = port;
    return 0;
}

/* "127.x.y.z:PORT" of --flag into host and port; loopback only. */
static int target_hostport(const char *spec, const char *flag, char *host,
                           size_t hcap, int *port)
{
    const char *colon = strchr(spec, ':');

    if (colon == NULL || (size_t)(colon - spec) >= hcap ||
        strncmp(spec, "127.", 4) != 0 || atoi(colon + 1) <= 0 ||
        atoi(colon + 1) > 65535) {
        util_warn("--%s must be 127.x.y.z:PORT", flag);
        return -1;
    }
    memcpy(host, spec, (size_t)(colon - spec));
    host[colon - spec] = '\0';
    *port = atoi(colon + 1);
    return 0;
}

static int target_redis(target_t *t, const opts_t *o)
{
    if (o->redis == NULL)
        return target_start_redis(t);
    if (target_hostport(o->redis, "redis", t->redis_host, sizeof(t->redis_host),
                        &t->redis_port) != 0)
        return -1;
    if (target_redis_ping(t))
        return 0;
    util_warn("no Redis answers PING on %s", o->redis);
    return -1;
}

/* A broker gatewayd started elsewhere (--target) must be named: a private
 * one would have no consumer. */
static int target_amqp(target_t *t, const opts_t *o)
{
    if (o->amqp == NULL && o->target.n > 0) {
        util_warn("--via amqp with --target needs --amqp HOST:PORT, the "
                  "broker that server consumes from");
        return -1;
    }
    if (o->amqp == NULL)
        return target_start_rabbit(t);
    if (target_hostport(o->amqp, "amqp", t->amqp_host, sizeof(t->amqp_host),
                        &t->amqp_port) != 0)
        return -1;
    if (target_amqp_ping(t->amqp_host, t->amqp_port))
        return 0;
    util_warn("no RabbitMQ answers AMQP on %s", o->amqp);
    return -1;
}

int target_open(target_t *t, const opts_t *o, int broker)
{
    memset(t, 0, sizeof(*t));
    t->gw_status = -1;
    t->keep = o->keep;
    snprintf(t->host, sizeof(t->host), "127.0.0.1");
    snprintf(t->path, sizeof(t->path), "/");
    snprintf(t->http_path, sizeof(t->http_path), "/publish");
    snprintf(t->dir, sizeof(t->dir), "/tmp/gwbench.XXXXXX");
    if (mkdtemp(t->dir) == NULL) {
        util_warn("mkdtemp: %s", strerror(errno));
        return -1;
    }
    if (broker == TARGET_BROKER_REDIS && target_redis(t, o) != 0)
        return -1;
    if (broker == TARGET_BROKER_AMQP && target_amqp(t, o) != 0)
        return -1;
    if (o->target.n > 0)
        return target_external(t, o);
    if (target_start_gatewayd(t, o) != 0)
        return -1;
    t->ninst = 1;
    snprintf(t->inst[0].host, sizeof(t->inst[0].host), "%s", t->host);
    snprintf(t->inst[0].path, sizeof(t->inst[0].path), "%s", t->path);
    t->inst[0].ws_port = t->ws_port;
    t->inst[0].tls_port = t->tls_port;
    t->inst[0].http_port = t->http_port;
    t->inst[0].pid = t->pid;
    return 0;
}

int target_alive(target_t *t)
{
    if (t->gw_pid > 0) {
        if (t->gw_status >= 0)
            return 0;
        if (waitpid(t->gw_pid, &t->gw_status, WNOHANG) == t->gw_pid)
            return 0;
        t->gw_status = -1;
        return 1;
    }
    return t->pid > 0 ? kill(t->pid, 0) == 0 : 1;
}

int target_stop_pid(pid_t pid, int sig)
{
    int status = 0;

    kill(pid, sig);
    for (int waited = 0; waited < TARGET_STOP_TIMEOUT_MS; waited += 20) {
        if (waitpid(pid, &status, WNOHANG) == pid)
            return status;
        target_sleep_ms(20);
    }
    kill(pid, SIGKILL);
    waitpid(pid, &status, 0);
    return status;
}

/* SIGTERM to the group's leader (the rabbitmq-server script passes it to
 * the VM, which stops cleanly), a bounded wait, then SIGKILL to the whole
 * group: the VM past the bound, or helpers it left. The leader is reaped
 * last, so that the group id cannot be reused in between. */
static void target_stop_group(pid_t pid, int timeout_ms)
{
    kill(pid, SIGTERM);
    for (int waited = 0; waited < timeout_ms; waited += 20) {
        if (target_exited(pid))
            break;
        target_sleep_ms(20);
    }
    kill(-pid, SIGKILL);
    waitpid(pid, NULL, 0);
}

void target_close(target_t *t)
{
    char cmd[128];

    if (t->gw_pid > 0 && target_alive(t))
        t->gw_status = target_stop_pid(t->gw_pid, SIGTERM);
    if (t->redis_pid > 0)
        target_stop_pid(t->redis_pid, SIGTERM);
    if (t->rabbit_pid > 0)
        target_stop_group(t->rabbit_pid, TARGET_RABBIT_STOP_MS);
    if (t->epmd_pid > 0)
        target_stop_pid(t->epmd_pid, SIGTERM);
    t->gw_pid = t->redis_pid = t->rabbit_pid = t->epmd_pid = 0;
    if (t->dir[0] != '\0' && !t->keep) {
        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", t->dir);
        if (system(cmd) != 0)
            util_warn("could not remove %s", t->dir);
    }
    t->dir[0] = '\0';
}
