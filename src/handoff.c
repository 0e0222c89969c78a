/*
 * The drain handoff's Redis side (docs/continuity.md section 3). Keys,
 * under C = `<redis.channel>:handoff` (the shared control channel's name,
 * and the prefix of the instances' own, `C:<instance>`):
 *
 *   C:<S>       the header snapshot of drained session S, until claimed
 *               or the resume window ends;
 *   C:<S>:snap  its full snapshot, from the serve until the claimer
 *               takes it (60 s at most).
 *
 * Each step is one script, so that a key and the control message that
 * announces it change together: a claim deletes the header and publishes
 * "claim" only if the header was there (a session is claimed once); a
 * serve stores the snapshot and publishes "snap" (or only "lost").
 */
#include "gw/handoff.h"

#include "gw/alloc.h"
#include "gw/error.h"
#include "gw/hex.h"
#include "gw/log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define HANDOFF_HEX (2 * GW_SESSION_ID_LEN)
#define HANDOFF_SNAP_TTL_MS "60000" /* a claimer takes it at once */

/* ARGV: key, value, ttl ms. */
static const char handoff_open_lua[] =
    "redis.call('SET', ARGV[1], ARGV[2], 'PX', ARGV[3]) return 'OK'";
/* ARGV: key, channel, message. nil when there was nothing to claim. */
static const char handoff_claim_lua[] =
    "if not redis.call('GET', ARGV[1]) then return false end "
    "redis.call('DEL', ARGV[1]) "
    "redis.call('PUBLISH', ARGV[2], ARGV[3]) return 'OK'";
/* ARGV: key, snapshot ('' when lost), ttl ms, channel, message. */
static const char handoff_serve_lua[] =
    "if ARGV[2] ~= '' then "
    "redis.call('SET', ARGV[1], ARGV[2], 'PX', ARGV[3]) end "
    "redis.call('PUBLISH', ARGV[4], ARGV[5]) return 'OK'";
/* ARGV: key. The value, deleted; nil when none. */
static const char handoff_take_lua[] =
    "local v = redis.call('GET', ARGV[1]) "
    "if v then redis.call('DEL', ARGV[1]) end return v";

struct gw_handoff {
    gw_redis_t *redis; /* borrowed */
    char *instance;    /* owned: this instance's id */
    char channel[256]; /* C: the shared control channel, the keys' prefix */
    int targeted;      /* messages go to their instance's own channel */
    gw_stats_t *stats; /* borrowed */
    gw_handoff_hooks_t hooks;
    gw_log_limit_t log; /* failed commands */
    gw_redis_script_t open, claim, serve, take;
};

/* A call in flight: whom its answer goes to. */
typedef struct handoff_call {
    gw_handoff_t *h;
    gw_action_t answer; /* the event that answers a failure (or a value) */
    uint8_t to[GW_SESSION_ID_LEN];
} handoff_call_t;

void gw_handoff_channel(const gw_config_t *cfg, const char *instance, char *out,
                        size_t size)
{
    if (cfg->redis_targeted)
        snprintf(out, size, "%s:handoff:%s", cfg->redis_channel, instance);
    else
        snprintf(out, size, "%s:handoff", cfg->redis_channel);
}

/* The channel a message for instance to[0..len) goes on (heap). */
static char *handoff_to(const gw_handoff_t *h, const char *to, size_t len)
{
    size_t size = sizeof(h->channel) + len + 2;
    char *ch = gw_malloc(size);

    if (h->targeted)
        snprintf(ch, size, "%s:%.*s", h->channel, (int)len, to);
    else
        snprintf(ch, size, "%s", h->channel);
    return ch;
}

gw_handoff_t *gw_handoff_new(gw_redis_t *redis, const gw_config_t *cfg,
                             const char *instance, gw_stats_t *stats,
                             const gw_handoff_hooks_t *hooks)
{
    gw_handoff_t *h = gw_calloc(1, sizeof(*h));

    h->redis = redis;
    h->instance = gw_strdup(instance);
    snprintf(h->channel, sizeof(h->channel), "%s:handoff", cfg->redis_channel);
    h->targeted = cfg->redis_targeted;
    h->stats = stats;
    h->hooks = *hooks;
    gw_redis_script_init(&h->open, handoff_open_lua);
    gw_redis_script_init(&h->claim, handoff_claim_lua);
    gw_redis_script_init(&h->serve, handoff_serve_lua);
    gw_redis_script_init(&h->take, handoff_take_lua);
    return h;
}

