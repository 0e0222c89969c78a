/*
 * Targeted routing's bindings on the link's loop (include/gw/amqp_bind.h).
 *
 * Static helpers are rmq_bind_*: amqp_* is rabbitmq-c's namespace.
 */
#include "gw/amqp_bind.h"

#include "gw/alloc.h"
#include "gw/amqp_bindq.h"
#include "gw/amqp_key.h"
#include "gw/amqp_wire.h"
#include "gw/error.h"
#include "gw/log.h"

#include <amqp_framing.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Methods in flight at once: enough to keep RabbitMQ busy across a round
 * trip, few enough that their bytes (below) never fill the socket. */
#define RMQ_BIND_WINDOW 128
/* Bytes of one binding method at most: its frame, and three short
 * strings (two exchanges and a pattern), with room to spare. */
#define RMQ_BIND_FRAME_MAX 1024

static const char *const rmq_bind_verb[] = {
    [GW_AMQP_OP_BIND] = "bind",
    [GW_AMQP_OP_UNBIND] = "unbind",
    [GW_AMQP_OP_DELETE] = "delete",
};

static const char *const rmq_bind_kind[GW_INTEREST_KINDS] = {
    [GW_INTEREST_GUILD] = "guild",
    [GW_INTEREST_USER] = "user",
    [GW_INTEREST_SESSION] = "session",
};

struct gw_amqp_bind {
    amqp_connection_state_t conn; /* borrowed: the link's */
    gw_amqp_bindq_t *q;           /* owned: queued and in flight */
    char *exchange;               /* owned: the events exchange (source) */
    char *generation;             /* owned: the destination */
    gw_stats_t *stats;            /* borrowed: the owner's */
    gw_amqp_bound_cb bound;       /* the owner's, with its data */
    void *data;
    int reopening;              /* channel.open sent, not yet answered */
    gw_log_limit_t refused_log; /* RabbitMQ's refusals */
    gw_log_limit_t long_log;    /* patterns too long to bind */
};

static void rmq_bind_gauge(gw_amqp_bind_t *b)
{
    gw_stat_set(b->stats, GW_STAT_AMQP_BIND_PENDING,
                gw_amqp_bindq_unsent(b->q) + gw_amqp_bindq_in_flight(b->q));
}

gw_amqp_bind_t *gw_amqp_bind_new(amqp_connection_state_t conn,
                                 const char *exchange, const char *generation,
                                 gw_stats_t *stats, gw_amqp_bound_cb bound,
                                 void *data)
{
    gw_amqp_bind_t *b = gw_calloc(1, sizeof(*b));

    b->conn = conn;
    b->q = gw_amqp_bindq_new();
    b->exchange = gw_strdup(exchange);
    b->generation = gw_strdup(generation);
    b->stats = stats;
    b->bound = bound;
    b->data = data;
    rmq_bind_gauge(b);
    return b;
}

void gw_amqp_bind_free(gw_amqp_bind_t *b)
{
    gw_stat_set(b->stats, GW_STAT_AMQP_BIND_PENDING, 0);
    gw_amqp_bindq_free(b->q);
    free(b->exchange);
    free(b->generation);
    free(b);
}

void gw_amqp_bind_targets(gw_amqp_bind_t *b, gw_amqp_lane_t lane, int on,
                          const gw_interest_target_t *t, size_t n)
{
    char key[GW_AMQP_KEY_MAX + 1];

    for (size_t i = 0; i < n; i++) {
        int len = gw_amqp_key_pattern(t[i].kind, t[i].id, strlen(t[i].id), key);
        if (len >= 0) {
            gw_amqp_bindq_push(b->q, lane,
                               on ? GW_AMQP_OP_BIND : GW_AMQP_OP_UNBIND, key,
                               (size_t)len);
        } else if (on) {
            gw_stat_add(b->stats, GW_STAT_AMQP_BIND_FAILURES, 1);
            gw_log_limited(&b->long_log, GW_LOG_WARN,
                           "amqp: %s %.64s cannot be bound: its routing-key "
                           "pattern would pass 255 bytes",
                           rmq_bind_kind[t[i].kind], t[i].id);
        }
    }
    rmq_bind_gauge(b);
}

void gw_amqp_bind_retire(gw_amqp_bind_t *b, const char *exchange)
{
    gw_amqp_bindq_push(b->q, GW_AMQP_LANE_REBUILD, GW_AMQP_OP_DELETE, exchange,
                       strlen(exchange));
    rmq_bind_gauge(b);
}

/* Writes op's method without waiting for its answer: rabbitmq-c's status. */
static int rmq_bind_send(gw_amqp_bind_t *b, const gw_amqp_op_t *op)
{
    amqp_bytes_t name = {.len = op->len, .bytes = (void *)op->name};
    amqp_bytes_t dst = amqp_cstring_bytes(b->generation);
    amqp_bytes_t src = amqp_cstring_bytes(b->exchange);
    amqp_exchange_bind_t bind = {.destination = dst,
                                 .source = src,
                                 .routing_key = name,
                                 .arguments = amqp_empty_table};
    amqp_exchange_unbind_t unbind = {.destination = dst,
                                     .source = src,
                                     .routing_key = name,
                                     .arguments = amqp_empty_table};
    amqp_exchange_delete_t del = {.exchange = name};

    switch (op->kind) {
    case GW_AMQP_OP_BIND:
        return amqp_send_method(b->conn, GW_AMQP_CHANNEL_BIND,
                                AMQP_EXCHANGE_BIND_METHOD, &bind);
    case GW_AMQP_OP_UNBIND:
        return amqp_send_method(b->conn, GW_AMQP_CHANNEL_BIND,
                                AMQP_EXCHANGE_UNBIND_METHOD, &unbind);
    case GW_AMQP_OP_DELETE:
        return amqp_send_method(b->conn, GW_AMQP_CHANNEL_BIND,
                                AMQP_EXCHANGE_DELETE_METHOD, &del);
    }
    return AMQP_STATUS_INVALID_PARAMETER;
}

