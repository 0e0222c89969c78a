/*
 * The RabbitMQ link, on the broker thread's loop (rabbitmq-c). Declares the
 * durable topic exchange cfg->amqp_exchange, the dead-letter exchange
 * "<exchange>.dlx" with its queue "<exchange>.dlq", and this instance's
 * queue (durable and named queue_prefix + instance_id, or exclusive when
 * cfg->amqp_durable is false) dead-lettering to the dlx, bound with
 * cfg->amqp_binding_keys (amqp.routing = "all"), or with the patterns of
 * the targets the owner holds (amqp.routing = "targeted", see
 * gw_amqp_targets and gw/amqp_key.h); then consumes with cfg->amqp_prefetch.
 * It also declares the durable topic exchange cfg->amqp_upstream_exchange
 * and publishes client events to it on a second channel in confirm mode,
 * at most cfg->relay_max_unconfirmed awaiting their confirm. Blocking
 * library calls (connect, login, declarations, the polite close) run on
 * libuv's thread pool, never on the loop. A message larger than
 * cfg->max_body_size is dead-lettered without being offered. Reconnects
 * with gw_link_backoff; logs one line per state change. Broker thread
 * only, but for the gate.
 */
#ifndef GW_AMQP_H
#define GW_AMQP_H

#include "gw/config.h"
#include "gw/interest.h"
#include "gw/link.h"
#include "gw/stats.h"

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

typedef struct gw_amqp gw_amqp_t;

/*
 * One delivery: its routing key (klen bytes, NUL-terminated) and its body
 * (len bytes, not NUL-terminated). The return value decides its fate: 0 =
 * handed to the workers, ack it; GW_EPARSE or GW_EINVAL (or any other
 * error) = reject without requeue, so RabbitMQ dead-letters it; GW_EFULL =
 * not now: the link stops reading and offers the same delivery again a
 * little later. Both are the link's; copy what outlives the call. A body
 * over http.max_body_size is not kept: body is NULL, len its size, and it
 * is dead-lettered whatever the callback returns.
 */
typedef int (*gw_amqp_message_cb)(const char *key, size_t klen,
                                  const char *body, size_t len, void *data);

/*
 * The end of one publish: status 0 = RabbitMQ confirmed it (basic.ack);
 * GW_EIO = it refused it (basic.nack) or returned it (no queue is bound
 * for its routing key); GW_ECLOSED = the connection ended, or the link
 * stopped, before its confirm came (it may or may not have arrived).
 * msg_data is what gw_amqp_publish was given. Called on the loop, once per
 * accepted publish; it must not call back into the link.
 */
typedef void (*gw_amqp_confirm_cb)(void *data, void *msg_data, int status);

/*
 * What other threads may know of the publishing side, without a lock. It
 * lives in the caller's memory, zeroed (atomic_init) before any thread
 * reads it, so that it outlives the link for readers that outlive the link
 * (the workers ask until they stop, after gw_amqp_stop). The link writes
 * it on the loop with relaxed stores: readers get an answer that may be a
 * moment old, and gw_amqp_publish checks again.
 */
typedef struct gw_amqp_gate {
    atomic_int open;         /* 1 while publishes are taken: connected and
                                not blocked by a RabbitMQ resource alarm */
    atomic_uint unconfirmed; /* publishes awaiting their confirm */
} gw_amqp_gate_t;

/* What the owner hears through, and the gate the link keeps. */
typedef struct gw_amqp_hooks {
    gw_amqp_message_cb message;
    gw_amqp_confirm_cb confirm;
    /* Targeted routing: a new connection is up and binds nothing yet; the
     * owner calls gw_amqp_targets with every target it wants. NULL when
     * there is nothing to bind. */
    void (*rebind)(void *data);
    /* Targeted routing: RabbitMQ made the binding of pattern[0..len) (a
     * gw_amqp_key_pattern). NULL when unwanted. */
    void (*bound)(void *data, const char *pattern, size_t len);
    void *data;           /* passed to each */
    gw_amqp_gate_t *gate; /* borrowed; outlives the link */
} gw_amqp_hooks_t;

/* The AMQP properties of one publish that vary. Strings are borrowed for
 * the call, at most 255 bytes each; NULL leaves a property out. */
typedef struct gw_amqp_props {
    const char *message_id; /* unique: also how a return is matched */
    const char *correlation_id;
    const char *reply_to;
    uint64_t timestamp; /* seconds since the epoch */
} gw_amqp_props_t;

/*
 * Starts connecting; returns the link even when RabbitMQ is unreachable.
 * With cfg->amqp_enabled false the link stays GW_LINK_DISABLED and does
 * nothing. Reads cfg only here; copies hooks. stats (borrowed, the
 * owner's, on this loop) gets targeted routing's counters.
 */
gw_amqp_t *gw_amqp_start(uv_loop_t *loop, const gw_config_t *cfg,
                         const char *instance_id, gw_stats_t *stats,
                         const gw_amqp_hooks_t *hooks);

/*
 * Targeted routing: binds (on) or unbinds the queue for n targets, the
 * patterns of gw/amqp_key.h, on the connection's binding channel without
 * waiting (gw/amqp_bind.h). Ask for each target's bind and unbind in turn.
 * Nothing while the link is down (its next connection calls the rebind
 * hook) or with amqp.routing = "all".
 */
void gw_amqp_targets(gw_amqp_t *a, int on, const gw_interest_target_t *t,
                     size_t n);

/*
 * Publishes body (len bytes, JSON) to the upstream exchange with
 * routing_key, persistent, mandatory, content type application/json, app
 * id "gatewayd" and props. Returns 0 when the message is on its way: the
 * confirm callback then reports its end with msg_data, exactly once.
 * Otherwise nothing was published and no callback follows: GW_ECLOSED
 * while the link is not up or RabbitMQ blocks publishing (or when the
 * write fails, which takes the link down), GW_EFULL while
 * relay.max_unconfirmed publishes await their confirm or the socket's send
 * buffer is half full, GW_EINVAL for a string over 255 bytes. The write
 * waits only for what the socket buffer cannot take at once: nothing, but
 * for a message bigger than half of it sent into an empty one.
 */
int gw_amqp_publish(gw_amqp_t *a, const char *routing_key, const char *body,
                    size_t len, const gw_amqp_props_t *props, void *msg_data);

/* Up once consuming; connecting during the first attempt, down from a
 * failure until up again (retries included); and since when. */
gw_link_status_t gw_amqp_link(const gw_amqp_t *a);

/*
 * Disconnects and frees; run the loop until it has no handles or requests
 * afterwards (a connection attempt in flight finishes first, within a few
 * seconds). Deliveries not yet acknowledged are redelivered by RabbitMQ.
 * Publishes awaiting their confirm end with GW_ECLOSED before it returns;
 * the gate is closed. A second call is harmless.
 */
void gw_amqp_stop(gw_amqp_t *a);

#endif
