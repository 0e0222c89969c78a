#include "client.h"

#include <arpa/inet.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <uv.h>

#include "drain.h"
#include "gw/alloc.h"
#include "relay.h"
#include "resume.h"
#include "scale.h"
#include "tlsclient.h"
#include "token.h"
#include "upgrade.h"
#include "util.h"
#include "wsframe.h"

/* The loop ticks this often while it paces connects, typing or churn, and
 * ten times slower otherwise. */
#define CLIENT_TICK_FAST_MS 1
#define CLIENT_TICK_SLOW_MS 100
/* How often the loop hands its figures over, and scans for stalled
 * handshakes. */
#define CLIENT_FLUSH_US 100000
#define CLIENT_SCAN_US 250000
#define CLIENT_READ_BUF 65536
#define CLIENT_MAILBOX 8
/* Lines a loop writes about what a drain's checks found (a dispatch lost,
 * twice or out of order, an invalid_session), at most: enough to name the
 * clients and the events, bounded however wrong the server is. */
#define CLIENT_FAULT_LINES 20

typedef enum {
    CLIENT_IDLE,        /* no socket */
    CLIENT_CONNECTING,  /* TCP connect under way */
    CLIENT_TLS,         /* TLS handshake under way (wss://) */
    CLIENT_UPGRADING,   /* request sent, waiting for 101 */
    CLIENT_WAIT_READY,  /* upgraded, waiting for ready */
    CLIENT_IDENTIFYING, /* identify sent */
    CLIENT_RESUMING,    /* resume sent, waiting for resumed */
    CLIENT_IDENTIFIED,  /* a live session (resumed included) */
    CLIENT_CLOSING,     /* uv_close called, waiting for its callback */
} client_state_t;

typedef struct client {
    uv_tcp_t tcp;
    uv_connect_t creq;
    client_loop_t *loop;
    tlsclient_t *tls;           /* owned while a wss:// connection lives */
    tlsclient_session_t *saved; /* owned: the last TLS session, offered by
                                   the next connection (tls_resume) */
    uint32_t index;             /* global: user u<index> */
    uint8_t state;              /* client_state_t */
    uint8_t reconnect;          /* connect again once closed (churn, storm) */
    uint8_t target;             /* index of the server in conf->target */
    uint8_t resumable;          /* sid names our session: resume it when cut */
    uint8_t renewed;  /* invalid_session came: the identify that follows
                         begins a new life and is not timed */
    uint8_t moving;   /* closed 4011, not live again yet: a failed
                         connection is retried (follow_drain) */
    uint8_t moved;    /* closed 4011 while live, at least once */
    uint8_t retries;  /* connections of this move that failed */
    uint16_t tok_off; /* the token inside identify */
    uint16_t tok_len;
    uint32_t replay_got; /* dispatches between resume and resumed */
    uint64_t t_start;    /* attempt start (or drop), us: latency origin */
    uint64_t t_stage;    /* current stage's start, us: its timeout origin */
    uint64_t retry_at;   /* when a moving client's retry may connect, us */
    char *identify;      /* the identify message, signed at setup */
    char *hs;            /* upgrade response so far, when split; else NULL */
    size_t hs_len;
    wsframe_reader_t rd;
    char accept[UPGRADE_ACCEPT_SIZE];
    char sid[RESUME_SID_LEN]; /* when resumable */
    resume_track_t track;     /* resume: what the session received */
} client_t;

typedef struct client_write {
    uv_write_t req;
    uv_buf_t buf;
    uint8_t data[];
} client_write_t;

struct client_loop {
    uv_loop_t uv;
    uv_thread_t thread;
    uv_async_t wake;
    uv_timer_t tick;
    const client_conf_t *conf;
    client_t *clients;
    uint32_t count;
    wsframe_enc_t *enc;
    tlsclient_conf_t *tls; /* owned, when some clients speak TLS */
    uint64_t rng;
    uint64_t now_us; /* taken once per callback that needs the time */

    /* connect pacing */
    int connecting;   /* CONNECT is in effect */
    double conn_rate; /* per second; 0 = inflight bound only */
    uint32_t max_inflight;
    uint32_t inflight;         /* clients between connect and identified */
    uint32_t next;             /* next idle client to connect */
    uint32_t conn_lo, conn_hi; /* only clients of these global indexes */
    uint64_t conn_t0;
    uint64_t conn_started;

    /* typing and churn pacing */
    double typing_rate;
    uint64_t typing_t0, typing_sent;
    uint32_t typing_next;
    double churn_rate; /* fraction of count per second */
    uint64_t churn_t0, churn_dropped;
    uint32_t churn_next;
    int finishing;

    /* relay requests: pacing, and those awaiting their answer */
    double relay_rate;
    uint64_t relay_t0, relay_due_sent;
    uint32_t relay_next;
    relay_table_t relay;
    char relay_msg[RELAY_MAX_TEXT];

    uint64_t last_flush, last_scan;

    /* following a drain: moving clients that wait out a backoff */
    int follow;        /* conf->follow_drain until QUIET */
    uint32_t *waiting; /* their indexes in clients, unordered */
    uint32_t nwaiting;
    uint64_t next_retry;  /* the earliest retry_at among them */
    unsigned fault_lines; /* CLIENT_FAULT_LINES written so far */

    client_figures_t f; /* this loop's figures since the last flush */

    /* guarded by lock: figures handed over, and the mailbox */
    pthread_mutex_t lock;
    client_figures_t shared;
    client_cmd_t mail[CLIENT_MAILBOX];
    unsigned nmail;

    uint8_t rbuf[CLIENT_READ_BUF];
};

static void client_connect(client_t *c);
static void client_end(client_t *c, uint64_t *counter);

static uint64_t client_rand(client_loop_t *l)
{
    l->rng ^= l->rng << 13;
    l->rng ^= l->rng >> 7;
    l->rng ^= l->rng << 17;
    return l->rng;
}

static int client_has_guild(const client_conf_t *conf, uint32_t index)
{
    return conf->members > 0 && index / conf->members < conf->guilds;
}

/* Bits of a session's bitmap of received events: what the record holds
 * of one guild's. */
static uint32_t client_track_bits(const client_conf_t *conf)
{
    if (conf->record == NULL || conf->guilds == 0)
        return 0;
    return (uint32_t)((conf->record_cap + conf->guilds - 1) / conf->guilds);
}

/* The identify message: userId, an HS256 token whose sub is that user and
 * which expires in a day, and the client's guild. */
static char *client_identify_text(const client_conf_t *conf, uint32_t index)
{
    char claims[128], token[512], guild[32] = "", out[1024];
    long exp = (long)time(NULL) + 86400;

    snprintf(claims, sizeof(claims), "{\"sub\":\"u%u\",\"exp\":%ld}", index,
             exp);
    if (token_hs256(conf->jwt_secret, claims, token, sizeof(token)) == 0)
        util_die("identify token does not fit");
    if (client_has_guild(conf, index))
        snprintf(guild, sizeof(guild), "\"g%u\"", index / conf->members);
    snprintf(out, sizeof(out),
             "{\"event\":\"identify\",\"data\":{\"userId\":\"u%u\","
             "\"token\":\"%s\",\"guildIds\":[%s]}}",
             index, token, guild);
    return gw_strdup(out);
}

