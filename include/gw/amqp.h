/*
 * The RabbitMQ link, on the broker thread's loop (rabbitmq-c). Declares the
 * durable topic exchange cfg->amqp_exchange, the dead-letter exchange
 * "<exchange>.dlx" with its queue "<exchange>.dlq", and this instance's
 * queue (durable and named queue_prefix + instance_id, or exclusive when
 * cfg->amqp_durable is false) bound with cfg->amqp_binding_keys and
 * dead-lettering to the dlx; then consumes with cfg->amqp_prefetch. Blocking
 * library calls (connect, login, declarations, the polite close) run on
 * libuv's thread pool, never on the loop. A message larger than
 * cfg->max_body_size is dead-lettered without being offered. Reconnects with
 * gw_link_backoff; logs one line per state change. Broker thread only.
 */
#ifndef GW_AMQP_H
#define GW_AMQP_H

#include "gw/config.h"
#include "gw/link.h"

#include <stddef.h>
#include <uv.h>

typedef struct gw_amqp gw_amqp_t;

/*
 * One delivery's body (not NUL-terminated). The return value decides its
 * fate: 0 = handed to the workers, ack it; GW_EPARSE or GW_EINVAL (or any
 * other error) = reject without requeue, so RabbitMQ dead-letters it;
 * GW_EFULL = not now: the link stops reading and offers the same delivery
 * again a little later. The body is the link's; copy what outlives the call.
 * A body over http.max_body_size is not kept: body is NULL, len its size,
 * and it is dead-lettered whatever the callback returns.
 */
typedef int (*gw_amqp_message_cb)(const char *body, size_t len, void *data);

/*
 * Starts connecting; returns the link even when RabbitMQ is unreachable.
 * With cfg->amqp_enabled false the link stays GW_LINK_DISABLED and does
 * nothing. Reads cfg only here.
 */
gw_amqp_t *gw_amqp_start(uv_loop_t *loop, const gw_config_t *cfg,
                         const char *instance_id, gw_amqp_message_cb cb,
                         void *data);

/* Up once consuming; connecting or down (waiting to retry) otherwise. */
gw_link_state_t gw_amqp_state(const gw_amqp_t *a);

/*
 * Disconnects and frees; run the loop until it has no handles or requests
 * afterwards (a connection attempt in flight finishes first, within a few
 * seconds). Deliveries not yet acknowledged are redelivered by RabbitMQ.
 * A second call is harmless.
 */
void gw_amqp_stop(gw_amqp_t *a);

#endif
