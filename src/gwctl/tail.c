#include "tail.h"

#include "mint.h"
#include "msg.h"
#include "setup.h"
#include "wsc.h"

#include "gw/alloc.h"
#include "gw/error.h"
#include "gw/json.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <uv.h>

/* Each stage of a connection (resolve, connect, TLS, upgrade, ready). */
#define TAIL_STAGE_MS 10000
/* Reconnect waits: doubled after each failure up to the cap, back to the
 * least once a session identifies; each drawn within +-20 %. */
#define TAIL_BACKOFF_MIN_MS 500
#define TAIL_BACKOFF_MAX_MS 30000
/* After a close 4008, the least wait (as the SDK's rateLimitDelay). */
#define TAIL_RATE_LIMITED_MS 10000
/* A token lives this long unless --ttl says otherwise; it is refreshed
 * when the gateway warns it is expiring. */
#define TAIL_TTL_S 3600
/* Silence past two heartbeat intervals and this margin: the server is
 * gone without a word (a lost network). */
#define TAIL_SILENCE_MARGIN_MS 5000

typedef struct tail {
    uv_loop_t loop;
    const ctl_opts_t *o; /* borrowed */
    ctl_setup_t *setup;  /* borrowed */
    const char *secret;  /* borrowed from o or the setup */
    const char *user;    /* borrowed from o */
    ctl_url_t url;
    ctl_tls_opts_t tls;
    ctl_wsc_t *ws;       /* the connection, NULL between two */
    uv_timer_t retry;    /* the wait before the next connection */
    uv_timer_t watchdog; /* the server's silence */
    uv_signal_t sigs[2]; /* SIGINT, SIGTERM */
    uint64_t backoff_ms; /* the next wait's middle */
    uint32_t silence_ms; /* how long the server may be silent */
    int64_t printed;     /* dispatches printed, for --count */
    int stopping;        /* asked to stop: no reconnect */
    int exit_code;
} tail_t;

typedef struct tail_code {
    unsigned code;
    const char *name;
} tail_code_t;

/* The close codes of the gateway (README, "Fatal errors close the
 * connection") and the standard ones it sends. */
static const tail_code_t tail_codes[] = {
    {1000, "normal closure"},
    {1001, "going away"},
    {1002, "protocol error"},
    {1003, "binary message"},
    {1006, "connection lost without a close frame"},
    {1007, "invalid UTF-8"},
    {1009, "message too big"},
    {4000, "unknown error"},
    {4001, "malformed envelope"},
    {4002, "not JSON"},
    {4003, "not authenticated"},
    {4004, "authentication failed"},
    {4005, "already authenticated"},
    {4007, "invalid resume seq"},
    {4008, "rate limited"},
    {4009, "heartbeats stopped"},
    {4010, "slow consumer"},
    {4011, "server draining"},
    {4012, "session resumed elsewhere"},
    {4013, "token expired"},
};

const char *ctl_tail_code_name(unsigned code)
{
    for (size_t i = 0; i < sizeof(tail_codes) / sizeof(tail_codes[0]); i++)
        if (tail_codes[i].code == code)
            return tail_codes[i].name;
    return NULL;
}

ctl_tail_verdict_t ctl_tail_verdict(int status, int http_status, unsigned code)
{
    if (status == GW_EAUTH)
        return CTL_TAIL_GIVE_UP;
    if (status == GW_EINVAL || status == GW_EPARSE) {
        /* 503: the connection cap; 429: connections per address. */
        if (http_status == 429 || http_status == 503)
            return CTL_TAIL_RETRY_SLOW;
        return http_status >= 500 ? CTL_TAIL_RETRY : CTL_TAIL_GIVE_UP;
    }
    if (status != 0)
        return CTL_TAIL_RETRY;
    switch (code) {
    case 1002:
    case 1003:
    case 1007:
    case 1009:
    case 4001:
    case 4002:
    case 4003:
    case 4004:
    case 4005:
    case 4007: return CTL_TAIL_GIVE_UP;
    case 4008: return CTL_TAIL_RETRY_SLOW;
    default: return CTL_TAIL_RETRY;
    }
}

/* Appends s as one word: as it is, or as a JSON string when it has blanks
 * or control characters that would break the line into others. */