/* ---- writing ---------------------------------------------------------- */

static void client_write_cb(uv_write_t *req, int status)
{
    (void)status; /* a failed write shows up as a read error too */
    free(req->data);
}

/* Writes bytes to the socket: straight from the caller's buffer when the
 * socket takes them all, which on loopback is nearly always; a copy of the
 * rest otherwise. */
static int client_write_raw(client_t *c, const uint8_t *data, size_t n)
{
    uv_buf_t b = uv_buf_init((char *)data, (unsigned)n);
    int written = uv_try_write((uv_stream_t *)&c->tcp, &b, 1), rc;
    client_write_t *w;
    size_t rest;

    if (written == (int)n)
        return 0;
    if (written < 0 && written != UV_EAGAIN)
        return written;
    rest = n - (written < 0 ? 0 : (size_t)written);
    w = gw_malloc(sizeof(*w) + rest);
    memcpy(w->data, data + (n - rest), rest);
    w->buf = uv_buf_init((char *)w->data, (unsigned)rest);
    w->req.data = w;
    rc = uv_write(&w->req, (uv_stream_t *)&c->tcp, &w->buf, 1, client_write_cb);
    if (rc != 0)
        free(w);
    return rc;
}

/* Writes the WebSocket stream's bytes: encrypted into records over
 * wss://. */
static int client_write(client_t *c, const uint8_t *data, size_t n)
{
    if (c->tls == NULL)
        return client_write_raw(c, data, n);
    return tlsclient_write(c->tls, data, n) == 0 ? 0 : UV_EPROTO;
}

/* Sends one final frame, masked with a fresh key. */
static int client_send(client_t *c, unsigned opcode, const void *payload,
                       size_t len)
{
    uint8_t stack[2048], *frame = stack;
    int rc = UV_EINVAL;
    ssize_t n;

    if (len + WSFRAME_MAX_HEADER > sizeof(stack))
        frame = gw_malloc(len + WSFRAME_MAX_HEADER);
    n = wsframe_encode(c->loop->enc, opcode, payload, len, frame);
    if (n >= 0)
        rc = client_write(c, frame, (size_t)n);
    if (frame != stack)
        free(frame);
    return rc;
}

static int client_send_text(client_t *c, const char *text)
{
    return client_send(c, WSFRAME_TEXT, text, strlen(text));
}

/* ---- session events --------------------------------------------------- */

/* The session is live again (identified or resumed), timed from the
 * attempt's start or the cut, unless an invalid_session came between. */
static void client_live(client_t *c)
{
    client_loop_t *l = c->loop;

    c->state = CLIENT_IDENTIFIED;
    l->inflight--;
    l->f.open++;
    if (!c->renewed)
        stats_hist_record(&l->f.conn, l->now_us - c->t_start);
    c->renewed = 0;
    c->moving = 0;
    c->retries = 0;
}

static void client_identified(client_t *c)
{
    client_loop_t *l = c->loop;

    client_live(c);
    l->f.c.identified++;
    l->f.t_last_ident = l->now_us;
}

/* The value of a decimal number right after key in buf, or 0. */
static uint64_t client_number_after(const uint8_t *buf, size_t len,
                                    const char *key, size_t klen)
{
    const uint8_t *p = memmem(buf, len, key, klen), *end = buf + len;
    uint64_t v = 0;

    if (p == NULL)
        return 0;
    for (p += klen; p < end && *p >= '0' && *p <= '9'; p++)
        v = v * 10 + (uint64_t)(*p - '0');
    return v;
}

static void client_delivery(client_loop_t *l, uint64_t sent_us)
{
    l->f.c.deliveries++;
    l->f.t_last_deliv = l->now_us;
    stats_hist_record(&l->f.lat, l->now_us > sent_us ? l->now_us - sent_us : 0);
}

/* ---- resume ----------------------------------------------------------- */

/* Where a client is in a drain, for the lines about what went wrong. */
static const char *client_phase(const client_t *c)
{
    if (c->state == CLIENT_RESUMING)
        return "resuming";
    return c->moved ? "after the move" : "before any move";
}

/* One line about client c (following a drain only; at most
 * CLIENT_FAULT_LINES a loop). */
