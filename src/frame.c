#include "gw/frame.h"

#include "gw/alloc.h"

#include <stdlib.h>

gw_frame_t *gw_frame_new(size_t len)
{
    gw_frame_t *f = gw_malloc(sizeof(*f) + len);

    atomic_init(&f->refs, 1);
    f->len = (uint32_t)len;
    f->id = 0;
    return f;
}

void gw_frame_unref(gw_frame_t *f)
{
    /* Acquire-release, so that every reader's use of the bytes happens
     * before the free; one RMW rather than a release plus an acquire fence,
     * which ThreadSanitizer cannot model. */
    if (atomic_fetch_sub_explicit(&f->refs, 1, memory_order_acq_rel) != 1)
        return;
    free(f);
}

size_t gw_frame_header(uint8_t *out, uint8_t opcode, uint64_t payload_len)
{
    out[0] = (uint8_t)(0x80 | opcode);
    if (payload_len < 126) {
        out[1] = (uint8_t)payload_len;
        return 2;
    }
    if (payload_len <= 0xffff) {
        out[1] = 126;
        out[2] = (uint8_t)(payload_len >> 8);
        out[3] = (uint8_t)payload_len;
        return 4;
    }
    out[1] = 127;
    for (int i = 0; i < 8; i++)
        out[2 + i] = (uint8_t)(payload_len >> (56 - 8 * i));
    return 10;
}
