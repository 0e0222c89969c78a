#include "gw/guard.h"

#include "gw/alloc.h"
#include "gw/error.h"
#include "gw/peers.h"

#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <uv.h>

/* Ways of a set: a new key evicts the least recently touched of them. */
#define GUARD_WAYS 4
#define GUARD_SETS (GW_GUARD_ENTRIES / GUARD_WAYS)

/* What a key is the key of: the first byte hashed, so that an address and
 * a user never share an entry. */
enum { GUARD_ADDRESS = 'a', GUARD_USER = 'u' };

typedef struct guard_entry {
    uint64_t key;       /* seeded hash of kind and address or user; 0 = free */
    uint64_t used_ms;   /* last touched: the eviction order */
    gw_bucket_t bucket; /* attempts (address) or identifies (user) */
    gw_guard_fails_t fails; /* an address's failed authentications */
} guard_entry_t;

struct gw_guard {
    uv_mutex_t lock;
    uint64_t seed;          /* clients choose their keys, not our sets */
    guard_entry_t *entries; /* owned: GW_GUARD_ENTRIES */
};

uint64_t gw_guard_backoff_ms(uint32_t n, uint32_t delay_ms, uint32_t limit,
                             uint32_t block_ms)
{
    uint64_t wait = delay_ms;

    if (limit != 0 && n >= limit)
        return block_ms;
    if (n <= GW_GUARD_FREE_FAILURES)
        return 0;
    for (uint32_t i = GW_GUARD_FREE_FAILURES + 1; i < n && wait < block_ms; i++)
        wait *= 2;
    return wait < block_ms ? wait : block_ms;
}

void gw_guard_fails_add(gw_guard_fails_t *f, uint64_t now_ms,
                        const gw_config_t *cfg)
{
    if (f->count > 0 && now_ms - f->last_ms >= cfg->auth_fail_block_ms)
        f->count = 0;
    if (f->count < UINT32_MAX)
        f->count++;
    f->last_ms = now_ms;
    f->until_ms = now_ms + gw_guard_backoff_ms(
                               f->count, cfg->auth_fail_delay_ms,
                               cfg->auth_fail_limit, cfg->auth_fail_block_ms);
}

uint64_t gw_guard_fails_wait(const gw_guard_fails_t *f, uint64_t now_ms)
{
    return f->until_ms > now_ms ? f->until_ms - now_ms : 0;
}

gw_guard_t *gw_guard_new(void)
{
    gw_guard_t *g = gw_calloc(1, sizeof(*g));

    if (getrandom(&g->seed, sizeof(g->seed), 0) != sizeof(g->seed))
        g->seed = (uint64_t)random();
    g->entries = gw_calloc(GW_GUARD_ENTRIES, sizeof(*g->entries));
    uv_mutex_init(&g->lock);
    return g;
}

void gw_guard_free(gw_guard_t *g)
{
    if (g == NULL)
        return;
    uv_mutex_destroy(&g->lock);
    free(g->entries);
    free(g);
}

/* FNV-1a over kind and bytes, seeded; never 0 (a free entry). */
static uint64_t guard_hash(const gw_guard_t *g, int kind, const void *p,
                           size_t len)
{
    const uint8_t *b = p;
    uint64_t h = (14695981039346656037ULL ^ g->seed) * 1099511628211ULL;

    h = (h ^ (uint8_t)kind) * 1099511628211ULL;
    for (size_t i = 0; i < len; i++)
        h = (h ^ b[i]) * 1099511628211ULL;
    h ^= h >> 29;
    return h != 0 ? h : 1;
}

/*
 * The entry of key, found or made (evicting the least recently touched of
 * its set; a new one starts with a full bucket of `burst`). Under the lock.
 */
static guard_entry_t *guard_entry(gw_guard_t *g, uint64_t key, uint64_t now_ms,
                                  uint32_t burst)
{
    guard_entry_t *set = &g->entries[(key >> 32) % GUARD_SETS * GUARD_WAYS];
    guard_entry_t *e = &set[0];

    for (int i = 0; i < GUARD_WAYS; i++) {
        if (set[i].key == key) {
            set[i].used_ms = now_ms;
            return &set[i];
        }
        if (set[i].used_ms < e->used_ms)
            e = &set[i];
    }
    *e = (guard_entry_t){.key = key, .used_ms = now_ms};
    gw_bucket_init(&e->bucket, now_ms, burst);
    return e;
}

static int guard_address_key(const gw_guard_t *g, const struct sockaddr *addr,
                             uint64_t *key)
{
    uint8_t k[GW_PEERS_KEY_LEN];

    if (addr == NULL || gw_peers_key(addr, k) != 0)
        return -1;
    *key = guard_hash(g, GUARD_ADDRESS, k, sizeof(k));
    return 0;
}

int gw_guard_attempt(gw_guard_t *g, const struct sockaddr *addr,
                     uint64_t now_ms, const gw_config_t *cfg, uint64_t *wait_ms)
{
    uint64_t key;
    guard_entry_t *e;
    int rc = 0;

    *wait_ms = 0;
    if (g == NULL || guard_address_key(g, addr, &key) != 0)
        return 0;
    uv_mutex_lock(&g->lock);
    e = guard_entry(g, key, now_ms, cfg->auth_identify_burst);
    *wait_ms = gw_guard_fails_wait(&e->fails, now_ms);
    if (*wait_ms > 0 ||
        (cfg->auth_identify_rate != 0 &&
         !gw_bucket_take(&e->bucket, now_ms, cfg->auth_identify_rate,
                         cfg->auth_identify_burst)))
        rc = GW_ELIMITED;
    uv_mutex_unlock(&g->lock);
    return rc;
}

void gw_guard_failed(gw_guard_t *g, const struct sockaddr *addr,
                     uint64_t now_ms, const gw_config_t *cfg)
{
    uint64_t key;

    if (g == NULL || guard_address_key(g, addr, &key) != 0)
        return;
    uv_mutex_lock(&g->lock);
    gw_guard_fails_add(
        &guard_entry(g, key, now_ms, cfg->auth_identify_burst)->fails, now_ms,
        cfg);
    uv_mutex_unlock(&g->lock);
}

int gw_guard_user(gw_guard_t *g, const char *user, uint64_t now_ms,
                  const gw_config_t *cfg)
{
    uint64_t key;
    guard_entry_t *e;
    int ok;

    if (g == NULL || cfg->auth_identify_user_rate == 0)
        return 0;
    key = guard_hash(g, GUARD_USER, user, strlen(user));
    uv_mutex_lock(&g->lock);
    e = guard_entry(g, key, now_ms, cfg->auth_identify_user_burst);
    ok = gw_bucket_take(&e->bucket, now_ms, cfg->auth_identify_user_rate,
                        cfg->auth_identify_user_burst);
    uv_mutex_unlock(&g->lock);
    return ok ? 0 : GW_ELIMITED;
}