static void client_fault_line(client_t *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void client_fault_line(client_t *c, const char *fmt, ...)
{
    client_loop_t *l = c->loop;
    char text[256];
    va_list ap;

    if (!l->conf->follow_drain || l->fault_lines >= CLIENT_FAULT_LINES)
        return;
    l->fault_lines++;
    va_start(ap, fmt);
    vsnprintf(text, sizeof(text), fmt, ap);
    va_end(ap);
    util_warn("u%u (%s): %s", c->index, client_phase(c), text);
}

/* One line about a dispatch the checks flagged: the event (its guild and
 * its number there, the per-guild counter), its seq after which. */
static void client_fault_dispatch(client_t *c, const resume_dispatch_t *d,
                                  uint64_t last_seq, unsigned v)
{
    uint32_t g = c->loop->conf->guilds;

    client_fault_line(
        c, "event n=%llu (g%llu #%llu), seq %llu after %llu:%s%s%s%s%s",
        (unsigned long long)d->n, (unsigned long long)(d->n % g),
        (unsigned long long)(d->n / g), (unsigned long long)d->seq,
        (unsigned long long)last_seq, v & RESUME_GAP ? " seq-gap" : "",
        v & RESUME_REPEAT ? " seq-repeat" : "",
        v & RESUME_DUP ? " duplicate" : "",
        v & RESUME_DISORDER ? " out-of-order" : "",
        v & RESUME_FOREIGN ? " foreign" : "");
}

/* A timestamped dispatch: timed and, under resume, checked for its seq
 * and its event (resume.h). */
static void client_dispatch(client_t *c, const uint8_t *data, size_t len,
                            uint64_t sent_us)
{
    client_loop_t *l = c->loop;
    stats_counters_t *s = &l->f.c;
    resume_dispatch_t d;
    uint64_t last;
    unsigned v;

    client_delivery(l, sent_us);
    if (!l->conf->resume)
        return;
    if (resume_dispatch_parse(data, len, &d) != 0 ||
        !client_has_guild(l->conf, c->index)) {
        s->event_foreign++;
        return;
    }
    last = c->track.last_seq;
    v = resume_track_dispatch(&c->track, d.seq, d.n,
                              c->index / l->conf->members, 0, l->conf->guilds);
    c->replay_got += c->state == CLIENT_RESUMING;
    if (v != 0)
        client_fault_dispatch(c, &d, last, v);
    s->seq_gaps += (v & RESUME_GAP) != 0;
    s->seq_repeats += (v & RESUME_REPEAT) != 0;
    s->event_dups += (v & RESUME_DUP) != 0;
    s->event_disorder += (v & RESUME_DISORDER) != 0;
    s->event_foreign += (v & RESUME_FOREIGN) != 0;
}

/* The events of the client's guild published in (from_us, to_us) that it
 * has not received: 0 without a record. */
static uint64_t client_missing(const client_t *c, uint64_t sent,
                               uint64_t from_us, uint64_t to_us)
{
    const client_conf_t *conf = c->loop->conf;

    if (conf->record == NULL || !client_has_guild(conf, c->index))
        return 0;
    if (sent > conf->record_cap)
        sent = conf->record_cap;
    return resume_track_missing(&c->track, conf->record, sent,
                                c->index / conf->members, 0, conf->guilds,
                                from_us, to_us);
}

/* ready: identify, or resume the session the client had (resume.h). */
static void client_ready(client_t *c)
{
    client_loop_t *l = c->loop;
    char msg[1024];
    size_t n;

    c->t_stage = l->now_us;
    if (!c->resumable) {
        c->state = CLIENT_IDENTIFYING;
        client_send_text(c, c->identify);
        return;
    }
    n = resume_request(msg, sizeof(msg), c->sid, c->identify + c->tok_off,
                       c->tok_len, c->track.last_seq);
    c->state = CLIENT_RESUMING;
    c->replay_got = 0;
    l->f.c.resumes_sent++;
    if (n == 0 || client_send(c, WSFRAME_TEXT, msg, n) != 0)
        client_end(c, NULL);
}

/* identified: under resume the session's id is kept and its life begins. */
static void client_identified_msg(client_t *c, const uint8_t *data, size_t len)
{
    client_loop_t *l = c->loop;

    if (l->conf->resume) {
        c->resumable = resume_session_id(data, len, c->sid) == 0;
        resume_track_begin(&c->track, l->now_us);
    }
    client_identified(c);
}

/* resumed: the replay is in (it came first); live again, timed from the
 * cut. */
static void client_resumed(client_t *c, const uint8_t *data, size_t len)
{
    client_loop_t *l = c->loop;
    uint64_t k;

    l->f.c.resumed++;
    l->f.t_last_resumed = l->now_us;
    if (resume_replayed(data, len, &k) == 0) {
        l->f.c.replayed += k;
        if (k != c->replay_got) {
            l->f.c.replay_mismatch++;
            client_fault_line(c, "resumed says %llu replayed, %u came",
                              (unsigned long long)k, c->replay_got);
        }
    } else {
        l->f.c.replay_mismatch++;
    }
    /* The session's id from now on (another instance gives a new one). */
    if (resume_session_id(data, len, c->sid) != 0)
        c->resumable = 0;
    client_live(c);
}

/* invalid_session: the session is gone. Its life ends at the cut (what it
 * had not received of it by then went with it); the ready that follows
 * is answered with identify: a new session and a new life. */
static void client_invalid(client_t *c)
{
    client_loop_t *l = c->loop;

    l->f.c.resume_invalid++;
    client_fault_line(c,
                      "invalid_session for session %.*s, seq %llu, after "
                      "%u failed connections",
                      RESUME_SID_LEN, c->sid,
                      (unsigned long long)c->track.last_seq, c->retries);
    l->f.c.lost_at_invalid +=
        client_missing(c, UINT64_MAX, c->track.life_from, c->t_start);
    c->track.life_from = 0;
    c->resumable = 0;
    c->renewed = 1;
    c->state = CLIENT_WAIT_READY;
    c->t_stage = l->now_us;
}

/* The event name of a message: what follows "event":" near its start. */
static size_t client_event_name(const uint8_t *data, size_t len,
                                const char **name)
{
    static const char key[] = "\"event\":\"";
    size_t scan = len < 96 ? len : 96;
    const uint8_t *p = memmem(data, scan, key, sizeof(key) - 1), *q;

    if (p == NULL)
        return 0;
    p += sizeof(key) - 1;
    q = memchr(p, '"', (size_t)(data + len - p));
    if (q == NULL)
        return 0;
    *name = (const char *)p;
    return (size_t)(q - p);
}

static int client_is(const char *name, size_t n, const char *want)
{
    return strlen(want) == n && memcmp(name, want, n) == 0;
}

/* The request an answer or error names, settled when it is pending and
 * this is its session; counted otherwise. Returns 1 with *t_sent on a
 * match. */
static int client_relay_settle(client_t *c, const uint8_t *data, size_t len,
                               uint64_t *t_sent)
{
    stats_counters_t *s = &c->loop->f.c;
    uint32_t index;
    uint64_t seq;

    if (relay_nonce_find(data, len, &index, &seq) != 0) {
        s->relay_unmatched++;
        return 0;
    }
    switch (relay_table_answer(&c->loop->relay, c->index, index, seq, t_sent)) {
    case RELAY_MATCH: return 1;
    case RELAY_MISROUTED: s->relay_misrouted++; return 0;
    default: s->relay_unmatched++; return 0;
    }
}

/* A backend's answer: the round trip, and its way down from the backend's
 * stamp. */
static void client_relay_answer(client_t *c, const uint8_t *data, size_t len)
{
    static const char ets[] = "\"ets\":";
    client_loop_t *l = c->loop;
    uint64_t sent, answered;

    if (!client_relay_settle(c, data, len, &sent))
        return;
    l->f.c.relay_answered++;
    client_delivery(l, sent);
    answered = client_number_after(data, len, ets, sizeof(ets) - 1);
    if (answered > 0 && answered <= l->now_us)
        stats_hist_record(&l->f.down, l->now_us - answered);
}

/* An error event: 1 when it answers one of our requests (it carries a
 * nonce), counted by its code. */
static int client_relay_error(client_t *c, const uint8_t *data, size_t len)
{
    stats_counters_t *s = &c->loop->f.c;
    uint64_t sent;

    if (memmem(data, len, "\"nonce\":", 8) == NULL)
        return 0;
    if (!client_relay_settle(c, data, len, &sent))
        return 1;
    switch (relay_error_code(data, len)) {
    case RELAY_ERR_UNAVAILABLE: s->relay_unavailable++; break;
    case RELAY_ERR_OVERLOADED: s->relay_overloaded++; break;
    case RELAY_ERR_RATE_LIMITED: s->relay_rate_limited++; break;
    default: s->relay_other_error++; break;
    }
    return 1;
}

/* presence.update: counted by the status it announces. */
static void client_presence(client_loop_t *l, const uint8_t *data, size_t len)
{
    static const char off[] = "\"status\":\"offline\"";
    static const char on[] = "\"status\":\"online\"";

    if (memmem(data, len, off, sizeof(off) - 1) != NULL)
        l->f.c.presence_offline++;
    else if (memmem(data, len, on, sizeof(on) - 1) != NULL)
        l->f.c.presence_online++;
}

/* A text message. Timestamped events come first: they are the bulk. */
static void client_text(client_t *c, const uint8_t *data, size_t len)
{
    static const char bts[] = "\"bts\":", chan[] = "\"channelId\":\"t";
    client_loop_t *l = c->loop;
    const char *name = NULL;
    size_t n;

    if (memmem(data, len < 160 ? len : 160, bts, sizeof(bts) - 1) != NULL) {
        client_dispatch(c, data, len, client_number_after(data, len, bts, 6));
        return;
    }
    n = client_event_name(data, len, &name);
    if (client_is(name, n, RELAY_ANSWER_EVENT)) {
        client_relay_answer(c, data, len);
    } else if (client_is(name, n, "heartbeat")) {
        l->f.c.heartbeats++;
        client_send_text(c, "{\"event\":\"heartbeat_ack\",\"data\":{}}");
    } else if (client_is(name, n, "typing.start")) {
        client_delivery(l, client_number_after(data, len, chan, 14));
    } else if (client_is(name, n, "ready") && c->state == CLIENT_WAIT_READY) {
        client_ready(c);
    } else if (client_is(name, n, "identified") &&
               c->state == CLIENT_IDENTIFYING) {
        client_identified_msg(c, data, len);
    } else if (client_is(name, n, "resumed") && c->state == CLIENT_RESUMING) {
        client_resumed(c, data, len);
    } else if (client_is(name, n, "invalid_session") &&
               c->state == CLIENT_RESUMING) {
        client_invalid(c);
    } else if (client_is(name, n, "presence.update")) {
        client_presence(l, data, len);
    } else if (client_is(name, n, "error")) {
        if (client_relay_error(c, data, len))
            return;
        if (memmem(data, len, "\"rate_limited\"", 14) != NULL)
            l->f.c.typing_limited++;
        else
            l->f.c.errors++;
    }
}

/* A live session closed 4011: its server drains. It connects again at
 * once (through the proxy, to another instance) and resumes, timed from
 * now; until it is live again every failure is retried. */
static void client_move(client_t *c)
{
    client_loop_t *l = c->loop;

    c->moving = 1;
    c->moved = 1;
    c->retries = 0;
    c->retry_at = 0;
    c->t_start = l->now_us;
    c->reconnect = 1;
    if (l->f.t_first_4011 == 0)
        l->f.t_first_4011 = l->now_us;
    l->f.t_last_4011 = l->now_us;
    client_end(c, &l->f.c.drain_moved);
}

/* A connection of a moving client failed before it was live: it is tried
 * again after the backoff, or given up after DRAIN_MAX_RETRIES. Returns
 * the counter to add to. */
static uint64_t *client_retry(client_t *c)
{
    client_loop_t *l = c->loop;

    if (c->retries >= DRAIN_MAX_RETRIES) {
        c->moving = 0;
        c->reconnect = 0;
        client_fault_line(c, "gave up after %u failed connections", c->retries);
        return &l->f.c.drain_gave_up;
    }
    c->retries++;
    c->reconnect = 1;
    c->retry_at = util_now_us() + drain_backoff_us(c->retries, client_rand(l));
    return &l->f.c.drain_retries;
}

/* The server closed: count its code, answer the close, drop the socket. */
static void client_close_frame(client_t *c, const uint8_t *data, size_t len)
{
    client_loop_t *l = c->loop;
    unsigned code = len >= 2 ? (unsigned)data[0] << 8 | data[1] : 0;

    if (code == 4009)
        l->f.c.close_4009++;
    else if (code == 4010)
        l->f.c.close_4010++;
    else if (code == 4011)
        l->f.c.close_4011++;
    else if (code == 4007)
        l->f.c.close_4007++;
    else if (code == 4012)
        l->f.c.close_4012++;
    client_send(c, WSFRAME_CLOSE, data, len >= 2 ? 2 : 0);
    if (code == 4011 && c->state == CLIENT_IDENTIFIED && l->follow)
        client_move(c);
    else
        client_end(c, NULL);
}

static int client_msg_cb(void *ud, unsigned opcode, const uint8_t *data,
                         size_t len)
{
    client_t *c = ud;

    c->loop->f.c.frames_in++;
    switch (opcode) {
    case WSFRAME_TEXT:
    case WSFRAME_BINARY: client_text(c, data, len); break;
    case WSFRAME_PING: client_send(c, WSFRAME_PONG, data, len); break;
    case WSFRAME_CLOSE: client_close_frame(c, data, len); return 1;
    default: break;
    }
    return c->state == CLIENT_CLOSING;
}

/* ---- connection life -------------------------------------------------- */

/* The counter a connection ending now in its state adds to. */
static uint64_t *client_fail_counter(client_t *c)
{
    stats_counters_t *s = &c->loop->f.c;

    switch (c->state) {
    case CLIENT_CONNECTING: return &s->fail_tcp;
    case CLIENT_TLS: return &s->fail_tls;
    case CLIENT_UPGRADING: return &s->fail_upgrade;
    case CLIENT_WAIT_READY: return &s->fail_ready;
    case CLIENT_IDENTIFYING: return &s->fail_identify;
    case CLIENT_RESUMING: return &s->fail_resume;
    case CLIENT_IDENTIFIED: return &s->closed_by_server;
    default: return NULL;
    }
}

/* A retry waits among the loop's waiting clients until its time. */
static void client_defer(client_t *c)
{
    client_loop_t *l = c->loop;

    l->waiting[l->nwaiting++] = (uint32_t)(c - l->clients);
    if (l->nwaiting == 1 || c->retry_at < l->next_retry)
        l->next_retry = c->retry_at;
}

static void client_close_cb(uv_handle_t *h)
{
    client_t *c = h->data;

    tlsclient_free(c->tls);
    c->tls = NULL;
    free(c->hs);
    c->hs = NULL;
    c->hs_len = 0;
    wsframe_reader_reset(&c->rd);
    c->state = CLIENT_IDLE;
    if (!c->reconnect || c->loop->finishing)
        return;
    if (c->retry_at > util_now_us())
        client_defer(c);
    else
        client_connect(c);
}

/*
 * Ends the connection, with a reset when reset is set. counter, when given,
 * is what to count; otherwise the state decides (a failure by stage, or a
 * server-side close). Harmless when the connection is already closing.
 */
static void client_finish_conn(client_t *c, uint64_t *counter, int reset)
{
    client_loop_t *l = c->loop;

    if (c->state == CLIENT_CLOSING || c->state == CLIENT_IDLE)
        return;
    if (counter == NULL && c->moving && l->follow && !l->finishing &&
        c->state != CLIENT_IDENTIFIED)
        counter = client_retry(c);
    if (counter == NULL)
        counter = client_fail_counter(c);
    if (counter != NULL)
        (*counter)++;
    if (c->state == CLIENT_IDENTIFIED)
        l->f.open--;
    else
        l->inflight--;
    c->state = CLIENT_CLOSING;
    /* A reset the socket cannot take (a write still queued) is a close. */
    if (!reset || uv_tcp_close_reset(&c->tcp, client_close_cb) != 0)
        uv_close((uv_handle_t *)&c->tcp, client_close_cb);
}

static void client_end(client_t *c, uint64_t *counter)
{
    client_finish_conn(c, counter, 0);
}

/* Ends the connection with a TCP reset: the server sees it die at once,
 * with no close frame, as on a network loss that the peer notices. */
static void client_abort(client_t *c, uint64_t *counter)
{
    client_finish_conn(c, counter, 1);
}

static void client_alloc_cb(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
    client_t *c = h->data;

    (void)hint;
    *buf = uv_buf_init((char *)c->loop->rbuf, CLIENT_READ_BUF);
}

/* The WebSocket stream after the upgrade. */
static void client_ws_input(client_t *c, const uint8_t *data, size_t len)
{
    int rc = wsframe_reader_feed(&c->rd, data, len, c->loop->conf->max_msg,
                                 client_msg_cb, c);

    if (rc < 0) {
        c->loop->f.c.protocol_errors++;
        client_end(c, NULL);
    }
}

static void client_upgraded(client_t *c)
{
    client_loop_t *l = c->loop;

    c->t_stage = l->now_us;
    if (l->conf->proto == CLIENT_PROTO_NCHAN) {
        c->state = CLIENT_IDENTIFYING;
        client_identified(c);
    } else {
        c->state = CLIENT_WAIT_READY;
    }
}

/* Bytes while upgrading: parsed in place when the response came whole,
 * kept in c->hs when it came in pieces. */
static void client_upgrade_input(client_t *c, const uint8_t *data, size_t len)
{
    const char *buf = (const char *)data;
    size_t have = len;
    ssize_t n;
    int status = 0;

    if (c->hs != NULL || c->hs_len > 0) {
        c->hs = gw_realloc(c->hs, c->hs_len + len);
        memcpy(c->hs + c->hs_len, data, len);
        c->hs_len += len;
        buf = c->hs;
        have = c->hs_len;
    }
    n = upgrade_response(buf, have, c->accept, &status);
    if (n < 0) {
        client_end(c, NULL);
        return;
    }
    if (n == 0) {
        if (c->hs == NULL) {
            c->hs = gw_malloc(len);
            memcpy(c->hs, data, len);
            c->hs_len = len;
        }
        return;
    }
    client_upgraded(c);
    /* The rest is the first frames, already in the buffer we hold. */
    if ((size_t)n < have)
        client_ws_input(c, (const uint8_t *)buf + n, have - (size_t)n);
    free(c->hs);
    c->hs = NULL;
    c->hs_len = 0;
}

/* The stream over TCP, or TLS's plaintext: the upgrade's answer, then
 * frames. */
static void client_stream_input(client_t *c, const uint8_t *data, size_t len)
{
    if (c->state == CLIENT_UPGRADING)
        client_upgrade_input(c, data, len);
    else if (c->state != CLIENT_CLOSING && c->state != CLIENT_TLS)
        client_ws_input(c, data, len);
}

/* Bytes for TLS: the handshake, then records. A refused handshake counts
 * as its stage's failure, a bad record later as a protocol error. */
static void client_tls_input(client_t *c, const uint8_t *data, size_t len)
{
    int rc = tlsclient_input(c->tls, data, len);

    if (rc == TLSCLIENT_OK || c->state == CLIENT_CLOSING)
        return;
    if (rc == TLSCLIENT_FAILED && c->state != CLIENT_TLS)
        c->loop->f.c.protocol_errors++;
    client_end(c, NULL);
}

static void client_read_cb(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    client_t *c = s->data;
    client_loop_t *l = c->loop;

    if (nread == 0)
        return;
    if (nread < 0) {
        client_end(c, NULL);
        return;
    }
    l->now_us = util_now_us();
    l->f.c.bytes_in += (uint64_t)nread;
    if (c->tls != NULL)
        client_tls_input(c, (const uint8_t *)buf->base, (size_t)nread);
    else
        client_stream_input(c, (const uint8_t *)buf->base, (size_t)nread);
}

/* ---- TLS ---------------------------------------------------------------- */

static int client_uses_tls(const client_t *c)
{
    const client_conf_t *conf = c->loop->conf;

    return c->index >= conf->tls_lo && c->index < conf->tls_hi;
}

static int client_tls_send(void *ud, const uint8_t *data, size_t len)
{
    return client_write_raw(ud, data, len);
}

static int client_tls_data(void *ud, const uint8_t *data, size_t len)
{
    client_t *c = ud;

    if (c->state != CLIENT_CLOSING)
        client_stream_input(c, data, len);
    return c->state == CLIENT_CLOSING;
}

static void client_send_upgrade(client_t *c);

/* The handshake is done: counted by kind, the session kept for the next
 * connection, and the upgrade sent inside it. */
static int client_tls_open(void *ud)
{
    client_t *c = ud;
    client_loop_t *l = c->loop;

    if (tlsclient_resumed(c->tls)) {
        l->f.c.tls_resumed++;
    } else {
        l->f.c.tls_full++;
        if (c->saved != NULL && l->conf->tls_resume)
            l->f.c.tls_resume_refused++;
    }
    l->now_us = util_now_us();
    l->f.t_last_tls = l->now_us;
    if (l->conf->tls_resume)
        tlsclient_save(c->tls, &c->saved);
    c->state = CLIENT_UPGRADING;
    c->t_stage = l->now_us;
    client_send_upgrade(c);
    return c->state == CLIENT_CLOSING;
}

static const tlsclient_cb_t client_tls_cb = {
    .send = client_tls_send,
    .open = client_tls_open,
    .data = client_tls_data,
};

/* Starts the handshake on a connected socket, offering the last session
 * when asked to. */
static void client_tls_start(client_t *c)
{
    client_loop_t *l = c->loop;

    c->state = CLIENT_TLS;
    c->tls = tlsclient_new(l->tls, l->conf->tls_resume ? c->saved : NULL, c);
    if (c->tls == NULL)
        client_end(c, NULL);
}

static void client_send_upgrade(client_t *c)
{
    client_loop_t *l = c->loop;
    char req[512], path[160];
    uint8_t key[16];
    uint64_t r0 = client_rand(l), r1 = client_rand(l);
    size_t n;
    const client_target_t *t = &l->conf->target[c->target];
    const char *host = c->tls != NULL ? t->tls_host : t->host;

    memcpy(key, &r0, 8);
    memcpy(key + 8, &r1, 8);
    if (l->conf->proto == CLIENT_PROTO_NCHAN)
        snprintf(path, sizeof(path), "%sg%u", t->path,
                 l->conf->members ? c->index / l->conf->members : 0);
    else
        snprintf(path, sizeof(path), "%s", t->path);
    n = upgrade_request(req, sizeof(req), host, path, key, c->accept);
    if (n == 0 || client_write(c, (const uint8_t *)req, n) != 0)
        client_end(c, NULL);
}

static void client_connect_cb(uv_connect_t *req, int status)
{
    client_t *c = req->data;

    if (c->state != CLIENT_CONNECTING)
        return; /* timed out and closing */
    if (status != 0) {
        client_end(c, NULL);
        return;
    }
    c->state = CLIENT_UPGRADING;
    c->t_stage = util_now_us();
    if (uv_read_start((uv_stream_t *)&c->tcp, client_alloc_cb,
                      client_read_cb) != 0) {
        client_end(c, NULL);
        return;
    }
    if (client_uses_tls(c))
        client_tls_start(c);
    else
        client_send_upgrade(c);
}

/* Prepares the open socket: no port chosen at bind time (the 4-tuple
 * decides at connect, so each source address has the whole ephemeral range
 * per server port), and a source address of its own from 127.0.0.0/8. */
static int client_socket(client_t *c)
{
    const client_conf_t *conf = c->loop->conf;
    struct sockaddr_in src;
    uv_os_fd_t fd;
    int one = 1;

    if (uv_fileno((uv_handle_t *)&c->tcp, &fd) == 0)
        setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof(one));
    uv_tcp_nodelay(&c->tcp, 1);
    if (conf->src_addrs == 0)
        return 0;
    memset(&src, 0, sizeof(src));
    src.sin_family = AF_INET;
    src.sin_addr.s_addr = htonl(0x7f000002u + c->index % conf->src_addrs);
    return uv_tcp_bind(&c->tcp, (const struct sockaddr *)&src, 0);
}

