#include "gw/wheel.h"

#include <stddef.h>

static void wheel_link(gw_wheel_node_t *head, gw_wheel_node_t *node)
{
    node->prev = head->prev;
    node->next = head;
    head->prev->next = node;
    head->prev = node;
}

void gw_wheel_init(gw_wheel_t *w, uint64_t tick_ms, uint64_t now_ms)
{
    w->tick_ms = tick_ms;
    w->done_tick = now_ms / tick_ms;
    for (int i = 0; i < GW_WHEEL_SLOTS; i++)
        w->slot[i].prev = w->slot[i].next = &w->slot[i];
}

void gw_wheel_add(gw_wheel_t *w, gw_wheel_node_t *node, uint64_t expire_ms)
{
    uint64_t tick = expire_ms / w->tick_ms;

    gw_wheel_del(node);
    /* A deadline in a tick already run fires on the next one. */
    if (tick <= w->done_tick)
        tick = w->done_tick + 1;
    node->expire_ms = expire_ms;
    wheel_link(&w->slot[tick % GW_WHEEL_SLOTS], node);
}

void gw_wheel_del(gw_wheel_node_t *node)
{
    if (node->next == NULL)
        return;
    node->prev->next = node->next;
    node->next->prev = node->prev;
    node->prev = node->next = NULL;
}

/* Fires the expired nodes of one slot; later rounds are relinked. */
static unsigned wheel_run_slot(gw_wheel_t *w, gw_wheel_node_t *head,
                               gw_wheel_cb cb, void *data)
{
    gw_wheel_node_t pending;
    unsigned fired = 0;

    /* Move the slot aside first: callbacks may re-arm into this slot. */
    if (head->next == head)
        return 0;
    pending.next = head->next;
    pending.prev = head->prev;
    pending.next->prev = &pending;
    pending.prev->next = &pending;
    head->next = head->prev = head;

    while (pending.next != &pending) {
        gw_wheel_node_t *node = pending.next;
        gw_wheel_del(node);
        if (node->expire_ms / w->tick_ms > w->done_tick) {
            wheel_link(head, node);
            continue;
        }
        fired++;
        cb(node, data);
    }
    return fired;
}

unsigned gw_wheel_advance(gw_wheel_t *w, uint64_t now_ms, gw_wheel_cb cb,
                          void *data)
{
    uint64_t now_tick = now_ms / w->tick_ms;
    unsigned fired = 0;

    while (w->done_tick < now_tick) {
        w->done_tick++;
        fired += wheel_run_slot(w, &w->slot[w->done_tick % GW_WHEEL_SLOTS], cb,
                                data);
    }
    return fired;
}
