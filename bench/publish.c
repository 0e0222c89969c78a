#include "publish.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "gw/alloc.h"
#include "rmqpub.h"
#include "util.h"

#define PUBLISH_MAX_CONNS 64
#define PUBLISH_TICK_MS 1
#define PUBLISH_MAX_BODY 65536
#define PUBLISH_MAX_CHANNEL 256

typedef struct publish_conn {
    uv_tcp_t tcp;
    uv_connect_t creq;
    publish_t *p;
    int up;   /* connected */
    int busy; /* an HTTP request awaits its answer */
    char *in; /* answer bytes not consumed yet */
    size_t in_len, in_cap;
} publish_conn_t;

struct publish {
    uv_loop_t *loop;
    publish_conf_t conf;
    uv_timer_t tick;
    publish_conn_t conns[PUBLISH_MAX_CONNS];
    unsigned nconns, closing;
    double rate;
    uint64_t count, t0;
    int running;
    publish_stats_t st;
    rmqpub_t *amqp; /* the AMQP path's thread; then no connections here */
};

typedef struct publish_write {
    uv_write_t req;
    uv_buf_t buf;
    char data[];
} publish_write_t;

/* The guild event n goes to: its id is "g" and this number. */
static unsigned long long publish_guild(const publish_conf_t *conf, uint64_t n)
{
    return (unsigned long long)(conf->guild0 + n % conf->guilds);
}

size_t publish_envelope(const publish_conf_t *conf, uint64_t n, uint64_t t_us,
                        char *out, size_t cap)
{
    int len = snprintf(out, cap,
                       "{\"event\":\"bench\",\"guildId\":\"g%llu\",\"data\":{"
                       "\"bts\":%llu,\"n\":%llu,\"pad\":\"",
                       publish_guild(conf, n), (unsigned long long)t_us,
                       (unsigned long long)n);
    size_t o = len > 0 ? (size_t)len : 0;

    /* Pad so the whole envelope, with the closing "}}, is payload bytes. */
    while (o + 3 < conf->payload && o + 4 < cap)
        out[o++] = 'x';
    if (o + 4 <= cap) {
        memcpy(out + o, "\"}}", 4);
        o += 3;
    }
    return o;
}

size_t publish_channel(const publish_conf_t *conf, uint64_t n, char *out,
                       size_t cap)
{
    int len = conf->targeted ? snprintf(out, cap, "%s:guild:g%llu",
                                        conf->channel, publish_guild(conf, n))
                             : snprintf(out, cap, "%s", conf->channel);

    return len > 0 && (size_t)len < cap ? (size_t)len : 0;
}

static void publish_write_cb(uv_write_t *req, int status)
{
    publish_write_t *w = req->data;
    publish_conn_t *c = w->req.handle->data;

    if (status != 0)
        c->p->st.broken = 1;
    free(w);
}

static void publish_send(publish_conn_t *c, const char *data, size_t len)
{
    publish_write_t *w = gw_malloc(sizeof(*w) + len);

    memcpy(w->data, data, len);
    w->buf = uv_buf_init(w->data, (unsigned)len);
    w->req.data = w;
    if (uv_write(&w->req, (uv_stream_t *)&c->tcp, &w->buf, 1,
                 publish_write_cb) != 0) {
        c->p->st.broken = 1;
        free(w);
    }
}

/* ---- answers ---------------------------------------------------------- */

/* Redis replies: one line each, ":<subscribers>" or "-ERR ...". Returns
 * the bytes consumed. */
static size_t publish_redis_replies(publish_t *p, const char *buf, size_t len)
{
    size_t used = 0;

    for (;;) {
        const char *eol = memchr(buf + used, '\n', len - used);

        if (eol == NULL)
            return used;
        if (buf[used] == ':') {
            p->st.acked++;
            p->st.receivers += strtoull(buf + used + 1, NULL, 10);
        } else if (buf[used] == '-') {
            p->st.failed++;
        }
        used = (size_t)(eol - buf) + 1;
    }
}

/* The length of a complete HTTP answer at buf (0 while incomplete), and its
 * status. Bodies come with Content-Length or chunked. */
static size_t publish_http_answer(const char *buf, size_t len, int *status)
{
    const char *end = memmem(buf, len, "\r\n\r\n", 4), *h;
    size_t hdr, body = 0;

    if (end == NULL || sscanf(buf, "HTTP/1.%*d %d", status) != 1)
        return 0;
    hdr = (size_t)(end - buf) + 4;
    for (h = buf; (h = memchr(h, '\n', (size_t)(end - h))) != NULL;) {
        h++;
        if (strncasecmp(h, "content-length:", 15) == 0)
            body = strtoull(h + 15, NULL, 10);
        if (strncasecmp(h, "transfer-encoding: chunked", 26) == 0) {
            const char *z = memmem(end + 4, len - hdr, "0\r\n\r\n", 5);

            return z ? (size_t)(z + 5 - buf) : 0;
        }
    }
    return hdr + body <= len ? hdr + body : 0;
}

