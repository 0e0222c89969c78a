/*
 * The queue of one RabbitMQ connection's binding operations (README
 * "RabbitMQ: keyed bindings"), with no I/O: what the link's binding
 * channel is to send, in order, and what it has sent and awaits the answer
 * of. RabbitMQ answers a channel's methods in the order they came, so an
 * answer is for the oldest operation in flight.
 *
 * A bind and an unbind of the same pattern that are both still unsent
 * cancel out: the owner asks for each pattern's bind and unbind in turn
 * (the interest table tells a target's first wanted and last unwanted
 * alternately), so the later undoes the earlier and neither is sent. The
 * unsent operations are then at most one per pattern: their number is
 * bounded by the patterns, not by how often they change.
 *
 * When RabbitMQ refuses an operation it closes the channel and discards
 * whatever came after on that channel (AMQP 0-9-1, channel.close): the
 * refused one is taken out, and the ones sent after it go back in front
 * of the unsent ones, in their order, cancelling as above.
 */
#ifndef GW_AMQP_BINDQ_H
#define GW_AMQP_BINDQ_H

#include <stddef.h>

typedef enum gw_amqp_op_kind {
    GW_AMQP_OP_BIND,   /* exchange.bind of a pattern */
    GW_AMQP_OP_UNBIND, /* exchange.unbind of a pattern */
    GW_AMQP_OP_DELETE, /* exchange.delete of the generation before */
} gw_amqp_op_kind_t;

typedef struct gw_amqp_op {
    struct gw_amqp_op *prev, *next; /* in the queue's lists */
    gw_amqp_op_kind_t kind;
    size_t len;
    char name[]; /* the pattern or the exchange, NUL-terminated */
} gw_amqp_op_t;

typedef struct gw_amqp_bindq gw_amqp_bindq_t;

/* An empty queue. */
gw_amqp_bindq_t *gw_amqp_bindq_new(void);

/* Frees the queue and every operation in it, sent or not. */
void gw_amqp_bindq_free(gw_amqp_bindq_t *q);

/* Appends an operation (name[0..len) copied), or cancels it with the
 * unsent one before it on the same pattern. A delete never cancels. */
void gw_amqp_bindq_push(gw_amqp_bindq_t *q, gw_amqp_op_kind_t kind,
                        const char *name, size_t len);

/* The oldest unsent operation, now in flight (still the queue's), or NULL
 * when none is left. */
const gw_amqp_op_t *gw_amqp_bindq_send(gw_amqp_bindq_t *q);

/* The oldest operation in flight, which RabbitMQ has just answered, taken
 * out: the caller frees it. NULL when none is in flight. */
gw_amqp_op_t *gw_amqp_bindq_answered(gw_amqp_bindq_t *q);

/* The same for a refusal; the operations sent after it go back to be sent
 * again (see above). */
gw_amqp_op_t *gw_amqp_bindq_refused(gw_amqp_bindq_t *q);

/* Operations not yet sent, and sent but not yet answered. */
size_t gw_amqp_bindq_unsent(const gw_amqp_bindq_t *q);
size_t gw_amqp_bindq_in_flight(const gw_amqp_bindq_t *q);

#endif
