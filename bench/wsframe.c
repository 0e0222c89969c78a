#include "wsframe.h"

#include <stdlib.h>
#include <string.h>
#include <wslay/wslay.h>

#include "gw/alloc.h"
#include "util.h"

/*
 * How many bytes the frame starting at buf needs to be known further: the
 * first two bytes, then the whole header, then header plus payload. Equal to
 * len (or less) once buf holds the whole frame. Refuses a frame longer than
 * max_len as soon as its length is known.
 */
static ssize_t wsframe_need(const uint8_t *buf, size_t len, size_t max_len)
{
    size_t hdr, n7, plen = 0;

    if (len < 2)
        return 2;
    n7 = buf[1] & 0x7fu;
    hdr = 2 + (n7 == 126 ? 2 : n7 == 127 ? 8 : 0) + (buf[1] & 0x80u ? 4 : 0);
    if (len < hdr)
        return (ssize_t)hdr;
    if (n7 < 126)
        plen = n7;
    for (size_t i = 0; n7 >= 126 && i < (n7 == 126 ? 2u : 8u); i++)
        plen = plen << 8 | buf[2 + i];
    if (plen > max_len)
        return WSFRAME_ERR_TOO_BIG;
    return (ssize_t)(hdr + plen);
}

static int wsframe_check(unsigned b0, unsigned b1, size_t plen)
{
    unsigned op = b0 & 0xfu;

    if (b1 & 0x80u)
        return WSFRAME_ERR_MASKED;
    if (b0 & 0x70u)
        return WSFRAME_ERR_RSV;
    if ((op > WSFRAME_BINARY && op < WSFRAME_CLOSE) || op > WSFRAME_PONG)
        return WSFRAME_ERR_OPCODE;
    if ((op & 0x8u) && (!(b0 & 0x80u) || plen > 125))
        return WSFRAME_ERR_CONTROL;
    return 0;
}

ssize_t wsframe_parse(const uint8_t *buf, size_t len, size_t max_len,
                      wsframe_t *f)
{
    ssize_t need = wsframe_need(buf, len, max_len);
    size_t n7, hdr;
    int rc;

    if (need < 0)
        return need;
    if ((size_t)need > len)
        return 0;
    n7 = buf[1] & 0x7fu;
    hdr = 2 + (n7 == 126 ? 2 : n7 == 127 ? 8 : 0);
    if ((rc = wsframe_check(buf[0], buf[1], (size_t)need - hdr)) != 0)
        return rc;
    f->fin = buf[0] >> 7;
    f->opcode = buf[0] & 0xfu;
    f->payload = buf + hdr;
    f->len = (size_t)need - hdr;
    return need;
}

void wsframe_reader_init(wsframe_reader_t *r)
{
    memset(r, 0, sizeof(*r));
}

void wsframe_reader_reset(wsframe_reader_t *r)
{
    free(r->tail);
    free(r->msg);
    wsframe_reader_init(r);
}

/* Appends to a growable buffer. */
static void wsframe_append(uint8_t **buf, size_t *len, size_t *cap,
                           const uint8_t *data, size_t n)
{
    if (*len + n > *cap) {
        *cap = *len + n < 256 ? 256 : (*len + n) * 2;
        *buf = gw_realloc(*buf, *cap);
    }
    memcpy(*buf + *len, data, n);
    *len += n;
}

/* Joins a data frame into the message being assembled, or delivers it. */
static int wsframe_data(wsframe_reader_t *r, const wsframe_t *f, size_t max_len,
                        wsframe_msg_cb cb, void *ud)
{
    int rc;

    if (f->opcode != WSFRAME_CONT) {
        if (r->msg_opcode != 0)
            return WSFRAME_ERR_SEQUENCE;
        if (f->fin)
            return cb(ud, f->opcode, f->payload, f->len);
        r->msg_opcode = f->opcode;
    } else if (r->msg_opcode == 0) {
        return WSFRAME_ERR_SEQUENCE;
    }
    if (r->msg_len + f->len > max_len)
        return WSFRAME_ERR_TOO_BIG;
    wsframe_append(&r->msg, &r->msg_len, &r->msg_cap, f->payload, f->len);
    if (!f->fin)
        return 0;
    rc = cb(ud, r->msg_opcode, r->msg, r->msg_len);
    free(r->msg);
    r->msg = NULL;
    r->msg_len = r->msg_cap = 0;
    r->msg_opcode = 0;
    return rc;
}

static int wsframe_dispatch(wsframe_reader_t *r, const wsframe_t *f,
                            size_t max_len, wsframe_msg_cb cb, void *ud)
{
    if (f->opcode & 0x8u)
        return cb(ud, f->opcode, f->payload, f->len);
    return wsframe_data(r, f, max_len, cb, ud);
}

