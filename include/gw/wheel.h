/*
 * A hashed timing wheel: one per worker instead of one uv_timer per
 * connection, so an idle connection costs an intrusive node (24 bytes), and
 * arming or moving a deadline is O(1). Resolution is one tick; deadlines
 * beyond one turn of the wheel wait in their slot for later rounds.
 */
#ifndef GW_WHEEL_H
#define GW_WHEEL_H

#include <stdint.h>

#define GW_WHEEL_SLOTS 512

typedef struct gw_wheel_node {
    struct gw_wheel_node *prev, *next; /* NULL when not armed */
    uint64_t expire_ms;
} gw_wheel_node_t;

typedef struct gw_wheel {
    uint64_t tick_ms;   /* resolution */
    uint64_t done_tick; /* every tick up to this one has been run */
    gw_wheel_node_t slot[GW_WHEEL_SLOTS]; /* list heads */
} gw_wheel_t;

typedef void (*gw_wheel_cb)(gw_wheel_node_t *node, void *data);

void gw_wheel_init(gw_wheel_t *w, uint64_t tick_ms, uint64_t now_ms);

/* Arms (or re-arms) node to fire at expire_ms. */
void gw_wheel_add(gw_wheel_t *w, gw_wheel_node_t *node, uint64_t expire_ms);

/* Disarms node; harmless when not armed. */
void gw_wheel_del(gw_wheel_node_t *node);

static inline int gw_wheel_armed(const gw_wheel_node_t *node)
{
    return node->next != 0;
}

/*
 * Runs the ticks up to now_ms, calling cb for each node whose deadline has
 * passed; the node is disarmed first, and cb may re-arm it or arm and disarm
 * any other node. Returns the number of nodes fired.
 */
unsigned gw_wheel_advance(gw_wheel_t *w, uint64_t now_ms, gw_wheel_cb cb,
                          void *data);

#endif