static size_t publish_http_answers(publish_conn_t *c, const char *buf,
                                   size_t len)
{
    size_t used = 0, n;
    int status = 0;

    while ((n = publish_http_answer(buf + used, len - used, &status)) > 0) {
        used += n;
        c->busy = 0;
        if (status >= 200 && status < 300)
            c->p->st.acked++;
        else
            c->p->st.failed++;
    }
    return used;
}

static void publish_alloc_cb(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
    publish_conn_t *c = h->data;

    (void)hint;
    if (c->in_cap - c->in_len < 16384) {
        c->in_cap = c->in_cap ? c->in_cap * 2 : 65536;
        c->in = gw_realloc(c->in, c->in_cap);
    }
    *buf = uv_buf_init(c->in + c->in_len, (unsigned)(c->in_cap - c->in_len));
}

static void publish_read_cb(uv_stream_t *s, ssize_t nread, const uv_buf_t *b)
{
    publish_conn_t *c = s->data;
    publish_t *p = c->p;
    size_t used;

    (void)b;
    if (nread < 0) {
        p->st.broken = 1;
        c->up = 0;
        uv_read_stop(s);
        return;
    }
    c->in_len += (size_t)nread;
    used = p->conf.via == PUBLISH_REDIS
               ? publish_redis_replies(p, c->in, c->in_len)
               : publish_http_answers(c, c->in, c->in_len);
    memmove(c->in, c->in + used, c->in_len - used);
    c->in_len -= used;
}

/* ---- sending ---------------------------------------------------------- */

/* Notes when event n was published, for whoever shares the record. */
static void publish_note(publish_t *p, uint64_t n, uint64_t t_us)
{
    if (p->conf.record != NULL && n < p->conf.record_cap)
        __atomic_store_n(&p->conf.record[n], t_us, __ATOMIC_RELAXED);
}

static void publish_redis_batch(publish_t *p, uint64_t n, uint64_t now)
{
    size_t cap = n * ((p->conf.payload > 128 ? p->conf.payload : 128) +
                      PUBLISH_MAX_CHANNEL + 64);
    char *buf = gw_malloc(cap), body[PUBLISH_MAX_BODY];
    char channel[PUBLISH_MAX_CHANNEL];
    size_t o = 0;

    for (uint64_t i = 0; i < n; i++) {
        size_t blen, clen;

        publish_note(p, p->st.sent, now);
        clen = publish_channel(&p->conf, p->st.sent, channel, sizeof(channel));
        blen =
            publish_envelope(&p->conf, p->st.sent++, now, body, sizeof(body));
        o += (size_t)snprintf(buf + o, cap - o,
                              "*3\r\n$7\r\nPUBLISH\r\n$%zu\r\n%s\r\n$%zu\r\n",
                              clen, channel, blen);
        memcpy(buf + o, body, blen);
        memcpy(buf + o + blen, "\r\n", 2);
        o += blen + 2;
    }
    publish_send(&p->conns[0], buf, o);
    free(buf);
}

static void publish_http_one(publish_t *p, publish_conn_t *c, uint64_t now)
{
    char body[PUBLISH_MAX_BODY], req[PUBLISH_MAX_BODY + 512], path[160];
    uint64_t n = p->st.sent++;
    size_t blen = publish_envelope(&p->conf, n, now, body, sizeof(body));
    int hlen;

    publish_note(p, n, now);
    if (p->conf.by_guild)
        snprintf(path, sizeof(path), "%sg%llu", p->conf.path,
                 (unsigned long long)(p->conf.guild0 + n % p->conf.guilds));
    else
        snprintf(path, sizeof(path), "%s", p->conf.path);
    hlen = snprintf(req, sizeof(req),
                    "POST %s HTTP/1.1\r\nHost: %s:%d\r\nX-API-Key: %s\r\n"
                    "Content-Type: application/json\r\n"
                    "Content-Length: %zu\r\n\r\n",
                    path, p->conf.host, p->conf.port, p->conf.api_key, blen);
    memcpy(req + hlen, body, blen);
    c->busy = 1;
    publish_send(c, req, (size_t)hlen + blen);
}

/* Sends what is due by now; HTTP waits for a free connection, and the time
 * it waits is the lag. */
