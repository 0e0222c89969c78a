/*
 * What the RabbitMQ link's files (amqp.c, amqp_connect.c, amqp_bind.c)
 * share about rabbitmq-c's connection: how a server's close reads in a
 * log line, and whether the socket takes a write without waiting.
 */
#ifndef GW_AMQP_WIRE_H
#define GW_AMQP_WIRE_H

#include <amqp.h>
#include <stddef.h>

/* The channels of one connection. */
#define GW_AMQP_CHANNEL_CONSUME 1 /* declarations and consuming */
#define GW_AMQP_CHANNEL_PUBLISH 2 /* publishing, in confirm mode */
#define GW_AMQP_CHANNEL_BIND 3    /* targeted routing's bindings */

/* Describes a connection.close or channel.close from the server in buf;
 * GW_EINVAL for any other method. */
int gw_amqp_wire_close_text(const amqp_method_t *m, char *buf, size_t len);

/*
 * Whether the connection's socket takes about len more bytes without
 * making rabbitmq-c's write wait: its send queue stays within half of
 * SO_SNDBUF (Linux doubles the buffer for its own bookkeeping, so half of
 * it is what data may fill), or is empty (the server has taken every byte
 * so far, so it was reading a moment ago, and should it stop now,
 * connection.blocked says why). A socket that cannot be asked says yes:
 * the write then reports what is wrong with it.
 */
int gw_amqp_wire_room(amqp_connection_state_t conn, size_t len);

#endif