static void client_connect(client_t *c)
{
    client_loop_t *l = c->loop;
    const client_target_t *t = &l->conf->target[c->target];

    l->f.c.attempts++;
    l->inflight++;
    l->now_us = util_now_us();
    if (!c->reconnect) /* a reconnect is timed from its drop */
        c->t_start = l->now_us;
    if (l->f.t_first == 0)
        l->f.t_first = l->now_us;
    c->t_stage = l->now_us;
    c->reconnect = 0;
    if (uv_tcp_init_ex(&l->uv, &c->tcp, AF_INET) != 0) {
        /* Out of descriptors: there is no handle to close. */
        l->f.c.fail_tcp++;
        l->inflight--;
        return;
    }
    c->tcp.data = c;
    c->creq.data = c;
    c->state = CLIENT_CONNECTING;
    if (client_socket(c) != 0 ||
        uv_tcp_connect(&c->creq, &c->tcp,
                       (const struct sockaddr *)(client_uses_tls(c)
                                                     ? &t->tls_addr
                                                     : &t->addr),
                       client_connect_cb) != 0)
        client_end(c, NULL);
}

/* ---- pacing ----------------------------------------------------------- */

static void client_pace_connects(client_loop_t *l, uint64_t now)
{
    double elapsed = (double)(now - l->conn_t0) / 1e6;
    uint64_t due =
        l->conn_rate > 0 ? (uint64_t)(l->conn_rate * elapsed) + 1 : UINT64_MAX;

    while (l->next < l->count && l->conn_started < due &&
           l->inflight < l->max_inflight) {
        client_t *c = &l->clients[l->next++];

        if (c->state != CLIENT_IDLE || c->index < l->conn_lo ||
            c->index >= l->conn_hi)
            continue;
        l->conn_started++;
        client_connect(c);
    }
    if (l->next == l->count)
        l->connecting = 0;
}

