/*
 * The interest table (include/gw/interest.h). One entry per target that a
 * worker holds, that lingers, or whose change the owner has not heard yet:
 * a ck_hs set of the entries' keys (the kind's letter, then the id), and
 * two intrusive lists: the lingering entries in order of their end (one
 * linger for all, so appending keeps the order), and the entries changed
 * since the last flush. Whether the owner hears of an entry is decided at
 * the flush, from what it was last told: so a join and a leave in the same
 * turn cost nothing, and a leave and a join inside the linger neither.
 */
#include "gw/interest.h"

#include "gw/alloc.h"
#include "gw/hs.h"

#include <ck_hs.h>
#include <stdlib.h>
#include <string.h>

#define INTEREST_ENTRY_OF(p)                                                   \
    ((interest_entry_t *)((char *)(p)-offsetof(interest_entry_t, key)))

typedef struct interest_entry {
    struct interest_entry *prev, *next; /* in the linger list */
    struct interest_entry *dirty_next;  /* in the changed list */
    uint64_t due;                       /* when the linger ends */
    uint32_t holders;                   /* workers that hold the target */
    uint8_t told;                       /* the owner was told it is wanted */
    uint8_t dirty;                      /* in the changed list */
    uint8_t lingering;                  /* in the linger list */
    uint8_t confirmed; /* the links that confirmed it (GW_INTEREST_VIA_*) */
    uint8_t need;      /* those its waiters wait for */
    uint16_t nwaiters, capwaiters;
    uint16_t *waiters; /* owned: workers waiting for the confirmation, one
                          per +1 of theirs (gw/subwait.h counts them) */
    char key[];        /* kind letter, then the id */
} interest_entry_t;

/* A growable array of targets, for the hook's two batches. */
typedef struct interest_batch {
    gw_interest_target_t *t;
    size_t n, cap;
} interest_batch_t;

struct gw_interest {
    ck_hs_t table;      /* of entry keys */
    unsigned long seed; /* of the table's hash: clients choose ids */
    uint64_t linger_ms; /* guilds and users */
    gw_stats_t *stats;  /* borrowed: the broker's */
    gw_interest_hooks_t hooks;
    interest_entry_t *first, *last; /* lingering, in order of due */
    interest_entry_t *dirty;        /* changed since the last flush */
    interest_batch_t on, off;       /* kept between flushes: no realloc */
    interest_entry_t **gone;        /* freed after the hook, owned */
    size_t ngone, gone_cap;
    size_t lingering; /* entries in the linger list */
};

static const char interest_letter[GW_INTEREST_KINDS] = {'g', 'u', 's'};

void gw_interest_changes_free(gw_interest_change_t *c, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(c[i].id);
    free(c);
}

static gw_interest_kind_t interest_kind_of(const interest_entry_t *e)
{
    return e->key[0] == 'g'   ? GW_INTEREST_GUILD
           : e->key[0] == 'u' ? GW_INTEREST_USER
                              : GW_INTEREST_SESSION;
}

gw_interest_t *gw_interest_new(uint64_t linger_ms, gw_stats_t *stats,
                               const gw_interest_hooks_t *hooks)
{
    gw_interest_t *in = gw_calloc(1, sizeof(*in));

    in->linger_ms = linger_ms;
    in->stats = stats;
    in->hooks = *hooks;
    in->seed = (unsigned long)random() ^ (unsigned long)(uintptr_t)in;
    ck_hs_init(&in->table, CK_HS_MODE_OBJECT | CK_HS_MODE_SPMC, gw_hs_hash,
               gw_hs_equal, &gw_ck_allocator, 1024, in->seed);
    return in;
}

void gw_interest_free(gw_interest_t *in)
{
    ck_hs_iterator_t it = CK_HS_ITERATOR_INITIALIZER;
    void *key;

    while (ck_hs_next(&in->table, &it, &key)) {
        free(INTEREST_ENTRY_OF(key)->waiters);
        free(INTEREST_ENTRY_OF(key));
    }
    ck_hs_destroy(&in->table);
    free(in->on.t);
    free(in->off.t);
    free(in->gone);
    free(in);
}

