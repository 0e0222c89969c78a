#include "gw/index.h"

#include "gw/alloc.h"
#include "gw/hex.h"
#include "gw/hs.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

/*
 * Both tables are ck_hs sets of pointers to the id strings stored inline at
 * the end of gw_guild / gw_user; the entry is recovered from its id.
 */
#define GUILD_OF(key) ((gw_guild_t *)((char *)(key)-offsetof(gw_guild_t, id)))
#define USER_OF(key) ((gw_user_t *)((char *)(key)-offsetof(gw_user_t, id)))
#define INDEX_NO_SLOT UINT32_MAX

void gw_index_init(gw_index_t *ix, gw_stats_t *stats, uint8_t tag,
                   const gw_index_hooks_t *hooks)
{
    ix->stats = stats;
    ix->hooks = hooks != NULL ? *hooks : (gw_index_hooks_t){NULL, NULL};
    ix->tag = tag;
    ix->slots = NULL;
    ix->nslots = ix->cap = 0;
    ix->free = INDEX_NO_SLOT;
    gw_slab_init(&ix->members, sizeof(gw_member_t));
    ix->seed = (unsigned long)random() ^ (unsigned long)(uintptr_t)ix;
    ck_hs_init(&ix->guilds, CK_HS_MODE_OBJECT | CK_HS_MODE_SPMC, gw_hs_hash,
               gw_hs_equal, &gw_ck_allocator, 64, ix->seed);
    ck_hs_init(&ix->users, CK_HS_MODE_OBJECT | CK_HS_MODE_SPMC, gw_hs_hash,
               gw_hs_equal, &gw_ck_allocator, 1024, ix->seed);
}

/* Sessions are freed before this; any entry left is freed here. */
static void index_free_all(ck_hs_t *hs, size_t id_offset)
{
    ck_hs_iterator_t it = CK_HS_ITERATOR_INITIALIZER;
    void *key;

    while (ck_hs_next(hs, &it, &key))
        free((char *)key - id_offset);
    ck_hs_destroy(hs);
}

void gw_index_free(gw_index_t *ix)
{
    size_t left;

    index_free_all(&ix->guilds, offsetof(gw_guild_t, id));
    index_free_all(&ix->users, offsetof(gw_user_t, id));
    free(ix->slots);
    left = gw_slab_free(&ix->members);
    if (left > 0)
        gw_error("%zu guild memberships were never freed", left);
}

/* Tells the owner of a target's first session here, or its last gone. */
static void index_interest(gw_index_t *ix, gw_interest_kind_t kind,
                           const char *id, int delta)
{
    if (ix->hooks.interest != NULL)
        ix->hooks.interest(ix->hooks.data, kind, id, delta);
}

/* The same for a session, named by its id in hex. */
static void index_session_interest(gw_index_t *ix, const gw_session_t *s,
                                   int delta)
{
    char hex[2 * GW_SESSION_ID_LEN + 1];

    if (ix->hooks.interest == NULL)
        return;
    gw_hex_encode(s->id, GW_SESSION_ID_LEN, hex);
    hex[2 * GW_SESSION_ID_LEN] = '\0';
    ix->hooks.interest(ix->hooks.data, GW_INTEREST_SESSION, hex, delta);
}

gw_guild_t *gw_index_guild(gw_index_t *ix, const char *guild)
{
    void *key = ck_hs_get(&ix->guilds,
                          CK_HS_HASH(&ix->guilds, gw_hs_hash, guild), guild);
    return key != NULL ? GUILD_OF(key) : NULL;
}

gw_user_t *gw_index_user(gw_index_t *ix, const char *user)
{
    void *key =
        ck_hs_get(&ix->users, CK_HS_HASH(&ix->users, gw_hs_hash, user), user);
    return key != NULL ? USER_OF(key) : NULL;
}

/* A free slot holds the index of the next free one, shifted and tagged
 * with the low bit, which no session pointer has. */
