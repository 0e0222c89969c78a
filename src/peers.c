#include "gw/peers.h"

#include "gw/alloc.h"
#include "gw/error.h"

#include <ck_hs.h>
#include <netinet/in.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <uv.h>

#define PEERS_KEY_LEN GW_PEERS_KEY_LEN

struct gw_peer {
    uint8_t key[PEERS_KEY_LEN];
    uint32_t open;
};

struct gw_peers {
    uv_mutex_t lock;
    ck_hs_t set;       /* of gw_peer_t, owned */
    atomic_uint open;  /* sockets accepted and not yet closed */
    uint32_t max_open; /* server.max_connections */
};

static unsigned long peers_hash(const void *key, unsigned long seed)
{
    /* FNV-1a, seeded: clients choose their addresses, not our buckets. */
    unsigned long h = 14695981039346656037UL ^ seed;
    const uint8_t *k = key;

    for (int i = 0; i < PEERS_KEY_LEN; i++)
        h = (h ^ k[i]) * 1099511628211UL;
    return h;
}

static bool peers_compare(const void *a, const void *b)
{
    return memcmp(a, b, PEERS_KEY_LEN) == 0;
}

int gw_peers_key(const struct sockaddr *addr, uint8_t key[PEERS_KEY_LEN])
{
    static const uint8_t v4mapped[12] = {0, 0, 0, 0, 0,    0,
                                         0, 0, 0, 0, 0xff, 0xff};
    const uint8_t *a6;

    memset(key, 0, PEERS_KEY_LEN);
    if (addr->sa_family == AF_INET) {
        key[0] = 4;
        memcpy(key + 1, &((const struct sockaddr_in *)addr)->sin_addr, 4);
        return 0;
    }
    if (addr->sa_family != AF_INET6)
        return -1;
    a6 = ((const struct sockaddr_in6 *)addr)->sin6_addr.s6_addr;
    if (memcmp(a6, v4mapped, sizeof(v4mapped)) == 0) {
        key[0] = 4;
        memcpy(key + 1, a6 + 12, 4);
    } else {
        key[0] = 6;
        memcpy(key + 1, a6, 8);
    }
    return 0;
}

gw_peers_t *gw_peers_new(uint32_t max_open)
{
    gw_peers_t *p = gw_calloc(1, sizeof(*p));
    unsigned long seed;

    p->max_open = max_open;
    atomic_init(&p->open, 0);
    if (getrandom(&seed, sizeof(seed), 0) != sizeof(seed))
        seed = (unsigned long)random();
    uv_mutex_init(&p->lock);
    ck_hs_init(&p->set, CK_HS_MODE_OBJECT | CK_HS_MODE_SPMC, peers_hash,
               peers_compare, &gw_ck_allocator, 64, seed);
    return p;
}

void gw_peers_free(gw_peers_t *p)
{
    ck_hs_destroy(&p->set);
    uv_mutex_destroy(&p->lock);
    free(p);
}

gw_peer_t *gw_peers_take(gw_peers_t *p, const struct sockaddr *addr,
                         uint32_t limit)
{
    uint8_t key[PEERS_KEY_LEN];
    gw_peer_t *peer;
    unsigned long h;

    if (limit == 0 || gw_peers_key(addr, key) != 0)
        return NULL;
    h = CK_HS_HASH(&p->set, peers_hash, key);
    uv_mutex_lock(&p->lock);
    peer = ck_hs_get(&p->set, h, key);
    if (peer == NULL) {
        peer = gw_calloc(1, sizeof(*peer));
        memcpy(peer->key, key, PEERS_KEY_LEN);
        ck_hs_put(&p->set, h, peer->key);
    }
    if (peer->open < limit)
        peer->open++;
    else
        peer = NULL;
    uv_mutex_unlock(&p->lock);
    return peer;
}

void gw_peers_release(gw_peers_t *p, gw_peer_t *peer)
{
    uv_mutex_lock(&p->lock);
    if (--peer->open == 0) {
        ck_hs_remove(&p->set, CK_HS_HASH(&p->set, peers_hash, peer->key),
                     peer->key);
        free(peer);
    }
    uv_mutex_unlock(&p->lock);
}

int gw_peers_enter(gw_peers_t *p)
{
    /* A load then an add, not a compare-and-swap loop: one thread (the
     * acceptor) enters, so the total can only have fallen in between. */
    if (atomic_load_explicit(&p->open, memory_order_relaxed) >=
        p->max_open + GW_PEERS_REFUSING)
        return GW_EFULL;
    gw_peers_count(p);
    return 0;
}

void gw_peers_count(gw_peers_t *p)
{
    atomic_fetch_add_explicit(&p->open, 1, memory_order_relaxed);
}

void gw_peers_leave(gw_peers_t *p)
{
    atomic_fetch_sub_explicit(&p->open, 1, memory_order_relaxed);
}

int gw_peers_over_cap(const gw_peers_t *p)
{
    return gw_peers_open(p) > p->max_open;
}

uint32_t gw_peers_open(const gw_peers_t *p)
{
    return atomic_load_explicit(&p->open, memory_order_relaxed);
}

/*
 * What is not a client: stdin, stdout and stderr, the listening sockets,
 * the broker's links (two to Redis, one to RabbitMQ) and the odd file
 * (certificates read at a reload, /dev/urandom) in the fixed 64; each
 * thread's loop (an epoll and an eventfd or two) in 4 a worker, the
 * acceptor, broker and main loops counted as three more workers; the HTTP
 * port's connections; and the refusals in progress past the cap.
 */
uint32_t gw_peers_default_cap(int workers, uint32_t http_conns,
                              uint32_t *reserve)
{
    struct rlimit rl;
    /* Without an answer, the usual soft limit; unlimited counts as the
     * most a 32-bit cap can say. */
    uint64_t limit = getrlimit(RLIMIT_NOFILE, &rl) == 0 ? rl.rlim_cur : 1024;

    *reserve =
        64 + 4 * ((uint32_t)workers + 3) + http_conns + GW_PEERS_REFUSING;
    if (limit > UINT32_MAX) /* RLIM_INFINITY too */
        limit = UINT32_MAX;
    return limit > *reserve ? (uint32_t)limit - *reserve : 1;
}

size_t gw_peers_addresses(gw_peers_t *p)
{
    size_t n;

    uv_mutex_lock(&p->lock);
    n = (size_t)ck_hs_count(&p->set);
    uv_mutex_unlock(&p->lock);
    return n;
}
