#include "gw/slotmap.h"

#include "gw/alloc.h"
#include "gw/error.h"

#include <stdlib.h>
#include <string.h>

/* CRC16-CCITT as the cluster specification gives it (XMODEM: polynomial
 * 0x1021, initial 0, no reflection). Bitwise, not a table: slots are
 * computed per subscription and per publish, never per delivery. */
static uint16_t slot_crc16(const uint8_t *p, size_t len)
{
    uint16_t crc = 0;

    for (size_t i = 0; i < len; i++) {
        crc ^= (uint16_t)(p[i] << 8);
        for (int b = 0; b < 8; b++)
            crc = (uint16_t)(crc & 0x8000 ? crc << 1 ^ 0x1021 : crc << 1);
    }
    return crc;
}

unsigned gw_slot_of(const char *key, size_t len)
{
    const char *open = memchr(key, '{', len), *close;

    /* A tag is what lies between the first '{' and the first '}' after
     * it, and only when that is not empty. */
    if (open != NULL) {
        close = memchr(open + 1, '}', len - (size_t)(open + 1 - key));
        if (close != NULL && close > open + 1) {
            key = open + 1;
            len = (size_t)(close - key);
        }
    }
    return slot_crc16((const uint8_t *)key, len) & (GW_SLOTS - 1);
}

void gw_slotmap_init(gw_slotmap_t *m)
{
    m->shards = NULL;
    m->nshards = 0;
    for (size_t i = 0; i < GW_SLOTS; i++)
        m->owner[i] = GW_SLOT_NONE;
}

void gw_slotmap_free(gw_slotmap_t *m)
{
    for (size_t i = 0; i < m->nshards; i++)
        free(m->shards[i].host);
    free(m->shards);
    m->shards = NULL;
    m->nshards = 0;
}

int gw_slotmap_find(const gw_slotmap_t *m, const char *host, int port)
{
    for (size_t i = 0; i < m->nshards; i++)
        if (m->shards[i].port == port && strcmp(m->shards[i].host, host) == 0)
            return (int)i;
    return -1;
}

/* The shard of a master entry [host, port, id, ...], added when new:
 * its index, or -1 when the entry is malformed. */
static int slotmap_master(gw_slotmap_t *m, const redisReply *node)
{
    const redisReply *host, *port;
    int i;

    if (node->type != REDIS_REPLY_ARRAY || node->elements < 2)
        return -1;
    host = node->element[0];
    port = node->element[1];
    if (host->type != REDIS_REPLY_STRING || host->len > 255 ||
        memchr(host->str, '\0', host->len) != NULL ||
        port->type != REDIS_REPLY_INTEGER || port->integer < 1 ||
        port->integer > 65535)
        return -1;
    if ((i = gw_slotmap_find(m, host->str, (int)port->integer)) >= 0)
        return i;
    if (m->nshards >= GW_SLOT_NONE)
        return -1;
    m->shards = gw_realloc(m->shards, (m->nshards + 1) * sizeof(*m->shards));
    m->shards[m->nshards] =
        (gw_shard_addr_t){gw_strdup(host->str), (int)port->integer};
    return (int)m->nshards++;
}

/* One entry [start, end, master, replicas...] into next. */
static int slotmap_range(gw_slotmap_t *next, const redisReply *e)
{
    long long start, end;
    int shard;

    if (e->type != REDIS_REPLY_ARRAY || e->elements < 3 ||
        e->element[0]->type != REDIS_REPLY_INTEGER ||
        e->element[1]->type != REDIS_REPLY_INTEGER)
        return GW_EPARSE;
    start = e->element[0]->integer;
    end = e->element[1]->integer;
    if (start < 0 || end < start || end >= GW_SLOTS ||
        (shard = slotmap_master(next, e->element[2])) < 0)
        return GW_EPARSE;
    for (long long s = start; s <= end; s++) {
        if (next->owner[s] != GW_SLOT_NONE && next->owner[s] != shard)
            return GW_EPARSE;
        next->owner[s] = (uint16_t)shard;
    }
    return 0;
}

int gw_slotmap_parse(gw_slotmap_t *m, const redisReply *r)
{
    gw_slotmap_t *next = gw_malloc(sizeof(*next));
    int rc = GW_EPARSE;

    gw_slotmap_init(next);
    if (r == NULL || r->type != REDIS_REPLY_ARRAY)
        goto done;
    for (size_t i = 0; i < r->elements; i++)
        if (slotmap_range(next, r->element[i]) != 0)
            goto done;
    gw_slotmap_free(m);
    *m = *next;
    gw_slotmap_init(next);
    rc = 0;
done:
    gw_slotmap_free(next);
    free(next);
    return rc;
}

size_t gw_slotmap_covered(const gw_slotmap_t *m)
{
    size_t n = 0;

    for (size_t i = 0; i < GW_SLOTS; i++)
        n += m->owner[i] != GW_SLOT_NONE;
    return n;
}

/* A decimal number of at most max in [p, end), all of it. */
static int slot_number(const char *p, const char *end, long max, long *out)
{
    long v = 0;

    if (p == end || end - p > 5)
        return GW_EPARSE;
    for (; p < end; p++) {
        if (*p < '0' || *p > '9')
            return GW_EPARSE;
        v = v * 10 + (*p - '0');
    }
    if (v > max)
        return GW_EPARSE;
    *out = v;
    return 0;
}