void gw_handoff_free(gw_handoff_t *h)
{
    free(h->instance);
    free(h);
}

/* The key of session id: C:<hex>, and suffix. */
static void handoff_key(const gw_handoff_t *h, const uint8_t *id,
                        const char *suffix, char *out, size_t size)
{
    char hex[HANDOFF_HEX + 1];

    gw_hex_encode(id, GW_SESSION_ID_LEN, hex);
    hex[HANDOFF_HEX] = '\0';
    snprintf(out, size, "%s:%s%s", h->channel, hex, suffix);
}

static void handoff_answer(gw_handoff_t *h, gw_action_t action,
                           const uint8_t *to, const char *blob, size_t len)
{
    h->hooks.answer(h->hooks.data,
                    gw_event_handoff(action, to, blob, len, NULL));
}

/* A command that failed: counted, logged (rate-limited). */
static void handoff_failed(gw_handoff_t *h, const char *what, int status)
{
    gw_stat_add(h->stats, GW_STAT_HANDOFF_REDIS_FAILURES, 1);
    gw_log_limited(&h->log, GW_LOG_WARN, "handoff: %s failed: %s", what,
                   gw_strerror(status));
}

/* The answer of a call whose worker hears how it went (OPEN: code 1
 * when it failed) or its value (LOOKUP, TAKE: no body when none). */
static void handoff_value_cb(void *data, int status, const char *value,
                             size_t len)
{
    handoff_call_t *c = data;
    gw_handoff_t *h = c->h;
    gw_event_t *ev;

    if (status != 0) {
        handoff_failed(h, "a handoff command", status);
        value = NULL;
    }
    ev = gw_event_handoff(c->answer, c->to,
                          c->answer == GW_ACTION_OPENED ? NULL : value, len,
                          NULL);
    ev->code = c->answer == GW_ACTION_OPENED && value == NULL;
    h->hooks.answer(h->hooks.data, ev);
    free(c);
}

/* A claim's answer: nil (nothing to claim) or a failure ends the resume;
 * success waits for the owner's "snap" or "lost". */
static void handoff_claim_cb(void *data, int status, const char *value,
                             size_t len)
{
    handoff_call_t *c = data;

    (void)len;
    if (status != 0)
        handoff_failed(c->h, "a claim", status);
    if (status != 0 || value == NULL)
        handoff_answer(c->h, GW_ACTION_RESTORE, c->to, NULL, 0);
    free(c);
}

/* A serve's answer: its worker waits no more (a draining instance
 * exits once every serve is done). A failed one is the claimer's to
 * time out. */
static void handoff_serve_cb(void *data, int status, const char *value,
                             size_t len)
{
    handoff_call_t *c = data;

    (void)value;
    (void)len;
    if (status != 0)
        handoff_failed(c->h, "a serve", status);
    handoff_answer(c->h, GW_ACTION_SERVED, c->to, NULL, 0);
    free(c);
}

static handoff_call_t *handoff_call(gw_handoff_t *h, gw_action_t answer,
                                    const uint8_t *to)
{
    handoff_call_t *c = gw_malloc(sizeof(*c));

    c->h = h;
    c->answer = answer;
    memcpy(c->to, to, GW_SESSION_ID_LEN);
    return c;
}

/* "<S> <R>": the two ids of a message, in hex. */
static void handoff_ids(const uint8_t *s, const uint8_t *r, char *out)
{
    gw_hex_encode(s, GW_SESSION_ID_LEN, out);
    out[HANDOFF_HEX] = ' ';
    gw_hex_encode(r, GW_SESSION_ID_LEN, out + HANDOFF_HEX + 1);
    out[2 * HANDOFF_HEX + 1] = '\0';
}

static int handoff_open(gw_handoff_t *h, const gw_handoff_msg_t *m,
                        const char *key)
{
    char ttl[16];
    const char *argv[3] = {key, m->blob, ttl};
    size_t lens[3] = {strlen(key), m->len, 0};

    handoff_call_t *c = handoff_call(h, GW_ACTION_OPENED, m->session);
    int rc;

    lens[2] = (size_t)snprintf(ttl, sizeof(ttl), "%u", m->ttl_ms);
    rc = gw_redis_eval_bin(h->redis, &h->open, 3, argv, lens, handoff_value_cb,
                           c);
    if (rc != 0)
        free(c);
    return rc;
}