static void tail_word(gw_buf_t *out, const char *s)
{
    for (const char *p = s; *p != '\0'; p++)
        if ((unsigned char)*p <= ' ' || *p == 0x7f) {
            gw_buf_json_string(out, s);
            return;
        }
    gw_buf_append(out, s[0] != '\0' ? s : "\"\"", s[0] != '\0' ? strlen(s) : 2);
}

static void tail_compact(gw_buf_t *out, const cJSON *item)
{
    char *text = item != NULL ? cJSON_PrintUnformatted(item) : NULL;

    if (item != NULL && text == NULL)
        abort(); /* cJSON fails only when out of memory */
    gw_buf_printf(out, "%s", text != NULL ? text : "{}");
    free(text);
}

int ctl_tail_format(const cJSON *msg, int json, gw_buf_t *out)
{
    const cJSON *seq = cJSON_GetObjectItemCaseSensitive(msg, "seq");
    const cJSON *event = cJSON_GetObjectItemCaseSensitive(msg, "event");
    const cJSON *guild = cJSON_GetObjectItemCaseSensitive(msg, "guildId");

    if (!cJSON_IsNumber(seq) || !cJSON_IsString(event))
        return 0;
    if (json) {
        tail_compact(out, msg);
        gw_buf_printf(out, "\n");
        return 1;
    }
    gw_buf_printf(out, "%.0f ", seq->valuedouble);
    tail_word(out, event->valuestring);
    gw_buf_printf(out, " ");
    tail_word(out, cJSON_IsString(guild) ? guild->valuestring : "-");
    gw_buf_printf(out, " ");
    tail_compact(out, cJSON_GetObjectItemCaseSensitive(msg, "data"));
    gw_buf_printf(out, "\n");
    return 1;
}

/* ---- the connection -------------------------------------------------- */

static void tail_connect(tail_t *t);

/* Ends the loop: every handle closed. */
static void tail_finish(tail_t *t)
{
    uv_close((uv_handle_t *)&t->retry, NULL);
    uv_close((uv_handle_t *)&t->watchdog, NULL);
    for (int i = 0; i < 2; i++)
        uv_close((uv_handle_t *)&t->sigs[i], NULL);
}

/* Stops with exit_code: closes the session in order, then ends. */
static void tail_stop(tail_t *t, int exit_code)
{
    if (t->stopping)
        return;
    t->stopping = 1;
    t->exit_code = exit_code;
    uv_timer_stop(&t->retry);
    uv_timer_stop(&t->watchdog);
    if (t->ws != NULL)
        ctl_wsc_close(t->ws, 1000);
    else
        tail_finish(t);
}

static void tail_send(tail_t *t, cJSON *msg)
{
    char *text = cJSON_PrintUnformatted(msg);

    if (text == NULL)
        abort(); /* cJSON fails only when out of memory */
    ctl_wsc_send(t->ws, text, strlen(text));
    free(text);
    cJSON_Delete(msg);
}

static char *tail_token(const tail_t *t)
{
    int64_t now = (int64_t)time(NULL);
    ctl_mint_t m = {
        .sub = t->user,
        .aud = t->o->aud ? t->o->aud : t->setup->cfg.jwt_audience,
        .iss = t->o->iss ? t->o->iss : t->setup->cfg.jwt_issuer,
        .iat = now,
        .exp = now + (t->o->ttl_s ? t->o->ttl_s : TAIL_TTL_S),
    };

    return ctl_mint_hs256(&m, t->secret);
}

/* {"event": name, "data": data}, data taken. */
static cJSON *tail_message(const char *name, cJSON *data)
{
    cJSON *msg = cJSON_CreateObject();

    cJSON_AddStringToObject(msg, "event", name);
    cJSON_AddItemToObject(msg, "data", data);
    return msg;
}

static void tail_identify(tail_t *t)
{
    cJSON *data = cJSON_CreateObject();
    char *token = tail_token(t);

    cJSON_AddStringToObject(data, "userId", t->user);
    cJSON_AddStringToObject(data, "token", token);
    /* cJSON makes no array of zero strings. */
    cJSON_AddItemToObject(
        data, "guildIds",
        t->o->guilds.n > 0
            ? cJSON_CreateStringArray((const char *const *)t->o->guilds.v,
                                      (int)t->o->guilds.n)
            : cJSON_CreateArray());
    free(token);
    tail_send(t, tail_message("identify", data));
}

