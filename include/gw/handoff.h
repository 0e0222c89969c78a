/*
 * The drain handoff's Redis side (docs/continuity.md section 3), on the
 * broker thread: what a worker asks for (gw_handoff_msg_t, carried by its
 * relay queue), done with Lua scripts on the publishing connection, and
 * the messages the instances exchange on the control channels. Answers go
 * to the workers as events (GW_ACTION_CLAIM, _FOUND, _RESTORE) through the
 * owner's hook.
 *
 * A control message is for one instance, named in it by its id (so
 * instance ids must differ): a claim for the session's owner, a snapshot
 * stored or lost for its claimer. With redis.targeted each instance
 * listens on a control channel of its own, `<redis.channel>:handoff:<id>`,
 * and a message goes to its instance's alone; without, every instance
 * hears every message on `<redis.channel>:handoff` and drops those not
 * addressed to it.
 */
#ifndef GW_HANDOFF_H
#define GW_HANDOFF_H

#include "gw/event.h"
#include "gw/redis.h"
#include "gw/stats.h"

#include <stddef.h>
#include <stdint.h>

/* What a worker asks its broker for. */
typedef enum gw_handoff_step {
    GW_HANDOFF_OPEN,   /* the old instance: store the header (blob) */
    GW_HANDOFF_LOOKUP, /* the new one: read it, for the requester */
    GW_HANDOFF_CLAIM,  /* the new one: claim it (text = its owner) */
    GW_HANDOFF_SERVE,  /* the old one: the full snapshot (blob), or NULL
                          when the session is lost; text = the address
                          its claim gave */
} gw_handoff_step_t;

typedef struct gw_handoff_msg {
    gw_handoff_step_t step;
    uint8_t session[GW_SESSION_ID_LEN];   /* the handed-off session */
    uint8_t requester[GW_SESSION_ID_LEN]; /* LOOKUP, CLAIM: the session of
                                             the resuming connection */
    const char *text;                     /* CLAIM, SERVE (see above) */
    const char *blob;                     /* OPEN, SERVE: the snapshot */
    size_t len;                           /* bytes of blob */
    uint32_t ttl_ms;                      /* OPEN: the resume window */
} gw_handoff_msg_t;

/* A control message, parsed. */
typedef enum gw_handoff_kind {
    GW_HANDOFF_CLAIMED, /* "claim": to the owner */
    GW_HANDOFF_SNAP,    /* "snap": the snapshot is stored, for claimer */
    GW_HANDOFF_LOST,    /* "lost": there will be none, for claimer */
} gw_handoff_kind_t;

typedef struct gw_handoff_note {
    gw_handoff_kind_t kind;
    uint8_t session[GW_SESSION_ID_LEN];
    uint8_t requester[GW_SESSION_ID_LEN];
    const char *owner; /* CLAIMED: points into the payload, owner_len */
    size_t owner_len;
    const char *claimer; /* points into the payload, claimer_len bytes */
    size_t claimer_len;
} gw_handoff_note_t;

/*
 * Parses a control message of len bytes: "claim S R\nOWNER\nCLAIMER",
 * "snap S R\nCLAIMER" or "lost S R\nCLAIMER", S and R 32 hex digits each.
 * 0, or GW_EPARSE. Pure.
 */
int gw_handoff_parse(const char *payload, size_t len, gw_handoff_note_t *out);

typedef struct gw_handoff gw_handoff_t;

/* Where the answers go: ev is the hook's (one reference). */
typedef struct gw_handoff_hooks {
    void (*answer)(void *data, gw_event_t *ev);
    void *data;
} gw_handoff_hooks_t;

/* The control channel instance `instance` listens on:
 * `<redis.channel>:handoff:<instance>` with redis.targeted, else
 * `<redis.channel>:handoff`, written into out (NUL-terminated, truncated
 * to size). */
void gw_handoff_channel(const gw_config_t *cfg, const char *instance, char *out,
                        size_t size);

/*
 * The handoff of this instance (`instance`, copied) on link redis
 * (borrowed; it must outlive the handoff), counting into stats
 * (borrowed).
 */
gw_handoff_t *gw_handoff_new(gw_redis_t *redis, const gw_config_t *cfg,
                             const char *instance, gw_stats_t *stats,
                             const gw_handoff_hooks_t *hooks);

/* Frees the handoff; calls in flight answer into nothing (their contexts
 * stay until Redis answers them or the link drops them). */
void gw_handoff_free(gw_handoff_t *h);

/* Does what a worker asked (m's strings and blob are copied). Failures
 * are answered to the worker as the step's negative answer. */
void gw_handoff_request(gw_handoff_t *h, const gw_handoff_msg_t *m);

/* A message of the control channel (payload not NUL-terminated),
 * counted (handoff_control_messages). */
void gw_handoff_control(gw_handoff_t *h, const char *payload, size_t len);

#endif