static int handoff_claim(gw_handoff_t *h, const gw_handoff_msg_t *m,
                         const char *key)
{
    char ids[2 * HANDOFF_HEX + 2], *msg;
    size_t n = strlen(m->text) + strlen(h->instance) + sizeof(ids) + 16;
    handoff_call_t *c = handoff_call(h, GW_ACTION_RESTORE, m->requester);
    char *to = handoff_to(h, m->text, strlen(m->text)); /* the owner */
    int rc;

    handoff_ids(m->session, m->requester, ids);
    msg = gw_malloc(n);
    snprintf(msg, n, "claim %s\n%s\n%s", ids, m->text, h->instance);
    rc = gw_redis_eval(h->redis, &h->claim, 3, (const char *[]){key, to, msg},
                       handoff_claim_cb, c);
    if (rc != 0)
        free(c);
    free(msg);
    free(to);
    return rc;
}

static int handoff_serve(gw_handoff_t *h, const gw_handoff_msg_t *m,
                         const char *key)
{
    char hex[HANDOFF_HEX + 1], *msg;
    size_t n = strlen(m->text) + sizeof(hex) + 16;
    /* The claimer: the line after the requester's id in the address. */
    const char *nl = strchr(m->text, '\n');
    const char *claimer = nl != NULL ? nl + 1 : "";
    char *to = handoff_to(h, claimer, strlen(claimer));
    const char *argv[5] = {key, m->blob ? m->blob : "", HANDOFF_SNAP_TTL_MS, to,
                           NULL};
    size_t lens[5] = {strlen(key), m->blob ? m->len : 0,
                      strlen(HANDOFF_SNAP_TTL_MS), strlen(to), 0};
    handoff_call_t *c = handoff_call(h, GW_ACTION_SERVED, m->session);
    int rc;

    gw_hex_encode(m->session, GW_SESSION_ID_LEN, hex);
    hex[HANDOFF_HEX] = '\0';
    msg = gw_malloc(n);
    lens[4] = (size_t)snprintf(msg, n, "%s %s %s", m->blob ? "snap" : "lost",
                               hex, m->text);
    argv[4] = msg;
    rc = gw_redis_eval_bin(h->redis, &h->serve, 5, argv, lens, handoff_serve_cb,
                           c);
    if (rc != 0)
        free(c);
    free(msg);
    free(to);
    return rc;
}

/* A call the link refused at once (down, or too many in flight) is
 * answered as its failure, now. */
void gw_handoff_request(gw_handoff_t *h, const gw_handoff_msg_t *m)
{
    char key[320];
    int rc = GW_EINVAL;

    handoff_key(h, m->session, m->step == GW_HANDOFF_SERVE ? ":snap" : "", key,
                sizeof(key));
    switch (m->step) {
    case GW_HANDOFF_OPEN: rc = handoff_open(h, m, key); break;
    case GW_HANDOFF_LOOKUP: {
        handoff_call_t *c = handoff_call(h, GW_ACTION_FOUND, m->requester);
        rc = gw_redis_get(h->redis, key, handoff_value_cb, c);
        if (rc != 0)
            free(c);
        break;
    }
    case GW_HANDOFF_CLAIM: rc = handoff_claim(h, m, key); break;
    case GW_HANDOFF_SERVE: rc = handoff_serve(h, m, key); break;
    }
    if (rc == 0)
        return;
    handoff_failed(h, "a handoff command", rc);
    if (m->step == GW_HANDOFF_OPEN) {
        gw_event_t *ev =
            gw_event_handoff(GW_ACTION_OPENED, m->session, NULL, 0, NULL);
        ev->code = 1;
        h->hooks.answer(h->hooks.data, ev);
    } else if (m->step == GW_HANDOFF_LOOKUP)
        handoff_answer(h, GW_ACTION_FOUND, m->requester, NULL, 0);
    else if (m->step == GW_HANDOFF_CLAIM)
        handoff_answer(h, GW_ACTION_RESTORE, m->requester, NULL, 0);
    else
        handoff_answer(h, GW_ACTION_SERVED, m->session, NULL, 0);
}

/* The hex id at p (32 digits) into id: 0 or GW_EPARSE. */
static int handoff_hex(const char *p, const char *end, uint8_t *id)
{
    if (end - p < HANDOFF_HEX || gw_hex_decode(p, GW_SESSION_ID_LEN, id) != 0)
        return GW_EPARSE;
    return 0;
}

/* The next line of [*p, end) (no NUL, not empty): its start and length;
 * *p moves past it and its newline. 0 or GW_EPARSE. */
