/*
 * The pure parts of the relay scenario (bench/README.md, "Relay round
 * trip"): the request a client sends up, the nonce that names it, the table
 * of requests awaiting their answer, the answer the echo backend builds
 * from what gatewayd published, and the code of an error. No I/O and no
 * clock of their own, so that each is unit-tested
 * (test/unit/test_bench_relay.c).
 *
 * Client i's request number seq of its client loop is
 *
 *     {"event":"bench.req","nonce":"<i>.<seq>",
 *      "data":{"cts":<send time, us>,"pad":"xx..."}}
 *
 * seq counts the requests of one client loop and a loop owns its clients,
 * so the nonce is unique in the run and says which session must get the
 * answer. The backend answers with the envelope
 *
 *     {"event":"bench.res","sessionId":S,"nonce":N,
 *      "data":{<the request's data>,"ets":<answer time, us>}}
 *
 * which gatewayd delivers to session S as {"seq","event","nonce","data"}.
 * Times are CLOCK_MONOTONIC microseconds, system-wide, so the backend can
 * time the way up (cts to its receipt) and the client the way down (ets to
 * its receipt) as well as the whole round trip.
 */
#ifndef BENCH_RELAY_H
#define BENCH_RELAY_H

#include <stddef.h>
#include <stdint.h>

#define RELAY_REQUEST_EVENT "bench.req" /* also the routing key upstream */
#define RELAY_ANSWER_EVENT "bench.res"
#define RELAY_MIN_SLOTS 1024
#define RELAY_MAX_SLOTS (1u << 20) /* 24 MB of table per client loop */
#define RELAY_MAX_TEXT 65600 /* a request of --payload 65,000 and its NUL */

/* What an error event that answers a request says. */
typedef enum {
    RELAY_ERR_UNAVAILABLE,
    RELAY_ERR_OVERLOADED,
    RELAY_ERR_RATE_LIMITED,
    RELAY_ERR_OTHER,
} relay_err_t;

/*
 * Writes client index's request seq sent at t_us into out, its data padded
 * so that the whole text is payload bytes when payload is larger than the
 * text without padding. Returns its length, or 0 when it does not fit in
 * cap (with its NUL).
 */
size_t relay_request(char *out, size_t cap, uint32_t index, uint64_t seq,
                     uint64_t t_us, size_t payload);

/* The nonce of a message ("nonce":"<index>.<seq>") into index and seq.
 * Returns 0, or -1 when there is none or it is not one of ours. */
int relay_nonce_find(const uint8_t *msg, size_t len, uint32_t *index,
                     uint64_t *seq);

/* The code of an error event (its "code" string). */
relay_err_t relay_error_code(const uint8_t *msg, size_t len);

/* One request awaiting its answer. */
typedef struct relay_slot {
    uint64_t seq;   /* the request's number */
    uint64_t t_us;  /* when it was sent */
    uint32_t index; /* the client that sent it */
    uint32_t pending;
} relay_slot_t;

/*
 * The requests of one client loop by number, in a ring: request seq is in
 * slot seq % size. A slot is reused size requests later; a request still
 * pending then has waited its chance and is counted expired (lost).
 */
typedef struct relay_table {
    relay_slot_t *slot;
    uint64_t mask;    /* size - 1 (size a power of two) */
    uint64_t next;    /* the number the next request gets */
    uint64_t pending; /* requests awaiting their answer */
} relay_table_t;

typedef enum {
    RELAY_MATCH,     /* the answer to a pending request, on its session */
    RELAY_UNKNOWN,   /* no pending request has that nonce: late, twice, or
                        never sent */
    RELAY_MISROUTED, /* a pending request's answer on another session */
} relay_match_t;

/* A table of at least min_slots (rounded up to a power of two, within
 * RELAY_MIN_SLOTS .. RELAY_MAX_SLOTS). */
void relay_table_init(relay_table_t *t, uint64_t min_slots);

void relay_table_free(relay_table_t *t);

/* Numbers a request of client index sent at t_us; *expired is set to 1
 * when its slot still held a pending request (now given up), else 0. */
uint64_t relay_table_send(relay_table_t *t, uint32_t index, uint64_t t_us,
                          int *expired);

/*
 * An answer (or error) naming request seq of client index arrived on the
 * session of client receiver. On a match the request is settled and
 * *t_sent says when it was sent; a misrouted answer leaves it pending.
 */
relay_match_t relay_table_answer(relay_table_t *t, uint32_t receiver,
                                 uint32_t index, uint64_t seq,
                                 uint64_t *t_sent);

/*
 * The backend's answer to one message gatewayd published upstream (body,
 * len): the envelope above, stamped ets_us, into out. *cts_us is the
 * request's send time from its data (0 when it has none). Returns the
 * length, or -1 when body is not JSON with string sessionId and nonce,
 * or the answer does not fit in cap (with its NUL).
 */
long relay_answer(const char *body, size_t len, uint64_t ets_us, char *out,
                  size_t cap, uint64_t *cts_us);

#endif
