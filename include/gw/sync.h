/*
 * sync_request (seed 000): where a user's cached sync-data lives in Redis,
 * and the sync-data dispatch made of it. Pure: no I/O here.
 */
#ifndef GW_SYNC_H
#define GW_SYNC_H

#include "gw/event.h"

#include <stddef.h>

/*
 * The Redis key of tmpl with every {userId} replaced by user and every
 * {scope} by scope (empty when NULL); other text is kept. Returns a new
 * string, owned by the caller.
 */
char *gw_sync_key(const char *tmpl, const char *user, const char *scope);

/*
 * The sync-data dispatch for one session: {"seq":N, is the session's,
 * then "event":"sync-data","nonce":..,"data":VALUE}. VALUE is the cached
 * text (len bytes), which must be a JSON object: anything else returns
 * NULL and is never sent. nonce may be NULL. One reference, the caller's.
 */
gw_event_t *gw_sync_answer(const uint8_t session[GW_SESSION_ID_LEN],
                           const char *nonce, const char *value, size_t len);

#endif
