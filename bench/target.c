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
#include <sys/wait.h>
#include <unistd.h>

#include "util.h"

#define TARGET_START_TIMEOUT_MS 15000
#define TARGET_STOP_TIMEOUT_MS 5000

/* A port nobody listens on now, from the kernel's ephemeral range. Another
 * process may take it before the server binds; start() then fails loudly. */
static int target_free_port(void)
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

int target_http_get(const target_t *t, const char *path, char *out, size_t cap,
                    int timeout_ms)
{
    char req[256], *body;
    int fd = target_dial(t->host, t->http_port, timeout_ms), status = -1;

    if (fd < 0)
        return -1;
    snprintf(req, sizeof(req),
             "GET %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n", path,
             t->host);
    if (target_exchange(fd, req, out, cap) > 12 &&
        sscanf(out, "HTTP/1.%*d %d", &status) == 1 &&
        (body = strstr(out, "\r\n\r\n")) != NULL)
        memmove(out, body + 4, strlen(body + 4) + 1);
    close(fd);
    return status;
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

/* Forks and execs argv with its output in dir/log; the child dies with
 * us. */
static pid_t target_spawn(char *const argv[], const char *dir, const char *log)
{
    char path[160];
    pid_t pid;
    int fd;

    snprintf(path, sizeof(path), "%s/%s", dir, log);
    if ((pid = fork()) != 0)
        return pid;
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    fd = open(path, O_WRONLY | O_CREAT | O_APPEND, 0644);
    if (fd >= 0) {
        dup2(fd, 1);
        dup2(fd, 2);
    }
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
    if ((t->redis_pid = target_spawn(argv, t->dir, "redis.log")) < 0)
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
            "[redis]\nenabled = %s\nhost = \"%s\"\nport = %d\n\n"
            "[amqp]\nenabled = false\n\n[log]\nlevel = \"warn\"\n",
            t->ws_port, t->http_port, o->workers, o->heartbeat_ms,
            o->typing_limit, o->jwt_secret, o->api_key,
            t->redis_port ? "true" : "false",
            t->redis_port ? t->redis_host : "127.0.0.1",
            t->redis_port ? t->redis_port : 6379);
    return fclose(f);
}

/* Healthy: /health answers 200, and the Redis link is up when we use it. */
static int target_gw_ready(const target_t *t)
{
    char body[2048];

    if (target_http_get(t, "/health", body, sizeof(body), 500) != 200)
        return 0;
    return t->redis_port == 0 || strstr(body, "\"redis\":\"up\"") != NULL;
}

static int target_start_gatewayd(target_t *t, const opts_t *o)
{
    char conf[128];
    char *argv[4 + 2 * OPTS_MAX_GW_SET];
    int argc = 0;

    t->ws_port = target_free_port();
    t->http_port = target_free_port();
    snprintf(conf, sizeof(conf), "%s/gateway.toml", t->dir);
    if (target_write_config(t, o, conf) != 0)
        return -1;
    argv[argc++] = (char *)o->gatewayd;
    argv[argc++] = "-c";
    argv[argc++] = conf;
    for (size_t i = 0; i < o->ngw_set; i++) {
        argv[argc++] = "-s";
        argv[argc++] = (char *)o->gw_set[i];
    }
    argv[argc] = NULL;
    if ((t->gw_pid = target_spawn(argv, t->dir, "gatewayd.log")) < 0)
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

/* "ws://HOST:PORT/path" or "http://HOST:PORT/path" into its parts; only
 * loopback hosts are accepted. */
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

static int target_external(target_t *t, const opts_t *o)
{
    char host[64];
    int port;

    if (target_parse_url(o->target, "ws://", t->host, sizeof(t->host),
                         &t->ws_port, t->path, sizeof(t->path)) != 0) {
        util_warn("--target must be ws://127.x.y.z:PORT[/path]");
        return -1;
    }
    t->pid = (pid_t)o->pid;
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

static int target_redis(target_t *t, const opts_t *o)
{
    const char *colon;

    if (o->redis == NULL)
        return target_start_redis(t);
    colon = strchr(o->redis, ':');
    if (colon == NULL || (size_t)(colon - o->redis) >= sizeof(t->redis_host) ||
        strncmp(o->redis, "127.", 4) != 0) {
        util_warn("--redis must be 127.x.y.z:PORT");
        return -1;
    }
    memcpy(t->redis_host, o->redis, (size_t)(colon - o->redis));
    t->redis_host[colon - o->redis] = '\0';
    t->redis_port = atoi(colon + 1);
    return target_redis_ping(t) ? 0 : -1;
}

int target_open(target_t *t, const opts_t *o, int with_redis)
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
    if (with_redis && target_redis(t, o) != 0)
        return -1;
    if (o->target != NULL)
        return target_external(t, o);
    return target_start_gatewayd(t, o);
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

/* SIGTERM, a bounded wait, then SIGKILL. Returns the wait status. */
static int target_stop_pid(pid_t pid)
{
    int status = 0;

    kill(pid, SIGTERM);
    for (int waited = 0; waited < TARGET_STOP_TIMEOUT_MS; waited += 20) {
        if (waitpid(pid, &status, WNOHANG) == pid)
            return status;
        target_sleep_ms(20);
    }
    kill(pid, SIGKILL);
    waitpid(pid, &status, 0);
    return status;
}

void target_close(target_t *t)
{
    char cmd[128];

    if (t->gw_pid > 0 && target_alive(t))
        t->gw_status = target_stop_pid(t->gw_pid);
    if (t->redis_pid > 0)
        target_stop_pid(t->redis_pid);
    t->gw_pid = t->redis_pid = 0;
    if (t->dir[0] != '\0' && !t->keep) {
        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", t->dir);
        if (system(cmd) != 0)
            util_warn("could not remove %s", t->dir);
    }
    t->dir[0] = '\0';
}