static gw_session_t *index_free_mark(uint32_t next)
{
    return (gw_session_t *)(((uintptr_t)next << 1) | 1);
}

static int index_slot_free(const gw_session_t *v)
{
    return ((uintptr_t)v & 1) != 0;
}

void gw_index_place(gw_index_t *ix, gw_session_t *s)
{
    uint32_t slot = ix->free;

    if (slot != INDEX_NO_SLOT) {
        ix->free = (uint32_t)((uintptr_t)ix->slots[slot] >> 1);
    } else {
        if (ix->nslots == ix->cap) {
            ix->cap = ix->cap ? 2 * ix->cap : 1024;
            ix->slots = gw_realloc(ix->slots, ix->cap * sizeof(*ix->slots));
        }
        slot = ix->nslots++;
    }
    ix->slots[slot] = s;
    s->id[0] = ix->tag;
    s->id[1] = (uint8_t)(slot >> 24);
    s->id[2] = (uint8_t)(slot >> 16);
    s->id[3] = (uint8_t)(slot >> 8);
    s->id[4] = (uint8_t)slot;
}

static uint32_t index_slot_of(const uint8_t id[GW_SESSION_ID_LEN])
{
    return (uint32_t)id[1] << 24 | (uint32_t)id[2] << 16 |
           (uint32_t)id[3] << 8 | id[4];
}

/* Frees the slot of s, if it is s's (a session placed, not yet removed). */
static void index_unplace(gw_index_t *ix, const gw_session_t *s)
{
    uint32_t slot = index_slot_of(s->id);

    if (s->id[0] != ix->tag || slot >= ix->nslots || ix->slots[slot] != s)
        return;
    ix->slots[slot] = index_free_mark(ix->free);
    ix->free = slot;
}

gw_session_t *gw_index_find(gw_index_t *ix, const uint8_t id[GW_SESSION_ID_LEN])
{
    uint32_t slot = index_slot_of(id);
    gw_session_t *s;

    if (id[0] != ix->tag || slot >= ix->nslots)
        return NULL;
    s = ix->slots[slot];
    /* The random rest decides: a guessed slot is not a session. */
    if (index_slot_free(s) || memcmp(s->id, id, GW_SESSION_ID_LEN) != 0)
        return NULL;
    return s;
}

gw_session_t *gw_index_session(gw_index_t *ix,
                               const uint8_t id[GW_SESSION_ID_LEN])
{
    gw_session_t *s = gw_index_find(ix, id);

    return s != NULL && s->identified ? s : NULL;
}

static gw_guild_t *index_guild_create(gw_index_t *ix, const char *id)
{
    size_t len = strlen(id);
    gw_guild_t *g = gw_malloc(sizeof(*g) + len + 1);

    g->members = NULL;
    g->count = 0;
    memcpy(g->id, id, len + 1);
    ck_hs_put(&ix->guilds, CK_HS_HASH(&ix->guilds, gw_hs_hash, g->id), g->id);
    gw_stat_add(ix->stats, GW_STAT_GUILDS, 1);
    index_interest(ix, GW_INTEREST_GUILD, g->id, 1);
    return g;
}

int gw_index_join(gw_index_t *ix, gw_session_t *s, const char *guild)
{
    gw_guild_t *g = gw_index_guild(ix, guild);
    gw_member_t *m;

    if (g == NULL)
        g = index_guild_create(ix, guild);
    for (m = s->guilds; m != NULL; m = m->session_next)
        if (m->guild == g)
            return 1;
    m = gw_slab_alloc(&ix->members);
    m->guild = g;
    m->session = s;
    m->prev = NULL;
    m->next = g->members;
    if (g->members != NULL)
        g->members->prev = m;
    g->members = m;
    g->count++;
    m->session_next = s->guilds;
    s->guilds = m;
    s->nguilds++;
    return 0;
}

