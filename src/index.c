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

void gw_index_init(gw_worker_t *w)
{
    w->hs_seed = (unsigned long)random() ^ (unsigned long)(uintptr_t)w;
    ck_hs_init(&w->guilds, CK_HS_MODE_OBJECT | CK_HS_MODE_SPMC, index_hash,
               index_compare, &gw_ck_allocator, 64, w->hs_seed);
    ck_hs_init(&w->users, CK_HS_MODE_OBJECT | CK_HS_MODE_SPMC, index_hash,
               index_compare, &gw_ck_allocator, 1024, w->hs_seed);
}

/* Connections are closed before this; any entry left is freed here. */
static void index_free_all(ck_hs_t *hs, size_t id_offset)
{
    ck_hs_iterator_t it = CK_HS_ITERATOR_INITIALIZER;
    void *key;

    while (ck_hs_next(hs, &it, &key))
        free((char *)key - id_offset);
    ck_hs_destroy(hs);
}

void gw_index_free(gw_worker_t *w)
{
    index_free_all(&w->guilds, offsetof(gw_guild_t, id));
    index_free_all(&w->users, offsetof(gw_user_t, id));
}

gw_guild_t *gw_index_guild(gw_worker_t *w, const char *guild)
{
    void *key =
        ck_hs_get(&w->guilds, CK_HS_HASH(&w->guilds, index_hash, guild), guild);
    return key != NULL ? GUILD_OF(key) : NULL;
}

gw_user_t *gw_index_user(gw_worker_t *w, const char *user)
{
    void *key =
        ck_hs_get(&w->users, CK_HS_HASH(&w->users, index_hash, user), user);
    return key != NULL ? USER_OF(key) : NULL;
}

static gw_guild_t *index_guild_create(gw_worker_t *w, const char *id)
{
    size_t len = strlen(id);
    gw_guild_t *g = gw_malloc(sizeof(*g) + len + 1);

    g->members = NULL;
    g->count = 0;
    memcpy(g->id, id, len + 1);
    ck_hs_put(&w->guilds, CK_HS_HASH(&w->guilds, index_hash, g->id), g->id);
    gw_stat_add(&w->stats, GW_STAT_GUILDS, 1);
    return g;
}

int gw_index_join(gw_worker_t *w, gw_conn_t *c, const char *guild)
{
    gw_guild_t *g = gw_index_guild(w, guild);
    gw_member_t *m;

    if (g == NULL)
        g = index_guild_create(w, guild);
    for (m = c->guilds; m != NULL; m = m->conn_next)
        if (m->guild == g)
            return 1;
    m = gw_malloc(sizeof(*m));
    m->guild = g;
    m->conn = c;
    m->prev = NULL;
    m->next = g->members;
    if (g->members != NULL)
        g->members->prev = m;
    g->members = m;
    g->count++;
    m->conn_next = c->guilds;
    c->guilds = m;
    c->nguilds++;
    return 0;
}

/* Unlinks m from its guild, dropping the guild when it empties. */
static void index_unlink_member(gw_worker_t *w, gw_member_t *m)
{
    gw_guild_t *g = m->guild;

    if (m->prev != NULL)
        m->prev->next = m->next;
    else
        g->members = m->next;
    if (m->next != NULL)
        m->next->prev = m->prev;
    if (--g->count == 0) {
        ck_hs_remove(&w->guilds, CK_HS_HASH(&w->guilds, index_hash, g->id),
                     g->id);
        gw_stat_add(&w->stats, GW_STAT_GUILDS, -1);
        free(g);
    }
    free(m);
}

int gw_index_leave(gw_worker_t *w, gw_conn_t *c, const char *guild)
{
    for (gw_member_t **pm = &c->guilds; *pm != NULL; pm = &(*pm)->conn_next) {
        gw_member_t *m = *pm;
        if (strcmp(m->guild->id, guild) != 0)
            continue;
        *pm = m->conn_next;
        c->nguilds--;
        index_unlink_member(w, m);
        return 0;
    }
    return 1;
}

void gw_index_add_session(gw_worker_t *w, gw_conn_t *c, const char *user)
{
    gw_user_t *u = gw_index_user(w, user);

    if (u == NULL) {
        size_t len = strlen(user);
        u = gw_malloc(sizeof(*u) + len + 1);
        u->sessions = NULL;
        u->count = 0;
        memcpy(u->id, user, len + 1);
        ck_hs_put(&w->users, CK_HS_HASH(&w->users, index_hash, u->id), u->id);
    }
    c->user = u;
    c->user_prev = NULL;
    c->user_next = u->sessions;
    if (u->sessions != NULL)
        u->sessions->user_prev = c;
    u->sessions = c;
    u->count++;
}

static void index_remove_session(gw_worker_t *w, gw_conn_t *c)
{
    gw_user_t *u = c->user;

    if (c->user_prev != NULL)
        c->user_prev->user_next = c->user_next;
    else
        u->sessions = c->user_next;
    if (c->user_next != NULL)
        c->user_next->user_prev = c->user_prev;
    c->user = NULL;
    if (--u->count == 0) {
        ck_hs_remove(&w->users, CK_HS_HASH(&w->users, index_hash, u->id),
                     u->id);
        free(u);
    }
}

void gw_index_remove(gw_worker_t *w, gw_conn_t *c)
{
    while (c->guilds != NULL) {
        gw_member_t *m = c->guilds;
        c->guilds = m->conn_next;
        index_unlink_member(w, m);
    }
    c->nguilds = 0;
    if (c->user != NULL)
        index_remove_session(w, c);
}

void gw_index_each_session(gw_worker_t *w, void (*cb)(gw_conn_t *, void *),
                           void *data)
{
    ck_hs_iterator_t it = CK_HS_ITERATOR_INITIALIZER;
    void *key;

    /* Callbacks only queue output; they never change the user table. */
    while (ck_hs_next(&w->users, &it, &key))
        for (gw_conn_t *c = USER_OF(key)->sessions; c != NULL; c = c->user_next)
            cb(c, data);
}
