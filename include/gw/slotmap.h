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

#endif
