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
 * Unsent operations wait in one of two lanes, and the first lane goes
 * first: the changes of now need not wait behind a rebuild of every
 * binding, which a reconnect queues by the thousand. That reorders
 * nothing that matters: operations on different patterns commute, and two
 * on one pattern never both wait (the later cancels the earlier), so none
 * overtakes another on its pattern; and a rebuild's delete of the
 * generation before, which must follow the rebuild's binds, waits behind
 * them in the same lane.
 *
 * When RabbitMQ refuses an operation it closes the channel and discards
 * whatever came after on that channel (AMQP 0-9-1, channel.close): the
 * refused one is taken out, and the ones sent after it go back in front
 * of every unsent one, in their order, cancelling as above.
 */
#ifndef GW_AMQP_BINDQ_H
#define GW_AMQP_BINDQ_H

#include <stddef.h>

typedef enum gw_amqp_op_kind {
    GW_AMQP_OP_BIND,   /* exchange.bind of a pattern */
    GW_AMQP_OP_UNBIND, /* exchange.unbind of a pattern */
    GW_AMQP_OP_DELETE, /* exchange.delete of the generation before */
} gw_amqp_op_kind_t;

/* Where an unsent operation waits (see above). */
typedef enum gw_amqp_lane {
    GW_AMQP_LANE_NOW,     /* the sessions' changes, sent first */
    GW_AMQP_LANE_REBUILD, /* a new connection's binds, and its delete */
} gw_amqp_lane_t;

typedef struct gw_amqp_op {
    struct gw_amqp_op *prev, *next; /* in the queue's lists */
    gw_amqp_op_kind_t kind;
    gw_amqp_lane_t lane; /* while unsent */
    size_t len;
    char name[]; /* the pattern or the exchange, NUL-terminated */
} gw_amqp_op_t;

typedef struct gw_amqp_bindq gw_amqp_bindq_t;

/* An empty queue. */
gw_amqp_bindq_t *gw_amqp_bindq_new(void);

/* Frees the queue and every operation in it, sent or not. */
void gw_amqp_bindq_free(gw_amqp_bindq_t *q);

/* Appends an operation to a lane (name[0..len) copied), or cancels it
 * with the unsent one on the same pattern. A delete never cancels. */
void gw_amqp_bindq_push(gw_amqp_bindq_t *q, gw_amqp_lane_t lane,
                        gw_amqp_op_kind_t kind, const char *name, size_t len);

/* The oldest unsent operation of the first lane that has one, now in
 * flight (still the queue's), or NULL when none is left. */
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