static interest_entry_t *interest_get(gw_interest_t *in, const char *key)
{
    void *k =
        ck_hs_get(&in->table, CK_HS_HASH(&in->table, gw_hs_hash, key), key);

    return k != NULL ? INTEREST_ENTRY_OF(k) : NULL;
}

static interest_entry_t *interest_create(gw_interest_t *in, const char *key,
                                         size_t len)
{
    interest_entry_t *e = gw_calloc(1, sizeof(*e) + len + 1);

    memcpy(e->key, key, len + 1);
    ck_hs_put(&in->table, CK_HS_HASH(&in->table, gw_hs_hash, e->key), e->key);
    return e;
}

static void interest_mark(gw_interest_t *in, interest_entry_t *e)
{
    if (e->dirty)
        return;
    e->dirty = 1;
    e->dirty_next = in->dirty;
    in->dirty = e;
}

static void interest_linger(gw_interest_t *in, interest_entry_t *e,
                            uint64_t due)
{
    e->lingering = 1;
    e->due = due;
    e->prev = in->last;
    e->next = NULL;
    if (in->last != NULL)
        in->last->next = e;
    else
        in->first = e;
    in->last = e;
    in->lingering++;
}

static void interest_unlinger(gw_interest_t *in, interest_entry_t *e)
{
    if (e->prev != NULL)
        e->prev->next = e->next;
    else
        in->first = e->next;
    if (e->next != NULL)
        e->next->prev = e->prev;
    else
        in->last = e->prev;
    e->lingering = 0;
    in->lingering--;
}

/* The last holder let go: a target the owner knows of lingers, if its kind
 * does; anything else is decided at the flush. */
static void interest_released(gw_interest_t *in, interest_entry_t *e,
                              uint64_t now_ms)
{
    if (e->told && in->linger_ms > 0 &&
        interest_kind_of(e) != GW_INTEREST_SESSION)
        interest_linger(in, e, now_ms + in->linger_ms);
    else
        interest_mark(in, e);
}

void gw_interest_add(gw_interest_t *in, gw_interest_kind_t kind, const char *id,
                     int delta, uint64_t now_ms)
{
    size_t len = strlen(id);
    char *key = gw_malloc(len + 2);
    interest_entry_t *e;

    key[0] = interest_letter[kind];
    memcpy(key + 1, id, len + 1);
    e = interest_get(in, key);
    if (delta > 0) {
        if (e == NULL)
            e = interest_create(in, key, len + 1);
        if (e->holders++ == 0 && e->lingering)
            interest_unlinger(in, e);
        else if (e->holders == 1)
            interest_mark(in, e);
    } else if (e != NULL && e->holders > 0 && --e->holders == 0) {
        interest_released(in, e, now_ms);
    }
    free(key);
}

static void interest_push(interest_batch_t *b, const interest_entry_t *e)
{
    if (b->n == b->cap) {
        b->cap = b->cap ? 2 * b->cap : 64;
        b->t = gw_realloc(b->t, b->cap * sizeof(*b->t));
    }
    b->t[b->n++] = (gw_interest_target_t){interest_kind_of(e), e->key + 1};
}

/* Every worker waiting for e hears that it need wait no more. */
static void interest_answer(gw_interest_t *in, interest_entry_t *e)
{
    gw_interest_target_t t = {interest_kind_of(e), e->key + 1};

    for (uint16_t i = 0; i < e->nwaiters; i++)
        in->hooks.answered(in->hooks.data, e->waiters[i], &t);
    free(e->waiters);
    e->waiters = NULL;
    e->nwaiters = e->capwaiters = 0;
}

/* Out of the table now, freed once the hook has seen its id; a worker
 * still waiting for it is answered: no session of its holds it. */
