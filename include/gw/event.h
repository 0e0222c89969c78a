/*
 * A backend event on its way to the workers: parsed once, its dispatch body
 * serialised once, and handed by reference to every worker queue.
 */
#ifndef GW_EVENT_H
#define GW_EVENT_H

#include "gw/frame.h"

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

typedef enum gw_target {
    GW_TARGET_GUILD, /* ids[0] is the guild */
    GW_TARGET_USERS, /* ids[0..nids) are users ("userId" or "userIds") */
    GW_TARGET_ALL,   /* every identified session */
} gw_target_t;

#define GW_SESSION_ID_LEN 16 /* bytes; 32 hex characters on the wire */

typedef struct gw_event {
    atomic_uint refs; /* one per queue holding the event */
    gw_target_t target;
    char **ids; /* owned strings */
    size_t nids;
    int priority; /* 1 critical .. 4 low */
    int has_exclude;
    uint8_t exclude[GW_SESSION_ID_LEN]; /* session skipped when has_exclude */
    char *exclude_user;  /* owned: every session of this user is skipped */
    char *origin;        /* owned: the gateway that published it, or NULL */
    uint64_t ingress_ns; /* when the broker took it, for fan-out latency */
    gw_frame_t *body;    /* owned reference: the dispatch after {"seq":N, */
} gw_event_t;

/*
 * Parses a backend envelope (SPEC section 4) of len bytes. On success returns
 * 0 and a new event with one reference in *out. Otherwise returns
 * GW_EPARSE or GW_EINVAL and points *reason at a static description.
 */
int gw_event_parse(const char *json, size_t len, gw_event_t **out,
                   const char **reason);

/* Sets the number of references before the event is shared. */
void gw_event_set_refs(gw_event_t *ev, unsigned refs);

/* Drops one reference; the last frees the event. Any thread. */
void gw_event_unref(gw_event_t *ev);

#endif