/* The next identified client after *cursor, or NULL when there is none. */
static client_t *client_next_identified(client_loop_t *l, uint32_t *cursor)
{
    for (uint32_t tries = 0; tries < l->count; tries++) {
        client_t *c = &l->clients[*cursor];

        *cursor = (*cursor + 1) % l->count;
        if (c->state == CLIENT_IDENTIFIED)
            return c;
    }
    return NULL;
}

static void client_typing(client_t *c)
{
    const client_conf_t *conf = c->loop->conf;
    char msg[160];

    snprintf(msg, sizeof(msg),
             "{\"event\":\"typing.start\",\"data\":{\"guildId\":\"g%u\","
             "\"channelId\":\"t%llu\"}}",
             c->index / conf->members, (unsigned long long)c->loop->now_us);
    c->loop->f.c.typing_sent++;
    client_send_text(c, msg);
}

static void client_pace_typing(client_loop_t *l, uint64_t now)
{
    uint64_t due =
        (uint64_t)(l->typing_rate * (double)(now - l->typing_t0) / 1e6);
    client_t *c;

    while (l->typing_sent < due &&
           (c = client_next_identified(l, &l->typing_next)) != NULL) {
        l->typing_sent++;
        if (client_has_guild(l->conf, c->index))
            client_typing(c);
    }
}