static void interest_drop(gw_interest_t *in, interest_entry_t *e)
{
    interest_answer(in, e);
    ck_hs_remove(&in->table, CK_HS_HASH(&in->table, gw_hs_hash, e->key),
                 e->key);
    if (in->ngone == in->gone_cap) {
        in->gone_cap = in->gone_cap ? 2 * in->gone_cap : 64;
        in->gone = gw_realloc(in->gone, in->gone_cap * sizeof(*in->gone));
    }
    in->gone[in->ngone++] = e;
}

/* Decides one changed entry against what the owner was last told. */
static void interest_decide(gw_interest_t *in, interest_entry_t *e)
{
    int want = e->holders > 0 || e->lingering;

    e->dirty = 0;
    if (want && !e->told) {
        e->told = 1;
        interest_push(&in->on, e);
    } else if (!want && e->told) {
        interest_push(&in->off, e);
        interest_drop(in, e);
    } else if (!want) {
        interest_drop(in, e); /* came and went between two flushes */
    }
}

static void interest_gauges(gw_interest_t *in)
{
    gw_stats_t *s = in->stats;

    gw_stat_add(s, GW_STAT_INTEREST_TARGETS,
                (int64_t)in->on.n - (int64_t)in->off.n);
    gw_stat_set(s, GW_STAT_INTEREST_LINGERING, in->lingering);
}

uint64_t gw_interest_flush(gw_interest_t *in, uint64_t now_ms)
{
    interest_entry_t *e;

    while (in->first != NULL && in->first->due <= now_ms) {
        e = in->first;
        interest_unlinger(in, e);
        interest_mark(in, e);
    }
    while ((e = in->dirty) != NULL) {
        in->dirty = e->dirty_next;
        interest_decide(in, e);
    }
    if (in->on.n + in->off.n > 0)
        in->hooks.changed(in->hooks.data, in->on.t, in->on.n, in->off.t,
                          in->off.n);
    interest_gauges(in);
    for (size_t i = 0; i < in->ngone; i++)
        free(in->gone[i]);
    in->on.n = in->off.n = in->ngone = 0;
    return in->first != NULL ? in->first->due : UINT64_MAX;
}

void gw_interest_each(const gw_interest_t *in,
                      void (*cb)(void *data, const gw_interest_target_t *t),
                      void *data)
{
    ck_hs_iterator_t it = CK_HS_ITERATOR_INITIALIZER;
    void *key;

    while (ck_hs_next((ck_hs_t *)&in->table, &it, &key)) {
        const interest_entry_t *e = INTEREST_ENTRY_OF(key);
        gw_interest_target_t t = {interest_kind_of(e), e->key + 1};
        if (e->told)
            cb(data, &t);
    }
}

void gw_interest_await(gw_interest_t *in, gw_interest_kind_t kind,
                       const char *id, unsigned worker, unsigned need)
{
    size_t len = strlen(id);
    char *key = gw_malloc(len + 2);
    interest_entry_t *e;
    gw_interest_target_t t = {kind, id};

    key[0] = interest_letter[kind];
    memcpy(key + 1, id, len + 1);
    e = interest_get(in, key);
    free(key);
    if (e == NULL || (e->confirmed & need) == need) {
        in->hooks.answered(in->hooks.data, worker, &t);
        return;
    }
    e->need = (uint8_t)need;
    if (e->nwaiters == e->capwaiters) {
        e->capwaiters = e->capwaiters ? 2 * e->capwaiters : 2;
        e->waiters =
            gw_realloc(e->waiters, e->capwaiters * sizeof(*e->waiters));
    }
    e->waiters[e->nwaiters++] = (uint16_t)worker;
}

void gw_interest_confirm(gw_interest_t *in, gw_interest_kind_t kind,
                         const char *id, size_t len, unsigned via)
{
    char *key = gw_malloc(len + 2);
    interest_entry_t *e;

    key[0] = interest_letter[kind];
    memcpy(key + 1, id, len);
    key[len + 1] = '\0';
    e = interest_get(in, key);
    free(key);
    /* A channel not asked for yet, or any more, confirms nothing. */
    if (e == NULL || !e->told)
        return;
    e->confirmed |= (uint8_t)via;
    if ((e->confirmed & e->need) == e->need)
        interest_answer(in, e);
}
