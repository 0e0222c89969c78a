/*
 * A connection's outgoing queue: a list of fixed-size chunks of entries, each
 * entry a few per-recipient head bytes followed by a shared frame. Chunks
 * never move once filled, so an in-flight vectored write may point into them
 * while more entries are appended. Chunks come from a per-worker pool, and an
 * idle connection holds none.
 */
#ifndef GW_RING_H
#define GW_RING_H

#include "gw/frame.h"

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

/* Entries of a chunk: 8 (392 bytes) rather than 16, because a busy loop
 * turn (a connect storm, a heartbeat tick) takes one chunk per connection
 * with output, and the pool keeps them after the turn; a backlog only
 * takes chunks twice as often. */
#define GW_RING_CHUNK 8
#define GW_RING_HEAD_MAX 39 /* 10-byte frame header + {"seq":<20 digits>, */

typedef struct gw_ring_entry {
    gw_frame_t *frame;              /* one reference, released when written */
    uint8_t hlen;                   /* bytes used in head */
    uint8_t head[GW_RING_HEAD_MAX]; /* written before frame->data */
} gw_ring_entry_t;

typedef struct gw_ring_chunk {
    struct gw_ring_chunk *next;
    gw_ring_entry_t e[GW_RING_CHUNK];
} gw_ring_chunk_t;

/* Free chunks of one worker; only that worker's thread touches it. */
typedef struct gw_ring_pool {
    gw_ring_chunk_t *free;
    unsigned nfree;
    unsigned max_free; /* chunks kept for reuse; more are freed */
} gw_ring_pool_t;

typedef struct gw_ring {
    gw_ring_chunk_t *first; /* oldest chunk, NULL when empty */
    gw_ring_chunk_t *last;  /* newest chunk */
    uint16_t rd;            /* oldest entry's index in first */
    uint16_t wr;            /* next free index in last */
    uint32_t count;         /* entries queued */
    uint32_t off;           /* bytes of the oldest entry already written */
} gw_ring_t;

/* Appends an entry; takes the caller's reference on frame. */
void gw_ring_push(gw_ring_t *r, gw_ring_pool_t *pool, gw_frame_t *frame,
                  const uint8_t *head, size_t hlen);

/*
 * Describes up to max_iov buffers of unwritten bytes, oldest first, into
 * iov; returns the number of buffers and their total in *nbytes.
 */
unsigned gw_ring_iov(const gw_ring_t *r, uv_buf_t *iov, unsigned max_iov,
                     size_t *nbytes);

/* Drops n written bytes from the front, releasing finished entries. */
void gw_ring_consume(gw_ring_t *r, gw_ring_pool_t *pool, size_t n);

/*
 * Drops the entries queued behind the first `busy` unwritten bytes (the
 * bytes of a write in progress) and behind a partly written first entry, so
 * the stream stays well framed; the kept entries do not move. Returns the
 * number dropped.
 */
unsigned gw_ring_discard_unsent(gw_ring_t *r, gw_ring_pool_t *pool,
                                size_t busy);

/* Drops everything. */
void gw_ring_clear(gw_ring_t *r, gw_ring_pool_t *pool);

/* Frees the pool's spare chunks. */
void gw_ring_pool_free(gw_ring_pool_t *pool);

#endif