static void client_relay_send(client_t *c)
{
    client_loop_t *l = c->loop;
    char *msg = l->relay_msg;
    int expired;
    uint64_t seq = relay_table_send(&l->relay, c->index, l->now_us, &expired);
    size_t n = relay_request(msg, RELAY_MAX_TEXT, c->index, seq, l->now_us,
                             l->conf->payload);

    l->f.c.relay_sent++;
    l->f.c.relay_expired += (uint64_t)expired;
    if (n > 0)
        client_send(c, WSFRAME_TEXT, msg, n);
}

static void client_pace_relay(client_loop_t *l, uint64_t now)
{
    uint64_t due =
        (uint64_t)(l->relay_rate * (double)(now - l->relay_t0) / 1e6);
    client_t *c;

    while (l->relay_due_sent < due &&
           (c = client_next_identified(l, &l->relay_next)) != NULL) {
        l->relay_due_sent++;
        client_relay_send(c);
    }
}

static void client_pace_churn(client_loop_t *l, uint64_t now)
{
    uint64_t due = (uint64_t)(l->churn_rate * l->count *
                              (double)(now - l->churn_t0) / 1e6);
    client_t *c;

    while (l->churn_dropped < due &&
           (c = client_next_identified(l, &l->churn_next)) != NULL) {
        l->churn_dropped++;
        c->t_start = now;
        c->reconnect = 1;
        /* A resume follows a loss the server notices: a reset. */
        if (l->conf->resume)
            client_abort(c, &l->f.c.drops);
        else
            client_end(c, &l->f.c.drops);
    }
}

/* Drops every identified session at once with a reset, each to come back
 * at once to the next target; the reconnect is timed from the drop. */
static void client_storm(client_loop_t *l, uint64_t now)
{
    for (uint32_t i = 0; i < l->count; i++) {
        client_t *c = &l->clients[i];

        if (c->state != CLIENT_IDENTIFIED)
            continue;
        c->target = (uint8_t)((c->target + 1) % l->conf->ntargets);
        c->t_start = now;
        c->reconnect = 1;
        client_abort(c, &l->f.c.drops);
    }
}

