/*
 * One RESP connection to a Redis node on a libuv loop, for the Redis
 * Cluster link (gw/rcluster.h): commands out, replies in, in order.
 * hiredis does the protocol (redisFormatCommandArgv, redisReader); this
 * module only moves bytes.
 *
 * Why not hiredis's asynchronous API, as the single-node link uses: the
 * hiredis of the distributions (0.14) knows how SUBSCRIBE answers (one
 * reply per channel, then messages at any time) but not SSUBSCRIBE, which
 * answers the same way: it takes SSUBSCRIBE for a command of one reply,
 * and asserts (the process aborts) on the second reply of an SSUBSCRIBE of
 * two channels, or on the first smessage.
 *
 * A connection is of one of two kinds, chosen when it opens:
 *  - request: each command gets one reply, handed to that command's
 *    callback (CLUSTER SLOTS, SPUBLISH, GET);
 *  - push: every reply goes to the push hook, whichever command it
 *    answers, or none (a subscribed connection: confirmations, messages).
 *
 * What the commands of a loop turn queue is written once, just before the
 * loop polls (a uv_prepare handle): a turn's SSUBSCRIBEs leave in one
 * write, and a command never fails, nor calls back, from within
 * gw_resp_command.
 *
 * Closing is a flag and a later free (the handles' close callbacks),
 * harmless twice and allowed from within the connection's own callbacks;
 * after gw_resp_close no hook is called. A failure (a refused connect, the
 * server gone, a protocol error, AUTH refused) calls the closed hook once
 * and closes the connection itself: its owner forgets it there.
 */
#ifndef GW_RESP_H
#define GW_RESP_H

#include <hiredis/hiredis.h>
#include <stddef.h>
#include <uv.h>

typedef struct gw_resp gw_resp_t;

/* A command's reply (valid during the call), or NULL when the connection
 * closed first. Called exactly once per command, on the loop. */
typedef void (*gw_resp_reply_cb)(void *data, const redisReply *reply);

typedef struct gw_resp_hooks {
    /* The connection is established (queued commands leave now); may be
     * NULL. */
    void (*connected)(void *data);
    /* Every reply of a push connection; NULL makes a request connection. */
    void (*push)(void *data, const redisReply *reply);
    /* The connection failed, and is closed; why (for the log) is valid
     * during the call. */
    void (*closed)(void *data, const char *why);
    void *data; /* passed to each */
} gw_resp_hooks_t;

/*
 * Connects to host:port (an address, or a name resolved on libuv's thread
 * pool, its IPv4 address first), sending AUTH password first when password
 * is not empty (a refusal is a failure). Commands may be queued at once.
 * Returns the connection; or NULL with *why (a static string) when the
 * attempt cannot even start. hooks are copied; host and password are
 * read during the call.
 */
gw_resp_t *gw_resp_open(uv_loop_t *loop, const char *host, int port,
                        const char *password, const gw_resp_hooks_t *hooks,
                        const char **why);

/*
 * Queues a command of argc arguments (argv[i] of lens[i] bytes, copied).
 * On a request connection cb answers it (with data); on a push connection
 * cb must be NULL. Returns 0, or GW_ECLOSED once the connection is closing
 * (cb is then not called).
 */
int gw_resp_command(gw_resp_t *r, int argc, const char **argv,
                    const size_t *lens, gw_resp_reply_cb cb, void *data);

/* Commands of a request connection not yet answered. */
size_t gw_resp_pending(const gw_resp_t *r);

/*
 * Closes the connection: each command not yet answered has its callback
 * called with NULL, here, then no hook is called again. The memory is
 * freed by the close callbacks (and a host lookup in flight), so the loop
 * must run on; r must not be used afterwards.
 */
void gw_resp_close(gw_resp_t *r);

#endif