/*
 * Completes the frame kept in the tail with as few bytes of data as it
 * needs, so that whatever follows is parsed in place. Returns the bytes of
 * data used, or an error.
 */
static ssize_t wsframe_finish_tail(wsframe_reader_t *r, const uint8_t *data,
                                   size_t len, size_t max_len,
                                   wsframe_msg_cb cb, void *ud)
{
    size_t used = 0, take;
    ssize_t need, n;
    wsframe_t f;
    int rc;

    while (r->tail_len > 0) {
        need = wsframe_need(r->tail, r->tail_len, max_len);
        if (need < 0)
            return need;
        if ((size_t)need > r->tail_len) {
            take = (size_t)need - r->tail_len;
            if (take > len - used)
                take = len - used;
            if (take == 0)
                break;
            wsframe_append(&r->tail, &r->tail_len, &r->tail_cap, data + used,
                           take);
            used += take;
            continue;
        }
        n = wsframe_parse(r->tail, r->tail_len, max_len, &f);
        if (n < 0)
            return n;
        rc = wsframe_dispatch(r, &f, max_len, cb, ud);
        free(r->tail);
        r->tail = NULL;
        r->tail_len = r->tail_cap = 0;
        if (rc != 0)
            return rc;
    }
    return (ssize_t)used;
}

int wsframe_reader_feed(wsframe_reader_t *r, const uint8_t *data, size_t len,
                        size_t max_len, wsframe_msg_cb cb, void *ud)
{
    ssize_t n = wsframe_finish_tail(r, data, len, max_len, cb, ud);
    wsframe_t f;
    int rc;

    if (n < 0)
        return (int)n;
    data += n;
    len -= (size_t)n;
    while (len > 0) {
        n = wsframe_parse(data, len, max_len, &f);
        if (n < 0)
            return (int)n;
        if (n == 0) {
            wsframe_append(&r->tail, &r->tail_len, &r->tail_cap, data, len);
            return 0;
        }
        if ((rc = wsframe_dispatch(r, &f, max_len, cb, ud)) != 0)
            return rc;
        data += n;
        len -= (size_t)n;
    }
    return 0;
}

struct wsframe_enc {
    wslay_frame_context_ptr ctx;
    uint8_t *out;   /* where the frame being encoded goes */
    size_t out_len; /* bytes written there so far */
    uint64_t rng;   /* xorshift64 state of the mask generator */
};

static ssize_t wsframe_enc_send_cb(const uint8_t *data, size_t len, int flags,
                                   void *ud)
{
    wsframe_enc_t *e = ud;

    (void)flags;
    memcpy(e->out + e->out_len, data, len);
    e->out_len += len;
    return (ssize_t)len;
}

/* Masks only need to be unpredictable to intermediaries, which loopback has
 * none of; a fast generator keeps the client cheap. */
static int wsframe_enc_genmask_cb(uint8_t *buf, size_t len, void *ud)
{
    wsframe_enc_t *e = ud;

    for (size_t i = 0; i < len; i++) {
        e->rng ^= e->rng << 13;
        e->rng ^= e->rng >> 7;
        e->rng ^= e->rng << 17;
        buf[i] = (uint8_t)(e->rng >> 24);
    }
    return 0;
}

wsframe_enc_t *wsframe_enc_new(uint64_t seed)
{
    static const struct wslay_frame_callbacks cbs = {
        .send_callback = wsframe_enc_send_cb,
        .genmask_callback = wsframe_enc_genmask_cb,
    };
    wsframe_enc_t *e = gw_calloc(1, sizeof(*e));

    e->rng = seed ? seed : 0x9e3779b97f4a7c15ull;
    if (wslay_frame_context_init(&e->ctx, &cbs, e) != 0)
        util_die("wslay_frame_context_init: out of memory");
    return e;
}

void wsframe_enc_free(wsframe_enc_t *e)
{
    if (e == NULL)
        return;
    wslay_frame_context_free(e->ctx);
    free(e);
}

ssize_t wsframe_encode(wsframe_enc_t *e, unsigned opcode,
                       const uint8_t *payload, size_t len, uint8_t *out)
{
    struct wslay_frame_iocb iocb = {
        .fin = 1,
        .opcode = (uint8_t)opcode,
        .payload_length = len,
        .mask = 1,
        .data = payload,
        .data_length = len,
    };

    e->out = out;
    e->out_len = 0;
    /* In memory the send callback takes everything, so one call always
     * finishes the frame and leaves the context ready for the next. */
    if (wslay_frame_send(e->ctx, &iocb) < 0)
        return -1;
    return (ssize_t)e->out_len;
}
