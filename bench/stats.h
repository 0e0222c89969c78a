/*
 * Load-generator statistics: a log-linear latency histogram and the counters
 * every client loop keeps.
 *
 * The histogram records microseconds exactly below 128 and with 64
 * sub-buckets per power of two above, so any recorded value is reported
 * within 1/64 (1.6%) of itself; min, max and sum are kept exactly. It is a
 * fixed array so that worker processes can ship it through a pipe as is and
 * the coordinator can merge it by addition.
 */
#ifndef BENCH_STATS_H
#define BENCH_STATS_H

#include <stddef.h>
#include <stdint.h>

#define STATS_SUB_BITS 6
#define STATS_SUB (1u << STATS_SUB_BITS)
/* Values up to 2^36 us (19 hours) get their own bucket; larger ones land in
 * the last. */
#define STATS_MAX_EXP 36
#define STATS_BUCKETS ((STATS_MAX_EXP - STATS_SUB_BITS + 1) * STATS_SUB)

typedef struct stats_hist {
    uint64_t count;
    uint64_t sum;
    uint64_t min; /* UINT64_MAX while empty */
    uint64_t max;
    uint64_t b[STATS_BUCKETS];
} stats_hist_t;

/* Every counter a client loop keeps, in report order: X(name, meaning).
 * The failure counters name the stage a connection attempt died in. */
#define STATS_COUNTERS(X)                                                      \
    X(attempts, "connection attempts started")                                 \
    X(identified, "sessions that reached identified")                          \
    X(fail_tcp, "TCP connect failed")                                          \
    X(fail_upgrade, "upgrade refused or malformed")                            \
    X(fail_ready, "closed or timed out before ready")                          \
    X(fail_identify, "closed or timed out before identified")                  \
    X(closed_by_server, "identified sessions the server closed")               \
    X(close_4009, "closes with 4009 (heartbeats stopped)")                     \
    X(close_4010, "closes with 4010 (slow consumer)")                          \
    X(close_4011, "closes with 4011 (server shutting down)")                   \
    X(frames_in, "WebSocket frames received")                                  \
    X(bytes_in, "bytes received")                                              \
    X(deliveries, "timestamped events received")                               \
    X(heartbeats, "server heartbeats answered")                                \
    X(typing_sent, "typing.start sent")                                        \
    X(typing_limited, "typing.start answered rate_limited")                    \
    X(errors, "other error events received")                                   \
    X(protocol_errors, "malformed frames from the server")                     \
    X(drops, "sessions dropped on purpose (reconnect churn, storm)")           \
    X(relay_sent, "relay requests sent")                                       \
    X(relay_answered, "relay requests answered (also deliveries)")             \
    X(relay_unavailable, "relay requests answered error unavailable")          \
    X(relay_overloaded, "relay requests answered error overloaded")            \
    X(relay_rate_limited, "relay requests answered error rate_limited")        \
    X(relay_other_error, "relay requests answered another error")              \
    X(relay_unmatched, "relay answers naming no pending request")              \
    X(relay_misrouted, "relay answers on another session than the sender")     \
    X(relay_expired, "relay requests given up when their slot was reused")     \
    X(presence_online, "presence.update online received")                      \
    X(presence_offline, "presence.update offline received")                    \
    X(fail_resume, "closed or timed out before resumed")                       \
    X(close_4007, "closes with 4007 (resume seq ahead of the session)")        \
    X(close_4012, "closes with 4012 (session resumed elsewhere)")              \
    X(resumes_sent, "resume sent on a new connection")                         \
    X(resumed, "resumed received")                                             \
    X(resume_invalid, "invalid_session received")                              \
    X(replayed, "dispatches replayed, as the resumed messages said")           \
    X(seq_gaps, "dispatches whose seq skipped past the last + 1")              \
    X(seq_repeats, "dispatches whose seq was not above the last")              \
    X(event_dups, "events received a second time")                             \
    X(event_disorder, "events received after a later one, not twice")          \
    X(event_foreign, "events of another guild or past the record")             \
    X(lost, "events of the guild published in a life, never received")         \
    X(lost_at_invalid, "the same, in a life invalid_session ended")            \
    X(lost_not_back, "the same, of sessions not back at the tally")            \
    X(tallied, "sessions whose losses were counted")                           \
    X(drain_moved, "identified sessions closed 4011, going to resume")         \
    X(drain_retries, "their connections that failed before resumed, retried")  \
    X(drain_gave_up, "moving sessions that ran out of retries")                \
    X(replay_mismatch, "resumes whose replay was not as resumed said")         \
    X(fail_tls, "TLS handshake refused, failed or timed out")                  \
    X(tls_full, "TLS handshakes done in full (the server's certificate)")      \
    X(tls_resumed, "TLS handshakes that resumed the session offered")          \
    X(tls_resume_refused, "TLS handshakes in full although one was offered")

typedef struct stats_counters {
#define STATS_FIELD(name, doc) uint64_t name;
    STATS_COUNTERS(STATS_FIELD)
#undef STATS_FIELD
} stats_counters_t;

/* One counter's name and description, for reports. */
typedef struct stats_counter_info {
    const char *name;
    const char *doc;
    size_t offset;
} stats_counter_info_t;

extern const stats_counter_info_t stats_counter_table[];
extern const size_t stats_ncounters;

/* Empties h. */
void stats_hist_reset(stats_hist_t *h);

/* The bucket a value falls in, and the largest value of a bucket. */
unsigned stats_bucket(uint64_t v);
uint64_t stats_bucket_high(unsigned idx);

/* Records one value (microseconds). */
void stats_hist_record(stats_hist_t *h, uint64_t v);

/* Adds src into dst. */
void stats_hist_merge(stats_hist_t *dst, const stats_hist_t *src);

/*
 * The q-quantile (0 <= q <= 1): the smallest recorded value v such that at
 * least ceil(q * count) values are <= v, reported as its bucket's upper
 * bound clamped to [min, max]. q = 0 gives min and q = 1 gives max; an empty
 * histogram gives 0.
 */
uint64_t stats_hist_quantile(const stats_hist_t *h, double q);

/* Mean of the recorded values; 0 when empty. */
double stats_hist_mean(const stats_hist_t *h);

/* Adds every counter of src into dst. */
void stats_counters_add(stats_counters_t *dst, const stats_counters_t *src);

/* The value of counter i of the table. */
uint64_t stats_counter_get(const stats_counters_t *c, size_t i);

#endif