/* Unlinks m from its guild, dropping the guild when it empties. */
static void index_unlink_member(gw_index_t *ix, gw_member_t *m)
{
    gw_guild_t *g = m->guild;

    if (m->prev != NULL)
        m->prev->next = m->next;
    else
        g->members = m->next;
    if (m->next != NULL)
        m->next->prev = m->prev;
    if (--g->count == 0) {
        ck_hs_remove(&ix->guilds, CK_HS_HASH(&ix->guilds, gw_hs_hash, g->id),
                     g->id);
        gw_stat_add(ix->stats, GW_STAT_GUILDS, -1);
        index_interest(ix, GW_INTEREST_GUILD, g->id, -1);
        free(g);
    }
    gw_slab_put(&ix->members, m);
}

int gw_index_is_member(const gw_session_t *s, const char *guild)
{
    for (const gw_member_t *m = s->guilds; m != NULL; m = m->session_next)
        if (strcmp(m->guild->id, guild) == 0)
            return 1;
    return 0;
}

int gw_index_leave(gw_index_t *ix, gw_session_t *s, const char *guild)
{
    for (gw_member_t **pm = &s->guilds; *pm != NULL;
         pm = &(*pm)->session_next) {
        gw_member_t *m = *pm;
        if (strcmp(m->guild->id, guild) != 0)
            continue;
        *pm = m->session_next;
        s->nguilds--;
        index_unlink_member(ix, m);
        return 0;
    }
    return 1;
}

void gw_index_add_session(gw_index_t *ix, gw_session_t *s, const char *user)
{
    gw_user_t *u = gw_index_user(ix, user);

    if (u == NULL) {
        size_t len = strlen(user);
        u = gw_malloc(sizeof(*u) + len + 1);
        u->sessions = NULL;
        u->count = 0;
        memcpy(u->id, user, len + 1);
        ck_hs_put(&ix->users, CK_HS_HASH(&ix->users, gw_hs_hash, u->id), u->id);
        index_interest(ix, GW_INTEREST_USER, u->id, 1);
    }
    index_session_interest(ix, s, 1);
    s->user = u;
    s->user_prev = NULL;
    s->user_next = u->sessions;
    if (u->sessions != NULL)
        u->sessions->user_prev = s;
    u->sessions = s;
    u->count++;
}

static void index_remove_session(gw_index_t *ix, gw_session_t *s)
{
    gw_user_t *u = s->user;

    if (s->user_prev != NULL)
        s->user_prev->user_next = s->user_next;
    else
        u->sessions = s->user_next;
    if (s->user_next != NULL)
        s->user_next->user_prev = s->user_prev;
    s->user = NULL;
    index_session_interest(ix, s, -1);
    if (--u->count == 0) {
        ck_hs_remove(&ix->users, CK_HS_HASH(&ix->users, gw_hs_hash, u->id),
                     u->id);
        index_interest(ix, GW_INTEREST_USER, u->id, -1);
        free(u);
    }
}

void gw_index_remove(gw_index_t *ix, gw_session_t *s)
{
    while (s->guilds != NULL) {
        gw_member_t *m = s->guilds;
        s->guilds = m->session_next;
        index_unlink_member(ix, m);
    }
    s->nguilds = 0;
    if (s->user != NULL)
        index_remove_session(ix, s);
    index_unplace(ix, s);
}

void gw_index_each_user(gw_index_t *ix, void (*cb)(gw_user_t *, void *),
                        void *data)
{
    ck_hs_iterator_t it = CK_HS_ITERATOR_INITIALIZER;
    void *key;

    while (ck_hs_next(&ix->users, &it, &key))
        cb(USER_OF(key), data);
}

void gw_index_each_session(gw_index_t *ix, void (*cb)(gw_session_t *, void *),
                           void *data)
{
    ck_hs_iterator_t it = CK_HS_ITERATOR_INITIALIZER;
    void *key;

    /* Callbacks only queue output; they never change the user table. */
    while (ck_hs_next(&ix->users, &it, &key))
        for (gw_session_t *s = USER_OF(key)->sessions; s != NULL;
             s = s->user_next)
            cb(s, data);
}
