#include "pool.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "gw/alloc.h"
#include "util.h"

#define POOL_MAX_THREADS 64

typedef struct pool_worker {
    pool_t *pool;
    pid_t pid;
    int cmd_fd;        /* write end of the command pipe */
    uv_pipe_t rep;     /* read end of the report pipe */
    pool_report_t *in; /* report being read */
    size_t have;       /* bytes of it read so far */
    int done;          /* final report received, or the pipe closed */
} pool_worker_t;

struct pool {
    uv_loop_t *loop;
    pool_worker_t w[POOL_MAX_PROCS];
    unsigned procs, threads, running;
    pool_report_cb cb;
    void *ud;
};

/* ---- the worker process ----------------------------------------------- */

static void pool_write_all(int fd, const void *buf, size_t len)
{
    const char *p = buf;

    while (len > 0) {
        ssize_t n = write(fd, p, len);

        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            _exit(1); /* the coordinator is gone */
        p += n;
        len -= (size_t)n;
    }
}

static void pool_child_report(client_loop_t **loops, unsigned n, int fd,
                              pool_report_t *r, uint32_t type)
{
    client_figures_reset(&r->f);
    for (unsigned i = 0; i < n; i++)
        client_loop_collect(loops[i], &r->f);
    r->type = type;
    r->stamp_us = util_now_us();
    pool_write_all(fd, r, sizeof(*r));
}

/* Forwards one command; returns 1 when it was FINISH. */
static int pool_child_command(client_loop_t **loops, unsigned n, int cmd_fd)
{
    client_cmd_t cmd;
    ssize_t got;

    do
        got = read(cmd_fd, &cmd, sizeof(cmd));
    while (got < 0 && errno == EINTR);
    if (got != (ssize_t)sizeof(cmd))
        _exit(1); /* the coordinator is gone */
    for (unsigned i = 0; i < n; i++)
        client_loop_command(loops[i], &cmd);
    return cmd.op == CLIENT_CMD_FINISH;
}

static void pool_child(const client_conf_t *conf, uint32_t first,
                       uint32_t count, unsigned threads, unsigned id,
                       int cmd_fd, int rep_fd)
{
    client_loop_t *loops[POOL_MAX_THREADS];
    pool_report_t *r = gw_calloc(1, sizeof(*r));
    uint64_t next = util_now_us() + POOL_REPORT_MS * 1000;

    r->worker = id;
    for (unsigned i = 0; i < threads; i++) {
        uint32_t lo = first + (uint32_t)((uint64_t)count * i / threads);
        uint32_t hi = first + (uint32_t)((uint64_t)count * (i + 1) / threads);

        loops[i] = client_loop_new(conf, lo, hi - lo, (uint64_t)id << 32 | i);
        if (client_loop_start(loops[i]) != 0)
            _exit(1);
    }
    for (;;) {
        struct pollfd pfd = {.fd = cmd_fd, .events = POLLIN};
        uint64_t now = util_now_us();
        int wait_ms = now >= next ? 0 : (int)((next - now) / 1000) + 1;

        if (poll(&pfd, 1, wait_ms) > 0 &&
            pool_child_command(loops, threads, cmd_fd))
            break;
        if (util_now_us() >= next) {
            pool_child_report(loops, threads, rep_fd, r, POOL_REPORT_TICK);
            next += POOL_REPORT_MS * 1000;
        }
    }
    for (unsigned i = 0; i < threads; i++)
        client_loop_join(loops[i]);
    pool_child_report(loops, threads, rep_fd, r, POOL_REPORT_FINAL);
    for (unsigned i = 0; i < threads; i++)
        client_loop_free(loops[i]);
    _exit(0);
}

/* ---- the coordinator side --------------------------------------------- */

static void pool_alloc_cb(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
    pool_worker_t *w = h->data;

    (void)hint;
    /* Never past the current report, so reads split at report bounds. */
    *buf = uv_buf_init((char *)w->in + w->have,
                       (unsigned)(sizeof(*w->in) - w->have));
}

static void pool_worker_done(pool_worker_t *w)
{
    if (w->done)
        return;
    w->done = 1;
    w->pool->running--;
    uv_read_stop((uv_stream_t *)&w->rep);
}

static void pool_read_cb(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    pool_worker_t *w = s->data;

    (void)buf;
    if (nread < 0) {
        pool_worker_done(w);
        return;
    }
    w->have += (size_t)nread;
    if (w->have < sizeof(*w->in))
        return;
    w->have = 0;
    w->pool->cb(w->pool->ud, w->in);
    if (w->in->type == POOL_REPORT_FINAL)
        pool_worker_done(w);
}

