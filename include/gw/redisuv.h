/*
 * hiredis's event hooks on a libuv loop: one uv_poll_t per connection.
 *
 * In place of the adapter hiredis 0.14 ships as a header of static
 * functions, which has two faults. It drops a poll error (fixed upstream in
 * hiredis 1.0.0), after libuv has stopped the poll, so a refused connect or
 * a reset connection went unnoticed. And it restarts the poll each time
 * hiredis re-arms reading, which is after every read: two epoll_ctl calls
 * per wake-up of the broker thread, measured at about 1,300 a second while
 * 1,000 events a second came through Redis (bench/README.md).
 */
#ifndef GW_REDISUV_H
#define GW_REDISUV_H

#include <hiredis/async.h>
#include <uv.h>

/*
 * Watches ac's socket on loop. hiredis owns the watcher from here on: its
 * cleanup hook, run when the context is freed, closes the poll handle,
 * whose close callback frees the watcher. Returns 0, or GW_EIO when the
 * socket cannot be watched (ac is then left as it was).
 */
int gw_redisuv_attach(redisAsyncContext *ac, uv_loop_t *loop);

#endif