/* token_expiring: a fresh token for the same user. */
static void tail_refresh(tail_t *t)
{
    cJSON *data = cJSON_CreateObject();
    char *token = tail_token(t);

    cJSON_AddStringToObject(data, "token", token);
    free(token);
    tail_send(t, tail_message("refresh", data));
}

static void tail_watchdog_cb(uv_timer_t *timer)
{
    tail_t *t = timer->data;

    ctl_msg_note("no word from the gateway for %.1f s; reconnecting",
                 t->silence_ms / 1000.0);
    if (t->ws != NULL)
        ctl_wsc_close(t->ws, 1001);
}

static void tail_heard(tail_t *t)
{
    uv_timer_start(&t->watchdog, tail_watchdog_cb, t->silence_ms, 0);
}

static void tail_identified(tail_t *t, const cJSON *data)
{
    const cJSON *sid = cJSON_GetObjectItemCaseSensitive(data, "sessionId");
    const cJSON *joined = cJSON_GetObjectItemCaseSensitive(data, "guildIds");
    const cJSON *g;
    gw_buf_t b = {0};

    t->backoff_ms = TAIL_BACKOFF_MIN_MS;
    cJSON_ArrayForEach(g, joined)
    {
        if (cJSON_IsString(g))
            gw_buf_printf(&b, "%s%s", b.len ? ", " : "", g->valuestring);
    }
    ctl_msg_note("connected to %s://%s%s as %s (session %s)%s%s; Ctrl-C stops",
                 t->url.tls ? "wss" : "ws", t->url.authority, t->url.path,
                 t->user, cJSON_IsString(sid) ? sid->valuestring : "?",
                 b.len ? ", joined " : ", in no guild", b.len ? b.data : "");
    if ((size_t)cJSON_GetArraySize(joined) < t->o->guilds.n)
        ctl_msg_note("some guilds were not joined (the gateway's limit "
                     "session.max_guilds_per_session?)");
    free(b.data);
}

static void tail_error(const cJSON *data)
{
    const cJSON *code = cJSON_GetObjectItemCaseSensitive(data, "code");
    const cJSON *text = cJSON_GetObjectItemCaseSensitive(data, "message");

    ctl_msg_note("the gateway answered an error: %s: %s",
                 cJSON_IsString(code) ? code->valuestring : "?",
                 cJSON_IsString(text) ? text->valuestring : "");
}

static void tail_print(tail_t *t, const cJSON *msg)
{
    gw_buf_t b = {0};

    if (!ctl_tail_format(msg, t->o->json, &b))
        return;
    fwrite(b.data, 1, b.len, stdout);
    /* One line at a time, also into a pipe. */
    fflush(stdout);
    free(b.data);
    if (t->o->count > 0 && ++t->printed >= t->o->count)
        tail_stop(t, CTL_EXIT_OK);
}

/* The protocol's messages other than dispatches. */
static void tail_control(tail_t *t, const char *event, const cJSON *data)
{
    const cJSON *hb;

    if (strcmp(event, "ready") == 0) {
        hb = cJSON_GetObjectItemCaseSensitive(data, "heartbeatInterval");
        if (cJSON_IsNumber(hb) && hb->valuedouble > 0 && hb->valuedouble < 1e9)
            t->silence_ms =
                (uint32_t)(2 * hb->valuedouble) + TAIL_SILENCE_MARGIN_MS;
        tail_identify(t);
    } else if (strcmp(event, "identified") == 0)
        tail_identified(t, data);
    else if (strcmp(event, "heartbeat") == 0)
        tail_send(t, tail_message("heartbeat_ack", cJSON_CreateObject()));
    else if (strcmp(event, "token_expiring") == 0)
        tail_refresh(t);
    else if (strcmp(event, "error") == 0)
        tail_error(data);
}

