#include "gw/index.h"

#include "gw/alloc.h"

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
#define SESSION_OF(key)                                                        \
    ((gw_session_t *)((char *)(key)-offsetof(gw_session_t, id)))

static unsigned long index_hash(const void *key, unsigned long seed)
{
    /* FNV-1a, seeded so that ids chosen by clients cannot aim at a bucket. */
    unsigned long h = 14695981039346656037UL ^ seed;
    for (const unsigned char *p = key; *p != '\0'; p++)
        h = (h ^ *p) * 1099511628211UL;
    return h;
}

static bool index_compare(const void *a, const void *b)
{
    return strcmp(a, b) == 0;
}

/* Session ids are random bytes of our own: their first word, seeded, is as
 * good a hash as any, and a backend that names an id only looks it up. */
static unsigned long index_session_hash(const void *key, unsigned long seed)
{
    unsigned long h;

    memcpy(&h, key, sizeof(h));
    return h ^ seed;
}

static bool index_session_compare(const void *a, const void *b)
{
    return memcmp(a, b, GW_SESSION_ID_LEN) == 0;
}

void gw_index_init(gw_index_t *ix, gw_stats_t *stats)
{
    ix->stats = stats;
    ix->seed = (unsigned long)random() ^ (unsigned long)(uintptr_t)ix;
    ck_hs_init(&ix->guilds, CK_HS_MODE_OBJECT | CK_HS_MODE_SPMC, index_hash,
               index_compare, &gw_ck_allocator, 64, ix->seed);
    ck_hs_init(&ix->users, CK_HS_MODE_OBJECT | CK_HS_MODE_SPMC, index_hash,
               index_compare, &gw_ck_allocator, 1024, ix->seed);
    ck_hs_init(&ix->sessions, CK_HS_MODE_OBJECT | CK_HS_MODE_SPMC,
               index_session_hash, index_session_compare, &gw_ck_allocator,
               1024, ix->seed);
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
    index_free_all(&ix->guilds, offsetof(gw_guild_t, id));
    index_free_all(&ix->users, offsetof(gw_user_t, id));
    /* Its keys are the sessions' own: nothing of its entries to free. */
    ck_hs_destroy(&ix->sessions);
}

gw_guild_t *gw_index_guild(gw_index_t *ix, const char *guild)
{
    void *key = ck_hs_get(&ix->guilds,
                          CK_HS_HASH(&ix->guilds, index_hash, guild), guild);
    return key != NULL ? GUILD_OF(key) : NULL;
}

gw_user_t *gw_index_user(gw_index_t *ix, const char *user)
{
    void *key =
        ck_hs_get(&ix->users, CK_HS_HASH(&ix->users, index_hash, user), user);
    return key != NULL ? USER_OF(key) : NULL;
}

gw_session_t *gw_index_session(gw_index_t *ix,
                               const uint8_t id[GW_SESSION_ID_LEN])
{
    void *key = ck_hs_get(
        &ix->sessions, CK_HS_HASH(&ix->sessions, index_session_hash, id), id);
    return key != NULL ? SESSION_OF(key) : NULL;
}

static gw_guild_t *index_guild_create(gw_index_t *ix, const char *id)
{
    size_t len = strlen(id);
    gw_guild_t *g = gw_malloc(sizeof(*g) + len + 1);

    g->members = NULL;
    g->count = 0;
    memcpy(g->id, id, len + 1);
    ck_hs_put(&ix->guilds, CK_HS_HASH(&ix->guilds, index_hash, g->id), g->id);
    gw_stat_add(ix->stats, GW_STAT_GUILDS, 1);
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
    m = gw_malloc(sizeof(*m));
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
        ck_hs_remove(&ix->guilds, CK_HS_HASH(&ix->guilds, index_hash, g->id),
                     g->id);
        gw_stat_add(ix->stats, GW_STAT_GUILDS, -1);
        free(g);
    }
    free(m);
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
        ck_hs_put(&ix->users, CK_HS_HASH(&ix->users, index_hash, u->id), u->id);
    }
    ck_hs_put(&ix->sessions,
              CK_HS_HASH(&ix->sessions, index_session_hash, s->id), s->id);
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
    ck_hs_remove(&ix->sessions,
                 CK_HS_HASH(&ix->sessions, index_session_hash, s->id), s->id);
    if (--u->count == 0) {
        ck_hs_remove(&ix->users, CK_HS_HASH(&ix->users, index_hash, u->id),
                     u->id);
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
