/*
 * The names of the Redis channels (README "Redis: targeted channels"):
 * besides the plain channel P (redis.channel), one per target,
 *
 *   P:guild:<guildId>   P:user:<userId>   P:session:<sessionId>
 *
 * (a session id as its 32 lowercase hex digits), built and read here with
 * no I/O: which channels an envelope goes to, what a message's channel
 * names, and whether an envelope agrees with the channel it came on. An id
 * is any bytes but NUL, at most GW_CHANNEL_ID_MAX: the bound of a guild or
 * user id in an envelope and in the protocol. Names are compared as bytes:
 * no pattern (PSUBSCRIBE) is involved, so '*' or ':' in an id are plain.
 */
#ifndef GW_CHANNEL_H
#define GW_CHANNEL_H

#include "gw/event.h"
#include "gw/interest.h"

#include <stddef.h>

#define GW_CHANNEL_ID_MAX 128

typedef enum gw_channel_kind {
    GW_CHANNEL_GUILD = GW_INTEREST_GUILD,
    GW_CHANNEL_USER = GW_INTEREST_USER,
    GW_CHANNEL_SESSION = GW_INTEREST_SESSION,
    GW_CHANNEL_PLAIN, /* P itself: broadcasts, and backends that do not
                         target */
} gw_channel_kind_t;

/* What a channel's name says. */
typedef struct gw_channel {
    gw_channel_kind_t kind;
    const char *id; /* into the name parsed, `len` bytes; NULL for plain */
    size_t len;
} gw_channel_t;

/* Channel names, each owned (NUL-terminated, with its length beside). */
typedef struct gw_channel_list {
    char **names;
    size_t *lens;
    size_t n, cap;
} gw_channel_list_t;

/* Appends the channel of target (kind, id of idlen bytes) under prefix. */
void gw_channel_list_add(gw_channel_list_t *l, const char *prefix,
                         gw_interest_kind_t kind, const char *id, size_t idlen);

/* Appends the plain channel, prefix itself. */
void gw_channel_list_plain(gw_channel_list_t *l, const char *prefix);

/* Frees the names and empties l. */
void gw_channel_list_free(gw_channel_list_t *l);

/*
 * Reads the channel name[0..len): the plain channel when it is prefix
 * itself, a target's when it is one of the forms above. 0, or GW_EINVAL
 * for any other name (the handoff's control channel included).
 */
int gw_channel_parse(const char *prefix, const char *name, size_t len,
                     gw_channel_t *out);

/*
 * Appends the channels an envelope goes to: its guild's, its session's,
 * each of its users' when there are at most max_users, else (and for a
 * broadcast) the plain channel, which every instance reads.
 */
void gw_channel_for_event(gw_channel_list_t *l, const char *prefix,
                          const gw_event_t *ev, size_t max_users);

/*
 * Whether ev, which came on channel ch, agrees with it: the channel routes.
 * Anything agrees with the plain channel; a guild's channel takes a
 * dispatch to that guild, a user's channel an envelope (dispatch or action)
 * for that user or for users among whom that user is, which is narrowed to
 * that user, since each of them gets its own copy on its own channel; a
 * session's channel, one for that session. Returns NULL, or why they do
 * not agree (ev is then not to be delivered).
 */
const char *gw_channel_match(gw_event_t *ev, const gw_channel_t *ch);

#endif
