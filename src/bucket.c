#include "gw/bucket.h"

void gw_bucket_init(gw_bucket_t *b, uint64_t now_ms, uint32_t burst)
{
    b->last_ms = now_ms;
    b->level = burst * 1000;
}

int gw_bucket_take(gw_bucket_t *b, uint64_t now_ms, uint32_t rate,
                   uint32_t burst)
{
    uint64_t full = (uint64_t)burst * 1000, level = b->level;

    /* rate tokens a second are rate thousandths a millisecond. Past
     * `full` milliseconds any rate has refilled the bucket, which also
     * keeps the product from overflowing. A clock that went back adds
     * nothing. */
    if (now_ms > b->last_ms) {
        uint64_t elapsed = now_ms - b->last_ms;
        level += elapsed >= full ? full : elapsed * rate;
        b->last_ms = now_ms;
    }
    if (level > full)
        level = full;
    if (level < 1000) {
        b->level = (uint32_t)level;
        return 0;
    }
    b->level = (uint32_t)(level - 1000);
    return 1;
}

int gw_window_take(uint32_t *since, uint32_t *count, uint32_t now_ms,
                   uint32_t window_ms, uint32_t limit)
{
    if (now_ms - *since >= window_ms) {
        *since = now_ms;
        *count = 0;
    }
    if (*count >= limit)
        return 0;
    (*count)++;
    return 1;
}
