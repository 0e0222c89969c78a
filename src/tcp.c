#include "gw/tcp.h"

#include "gw/error.h"
#include "gw/log.h"

#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* A failure is logged here, where errno still tells it. */
static ssize_t tcp_failed(const gw_transport_t *t, const char *what)
{
    if (errno == EAGAIN || errno == EWOULDBLOCK)
        return GW_EAGAIN;
    gw_debug("tcp fd %d: %s failed: %s", t->fd, what, strerror(errno));
    return GW_EIO;
}

static ssize_t tcp_read(gw_transport_t *t, uint8_t *buf, size_t len)
{
    ssize_t n;

    do
        n = read(t->fd, buf, len);
    while (n < 0 && errno == EINTR);
    return n >= 0 ? n : tcp_failed(t, "read");
}

/*
 * One gathered write. sendmsg rather than writev: it skips the VFS write
 * path (fdget_pos, vfs_writev, sock_write_iter), 8 % of the server's CPU
 * in a fan-out profile (bench/README.md).
 */
static ssize_t tcp_writev(gw_transport_t *t, const struct iovec *iov,
                          unsigned n)
{
    struct msghdr msg = {.msg_iov = (struct iovec *)iov, .msg_iovlen = n};
    ssize_t r;

    do
        r = sendmsg(t->fd, &msg, MSG_DONTWAIT | MSG_NOSIGNAL);
    while (r < 0 && errno == EINTR);
    if (r >= 0)
        return r;
    r = tcp_failed(t, "sendmsg");
    return r == GW_EAGAIN ? 0 : r;
}

static int tcp_shutdown(gw_transport_t *t)
{
    return shutdown(t->fd, SHUT_WR) == 0 ? 0 : (int)tcp_failed(t, "shutdown");
}

static const gw_transport_ops_t tcp_ops = {
    .read = tcp_read,
    .writev = tcp_writev,
    .shutdown = tcp_shutdown,
    .plain = 1,
};

int gw_tcp_open(gw_transport_t *t, gw_transport_loop_t *l, int fd)
{
    return gw_transport_init(t, l, fd, &tcp_ops);
}