int gw_slot_moved(const char *err, size_t len, gw_slot_moved_t *out)
{
    const char *end = err + len, *sp, *colon = NULL;
    long slot, port;

    if (len < 6 || memcmp(err, "MOVED ", 6) != 0)
        return GW_EPARSE;
    err += 6;
    if ((sp = memchr(err, ' ', (size_t)(end - err))) == NULL ||
        slot_number(err, sp, GW_SLOTS - 1, &slot) != 0)
        return GW_EPARSE;
    /* The port follows the last colon: an IPv6 host has colons too. */
    for (const char *p = sp + 1; p < end; p++)
        if (*p == ':')
            colon = p;
    if (colon == NULL || colon - (sp + 1) >= (long)sizeof(out->host) ||
        memchr(sp + 1, '\0', (size_t)(colon - (sp + 1))) != NULL ||
        slot_number(colon + 1, end, 65535, &port) != 0 || port == 0)
        return GW_EPARSE;
    out->slot = (unsigned)slot;
    memcpy(out->host, sp + 1, (size_t)(colon - (sp + 1)));
    out->host[colon - (sp + 1)] = '\0';
    out->port = (int)port;
    return 0;
}

/* The end of [p, end) without its trailing blanks. */
static const char *slot_rtrim(const char *p, const char *end)
{
    while (end > p && (end[-1] == ' ' || end[-1] == '\t'))
        end--;
    return end;
}

/* Whether host[0..len) may name a host: not empty, no blank, control
 * byte or bracket (an IPv6 address's colons are checked by the caller). */
static int slot_host_ok(const char *host, size_t len)
{
    if (len == 0 || len >= sizeof(((gw_slot_node_t *)0)->host))
        return 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)host[i];
        if (c <= ' ' || c == 0x7f || c == '[' || c == ']')
            return 0;
    }
    return 1;
}

/* One item "host:port" or "[v6]:port" in [p, end). */
static int slot_node(const char *p, const char *end, gw_slot_node_t *out)
{
    const char *colon = NULL, *host = p, *host_end;
    long port;

    for (const char *q = p; q < end; q++)
        if (*q == ':')
            colon = q;
    if (colon == NULL)
        return GW_EPARSE;
    host_end = colon;
    if (*p == '[') {
        if (colon[-1] != ']' || colon - 1 <= p + 1)
            return GW_EPARSE;
        host = p + 1;
        host_end = colon - 1;
    } else if (memchr(p, ':', (size_t)(colon - p)) != NULL) {
        return GW_EPARSE; /* an IPv6 address wants its brackets */
    }
    if (!slot_host_ok(host, (size_t)(host_end - host)) ||
        slot_number(colon + 1, end, 65535, &port) != 0 || port == 0)
        return GW_EPARSE;
    memcpy(out->host, host, (size_t)(host_end - host));
    out->host[host_end - host] = '\0';
    out->port = (int)port;
    return 0;
}

int gw_slot_node_next(const char **s, gw_slot_node_t *out)
{
    const char *p = *s + strspn(*s, " \t"), *end, *next;

    if (*p == '\0')
        return 0;
    end = strchr(p, ',');
    next = end != NULL ? end + 1 : p + strlen(p);
    if (end == NULL)
        end = next;
    if (slot_node(p, slot_rtrim(p, end), out) != 0)
        return GW_EPARSE;
    *s = next;
    return 1;
}

size_t gw_slotmap_diff(const gw_slotmap_t *a, const gw_slotmap_t *b,
                       uint8_t *bits)
{
    /* Each shard of a as b numbers it (or -1): then a slot compares two
     * indices rather than two addresses. */
    int *in_b = gw_malloc((a->nshards + 1) * sizeof(*in_b));
    size_t n = 0;

    for (size_t i = 0; i < a->nshards; i++)
        in_b[i] = gw_slotmap_find(b, a->shards[i].host, a->shards[i].port);
    for (unsigned s = 0; s < GW_SLOTS; s++) {
        unsigned i = a->owner[s], j = b->owner[s];
        int same = i == GW_SLOT_NONE ? j == GW_SLOT_NONE
                                     : j != GW_SLOT_NONE && in_b[i] == (int)j;
        if (!same) {
            gw_slot_mark(bits, s);
            n++;
        }
    }
    free(in_b);
    return n;
}

/* A channel's place in the sort: its shard, then its slot, then its index
 * (qsort is not stable). */
typedef struct slot_key {
    uint32_t key; /* shard << 14 | slot: GW_SLOT_NONE sorts last */
    size_t i;
} slot_key_t;

static int slot_key_cmp(const void *x, const void *y)
{
    const slot_key_t *a = x, *b = y;

    if (a->key != b->key)
        return a->key < b->key ? -1 : 1;
    return a->i < b->i ? -1 : a->i > b->i;
}

size_t gw_slotmap_group(const gw_slotmap_t *m, const char *const *names,
                        const size_t *lens, size_t n, size_t *order,
                        gw_slot_group_t *groups)
{
    slot_key_t *k;
    size_t ng = 0;

    if (n == 0)
        return 0;
    k = gw_malloc(n * sizeof(*k));
    for (size_t i = 0; i < n; i++) {
        unsigned slot = gw_slot_of(names[i], lens[i]);
        k[i] = (slot_key_t){(uint32_t)m->owner[slot] << 14 | slot, i};
    }
    qsort(k, n, sizeof(*k), slot_key_cmp);
    for (size_t j = 0; j < n; j++) {
        order[j] = k[j].i;
        if (j == 0 || k[j].key != k[j - 1].key)
            groups[ng++] = (gw_slot_group_t){k[j].key >> 14,
                                             k[j].key & (GW_SLOTS - 1), j, 0};
        groups[ng - 1].n++;
    }
    free(k);
    return ng;
}
