/*
 * Targeted routing's bindings at runtime (README "RabbitMQ: keyed
 * bindings"), on the RabbitMQ link's loop: one per connection, on the
 * connection's binding channel (GW_AMQP_CHANNEL_BIND), which the connect
 * job opened. The link (amqp.c) owns it, hands it the frames of that
 * channel, and fails the connection when it says so.
 *
 * The targets' patterns are bound to the connection's generation exchange
 * (exchange.bind from the events exchange) and unbound from it. rabbitmq-c
 * would wait for each answer; here nothing waits: the methods are written
 * with amqp_send_method, up to RMQ_BIND_WINDOW in flight and only while
 * the socket has room (gw_amqp_wire_room), and their answers
 * (exchange.bind-ok...) come among the frames the link reads, in order
 * (gw/amqp_bindq.h keeps what was sent). exchange.unbind has a no-wait
 * flag, but queue.unbind, its counterpart for a queue, has none in AMQP
 * 0-9-1; answers are read either way, so that a refusal is known for what
 * it refused.
 *
 * RabbitMQ refuses an operation by closing the channel: the refusal is
 * counted (amqp_bind_failures) and logged, the channel is closed
 * (channel.close-ok) and opened again, and what was sent after the refused
 * one is sent again once it is open. The connection and its consuming go
 * on. A refused bind leaves its target unbound until the next connection
 * binds everything again.
 */
#ifndef GW_AMQP_BIND_H
#define GW_AMQP_BIND_H

#include "gw/amqp_bindq.h"
#include "gw/interest.h"
#include "gw/stats.h"

#include <amqp.h>
#include <stddef.h>

#define GW_AMQP_BIND_WHY 256 /* room for why a connection must end */

typedef struct gw_amqp_bind gw_amqp_bind_t;

/* RabbitMQ answered exchange.bind-ok for pattern[0..len) (a
 * gw_amqp_key_pattern, not NUL-terminated). */
typedef void (*gw_amqp_bound_cb)(void *data, const char *pattern, size_t len);

/*
 * The bindings of connection conn (borrowed; free this before it is
 * destroyed), from exchange (the events exchange) to generation (both
 * copied). stats (borrowed, the owner's) gets the counters and the
 * amqp_bind_pending gauge; bound(data, ...) hears each binding made.
 */
gw_amqp_bind_t *gw_amqp_bind_new(amqp_connection_state_t conn,
                                 const char *exchange, const char *generation,
                                 gw_stats_t *stats, gw_amqp_bound_cb bound,
                                 void *data);

/* Frees it with whatever was not sent or answered: the connection has
 * ended, and the next one binds everything again. */
void gw_amqp_bind_free(gw_amqp_bind_t *b);

/* Queues the bind (on) or unbind of n targets' patterns in a lane
 * (gw/amqp_bindq.h: the connection's first binds go in the rebuild's, the
 * sessions' changes ahead of them). A pattern longer than 255 bytes cannot
 * be bound: counted as a failure and logged. */
void gw_amqp_bind_targets(gw_amqp_bind_t *b, gw_amqp_lane_t lane, int on,
                          const gw_interest_target_t *t, size_t n);

/* Queues the delete of exchange, the previous generation, after the
 * rebuild's binds: RabbitMQ takes a channel's methods in order, so the new
 * generation has every binding by then. */
void gw_amqp_bind_retire(gw_amqp_bind_t *b, const char *exchange);

/* Writes what is queued, as far as the window and the socket allow: 0, or
 * GW_ECLOSED when a write failed (why says so; end the connection). */
int gw_amqp_bind_pump(gw_amqp_bind_t *b, char *why);

/* Takes a frame of the binding channel, then pumps: 0, or GW_ECLOSED
 * when it is not what the channel may receive or a write failed (why says
 * so; end the connection). */
int gw_amqp_bind_frame(gw_amqp_bind_t *b, const amqp_frame_t *f, char *why);

#endif