static void tail_on_message(void *data, const char *text, size_t len)
{
    tail_t *t = data;
    cJSON *msg = gw_json_parse(text, len);
    const cJSON *event = cJSON_GetObjectItemCaseSensitive(msg, "event");

    tail_heard(t);
    if (!cJSON_IsString(event)) {
        ctl_msg_note("the gateway sent what is not a message of its "
                     "protocol: %.80s",
                     text);
    } else if (cJSON_GetObjectItemCaseSensitive(msg, "seq") != NULL)
        tail_print(t, msg);
    else
        tail_control(t, event->valuestring,
                     cJSON_GetObjectItemCaseSensitive(msg, "data"));
    cJSON_Delete(msg);
}

static void tail_on_open(void *data)
{
    tail_t *t = data;

    /* Until ready says the interval, a stage's time. */
    t->silence_ms = TAIL_STAGE_MS;
    tail_heard(t);
}

static void tail_retry_cb(uv_timer_t *timer)
{
    tail_connect(timer->data);
}

/* The wait before the next try: the backoff within +-20 %, then doubled. */
static uint64_t tail_next_wait(tail_t *t, ctl_tail_verdict_t v)
{
    uint16_t r;
    uint64_t wait;

    if (getrandom(&r, sizeof(r), 0) != sizeof(r))
        r = 32768;
    wait = t->backoff_ms * (80 + (uint64_t)r % 41) / 100;
    t->backoff_ms = t->backoff_ms * 2 > TAIL_BACKOFF_MAX_MS
                        ? TAIL_BACKOFF_MAX_MS
                        : t->backoff_ms * 2;
    if (v == CTL_TAIL_RETRY_SLOW && wait < TAIL_RATE_LIMITED_MS)
        wait = TAIL_RATE_LIMITED_MS;
    return wait;
}

/* Why a connection cannot go on, and what to do about it. */
static void tail_give_up(tail_t *t, int status, unsigned code, const char *why)
{
    if (status == 0 && code == 4004)
        ctl_msg_fail("the gateway refused the token (close 4004, "
                     "authentication failed): gwctl signed it with the secret "
                     "from %s, and the gateway has another, or wants other "
                     "aud/iss claims. Give gwctl the gateway's configuration "
                     "(-c FILE) or secret (--secret, GATEWAYD_JWT_SECRET); "
                     "the gateway's log has an 'audit: auth failed' line",
                     t->o->secret ? "--secret" : ctl_setup_source(t->setup));
    else if (status == 0)
        ctl_msg_fail("the gateway closed the session with %u (%s); another "
                     "try would end the same way",
                     code,
                     ctl_tail_code_name(code) ? ctl_tail_code_name(code)
                                              : "unknown code");
    else
        ctl_msg_fail("%s", why);
    tail_stop(t, CTL_EXIT_FAIL);
}

static void tail_on_close(void *data, int status, int http_status,
                          unsigned code, const char *why)
{
    tail_t *t = data;
    ctl_tail_verdict_t v = ctl_tail_verdict(status, http_status, code);
    uint64_t wait;

    t->ws = NULL;
    uv_timer_stop(&t->watchdog);
    if (t->stopping) {
        tail_finish(t);
        return;
    }
    if (v == CTL_TAIL_GIVE_UP) {
        tail_give_up(t, status, code, why);
        return;
    }
    wait = tail_next_wait(t, v);
    if (status == 0)
        ctl_msg_note("disconnected (close %u: %s); reconnecting in %.1f s",
                     code,
                     ctl_tail_code_name(code) ? ctl_tail_code_name(code)
                                              : "unknown code",
                     wait / 1000.0);
    else
        ctl_msg_note("%s; retrying in %.1f s", why, wait / 1000.0);
    uv_timer_start(&t->retry, tail_retry_cb, wait, 0);
}

static void tail_connect(tail_t *t)
{
    static const ctl_wsc_hooks_t hooks = {tail_on_open, tail_on_message,
                                          tail_on_close};

    t->ws = ctl_wsc_open(&t->loop, &t->url, &t->tls, TAIL_STAGE_MS, &hooks, t);
}

static void tail_signal_cb(uv_signal_t *h, int signum)
{
    (void)signum;
    tail_stop(h->data, CTL_EXIT_OK);
}

