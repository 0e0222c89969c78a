/*
 * A reference-counted, immutable outgoing payload shared by every recipient
 * of a broadcast (h2o's shared buffers). Threads may hold references at the
 * same time, so the count is atomic; the bytes never change after
 * publication.
 */
#ifndef GW_FRAME_H
#define GW_FRAME_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

typedef struct gw_frame {
    atomic_uint refs;
    uint32_t len; /* bytes in data */
    uint64_t id;  /* the event's identity across instances, the same on
                     every instance that parsed it (docs/continuity.md
                     section 3), or 0: set once, before the frame is shared */
    char data[];
} gw_frame_t;

/* A frame of len bytes, id 0, with one reference, owned by the caller. */
gw_frame_t *gw_frame_new(size_t len);

/* Takes one more reference. */
static inline gw_frame_t *gw_frame_ref(gw_frame_t *f)
{
    atomic_fetch_add_explicit(&f->refs, 1, memory_order_relaxed);
    return f;
}

/* Drops one reference; the last one frees the frame. */
void gw_frame_unref(gw_frame_t *f);

/*
 * Writes an unmasked server frame header (FIN set, `opcode`) for a payload
 * of payload_len bytes into out (at least 10 bytes); returns its length.
 */
size_t gw_frame_header(uint8_t *out, uint8_t opcode, uint64_t payload_len);

#endif
