/*
 * libFuzzer driver for slotmap.c. Each input is tried three ways:
 *  1. as RESP bytes, read by hiredis's reader into a reply, then as a
 *     CLUSTER SLOTS reply into a map that already holds one shard;
 *  2. as the text of a -MOVED error;
 *  3. as a key, whose slot must be its hash tag's when it has one;
 *  4. as a seed list (redis.cluster_nodes);
 *  5. as channel names, one a line, grouped by shard and slot.
 * A map the input parses to is also compared with the one-shard map.
 * Beyond the sanitizers, it aborts on a map that breaks its own
 * invariants, a refused reply that changed the map, a redirection or a
 * seed out of range, a grouping that is not a sorted partition of the
 * names, or a count of changed slots that is not the slots marked.
 */
#include "gw/error.h"
#include "gw/slotmap.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char fuzz_one_shard[] =
    "*1\r\n*3\r\n:0\r\n:16383\r\n*2\r\n$9\r\n127.0.0.1\r\n:7000\r\n";

/*
 * Whether every array the input may declare is small. hiredis 0.14's
 * reader allocates an array of the length a header claims before reading
 * its elements, and has no bound: "*366666666" is 3 GB of pointers, an
 * out-of-memory of the driver rather than a finding in ours. Conservative:
 * any '*' followed by a large number is not read as a reply.
 */
static int fuzz_arrays_small(const char *p, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        unsigned long n = 0;
        size_t j = i + 1;
        if (p[i] != '*')
            continue;
        while (j < len && p[j] >= '0' && p[j] <= '9' && n <= 4096)
            n = n * 10 + (unsigned long)(p[j++] - '0');
        if (n > 4096)
            return 0;
    }
    return 1;
}

static redisReply *fuzz_reply(const char *p, size_t len)
{
    redisReader *rd;
    void *r = NULL;

    if (!fuzz_arrays_small(p, len))
        return NULL;
    rd = redisReaderCreate();
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

/* The slots that changed from a to b are those marked, counted once. */
static void fuzz_diff(const gw_slotmap_t *a, const gw_slotmap_t *b)
{
    uint8_t *bits = calloc(GW_SLOT_BYTES, 1);
    size_t n = gw_slotmap_diff(a, b, bits), marked = 0;

    for (unsigned s = 0; s < GW_SLOTS; s++)
        marked += (size_t)gw_slot_marked(bits, s);
    if (n != marked || (a == b && n != 0))
        abort();
    free(bits);
}

static void fuzz_slots(const uint8_t *data, size_t size)
{
    gw_slotmap_t *m = malloc(sizeof(*m)), *one = malloc(sizeof(*one));
    redisReply *seed = fuzz_reply(fuzz_one_shard, sizeof(fuzz_one_shard) - 1);
    redisReply *r = fuzz_reply((const char *)data, size);

    gw_slotmap_init(m);
    gw_slotmap_init(one);
    if (gw_slotmap_parse(m, seed) != 0 || gw_slotmap_parse(one, seed) != 0)
        abort();
    if (r != NULL && gw_slotmap_parse(m, r) != 0) {
        if (m->nshards != 1 || gw_slotmap_covered(m) != GW_SLOTS)
            abort(); /* refused, yet changed */
    } else if (r != NULL) {
        fuzz_diff(one, m);
        fuzz_diff(m, m);
    }
    fuzz_check_map(m);
    gw_slotmap_free(one);
    free(one);
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

static void fuzz_seeds(const uint8_t *data, size_t size)
{
    char *text = malloc(size + 1);
    const char *s = text;
    gw_slot_node_t n;
    int rc;

    memcpy(text, data, size);
    text[size] = '\0';
    while ((rc = gw_slot_node_next(&s, &n)) == 1)
        if (n.port < 1 || n.port > 65535 || n.host[0] == '\0' ||
            memchr(n.host, '\0', sizeof(n.host)) == NULL || s < text ||
            s > text + strlen(text))
            abort();
    if (rc != 0 && rc != GW_EPARSE)
        abort();
    free(text);
}

/* The input's lines as channel names, grouped on a map of two masters:
 * the order is a permutation, each group one slot of one shard, sorted,
 * the slots nobody serves last. */
static void fuzz_group(const uint8_t *data, size_t size)
{
    static const char two[] =
        "*2\r\n*3\r\n:0\r\n:8191\r\n*2\r\n$1\r\na\r\n:1\r\n"
        "*3\r\n:8192\r\n:12999\r\n*2\r\n$1\r\nb\r\n:1\r\n";
    const char *names[64];
    size_t lens[64], order[64], n = 0, ng, seen = 0;
    gw_slot_group_t g[64];
    static gw_slotmap_t *m; /* built once, kept for the run */
    const char *p = (const char *)data, *end = p + size;

    if (m == NULL) {
        redisReply *r = fuzz_reply(two, sizeof(two) - 1);
        m = malloc(sizeof(*m));
        gw_slotmap_init(m);
        if (gw_slotmap_parse(m, r) != 0)
            abort();
        freeReplyObject(r);
    }
    while (p < end && n < 64) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        names[n] = p;
        lens[n++] = (size_t)((nl ? nl : end) - p);
        p = nl ? nl + 1 : end;
    }
    ng = gw_slotmap_group(m, names, lens, n, order, g);
    for (size_t i = 0; i < ng; i++) {
        uint32_t key = (uint32_t)g[i].shard << 14 | g[i].slot;
        if (g[i].n == 0 || g[i].first != seen ||
            (i > 0 && key <= ((uint32_t)g[i - 1].shard << 14 | g[i - 1].slot)))
            abort();
        for (size_t k = g[i].first; k < g[i].first + g[i].n; k++) {
            unsigned slot = gw_slot_of(names[order[k]], lens[order[k]]);
            if (order[k] >= n || slot != g[i].slot ||
                m->owner[slot] != g[i].shard ||
                (k > g[i].first && order[k] <= order[k - 1]))
                abort();
        }
        seen += g[i].n;
    }
    if (seen != n)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_slots(data, size);
    fuzz_moved(data, size);
    fuzz_key(data, size);
    fuzz_seeds(data, size);
    fuzz_group(data, size);
    return 0;
}
