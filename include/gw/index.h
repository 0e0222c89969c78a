/*
 * A worker's local routing tables: guild -> member sessions and user ->
 * sessions, so that fan-out is a list walk with no locks and no copies.
 * Worker thread only.
 */
#ifndef GW_INDEX_H
#define GW_INDEX_H

#include "gw/conn.h"
#include "gw/worker.h"

struct gw_member {
    gw_guild_t *guild;        /* borrowed */
    gw_conn_t *conn;          /* borrowed */
    gw_member_t *prev, *next; /* in the guild's member list */
    gw_member_t *conn_next;   /* in the connection's list */
};

struct gw_guild {
    gw_member_t *members;
    uint32_t count;
    char id[];
};

struct gw_user {
    gw_conn_t *sessions;
    uint32_t count;
    char id[];
};

void gw_index_init(gw_worker_t *w);
void gw_index_free(gw_worker_t *w);

/* Adds c to the guild; returns 0, or 1 if it already was a member. */
int gw_index_join(gw_worker_t *w, gw_conn_t *c, const char *guild);

/* Removes c from the guild; returns 0, or 1 if it was not a member. */
int gw_index_leave(gw_worker_t *w, gw_conn_t *c, const char *guild);

/* Registers c as a session of `user`. */
void gw_index_add_session(gw_worker_t *w, gw_conn_t *c, const char *user);

/* Removes every guild membership and the session of c. */
void gw_index_remove(gw_worker_t *w, gw_conn_t *c);

gw_guild_t *gw_index_guild(gw_worker_t *w, const char *guild);
gw_user_t *gw_index_user(gw_worker_t *w, const char *user);

/* Calls cb for every identified session of the worker. */
void gw_index_each_session(gw_worker_t *w, void (*cb)(gw_conn_t *, void *),
                           void *data);

#endif
