/*
 * ceiling: the raw fan-out ceiling of this machine on loopback, with no
 * WebSocket, no JSON and no event loop. N TCP connections, F frames of S
 * bytes written round-robin, a forked reader draining them; once with one
 * sendmsg per frame, then as io_uring SENDMSG operations submitted in
 * batches of B (one io_uring_submit per batch). Prints, per mode, frames
 * per second and the CPU per frame of the writer and of the whole machine
 * (reader included): what a server's fan-out on this box can at best
 * approach. bench/README.md gives fan-out figures as a share of it.
 *
 *   bench/ceiling [-n CONNS] [-f FRAMES] [-s BYTES] [-b B1,B2,...]
 *                 [-o FILE.json]
 *
 * Loopback only; every run is bounded by the frame count and by an alarm.
 */
#include <errno.h>
#include <liburing.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define CEILING_MAX_BATCHES 16
#define CEILING_ALARM_S 300  /* the whole program, whatever happens */
#define CEILING_READER_S 120 /* one reader's drain */

typedef struct ceiling_opts {
    int conns;
    long frames;
    int size;
    int batches[CEILING_MAX_BATCHES]; /* 0 is one sendmsg per frame */
    int nbatches;
    const char *json; /* a file for the results, or NULL */
} ceiling_opts_t;

typedef struct ceiling_conns {
    int *w; /* owned: the writing ends (accepted) */
    int *r; /* owned: the reading ends (connected) */
    int n;
} ceiling_conns_t;

/* One mode's figures. */
typedef struct ceiling_result {
    int batch;           /* 0: sendmsg */
    double wall_s;       /* the writer's, first frame to last written */
    double writer_cpu_s; /* user + system */
    double reader_cpu_s;
    int complete; /* the reader got every byte */
} ceiling_result_t;

static double ceiling_now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double ceiling_cpu(const struct rusage *ru)
{
    return (double)ru->ru_utime.tv_sec + (double)ru->ru_utime.tv_usec / 1e6 +
           (double)ru->ru_stime.tv_sec + (double)ru->ru_stime.tv_usec / 1e6;
}

static void ceiling_die(const char *what)
{
    perror(what);
    exit(1);
}

/* Room for 2n descriptors and some: each connection has both ends here. */
static void ceiling_raise_nofile(int n)
{
    struct rlimit rl;

    if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
        ceiling_die("getrlimit");
    if (rl.rlim_cur < (rlim_t)(2 * n + 64)) {
        rl.rlim_cur = rl.rlim_max;
        if (setrlimit(RLIMIT_NOFILE, &rl) != 0 ||
            rl.rlim_cur < (rlim_t)(2 * n + 64)) {
            fprintf(stderr, "ceiling: %d connections need %d descriptors\n", n,
                    2 * n + 64);
            exit(1);
        }
    }
}

