#include "gw/amqp_wire.h"

#include "gw/error.h"

#include <amqp_framing.h>
#include <linux/sockios.h>
#include <stdio.h>
#include <sys/ioctl.h>
#include <sys/socket.h>

int gw_amqp_wire_close_text(const amqp_method_t *m, char *buf, size_t len)
{
    if (m->id == AMQP_CONNECTION_CLOSE_METHOD) {
        amqp_connection_close_t *c = m->decoded;
        snprintf(buf, len, "server closed the connection: %u %.*s",
                 c->reply_code, (int)c->reply_text.len,
                 (const char *)c->reply_text.bytes);
        return 0;
    }
    if (m->id == AMQP_CHANNEL_CLOSE_METHOD) {
        amqp_channel_close_t *c = m->decoded;
        snprintf(buf, len, "server closed the channel: %u %.*s", c->reply_code,
                 (int)c->reply_text.len, (const char *)c->reply_text.bytes);
        return 0;
    }
    return GW_EINVAL;
}

int gw_amqp_wire_room(amqp_connection_state_t conn, size_t len)
{
    int fd = amqp_get_sockfd(conn), queued, sndbuf;
    socklen_t size = sizeof(sndbuf);

    if (ioctl(fd, SIOCOUTQ, &queued) != 0 ||
        getsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sndbuf, &size) != 0)
        return 1;
    return queued == 0 || (size_t)queued + len <= (size_t)sndbuf / 2;
}
