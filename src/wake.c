#include "gw/wake.h"

#include <errno.h>
#include <stdint.h>
#include <sys/eventfd.h>
#include <unistd.h>

static void wake_poll_cb(uv_poll_t *h, int status, int events)
{
    gw_wake_t *w = (gw_wake_t *)h;
    uint64_t count;

    (void)events;
    /* libuv stops a poll handle on an error; an eventfd has none to report,
     * but a stopped wake-up would stall its consumer for good. */
    if (status < 0)
        uv_poll_start(h, UV_READABLE, wake_poll_cb);
    /* Read first, then clear: a signal after the clear writes again. */
    while (read(w->fd, &count, sizeof(count)) < 0 && errno == EINTR)
        ;
    atomic_exchange_explicit(&w->pending, 0, memory_order_acq_rel);
    w->cb(w);
}

int gw_wake_init(uv_loop_t *loop, gw_wake_t *w, gw_wake_cb cb, void *data)
{
    int rc;

    w->fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (w->fd < 0)
        return uv_translate_sys_error(errno);
    atomic_init(&w->pending, 0);
    w->cb = cb;
    w->data = data;
    if ((rc = uv_poll_init(loop, &w->poll, w->fd)) != 0)
        goto Error;
    if ((rc = uv_poll_start(&w->poll, UV_READABLE, wake_poll_cb)) != 0) {
        uv_close((uv_handle_t *)&w->poll, NULL);
        goto Error;
    }
    return 0;
Error:
    close(w->fd);
    w->fd = -1;
    return rc;
}

void gw_wake_signal(gw_wake_t *w)
{
    uint64_t one = 1;

    if (atomic_exchange_explicit(&w->pending, 1, memory_order_acq_rel) != 0)
        return;
    /* Only EAGAIN (the counter at its maximum, a wake-up already due) or
     * EINTR can fail a write to an eventfd. */
    while (write(w->fd, &one, sizeof(one)) < 0 && errno == EINTR)
        ;
}

void gw_wake_close(gw_wake_t *w, uv_close_cb close_cb)
{
    if (!uv_is_closing((uv_handle_t *)&w->poll))
        uv_close((uv_handle_t *)&w->poll, close_cb);
}

void gw_wake_free(gw_wake_t *w)
{
    if (w->fd >= 0)
        close(w->fd);
    w->fd = -1;
}