static void ceiling_connect(ceiling_conns_t *c, int n)
{
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t alen = sizeof(a);
    int one = 1, l = socket(AF_INET, SOCK_STREAM, 0);

    if (l < 0 || bind(l, (struct sockaddr *)&a, sizeof(a)) != 0 ||
        listen(l, 4096) != 0 || getsockname(l, (struct sockaddr *)&a, &alen))
        ceiling_die("listen");
    c->n = n;
    c->w = calloc((size_t)n, sizeof(int));
    c->r = calloc((size_t)n, sizeof(int));
    if (c->w == NULL || c->r == NULL)
        ceiling_die("calloc");
    for (int i = 0; i < n; i++) {
        c->r[i] = socket(AF_INET, SOCK_STREAM, 0);
        if (c->r[i] < 0 ||
            connect(c->r[i], (struct sockaddr *)&a, sizeof(a)) != 0 ||
            (c->w[i] = accept(l, NULL, NULL)) < 0)
            ceiling_die("connect");
        /* As a server writes small frames: no coalescing delay. */
        setsockopt(c->w[i], IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    }
    close(l);
}

/* The forked reader: drains every connection until total bytes came or
 * its deadline passed; exits 0 when all came. */
static void ceiling_reader(const ceiling_conns_t *c, long long total)
{
    static char buf[1 << 16];
    struct epoll_event ev[256];
    double deadline = ceiling_now() + CEILING_READER_S;
    int ep = epoll_create1(0);

    if (ep < 0)
        _exit(2);
    for (int i = 0; i < c->n; i++) {
        struct epoll_event e = {.events = EPOLLIN, .data.fd = c->r[i]};
        close(c->w[i]);
        if (epoll_ctl(ep, EPOLL_CTL_ADD, c->r[i], &e) != 0)
            _exit(2);
    }
    while (total > 0 && ceiling_now() < deadline) {
        int k = epoll_wait(ep, ev, 256, 1000);
        for (int i = 0; i < k; i++) {
            ssize_t got = read(ev[i].data.fd, buf, sizeof(buf));
            if (got > 0)
                total -= got;
        }
    }
    _exit(total == 0 ? 0 : 1);
}

/* Writes all of len bytes to a blocking socket. */
static void ceiling_write_all(int fd, const char *p, size_t len)
{
    while (len > 0) {
        ssize_t n = send(fd, p, len, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            ceiling_die("send");
        p += n;
        len -= (size_t)n;
    }
}

static void ceiling_by_sendmsg(const ceiling_conns_t *c, long frames,
                               const char *frame, int size)
{
    for (long i = 0; i < frames; i++) {
        struct iovec iov = {(void *)frame, (size_t)size};
        struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1};
        int fd = c->w[i % c->n];
        ssize_t n = sendmsg(fd, &mh, MSG_NOSIGNAL);

        if (n < 0 && errno != EINTR)
            ceiling_die("sendmsg");
        if (n < size)
            ceiling_write_all(fd, frame + (n > 0 ? n : 0),
                              (size_t)(size - (n > 0 ? n : 0)));
    }
}

/*
 * Batches of `batch` SENDMSG operations, one submit and wait each. A batch
 * never holds two frames of one connection (batch <= conns), so bytes stay
 * in order; a short send is finished synchronously and counted.
 */
static long ceiling_by_uring(struct io_uring *ring, const ceiling_conns_t *c,
                             long frames, const char *frame, int size,
                             int batch)
{
    struct msghdr *mh = calloc((size_t)batch, sizeof(*mh));
    struct iovec *iov = calloc((size_t)batch, sizeof(*iov));
    long short_sends = 0;

    if (mh == NULL || iov == NULL)
        ceiling_die("calloc");
    for (long i = 0; i < frames;) {
        int k = 0;
        for (; k < batch && i < frames; k++, i++) {
            struct io_uring_sqe *sqe = io_uring_get_sqe(ring);
            iov[k] = (struct iovec){(void *)frame, (size_t)size};
            mh[k] = (struct msghdr){.msg_iov = &iov[k], .msg_iovlen = 1};
            io_uring_prep_sendmsg(sqe, c->w[i % c->n], &mh[k], MSG_NOSIGNAL);
            io_uring_sqe_set_data64(sqe, (uint64_t)c->w[i % c->n]);
        }
        if (io_uring_submit_and_wait(ring, (unsigned)k) < 0)
            ceiling_die("io_uring_submit_and_wait");
        for (int done = 0; done < k; done++) {
            struct io_uring_cqe *cqe;
            int rc = io_uring_wait_cqe(ring, &cqe);
            if (rc < 0)
                ceiling_die("io_uring_wait_cqe");
            if (cqe->res < 0) {
                errno = -cqe->res;
                ceiling_die("io_uring sendmsg");
            }
            if (cqe->res < size) {
                short_sends++;
                ceiling_write_all((int)io_uring_cqe_get_data64(cqe),
                                  frame + cqe->res, (size_t)(size - cqe->res));
            }
            io_uring_cqe_seen(ring, cqe);
        }
    }
    free(mh);
    free(iov);
    return short_sends;
}

/* One mode: a fresh reader, the frames written, the reader reaped. */
static int ceiling_run(const ceiling_opts_t *o, const ceiling_conns_t *c,
                       const char *frame, int batch, ceiling_result_t *out)
{
    struct io_uring ring;
    struct rusage before, after, child;
    double t0;
    int status, rc;
    pid_t pid;

    if (batch > 0 && (rc = io_uring_queue_init((unsigned)batch, &ring, 0))) {
        fprintf(stderr, "ceiling: io_uring unavailable: %s\n", strerror(-rc));
        return -1;
    }
    pid = fork();
    if (pid < 0)
        ceiling_die("fork");
    if (pid == 0)
        ceiling_reader(c, (long long)o->frames * o->size);
    getrusage(RUSAGE_SELF, &before);
    t0 = ceiling_now();
    if (batch == 0)
        ceiling_by_sendmsg(c, o->frames, frame, o->size);
    else if (ceiling_by_uring(&ring, c, o->frames, frame, o->size, batch) > 0)
        fprintf(stderr, "ceiling: batch %d: short sends finished by send\n",
                batch);
    out->wall_s = ceiling_now() - t0;
    getrusage(RUSAGE_SELF, &after);
    if (wait4(pid, &status, 0, &child) != pid)
        ceiling_die("wait4");
    if (batch > 0)
        io_uring_queue_exit(&ring);
    out->batch = batch;
    out->writer_cpu_s = ceiling_cpu(&after) - ceiling_cpu(&before);
    out->reader_cpu_s = ceiling_cpu(&child);
    out->complete = WIFEXITED(status) && WEXITSTATUS(status) == 0;
    return 0;
}

static void ceiling_usage(void)
{
    fprintf(stderr, "usage: ceiling [-n CONNS] [-f FRAMES] [-s BYTES] "
                    "[-b B1,B2,...] [-o FILE.json]\n"
                    "  -b 0 is one sendmsg per frame (default 0,8,64,1024)\n");
    exit(2);
}

static void ceiling_parse(int argc, char **argv, ceiling_opts_t *o)
{
    char *list = NULL, *tok, *save = NULL;
    int opt;

    *o = (ceiling_opts_t){.conns = 5000, .frames = 500000, .size = 230};
    while ((opt = getopt(argc, argv, "n:f:s:b:o:")) != -1) {
        switch (opt) {
        case 'n': o->conns = atoi(optarg); break;
        case 'f': o->frames = atol(optarg); break;
        case 's': o->size = atoi(optarg); break;
        case 'b': list = optarg; break;
        case 'o': o->json = optarg; break;
        default: ceiling_usage();
        }
    }
    for (tok = strtok_r(list ? list : (char[]){"0,8,64,1024"}, ",", &save);
         tok != NULL && o->nbatches < CEILING_MAX_BATCHES;
         tok = strtok_r(NULL, ",", &save))
        o->batches[o->nbatches++] = atoi(tok);
    if (o->conns < 1 || o->conns > 100000 || o->frames < 1 ||
        o->frames > 100000000 || o->size < 1 || o->size > 65536)
        ceiling_usage();
    for (int i = 0; i < o->nbatches; i++)
        if (o->batches[i] < 0 || o->batches[i] > 4096 ||
            o->batches[i] > o->conns)
            ceiling_usage(); /* two frames of one connection in a batch */
}

static void ceiling_print(const ceiling_opts_t *o, const ceiling_result_t *r,
                          FILE *json, int first)
{
    double f = (double)o->frames;
    char mode[32];

    if (r->batch == 0)
        snprintf(mode, sizeof(mode), "sendmsg");
    else
        snprintf(mode, sizeof(mode), "io_uring/%d", r->batch);
    printf("%-14s %10.0f %10.2f %10.2f %s\n", mode, f / r->wall_s,
           r->writer_cpu_s * 1e6 / f,
           (r->writer_cpu_s + r->reader_cpu_s) * 1e6 / f,
           r->complete ? "" : "(reader did not get every byte)");
    if (json != NULL)
        fprintf(json,
                "%s{\"batch\":%d,\"frames_per_s\":%.0f,"
                "\"writer_us_per_frame\":%.3f,\"machine_us_per_frame\":%.3f,"
                "\"writer_frames_per_cpu_s\":%.0f,\"complete\":%s}",
                first ? "" : ",", r->batch, f / r->wall_s,
                r->writer_cpu_s * 1e6 / f,
                (r->writer_cpu_s + r->reader_cpu_s) * 1e6 / f,
                f / r->writer_cpu_s, r->complete ? "true" : "false");
}

int main(int argc, char **argv)
{
    ceiling_opts_t o;
    ceiling_conns_t c;
    ceiling_result_t r;
    FILE *json = NULL;
    char *frame;
    int failed = 0, first = 1;

    ceiling_parse(argc, argv, &o);
    signal(SIGPIPE, SIG_IGN);
    alarm(CEILING_ALARM_S);
    ceiling_raise_nofile(o.conns);
    ceiling_connect(&c, o.conns);
    if ((frame = malloc((size_t)o.size)) == NULL)
        ceiling_die("malloc");
    memset(frame, 'x', (size_t)o.size);
    if (o.json != NULL && (json = fopen(o.json, "w")) == NULL)
        ceiling_die(o.json);
    if (json != NULL)
        fprintf(json, "{\"conns\":%d,\"frames\":%ld,\"size\":%d,\"runs\":[",
                o.conns, o.frames, o.size);
    printf("ceiling: %d loopback connections, %ld frames of %d bytes\n"
           "%-14s %10s %10s %10s\n",
           o.conns, o.frames, o.size, "mode", "frames/s", "writer-us",
           "machine-us");
    for (int i = 0; i < o.nbatches; i++) {
        if (ceiling_run(&o, &c, frame, o.batches[i], &r) != 0) {
            failed = 1;
            continue;
        }
        ceiling_print(&o, &r, json, first);
        first = 0;
        failed |= !r.complete;
    }
    if (json != NULL) {
        fprintf(json, "]}\n");
        fclose(json);
    }
    free(frame);
    return failed;
}