static int handoff_line(const char **p, const char *end, const char **line,
                        size_t *len)
{
    const char *nl = memchr(*p, '\n', (size_t)(end - *p));
    const char *stop = nl != NULL ? nl : end;

    if (stop == *p || memchr(*p, '\0', (size_t)(stop - *p)) != NULL)
        return GW_EPARSE;
    *line = *p;
    *len = (size_t)(stop - *p);
    *p = nl != NULL ? nl + 1 : end;
    return 0;
}

int gw_handoff_parse(const char *payload, size_t len, gw_handoff_note_t *out)
{
    static const struct {
        const char *word;
        gw_handoff_kind_t kind;
    } kinds[] = {{"claim ", GW_HANDOFF_CLAIMED},
                 {"snap ", GW_HANDOFF_SNAP},
                 {"lost ", GW_HANDOFF_LOST}};
    const char *p = payload, *end = payload + len;
    size_t i = 0;

    *out = (gw_handoff_note_t){0};
    while (i < 3 && (len < strlen(kinds[i].word) ||
                     memcmp(payload, kinds[i].word, strlen(kinds[i].word))))
        i++;
    if (i == 3)
        return GW_EPARSE;
    out->kind = kinds[i].kind;
    p += strlen(kinds[i].word);
    if (handoff_hex(p, end, out->session) != 0 ||
        end - (p += HANDOFF_HEX) < 1 || *p++ != ' ' ||
        handoff_hex(p, end, out->requester) != 0 ||
        end - (p += HANDOFF_HEX) < 1 || *p++ != '\n')
        return GW_EPARSE;
    if (out->kind == GW_HANDOFF_CLAIMED &&
        handoff_line(&p, end, &out->owner, &out->owner_len) != 0)
        return GW_EPARSE;
    /* The last line ends the message: no newline after it. */
    if (handoff_line(&p, end, &out->claimer, &out->claimer_len) != 0 ||
        p != end || end[-1] == '\n')
        return GW_EPARSE;
    return 0;
}

/* Whether the id of len bytes at s is this instance's. */
static int handoff_mine(const gw_handoff_t *h, const char *s, size_t len)
{
    return len == strlen(h->instance) && memcmp(s, h->instance, len) == 0;
}

/* A claim of a session of ours: its worker serves it, answering to
 * "R\nCLAIMER". */
static void handoff_claimed(gw_handoff_t *h, const gw_handoff_note_t *n)
{
    char hex[HANDOFF_HEX + 1], *reply;
    size_t size = sizeof(hex) + n->claimer_len + 2;

    gw_hex_encode(n->requester, GW_SESSION_ID_LEN, hex);
    hex[HANDOFF_HEX] = '\0';
    reply = gw_malloc(size);
    snprintf(reply, size, "%s\n%.*s", hex, (int)n->claimer_len, n->claimer);
    h->hooks.answer(h->hooks.data, gw_event_handoff(GW_ACTION_CLAIM, n->session,
                                                    NULL, 0, reply));
    free(reply);
}

/* The snapshot our claim asked for is stored: taken (and deleted). */
static void handoff_take(gw_handoff_t *h, const gw_handoff_note_t *n)
{
    char key[320];
    handoff_call_t *c = handoff_call(h, GW_ACTION_RESTORE, n->requester);
    int rc;

    handoff_key(h, n->session, ":snap", key, sizeof(key));
    rc = gw_redis_eval(h->redis, &h->take, 1, (const char *[]){key},
                       handoff_value_cb, c);
    if (rc == 0)
        return;
    free(c);
    handoff_failed(h, "taking a snapshot", rc);
    handoff_answer(h, GW_ACTION_RESTORE, n->requester, NULL, 0);
}

void gw_handoff_control(gw_handoff_t *h, const char *payload, size_t len)
{
    gw_handoff_note_t n;

    gw_stat_add(h->stats, GW_STAT_HANDOFF_CONTROL, 1);
    if (gw_handoff_parse(payload, len, &n) != 0) {
        gw_log_limited(&h->log, GW_LOG_WARN,
                       "handoff: a control message of %zu bytes that is not "
                       "one: ignored",
                       len);
        return;
    }
    if (n.kind == GW_HANDOFF_CLAIMED) {
        if (handoff_mine(h, n.owner, n.owner_len))
            handoff_claimed(h, &n);
    } else if (handoff_mine(h, n.claimer, n.claimer_len)) {
        if (n.kind == GW_HANDOFF_SNAP)
            handoff_take(h, &n);
        else
            handoff_answer(h, GW_ACTION_RESTORE, n.requester, NULL, 0);
    }
}