static int tail_run(const ctl_opts_t *o)
{
    static const int signals[2] = {SIGINT, SIGTERM};
    ctl_setup_t setup;
    tail_t t = {.o = o,
                .setup = &setup,
                .backoff_ms = TAIL_BACKOFF_MIN_MS,
                .tls = {o->insecure, o->ca_file}};
    int rc;

    if (o->users.n > 1)
        return ctl_msg_usage("--user: one user, the one tail connects as");
    t.user = o->users.n ? o->users.v[0] : "gwctl";
    if ((rc = ctl_setup_load(&setup, o, 0)) != CTL_EXIT_OK ||
        (rc = ctl_setup_secret(&setup, o, &t.secret)) != CTL_EXIT_OK ||
        (rc = ctl_setup_url(&setup, o, 1, &t.url)) != CTL_EXIT_OK)
        goto done;
    uv_loop_init(&t.loop);
    uv_timer_init(&t.loop, &t.retry);
    uv_timer_init(&t.loop, &t.watchdog);
    t.retry.data = t.watchdog.data = &t;
    for (int i = 0; i < 2; i++) {
        uv_signal_init(&t.loop, &t.sigs[i]);
        t.sigs[i].data = &t;
        uv_signal_start(&t.sigs[i], tail_signal_cb, signals[i]);
    }
    tail_connect(&t);
    uv_run(&t.loop, UV_RUN_DEFAULT);
    uv_loop_close(&t.loop);
    rc = t.exit_code;
done:
    ctl_setup_free(&setup);
    return rc;
}

static const ctl_opt_t tail_opts[] = {
    CTL_OPT("user", 0, CTL_LIST, users, "USER",
            "connect as this user (default gwctl)"),
    CTL_OPT("guild", 0, CTL_LIST, guilds, "GUILD",
            "join this guild (repeat, or g1,g2)"),
    CTL_OPT("url", 0, CTL_STR, url, "URL",
            "the gateway's ws:// or wss:// address (default: the config's "
            "server.ws_port on loopback)"),
    CTL_OPT("json", 0, CTL_FLAG, json, NULL,
            "print each dispatch as the gateway sent it, one JSON per line"),
    CTL_OPT_NUM("count", CTL_INT, count, 1, INT64_MAX, "N",
                "exit after N dispatches"),
    CTL_OPT("secret", 0, CTL_STR, secret, "SECRET",
            "sign the token with this HMAC secret (default: the config's "
            "auth.jwt_secret)"),
    CTL_OPT("dev", 0, CTL_FLAG, dev, NULL,
            "allow the shipped development secret (a local try-out)"),
    CTL_OPT_NUM("ttl", CTL_SECONDS, ttl_s, 60, 366 * 86400, "DURATION",
                "the token's lifetime (default 1h; refreshed before it ends)"),
    CTL_OPT("aud", 0, CTL_STR, aud, "AUD",
            "the token's aud claim (default: the config's "
            "auth.jwt_audience)"),
    CTL_OPT("iss", 0, CTL_STR, iss, "ISS",
            "the token's iss claim (default: the config's auth.jwt_issuer)"),
    CTL_OPT("ca-file", 0, CTL_STR, ca_file, "FILE",
            "trust the certificates of this PEM file for wss:// (default: "
            "the system's)"),
    CTL_OPT("insecure", 0, CTL_FLAG, insecure, NULL,
            "do not check the server's certificate"),
};

const ctl_cmd_t ctl_tail_cmd = {
    .name = "tail",
    .synopsis = "[--user U] [--guild G]... [--url ws://...] [--json] "
                "[--count N]",
    .summary = "Connect as a client and print every dispatch, one a line.",
    .details =
        "Each line is SEQ EVENT GUILD DATA (GUILD '-' for events not of a\n"
        "guild), e.g.\n"
        "  1 message.create g1 {\"content\":\"hello\"}\n"
        "tail identifies with a token it signs like `gwctl token`, answers\n"
        "heartbeats, and reconnects with backoff (0.5 s doubling to 30 s)\n"
        "when the connection drops, until Ctrl-C. It gives up, with exit\n"
        "status 1, when another try would fail the same way (a refused\n"
        "token or certificate). Progress goes to stderr, dispatches to\n"
        "stdout.\n",
    .opts = tail_opts,
    .nopts = sizeof(tail_opts) / sizeof(tail_opts[0]),
    .run = tail_run,
};
