/*
 * libFuzzer driver for slotmap.c. Each input is tried three ways:
 *  1. as RESP bytes, read by hiredis's reader into a reply, then as a
 *     CLUSTER SLOTS reply into a map that already holds one shard;
 *  2. as the text of a -MOVED error;
 *  3. as a key, whose slot must be its hash tag's when it has one.
 * Beyond the sanitizers, it aborts on a map that breaks its own
 * invariants, a refused reply that changed the map, or a redirection out
 * of range.
 */
#include "gw/error.h"
#include "gw/slotmap.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char fuzz_one_shard[] =
    "*1\r\n*3\r\n:0\r\n:16383\r\n*2\r\n$9\r\n127.0.0.1\r\n:7000\r\n";

static redisReply *fuzz_reply(const char *p, size_t len)
{
    redisReader *rd = redisReaderCreate();
    void *r = NULL;

    if (redisReaderFeed(rd, p, len) != REDIS_OK ||
        redisReaderGetReply(rd, &r) != REDIS_OK)
        r = NULL;
    redisReaderFree(rd);
    return r;
}

static void fuzz_check_map(const gw_slotmap_t *m)
{
    for (size_t i = 0; i < GW_SLOTS; i++)
        if (m->owner[i] != GW_SLOT_NONE && m->owner[i] >= m->nshards)
            abort();
    for (size_t i = 0; i < m->nshards; i++) {
        if (m->shards[i].port < 1 || m->shards[i].port > 65535 ||
            gw_slotmap_find(m, m->shards[i].host, m->shards[i].port) != (int)i)
            abort(); /* out of range, or a shard twice */
    }
}

static void fuzz_slots(const uint8_t *data, size_t size)
{
    gw_slotmap_t *m = malloc(sizeof(*m));
    redisReply *seed = fuzz_reply(fuzz_one_shard, sizeof(fuzz_one_shard) - 1);
    redisReply *r = fuzz_reply((const char *)data, size);

    gw_slotmap_init(m);
    if (gw_slotmap_parse(m, seed) != 0)
        abort();
    if (r != NULL && gw_slotmap_parse(m, r) != 0 &&
        (m->nshards != 1 || gw_slotmap_covered(m) != GW_SLOTS))
        abort(); /* refused, yet changed */
    fuzz_check_map(m);
    if (r != NULL)
        freeReplyObject(r);
    freeReplyObject(seed);
    gw_slotmap_free(m);
    free(m);
}

static void fuzz_moved(const uint8_t *data, size_t size)
{
    gw_slot_moved_t mv;

    if (gw_slot_moved((const char *)data, size, &mv) != 0)
        return;
    if (mv.slot >= GW_SLOTS || mv.port < 1 || mv.port > 65535 ||
        memchr(mv.host, '\0', sizeof(mv.host)) == NULL)
        abort();
}

static void fuzz_key(const uint8_t *data, size_t size)
{
    const char *k = (const char *)data;
    const char *open = memchr(k, '{', size), *close = NULL;
    unsigned slot = gw_slot_of(k, size);

    if (slot >= GW_SLOTS)
        abort();
    if (open != NULL)
        close = memchr(open + 1, '}', size - (size_t)(open + 1 - k));
    if (close != NULL && close > open + 1 &&
        gw_slot_of(open + 1, (size_t)(close - open - 1)) != slot)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_slots(data, size);
    fuzz_moved(data, size);
    fuzz_key(data, size);
    return 0;
}