/* Connects the waiting clients whose backoff is over. */
static void client_pace_retries(client_loop_t *l, uint64_t now)
{
    uint64_t next = UINT64_MAX;

    for (uint32_t i = 0; i < l->nwaiting;) {
        client_t *c = &l->clients[l->waiting[i]];

        if (c->retry_at > now) {
            next = c->retry_at < next ? c->retry_at : next;
            i++;
            continue;
        }
        l->waiting[i] = l->waiting[--l->nwaiting];
        c->retry_at = 0;
        client_connect(c);
    }
    l->next_retry = next;
}

/* Fails handshakes that stalled in one stage past the budget. */
static void client_scan_timeouts(client_loop_t *l, uint64_t now)
{
    uint64_t budget = (uint64_t)l->conf->stage_timeout_ms * 1000;

    for (uint32_t i = 0; i < l->count && l->inflight > 0; i++) {
        client_t *c = &l->clients[i];

        /* Stages that began after now was taken are not late. */
        if (c->state >= CLIENT_CONNECTING && c->state < CLIENT_IDENTIFIED &&
            now > c->t_stage && now - c->t_stage > budget)
            client_end(c, NULL);
    }
}

/* ---- the loop thread -------------------------------------------------- */

void client_figures_reset(client_figures_t *f)
{
    memset(&f->c, 0, sizeof(f->c));
    stats_hist_reset(&f->lat);
    stats_hist_reset(&f->down);
    stats_hist_reset(&f->conn);
    f->open = f->t_first = f->t_last_ident = f->t_last_deliv = 0;
    f->t_last_tls = 0;
    f->t_first_4011 = f->t_last_4011 = f->t_last_resumed = 0;
}

static uint64_t client_min_stamp(uint64_t a, uint64_t b)
{
    return a == 0 ? b : b == 0 ? a : a < b ? a : b;
}

static uint64_t client_max_stamp(uint64_t a, uint64_t b)
{
    return a > b ? a : b;
}

void client_figures_add(client_figures_t *dst, const client_figures_t *src)
{
    stats_counters_add(&dst->c, &src->c);
    stats_hist_merge(&dst->lat, &src->lat);
    stats_hist_merge(&dst->down, &src->down);
    stats_hist_merge(&dst->conn, &src->conn);
    dst->open += src->open;
    dst->t_first = client_min_stamp(dst->t_first, src->t_first);
    dst->t_last_ident = client_max_stamp(dst->t_last_ident, src->t_last_ident);
    dst->t_last_tls = client_max_stamp(dst->t_last_tls, src->t_last_tls);
    dst->t_last_deliv = client_max_stamp(dst->t_last_deliv, src->t_last_deliv);
    dst->t_first_4011 = client_min_stamp(dst->t_first_4011, src->t_first_4011);
    dst->t_last_4011 = client_max_stamp(dst->t_last_4011, src->t_last_4011);
    dst->t_last_resumed =
        client_max_stamp(dst->t_last_resumed, src->t_last_resumed);
}

/* Hands the figures since the last flush to the shared copy. The open gauge
 * is replaced, not added. */
static void client_flush(client_loop_t *l)
{
    uint64_t open = l->f.open;

    pthread_mutex_lock(&l->lock);
    l->shared.open = 0;
    client_figures_add(&l->shared, &l->f);
    pthread_mutex_unlock(&l->lock);
    memset(&l->f.c, 0, sizeof(l->f.c));
    if (l->f.lat.count)
        stats_hist_reset(&l->f.lat);
    if (l->f.down.count)
        stats_hist_reset(&l->f.down);
    if (l->f.conn.count)
        stats_hist_reset(&l->f.conn);
    l->f.t_first = l->f.t_last_ident = l->f.t_last_deliv = 0;
    l->f.t_last_tls = 0;
    l->f.t_first_4011 = l->f.t_last_4011 = l->f.t_last_resumed = 0;
    l->f.open = open;
}

static void client_tick_cb(uv_timer_t *t);

static void client_retime(client_loop_t *l)
{
    uint64_t ms = l->connecting || l->typing_rate > 0 || l->churn_rate > 0 ||
                          l->relay_rate > 0 || l->nwaiting > 0
                      ? CLIENT_TICK_FAST_MS
                      : CLIENT_TICK_SLOW_MS;

    if (uv_timer_get_repeat(&l->tick) != ms)
        uv_timer_start(&l->tick, client_tick_cb, ms, ms);
}

static void client_tick_cb(uv_timer_t *t)
{
    client_loop_t *l = t->data;
    uint64_t now = util_now_us();

    l->now_us = now;
    if (l->connecting)
        client_pace_connects(l, now);
    if (l->typing_rate > 0)
        client_pace_typing(l, now);
    if (l->churn_rate > 0)
        client_pace_churn(l, now);
    if (l->relay_rate > 0)
        client_pace_relay(l, now);
    if (l->nwaiting > 0 && now >= l->next_retry)
        client_pace_retries(l, now);
    if (l->inflight > 0 && now - l->last_scan >= CLIENT_SCAN_US) {
        l->last_scan = now;
        client_scan_timeouts(l, now);
    }
    if (now - l->last_flush >= CLIENT_FLUSH_US) {
        l->last_flush = now;
        client_flush(l);
    }
    client_retime(l);
}

static void client_finish(client_loop_t *l)
{
    uint64_t ours = 0; /* closes of our own at the end count as nothing */

    l->finishing = 1;
    l->connecting = 0;
    l->nwaiting = 0;
    l->typing_rate = l->churn_rate = l->relay_rate = 0;
    for (uint32_t i = 0; i < l->count; i++) {
        client_t *c = &l->clients[i];

        if (c->state != CLIENT_IDLE && c->state != CLIENT_CLOSING)
            client_end(c, &ours);
    }
    uv_close((uv_handle_t *)&l->tick, NULL);
    uv_close((uv_handle_t *)&l->wake, NULL);
}

/* Resets every identified session, to stay away: the server parks them. */
static void client_cut(client_loop_t *l)
{
    for (uint32_t i = 0; i < l->count; i++)
        if (l->clients[i].state == CLIENT_IDENTIFIED)
            client_abort(&l->clients[i], &l->f.c.drops);
}

/* Counts each session's lost events: those of its guild published in its
 * current life, among the first sent of the record, that it never
 * received; apart for a session that is not back from its last cut. Every
 * client counts as tallied, and the figures go at once. */