static int pool_fork(pool_t *p, const client_conf_t *conf, unsigned id,
                     uint32_t first, uint32_t count)
{
    pool_worker_t *w = &p->w[id];
    int cmd[2], rep[2];

    if (pipe(cmd) != 0 || pipe(rep) != 0)
        return -1;
    if ((w->pid = fork()) < 0)
        return -1;
    if (w->pid == 0) {
        /* Die with the coordinator, whatever kills it; a terminal's ^C is
         * the coordinator's to handle (it sends FINISH). */
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        signal(SIGINT, SIG_IGN);
        signal(SIGTERM, SIG_DFL);
        close(cmd[1]);
        close(rep[0]);
        for (unsigned i = 0; i < id; i++)
            close(p->w[i].cmd_fd);
        pool_child(conf, first, count, p->threads, id, cmd[0], rep[1]);
    }
    close(cmd[0]);
    close(rep[1]);
    util_cloexec(cmd[1]);
    util_cloexec(rep[0]);
    w->pool = p;
    w->cmd_fd = cmd[1];
    w->in = gw_calloc(1, sizeof(*w->in));
    uv_pipe_init(p->loop, &w->rep, 0);
    w->rep.data = w;
    uv_pipe_open(&w->rep, rep[0]);
    uv_read_start((uv_stream_t *)&w->rep, pool_alloc_cb, pool_read_cb);
    p->running++;
    return 0;
}

/* Process i's share of sessions from .. from + n - 1, split evenly over
 * procs processes: its first session into *lo, one past its last into
 * *hi. */
static void pool_share(uint32_t from, uint32_t n, unsigned i, unsigned procs,
                       uint32_t *lo, uint32_t *hi)
{
    *lo = from + (uint32_t)((uint64_t)n * i / procs);
    *hi = from + (uint32_t)((uint64_t)n * (i + 1) / procs);
}

pool_t *pool_start(uv_loop_t *loop, const client_conf_t *conf, uint32_t n,
                   uint32_t split, unsigned procs, unsigned threads,
                   pool_report_cb cb, void *ud)
{
    pool_t *p = gw_calloc(1, sizeof(*p));
    unsigned first = procs; /* processes of the first part */

    if (procs == 0 || procs > POOL_MAX_PROCS || threads == 0 ||
        threads > POOL_MAX_THREADS ||
        (split > 0 && (split >= n || procs < 2))) {
        util_warn("procs must be 1..%d (2 at least for two parts) and "
                  "threads 1..%d",
                  POOL_MAX_PROCS, POOL_MAX_THREADS);
        free(p);
        return NULL;
    }
    if (split > 0)
        first = procs / 2;
    p->loop = loop;
    p->procs = procs;
    p->threads = threads;
    p->cb = cb;
    p->ud = ud;
    for (unsigned i = 0; i < procs; i++) {
        uint32_t lo, hi;

        if (i < first)
            pool_share(0, split > 0 ? split : n, i, first, &lo, &hi);
        else
            pool_share(split, n - split, i - first, procs - first, &lo, &hi);
        if (pool_fork(p, conf, i, lo, hi - lo) != 0) {
            util_warn("cannot start client process %u: %s", i, strerror(errno));
            pool_free(p);
            return NULL;
        }
    }
    return p;
}

void pool_command(pool_t *p, const client_cmd_t *cmd)
{
    client_cmd_t c = *cmd;

    /* Connect, typing and relay rates are totals; churn is a share of
     * each loop's own sessions already. */
    if (c.op == CLIENT_CMD_CONNECT || c.op == CLIENT_CMD_TYPING ||
        c.op == CLIENT_CMD_RELAY)
        c.rate /= (double)(p->procs * p->threads);
    for (unsigned i = 0; i < p->procs; i++)
        if (!p->w[i].done && write(p->w[i].cmd_fd, &c, sizeof(c)) < 0)
            util_warn("client process %u: %s", i, strerror(errno));
}

unsigned pool_running(const pool_t *p)
{
    return p->running;
}

unsigned pool_pids(const pool_t *p, pid_t *out)
{
    for (unsigned i = 0; i < p->procs; i++)
        out[i] = p->w[i].pid;
    return p->procs;
}

unsigned pool_loops(const pool_t *p)
{
    return p->procs * p->threads;
}

void pool_finish(pool_t *p)
{
    client_cmd_t cmd = {.op = CLIENT_CMD_FINISH};

    pool_command(p, &cmd);
}

void pool_free(pool_t *p)
{
    for (unsigned i = 0; i < p->procs; i++) {
        pool_worker_t *w = &p->w[i];

        if (w->pid <= 0)
            continue;
        if (!w->done)
            kill(w->pid, SIGKILL);
        waitpid(w->pid, NULL, 0);
        close(w->cmd_fd);
        uv_close((uv_handle_t *)&w->rep, NULL);
    }
    /* The pipes' close callbacks run on the caller's next loop turn; the
     * read buffers are not touched after uv_read_stop. */
    uv_run(p->loop, UV_RUN_NOWAIT);
    for (unsigned i = 0; i < p->procs; i++)
        free(p->w[i].in);
    free(p);
}
