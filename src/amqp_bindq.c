/*
 * The binding operations' queue (include/gw/amqp_bindq.h): lists of
 * operations, unsent (one per lane) and in flight, oldest first, and a
 * ck_hs set of the unsent binds' and unbinds' names, which finds the one a
 * new operation cancels.
 */
#include "gw/amqp_bindq.h"

#include "gw/alloc.h"
#include "gw/hs.h"

#include <ck_hs.h>
#include <stdlib.h>
#include <string.h>

#define BINDQ_OP_OF(p)                                                         \
    ((gw_amqp_op_t *)((char *)(p)-offsetof(gw_amqp_op_t, name)))

typedef struct bindq_list {
    gw_amqp_op_t *first, *last;
    size_t n;
} bindq_list_t;

struct gw_amqp_bindq {
    bindq_list_t unsent[2]; /* by lane, GW_AMQP_LANE_NOW first */
    bindq_list_t sent;      /* in flight */
    ck_hs_t by_name;        /* of the unsent binds and unbinds */
    unsigned long seed;     /* of its hash: ids come from clients */
};

gw_amqp_bindq_t *gw_amqp_bindq_new(void)
{
    gw_amqp_bindq_t *q = gw_calloc(1, sizeof(*q));

    q->seed = (unsigned long)random() ^ (unsigned long)(uintptr_t)q;
    ck_hs_init(&q->by_name, CK_HS_MODE_OBJECT | CK_HS_MODE_SPMC, gw_hs_hash,
               gw_hs_equal, &gw_ck_allocator, 64, q->seed);
    return q;
}

static void bindq_list_free(bindq_list_t *l)
{
    gw_amqp_op_t *op = l->first, *next;

    for (; op != NULL; op = next) {
        next = op->next;
        free(op);
    }
    *l = (bindq_list_t){0};
}

void gw_amqp_bindq_free(gw_amqp_bindq_t *q)
{
    bindq_list_free(&q->unsent[GW_AMQP_LANE_NOW]);
    bindq_list_free(&q->unsent[GW_AMQP_LANE_REBUILD]);
    bindq_list_free(&q->sent);
    ck_hs_destroy(&q->by_name);
    free(q);
}

static void bindq_append(bindq_list_t *l, gw_amqp_op_t *op)
{
    op->next = NULL;
    op->prev = l->last;
    if (l->last != NULL)
        l->last->next = op;
    else
        l->first = op;
    l->last = op;
    l->n++;
}

static void bindq_prepend(bindq_list_t *l, gw_amqp_op_t *op)
{
    op->prev = NULL;
    op->next = l->first;
    if (l->first != NULL)
        l->first->prev = op;
    else
        l->last = op;
    l->first = op;
    l->n++;
}

static void bindq_unlink(bindq_list_t *l, gw_amqp_op_t *op)
{
    if (op->prev != NULL)
        op->prev->next = op->next;
    else
        l->first = op->next;
    if (op->next != NULL)
        op->next->prev = op->prev;
    else
        l->last = op->prev;
    l->n--;
}

static unsigned long bindq_hash(gw_amqp_bindq_t *q, const char *name)
{
    return CK_HS_HASH(&q->by_name, gw_hs_hash, name);
}

static gw_amqp_op_t *bindq_find(gw_amqp_bindq_t *q, const char *name)
{
    void *k = ck_hs_get(&q->by_name, bindq_hash(q, name), name);

    return k != NULL ? BINDQ_OP_OF(k) : NULL;
}

/*
 * Whether op meets the unsent operation on its pattern (op comes just
 * before or just after it): then the two cancel, as one undoes the other,
 * or, were they of one kind, the unsent one alone stays. Frees op when so.
 */
static int bindq_meet(gw_amqp_bindq_t *q, gw_amqp_op_t *op)
{
    gw_amqp_op_t *other;

    if (op->kind == GW_AMQP_OP_DELETE ||
        (other = bindq_find(q, op->name)) == NULL)
        return 0;
    if (other->kind != op->kind) {
        ck_hs_remove(&q->by_name, bindq_hash(q, other->name), other->name);
        bindq_unlink(&q->unsent[other->lane], other);
        free(other);
    }
    free(op);
    return 1;
}

/* Takes op into the unsent set's index, unless it is a delete. */
static void bindq_index(gw_amqp_bindq_t *q, gw_amqp_op_t *op)
{
    if (op->kind != GW_AMQP_OP_DELETE)
        ck_hs_put(&q->by_name, bindq_hash(q, op->name), op->name);
}

void gw_amqp_bindq_push(gw_amqp_bindq_t *q, gw_amqp_lane_t lane,
                        gw_amqp_op_kind_t kind, const char *name, size_t len)
{
    gw_amqp_op_t *op = gw_malloc(sizeof(*op) + len + 1);

    op->kind = kind;
    op->lane = lane;
    op->len = len;
    memcpy(op->name, name, len);
    op->name[len] = '\0';
    if (bindq_meet(q, op))
        return;
    bindq_append(&q->unsent[lane], op);
    bindq_index(q, op);
}

const gw_amqp_op_t *gw_amqp_bindq_send(gw_amqp_bindq_t *q)
{
    gw_amqp_op_t *op = q->unsent[GW_AMQP_LANE_NOW].first;

    if (op == NULL)
        op = q->unsent[GW_AMQP_LANE_REBUILD].first;
    if (op == NULL)
        return NULL;
    if (op->kind != GW_AMQP_OP_DELETE)
        ck_hs_remove(&q->by_name, bindq_hash(q, op->name), op->name);
    bindq_unlink(&q->unsent[op->lane], op);
    bindq_append(&q->sent, op);
    return op;
}

gw_amqp_op_t *gw_amqp_bindq_answered(gw_amqp_bindq_t *q)
{
    gw_amqp_op_t *op = q->sent.first;

    if (op != NULL)
        bindq_unlink(&q->sent, op);
    return op;
}

gw_amqp_op_t *gw_amqp_bindq_refused(gw_amqp_bindq_t *q)
{
    gw_amqp_op_t *op = gw_amqp_bindq_answered(q), *back;

    /* The newest first, each in front of every unsent one: their order. */
    while ((back = q->sent.last) != NULL) {
        bindq_unlink(&q->sent, back);
        if (bindq_meet(q, back))
            continue;
        back->lane = GW_AMQP_LANE_NOW;
        bindq_prepend(&q->unsent[GW_AMQP_LANE_NOW], back);
        bindq_index(q, back);
    }
    return op;
}

size_t gw_amqp_bindq_unsent(const gw_amqp_bindq_t *q)
{
    return q->unsent[GW_AMQP_LANE_NOW].n + q->unsent[GW_AMQP_LANE_REBUILD].n;
}

size_t gw_amqp_bindq_in_flight(const gw_amqp_bindq_t *q)
{
    return q->sent.n;
}