int gw_amqp_bind_pump(gw_amqp_bind_t *b, char *why)
{
    const gw_amqp_op_t *op;
    int rc;

    while (!b->reopening && gw_amqp_bindq_in_flight(b->q) < RMQ_BIND_WINDOW &&
           gw_amqp_bindq_unsent(b->q) > 0 &&
           gw_amqp_wire_room(b->conn, RMQ_BIND_FRAME_MAX)) {
        op = gw_amqp_bindq_send(b->q);
        rc = rmq_bind_send(b, op);
        if (rc != AMQP_STATUS_OK) {
            /* Part of it may be on the wire: the connection is out of
             * step. */
            snprintf(why, GW_AMQP_BIND_WHY, "exchange.%s: %s",
                     rmq_bind_verb[op->kind], amqp_error_string2(rc));
            return GW_ECLOSED;
        }
    }
    rmq_bind_gauge(b);
    return 0;
}

/* The answer to the oldest method in flight, which must be of `kind`. */
static int rmq_bind_answered(gw_amqp_bind_t *b, gw_amqp_op_kind_t kind,
                             char *why)
{
    static const gw_stat_t done[] = {
        [GW_AMQP_OP_BIND] = GW_STAT_AMQP_BINDS,
        [GW_AMQP_OP_UNBIND] = GW_STAT_AMQP_UNBINDS,
    };
    gw_amqp_op_t *op = gw_amqp_bindq_answered(b->q);
    int rc = 0;

    if (op == NULL || op->kind != kind) {
        snprintf(why, GW_AMQP_BIND_WHY, "exchange.%s-ok for no %s sent",
                 rmq_bind_verb[kind], rmq_bind_verb[kind]);
        rc = GW_ECLOSED;
    } else if (kind == GW_AMQP_OP_DELETE) {
        gw_info("amqp: every target is bound to %s; %s deleted", b->generation,
                op->name);
    } else {
        gw_stat_add(b->stats, done[kind], 1);
        if (kind == GW_AMQP_OP_BIND)
            b->bound(b->data, op->name, op->len);
    }
    free(op);
    return rc;
}

/*
 * RabbitMQ closed the binding channel: it refused the oldest method in
 * flight (if any), and discarded the rest, which go back to be sent
 * again. The channel is closed on our side and opened again; nothing is
 * sent on it before RabbitMQ says it is open.
 */
static int rmq_bind_refused(gw_amqp_bind_t *b, const amqp_method_t *m,
                            char *why)
{
    const amqp_channel_close_t *c = m->decoded;
    amqp_channel_close_ok_t ok = {0};
    amqp_channel_open_t open = {.out_of_band = amqp_empty_bytes};
    gw_amqp_op_t *op = gw_amqp_bindq_refused(b->q);
    int rc;

    if (op != NULL)
        gw_stat_add(b->stats, GW_STAT_AMQP_BIND_FAILURES, 1);
    gw_log_limited(&b->refused_log, GW_LOG_WARN,
                   "amqp: RabbitMQ refused to %s %s: %u %.*s; the binding "
                   "channel opens again",
                   op != NULL ? rmq_bind_verb[op->kind] : "go on with",
                   op != NULL ? op->name : "the bindings", c->reply_code,
                   (int)c->reply_text.len, (const char *)c->reply_text.bytes);
    free(op);
    rc = amqp_send_method(b->conn, GW_AMQP_CHANNEL_BIND,
                          AMQP_CHANNEL_CLOSE_OK_METHOD, &ok);
    if (rc == AMQP_STATUS_OK)
        rc = amqp_send_method(b->conn, GW_AMQP_CHANNEL_BIND,
                              AMQP_CHANNEL_OPEN_METHOD, &open);
    if (rc != AMQP_STATUS_OK) {
        snprintf(why, GW_AMQP_BIND_WHY, "reopening the binding channel: %s",
                 amqp_error_string2(rc));
        return GW_ECLOSED;
    }
    b->reopening = 1;
    return 0;
}

static int rmq_bind_method(gw_amqp_bind_t *b, const amqp_method_t *m, char *why)
{
    switch (m->id) {
    case AMQP_EXCHANGE_BIND_OK_METHOD:
        return rmq_bind_answered(b, GW_AMQP_OP_BIND, why);
    case AMQP_EXCHANGE_UNBIND_OK_METHOD:
        return rmq_bind_answered(b, GW_AMQP_OP_UNBIND, why);
    case AMQP_EXCHANGE_DELETE_OK_METHOD:
        return rmq_bind_answered(b, GW_AMQP_OP_DELETE, why);
    case AMQP_CHANNEL_CLOSE_METHOD: return rmq_bind_refused(b, m, why);
    case AMQP_CHANNEL_OPEN_OK_METHOD:
        if (!b->reopening)
            break;
        b->reopening = 0;
        return 0;
    default: break;
    }
    snprintf(why, GW_AMQP_BIND_WHY, "method 0x%08x on the binding channel",
             m->id);
    return GW_ECLOSED;
}

int gw_amqp_bind_frame(gw_amqp_bind_t *b, const amqp_frame_t *f, char *why)
{
    int rc;

    if (f->frame_type != AMQP_FRAME_METHOD) {
        snprintf(why, GW_AMQP_BIND_WHY, "content on the binding channel");
        return GW_ECLOSED;
    }
    rc = rmq_bind_method(b, &f->payload.method, why);
    return rc != 0 ? rc : gw_amqp_bind_pump(b, why);
}