static void client_tally(client_loop_t *l, uint64_t sent)
{
    for (uint32_t i = 0; i < l->count; i++) {
        client_t *c = &l->clients[i];
        uint64_t lost =
            c->track.life_from == 0
                ? 0
                : client_missing(c, sent, c->track.life_from, UINT64_MAX);

        if (c->state == CLIENT_IDENTIFIED)
            l->f.c.lost += lost;
        else
            l->f.c.lost_not_back += lost;
        if (lost > 0)
            client_fault_line(
                c, "%llu events of g%u never received (%s)",
                (unsigned long long)lost, c->index / l->conf->members,
                c->state == CLIENT_IDENTIFIED ? "live" : "not back");
        l->f.c.tallied++;
    }
    client_flush(l);
}

/* Requests from now on at cmd->rate per second; the table holds at least
 * what is sent in cmd->span_s, so that no request is given up sooner. */
static void client_relay_begin(client_loop_t *l, const client_cmd_t *cmd,
                               uint64_t now)
{
    relay_table_free(&l->relay);
    relay_table_init(&l->relay, (uint64_t)(cmd->rate * cmd->span_s) + 1);
    l->relay_rate = cmd->rate;
    l->relay_t0 = now;
    l->relay_due_sent = 0;
}

static void client_apply(client_loop_t *l, const client_cmd_t *cmd)
{
    uint64_t now = util_now_us();

    switch (cmd->op) {
    case CLIENT_CMD_CONNECT:
        l->connecting = 1;
        l->conn_rate = cmd->rate;
        l->max_inflight = cmd->inflight ? cmd->inflight : 1;
        l->conn_t0 = now;
        l->conn_started = 0;
        l->next = 0;
        l->conn_lo = cmd->lo;
        l->conn_hi = cmd->hi ? cmd->hi : UINT32_MAX;
        client_pace_connects(l, now);
        break;
    case CLIENT_CMD_TYPING:
        l->typing_rate = cmd->rate;
        l->typing_t0 = now;
        l->typing_sent = 0;
        break;
    case CLIENT_CMD_CHURN:
        l->churn_rate = cmd->rate;
        l->churn_t0 = now;
        l->churn_dropped = 0;
        break;
    case CLIENT_CMD_RELAY: client_relay_begin(l, cmd, now); break;
    case CLIENT_CMD_QUIET:
        l->typing_rate = l->churn_rate = l->relay_rate = 0;
        l->follow = 0;
        break;
    case CLIENT_CMD_STORM: client_storm(l, now); break;
    case CLIENT_CMD_CUT: client_cut(l); break;
    case CLIENT_CMD_TALLY: client_tally(l, cmd->count); break;
    case CLIENT_CMD_FINISH: client_finish(l); return;
    }
    client_retime(l);
}

static void client_wake_cb(uv_async_t *a)
{
    client_loop_t *l = a->data;
    client_cmd_t cmds[CLIENT_MAILBOX];
    unsigned n;

    pthread_mutex_lock(&l->lock);
    n = l->nmail;
    memcpy(cmds, l->mail, n * sizeof(cmds[0]));
    l->nmail = 0;
    pthread_mutex_unlock(&l->lock);
    for (unsigned i = 0; i < n && !l->finishing; i++)
        client_apply(l, &cmds[i]);
}

static void client_thread(void *arg)
{
    client_loop_t *l = arg;

    uv_run(&l->uv, UV_RUN_DEFAULT);
    client_flush(l);
}

/* The identify message, and where its token lies for a resume. */
static void client_identity(client_t *c)
{
    size_t off = 0, len = 0;

    c->identify = client_identify_text(c->loop->conf, c->index);
    if (resume_token_span(c->identify, &off, &len) != 0 || off > UINT16_MAX ||
        len > UINT16_MAX)
        util_die("identify has no token");
    c->tok_off = (uint16_t)off;
    c->tok_len = (uint16_t)len;
}

client_loop_t *client_loop_new(const client_conf_t *conf, uint32_t first,
                               uint32_t count, uint64_t seed)
{
    client_loop_t *l = gw_calloc(1, sizeof(*l));

    l->conf = conf;
    l->count = count;
    l->rng = seed | 1;
    l->enc = wsframe_enc_new(seed * 0x9e3779b97f4a7c15ull + 1);
    if (conf->tls_hi > conf->tls_lo &&
        (l->tls = tlsclient_conf_new(&client_tls_cb, seed)) == NULL)
        util_die("cannot set up TLS");
    l->clients = gw_calloc(count ? count : 1, sizeof(client_t));
    l->waiting = gw_calloc(count ? count : 1, sizeof(uint32_t));
    l->follow = conf->follow_drain;
    for (uint32_t i = 0; i < count; i++) {
        client_t *c = &l->clients[i];

        c->loop = l;
        c->index = first + i;
        c->target = (uint8_t)(conf->by_guild && conf->members > 0
                                  ? scale_instance(c->index / conf->members,
                                                   conf->ntargets)
                                  : c->index % conf->ntargets);
        wsframe_reader_init(&c->rd);
        if (conf->proto == CLIENT_PROTO_GW)
            client_identity(c);
        if (conf->resume)
            resume_track_init(&c->track, client_track_bits(conf));
    }
    client_figures_reset(&l->f);
    client_figures_reset(&l->shared);
    pthread_mutex_init(&l->lock, NULL);
    if (uv_loop_init(&l->uv) != 0)
        util_die("uv_loop_init failed");
    uv_async_init(&l->uv, &l->wake, client_wake_cb);
    l->wake.data = l;
    uv_timer_init(&l->uv, &l->tick);
    l->tick.data = l;
    uv_timer_start(&l->tick, client_tick_cb, CLIENT_TICK_SLOW_MS,
                   CLIENT_TICK_SLOW_MS);
    return l;
}

int client_loop_start(client_loop_t *l)
{
    return uv_thread_create(&l->thread, client_thread, l);
}

void client_loop_command(client_loop_t *l, const client_cmd_t *cmd)
{
    pthread_mutex_lock(&l->lock);
    if (l->nmail < CLIENT_MAILBOX)
        l->mail[l->nmail++] = *cmd;
    pthread_mutex_unlock(&l->lock);
    uv_async_send(&l->wake);
}

void client_loop_collect(client_loop_t *l, client_figures_t *f)
{
    uint64_t open;

    pthread_mutex_lock(&l->lock);
    open = l->shared.open;
    client_figures_add(f, &l->shared);
    client_figures_reset(&l->shared);
    l->shared.open = open;
    pthread_mutex_unlock(&l->lock);
}

void client_loop_join(client_loop_t *l)
{
    uv_thread_join(&l->thread);
}

void client_loop_free(client_loop_t *l)
{
    uv_loop_close(&l->uv);
    for (uint32_t i = 0; i < l->count; i++) {
        free(l->clients[i].identify);
        tlsclient_session_free(l->clients[i].saved);
        resume_track_free(&l->clients[i].track);
    }
    free(l->clients);
    free(l->waiting);
    relay_table_free(&l->relay);
    wsframe_enc_free(l->enc);
    tlsclient_conf_free(l->tls);
    pthread_mutex_destroy(&l->lock);
    free(l);
}
