/*
 * Redis Cluster's key space (the cluster specification): the slot of a
 * key or channel, the map of slots to shard masters as CLUSTER SLOTS
 * reports it, and the redirection a -MOVED error names. Pure: a reply in,
 * a map out; the link that asks and follows lives on the broker thread.
 */
#ifndef GW_SLOTMAP_H
#define GW_SLOTMAP_H

#include <hiredis/hiredis.h>
#include <stddef.h>
#include <stdint.h>

#define GW_SLOTS 16384
/* A slot no shard serves (a cluster being resharded, or failed). */
#define GW_SLOT_NONE UINT16_MAX

/*
 * The slot of a key (or a sharded channel): CRC16 (XMODEM) of the key,
 * or of its hash tag, the bytes between the first '{' and the next '}'
 * when there are any, modulo GW_SLOTS.
 */
unsigned gw_slot_of(const char *key, size_t len);

/* A shard master: where to connect for its slots. */
typedef struct gw_shard_addr {
    char *host; /* owned; "" when the node does not know its own address:
                   use the one it was reached at */
    int port;
} gw_shard_addr_t;

typedef struct gw_slotmap {
    gw_shard_addr_t *shards; /* owned, distinct by host and port */
    size_t nshards;
    uint16_t owner[GW_SLOTS]; /* index into shards, or GW_SLOT_NONE */
} gw_slotmap_t;

/* An empty map: no shard, no slot served. */
void gw_slotmap_init(gw_slotmap_t *m);
void gw_slotmap_free(gw_slotmap_t *m);

/*
 * Replaces m with the masters and slot ranges of a CLUSTER SLOTS reply
 * (replicas are ignored). 0, or GW_EPARSE for a reply of another shape,
 * a range out of bounds or two masters claiming one slot; on error m is
 * as it was.
 */
int gw_slotmap_parse(gw_slotmap_t *m, const redisReply *r);

/* The slots some shard serves. */
size_t gw_slotmap_covered(const gw_slotmap_t *m);

/* The shard of host:port, or -1. */
int gw_slotmap_find(const gw_slotmap_t *m, const char *host, int port);

/* A redirection: "MOVED <slot> <host>:<port>" (the error text of a
 * reply). */
typedef struct gw_slot_moved {
    unsigned slot;
    char host[256]; /* "" when the node named none */
    int port;
} gw_slot_moved_t;

/* Reads a -MOVED error of len bytes: 0, or GW_EPARSE when it is not one
 * (another error, a slot or port out of range, a host too long). */
int gw_slot_moved(const char *err, size_t len, gw_slot_moved_t *out);

/* A node's address, as a seed list names it. */
typedef struct gw_slot_node {
    char host[256]; /* a name, an IPv4 or an IPv6 address (no brackets) */
    int port;
} gw_slot_node_t;

/*
 * Reads the next address of a comma-separated list at *s ("host:port",
 * "[v6]:port", blanks around each), and moves *s past it: 1 with *out
 * set, 0 at the end of the list, or GW_EPARSE for an item of another form
 * (an empty one included); *s is then left where it was.
 */
int gw_slot_node_next(const char **s, gw_slot_node_t *out);

/* Slot bit sets: GW_SLOT_BYTES bytes, one bit per slot. */
#define GW_SLOT_BYTES (GW_SLOTS / 8)

static inline void gw_slot_mark(uint8_t *bits, unsigned slot)
{
    bits[slot >> 3] |= (uint8_t)(1u << (slot & 7));
}

static inline int gw_slot_marked(const uint8_t *bits, unsigned slot)
{
    return bits[slot >> 3] >> (slot & 7) & 1;
}

/*
 * Marks in bits every slot whose master is not the same in a and b (by
 * host and port; a slot served in one and not in the other included), and
 * returns how many there are. Bits already set stay set.
 */
size_t gw_slotmap_diff(const gw_slotmap_t *a, const gw_slotmap_t *b,
                       uint8_t *bits);

/* The channels of one slot, a run of gw_slotmap_group's order. */
typedef struct gw_slot_group {
    unsigned shard; /* index into the map's shards, or GW_SLOT_NONE */
    unsigned slot;
    size_t first; /* the run is order[first .. first + n) */
    size_t n;
} gw_slot_group_t;

/*
 * Sorts n channels (names[i] of lens[i] bytes) by the shard and then the
 * slot that m gives each, for one command per slot (Redis 7.0 takes the
 * channels of one slot only in one SSUBSCRIBE): order receives the n
 * indices (the order of names kept within a slot), groups one entry per
 * run, the runs of slots no shard serves last. Both arrays hold n; returns
 * the number of groups.
 */
size_t gw_slotmap_group(const gw_slotmap_t *m, const char *const *names,
                        const size_t *lens, size_t n, size_t *order,
                        gw_slot_group_t *groups);

#endif
