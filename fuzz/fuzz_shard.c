/*
 * libFuzzer driver for gw_shard_reply_read: each input is read by
 * hiredis's reader as the replies of a sharded subscriber connection, one
 * after the other, and each reply classified. Beyond the sanitizers, it
 * aborts on a kind that does not match the reply's shape: a message's or
 * a confirmation's channel and payload must point into the reply.
 */
#include "gw/shard.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void fuzz_check(const redisReply *rep, const gw_shard_reply_t *r)
{
    switch (r->kind) {
    case GW_SHARD_MESSAGE:
        if (rep->type != REDIS_REPLY_ARRAY || rep->elements != 3 ||
            r->payload != rep->element[2]->str ||
            r->len != rep->element[2]->len)
            abort();
        /* fallthrough: a message names its channel as the others do */
    case GW_SHARD_SUBSCRIBED:
    case GW_SHARD_UNSUBSCRIBED:
        if (r->channel != rep->element[1]->str ||
            r->clen != rep->element[1]->len)
            abort();
        if (r->kind != GW_SHARD_MESSAGE && r->count != rep->element[2]->integer)
            abort();
        break;
    case GW_SHARD_ERROR:
        if (rep->type != REDIS_REPLY_ERROR || r->payload != rep->str)
            abort();
        break;
    case GW_SHARD_OTHER:
        if (r->channel != NULL || r->payload != NULL)
            abort();
        break;
    }
}

/*
 * Whether every array the input may declare is small. hiredis 0.14's
 * reader allocates an array of the length a header claims before reading
 * its elements, and has no bound: "*366666666" is 3 GB of pointers, an
 * out-of-memory of the driver rather than a finding in ours. Conservative:
 * any '*' followed by a large number skips the input.
 */
static int fuzz_arrays_small(const uint8_t *data, size_t size)
{
    for (size_t i = 0; i < size; i++) {
        unsigned long n = 0;
        size_t j = i + 1;
        if (data[i] != '*')
            continue;
        while (j < size && data[j] >= '0' && data[j] <= '9' && n <= 4096)
            n = n * 10 + (unsigned long)(data[j++] - '0');
        if (n > 4096)
            return 0;
    }
    return 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    redisReader *rd;
    void *rep = NULL;
    gw_shard_reply_t r;

    if (!fuzz_arrays_small(data, size))
        return 0;
    rd = redisReaderCreate();
    if (redisReaderFeed(rd, (const char *)data, size) != REDIS_OK)
        abort();
    while (redisReaderGetReply(rd, &rep) == REDIS_OK && rep != NULL) {
        if (gw_shard_reply_read(rep, &r) != r.kind)
            abort();
        fuzz_check(rep, &r);
        freeReplyObject(rep);
        rep = NULL;
    }
    redisReaderFree(rd);
    return 0;
}
