/*
 * The subscription window (README "Targeted channels"), on one worker: the
 * answers to its sessions (`identified`, `guild_subscribed`) that wait
 * until the instance's subscription of a target new to the worker is
 * confirmed, so that a client that has its answer hears whatever is
 * published to the target after it. No I/O; the caller gives the time.
 *
 * A target is pending from the worker's first session of it (the index's
 * +1, which the worker relays to the broker) until the broker answers that
 * +1: the channel is confirmed by its link, or no link is up to wait for,
 * or the target is no longer wanted. The broker answers every +1 once, so
 * the worker counts its +1s not yet answered: a target left and joined
 * again before the first answer came waits for the second. A target
 * absent from the table is confirmed: the hot path of a known guild is a
 * look-up that misses, none at all while nothing is pending.
 *
 * A held answer goes out once none of its targets is pending, or, at the
 * latest, wait_ms after it was held: then its pending targets are taken
 * as confirmed (the link is down, or the answer was lost: the next
 * session waits no more), and the owner is told it was late.
 */
#ifndef GW_SUBWAIT_H
#define GW_SUBWAIT_H

#include "gw/interest.h"

#include <stddef.h>
#include <stdint.h>

#define GW_SUBWAIT_ID_LEN 16 /* bytes of the session id an answer is for */
#define GW_SUBWAIT_MSGS 2    /* messages one held answer carries */

/* One held answer, as the owner gets it back. */
typedef struct gw_subwait_answer {
    uint8_t session[GW_SUBWAIT_ID_LEN];
    const char *text[GW_SUBWAIT_MSGS]; /* the messages in order; NULL ends */
    size_t len[GW_SUBWAIT_MSGS];
} gw_subwait_answer_t;

/* The answer is due: late when wait_ms passed first. The strings are
 * valid during the call. */
typedef void (*gw_subwait_cb)(void *data, const gw_subwait_answer_t *a,
                              int late);

typedef struct gw_subwait gw_subwait_t;

/* An empty table; answers go to cb(data, ...). */
gw_subwait_t *gw_subwait_new(uint64_t wait_ms, gw_subwait_cb cb, void *data);

/* Frees the table and the answers it holds, telling no one. */
void gw_subwait_free(gw_subwait_t *sw);

/* The worker's first session of a target: pending until answered. */
void gw_subwait_asked(gw_subwait_t *sw, gw_interest_kind_t kind,
                      const char *id);

/* The broker's answer to one +1 of the target: once every +1 is answered
 * the target is confirmed, and the answers that waited for it alone go. */
void gw_subwait_confirmed(gw_subwait_t *sw, gw_interest_kind_t kind,
                          const char *id);

/* The worker's last session of the target left: no answer waits for it
 * any more (it stays counted until the broker's answers come). */
void gw_subwait_released(gw_subwait_t *sw, gw_interest_kind_t kind,
                         const char *id);

/* Whether any target is pending: when not, nothing is to be held. */
int gw_subwait_idle(const gw_subwait_t *sw);

/* Whether the target is pending. */
int gw_subwait_pending(const gw_subwait_t *sw, gw_interest_kind_t kind,
                       const char *id);

/*
 * Holds answer a (its messages copied) until the n targets t are no
 * longer pending, from now_ms: 1 when held, 0 when none of them is
 * pending (then the caller sends it now, and nothing is kept).
 */
int gw_subwait_hold(gw_subwait_t *sw, const gw_subwait_answer_t *a,
                    const gw_interest_target_t *t, size_t n, uint64_t now_ms);

/* The session is gone: its held answers are dropped, untold. */
void gw_subwait_cancel(gw_subwait_t *sw,
                       const uint8_t session[GW_SUBWAIT_ID_LEN]);

/* Sends, late, the answers held wait_ms by now_ms: how many. */
size_t gw_subwait_expire(gw_subwait_t *sw, uint64_t now_ms);

/* Answers held now. */
size_t gw_subwait_held(const gw_subwait_t *sw);

#endif
