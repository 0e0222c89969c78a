#include "gw/redisuv.h"

#include "gw/alloc.h"
#include "gw/error.h"

#include <stdlib.h>

typedef struct redisuv {
    uv_poll_t poll;        /* poll.data = this */
    redisAsyncContext *ac; /* NULL once hiredis has let go */
    int want;              /* UV_READABLE | UV_WRITABLE, as hiredis asks */
    int polling;           /* the events the poll runs with; 0 = stopped */
} redisuv_t;

static void redisuv_poll_cb(uv_poll_t *h, int status, int events)
{
    redisuv_t *w = h->data;

    /* libuv has stopped the poll. hiredis learns of the error by reading
     * or writing as it asked to, and then disconnects. */
    if (status < 0) {
        w->polling = 0;
        events = w->want;
    }
    if (w->ac != NULL && (events & UV_READABLE))
        redisAsyncHandleRead(w->ac);
    /* The read may have freed the context, which cleared w->ac. */
    if (w->ac != NULL && (events & UV_WRITABLE))
        redisAsyncHandleWrite(w->ac);
}

/* Touches the poll only when the wanted events changed. */
static void redisuv_update(redisuv_t *w)
{
    if (w->want == w->polling)
        return;
    /* Neither fails for a valid socket no other handle polls. */
    if (w->want == 0)
        uv_poll_stop(&w->poll);
    else
        uv_poll_start(&w->poll, w->want, redisuv_poll_cb);
    w->polling = w->want;
}

/* hiredis's four hooks: add or remove interest in one direction. */
static void redisuv_want(void *data, int events, int on)
{
    redisuv_t *w = data;

    w->want = on ? w->want | events : w->want & ~events;
    redisuv_update(w);
}

static void redisuv_add_read(void *data)
{
    redisuv_want(data, UV_READABLE, 1);
}

static void redisuv_del_read(void *data)
{
    redisuv_want(data, UV_READABLE, 0);
}

static void redisuv_add_write(void *data)
{
    redisuv_want(data, UV_WRITABLE, 1);
}

static void redisuv_del_write(void *data)
{
    redisuv_want(data, UV_WRITABLE, 0);
}

static void redisuv_close_cb(uv_handle_t *h)
{
    free(h->data);
}

/* hiredis is freeing the context; it may be inside our poll callback. */
static void redisuv_cleanup(void *data)
{
    redisuv_t *w = data;

    w->ac = NULL;
    uv_close((uv_handle_t *)&w->poll, redisuv_close_cb);
}

int gw_redisuv_attach(redisAsyncContext *ac, uv_loop_t *loop)
{
    redisuv_t *w = gw_calloc(1, sizeof(*w));

    if (uv_poll_init(loop, &w->poll, ac->c.fd) != 0) {
        free(w);
        return GW_EIO;
    }
    w->poll.data = w;
    w->ac = ac;
    ac->ev.data = w;
    ac->ev.addRead = redisuv_add_read;
    ac->ev.delRead = redisuv_del_read;
    ac->ev.addWrite = redisuv_add_write;
    ac->ev.delWrite = redisuv_del_write;
    ac->ev.cleanup = redisuv_cleanup;
    return 0;
}