static void publish_tick_cb(uv_timer_t *t)
{
    publish_t *p = t->data;
    uint64_t now = util_now_us(), due, lag, next_due_us;

    if (!p->running)
        return;
    due = (uint64_t)(p->rate * (double)(now - p->t0) / 1e6) + 1;
    if (due > p->count)
        due = p->count;
    if (due <= p->st.sent)
        return;
    next_due_us = p->t0 + (uint64_t)((double)p->st.sent * 1e6 / p->rate);
    lag = now > next_due_us ? now - next_due_us : 0;
    if (lag > p->st.max_lag_us)
        p->st.max_lag_us = lag;
    if (p->conf.via == PUBLISH_REDIS) {
        publish_redis_batch(p, due - p->st.sent, now);
    } else {
        for (unsigned i = 0; i < p->nconns && p->st.sent < due; i++)
            if (p->conns[i].up && !p->conns[i].busy)
                publish_http_one(p, &p->conns[i], now);
    }
    if (p->st.sent >= p->count)
        p->running = 0;
}

/* ---- life ------------------------------------------------------------- */

static void publish_connect_cb(uv_connect_t *req, int status)
{
    publish_conn_t *c = req->data;

    if (status != 0) {
        c->p->st.broken = 1;
        return;
    }
    c->up = 1;
    uv_read_start((uv_stream_t *)&c->tcp, publish_alloc_cb, publish_read_cb);
}

publish_t *publish_new(uv_loop_t *loop, const publish_conf_t *conf)
{
    publish_t *p = gw_calloc(1, sizeof(*p));
    struct sockaddr_in sa;

    p->loop = loop;
    p->conf = *conf;
    uv_timer_init(loop, &p->tick);
    p->tick.data = p;
    if (conf->via == PUBLISH_AMQP) {
        p->amqp = rmqpub_new(conf);
        return p;
    }
    p->nconns = conf->via == PUBLISH_REDIS ? 1 : conf->conns;
    if (p->nconns == 0 || p->nconns > PUBLISH_MAX_CONNS)
        p->nconns = p->nconns ? PUBLISH_MAX_CONNS : 1;
    uv_ip4_addr(conf->host, conf->port, &sa);
    for (unsigned i = 0; i < p->nconns; i++) {
        publish_conn_t *c = &p->conns[i];

        c->p = p;
        uv_tcp_init(loop, &c->tcp);
        c->tcp.data = c;
        c->creq.data = c;
        uv_tcp_nodelay(&c->tcp, 1);
        if (uv_tcp_connect(&c->creq, &c->tcp, (const struct sockaddr *)&sa,
                           publish_connect_cb) != 0)
            p->st.broken = 1;
    }
    return p;
}

int publish_ready(publish_t *p)
{
    if (p->amqp != NULL)
        return rmqpub_ready(p->amqp);
    if (p->st.broken)
        return -1;
    for (unsigned i = 0; i < p->nconns; i++)
        if (!p->conns[i].up)
            return 0;
    return 1;
}

void publish_start(publish_t *p, double rate, uint64_t count)
{
    p->rate = rate > 0 ? rate : 1;
    p->count = count;
    p->t0 = util_now_us();
    if (p->amqp != NULL) {
        rmqpub_start(p->amqp, p->rate, count);
        return;
    }
    p->running = count > 0;
    uv_timer_start(&p->tick, publish_tick_cb, 0, PUBLISH_TICK_MS);
}

void publish_stop(publish_t *p)
{
    p->running = 0;
    p->count = p->st.sent;
}

int publish_done(publish_t *p)
{
    if (p->amqp != NULL)
        return rmqpub_done(p->amqp);
    if (p->st.broken)
        return 1;
    return !p->running && p->st.acked + p->st.failed >= p->st.sent;
}

const publish_stats_t *publish_stats(publish_t *p)
{
    /* The AMQP thread's figures are copied out under its lock. */
    if (p->amqp != NULL)
        rmqpub_stats(p->amqp, &p->st);
    return &p->st;
}

static void publish_close_cb(uv_handle_t *h)
{
    publish_t *p =
        h->type == UV_TIMER ? h->data : ((publish_conn_t *)h->data)->p;

    if (--p->closing > 0)
        return;
    for (unsigned i = 0; i < p->nconns; i++)
        free(p->conns[i].in);
    free(p);
}

void publish_free(publish_t *p)
{
    if (p->amqp != NULL) {
        rmqpub_free(p->amqp);
        p->amqp = NULL;
    }
    p->closing = p->nconns + 1;
    uv_close((uv_handle_t *)&p->tick, publish_close_cb);
    for (unsigned i = 0; i < p->nconns; i++)
        uv_close((uv_handle_t *)&p->conns[i].tcp, publish_close_cb);
}
