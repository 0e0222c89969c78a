/*
 * One loop's io_uring, for writing: sends queued during a loop turn go to
 * the kernel in one submission, and their completions are reaped on the
 * loop (the ring's fd is polled) and handed, one by one, to the callback
 * the ring's owner installed. Nothing here knows what a send belongs to:
 * the owner names it with a user_data that is never 0.
 *
 * What the operations go to is a backend: the kernel's ring (liburing), or
 * a test's fake, so that the owner's completion handling can be driven
 * without a kernel (test/unit/test_uring.c). One thread only.
 */
#ifndef GW_URING_H
#define GW_URING_H

#include "gw/stats.h"

#include <stdint.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <uv.h>

typedef struct gw_uring gw_uring_t;

/* Buffers in one send, and sends queued before a submission is forced:
 * GW_URING_BATCH, or GW_URING_BATCH_MIN when each has GW_URING_IOV
 * buffers (the batch's buffers are counted too). */
#define GW_URING_IOV 64
#define GW_URING_BATCH 1024
#define GW_URING_BATCH_MIN 64

/* What the kernel answered for one operation. */
typedef struct gw_uring_cqe {
    uint64_t user_data;
    int32_t res; /* bytes sent, or -errno */
} gw_uring_cqe_t;

/*
 * Where operations go. msg, and the buffers it describes, stay valid until
 * the next submit returns (the kernel copies them then); the bytes they
 * point to stay valid until the operation's completion.
 */
typedef struct gw_uring_backend {
    /* Queues a send of msg on fd: 0, or GW_EFULL when the submission
     * queue has no room (the caller submits, then tries again). */
    int (*sendmsg)(void *ctx, int fd, const struct msghdr *msg,
                   uint64_t user_data);
    /* Queues the cancellation of every operation with user_data, or of
     * every operation at all when user_data is 0. Same answer. */
    int (*cancel)(void *ctx, uint64_t user_data);
    /* Hands what is queued to the kernel: the count, or -errno. */
    int (*submit)(void *ctx);
    /* Takes up to max completions that are ready, without waiting. */
    unsigned (*peek)(void *ctx, gw_uring_cqe_t *out, unsigned max);
    /* Waits until a completion is ready: 0 or -errno. */
    int (*wait)(void *ctx);
    /* The fd that is readable while completions are ready, or -1. */
    int (*fd)(void *ctx);
    void (*free)(void *ctx);
} gw_uring_backend_t;

/* A completion of the owner's operation user_data, res as the kernel's. */
typedef void (*gw_uring_done_cb)(void *data, uint64_t user_data, int32_t res);

/*
 * Whether this kernel lets the process use io_uring (kernel version,
 * seccomp, /proc/sys/kernel/io_uring_disabled): 0, or a libuv-style
 * negative errno with the reason written into why (len bytes).
 */
int gw_uring_probe(char *why, size_t len);

/*
 * A ring on loop, its completions handed to done(data, ...). backend NULL:
 * the kernel's (ctx ignored); otherwise the ring takes ctx, freed by
 * backend->free. Returns the ring, or NULL with *err a negative errno when
 * the kernel refuses one.
 */
gw_uring_t *gw_uring_new(uv_loop_t *loop, gw_stats_t *stats,
                         const gw_uring_backend_t *backend, void *ctx,
                         gw_uring_done_cb done, void *data, int *err);

/*
 * The buffers of the next send, GW_URING_IOV of them, to fill before
 * gw_uring_send. Submits the turn's batch first when it is full; a kernel
 * that refuses that submission is fatal (logged, abort), as the owner's
 * output would otherwise stop unseen.
 */
struct iovec *gw_uring_iov(gw_uring_t *u);

/* Queues a send on fd of the first n buffers gw_uring_iov gave. */
void gw_uring_send(gw_uring_t *u, int fd, unsigned n, uint64_t user_data);

/* Queues the cancellation of operation user_data (its completion, with
 * -ECANCELED or what it did before, still comes). */
void gw_uring_cancel(gw_uring_t *u, uint64_t user_data);

/* Hands the turn's queue to the kernel in one submission (none if empty). */
void gw_uring_submit(gw_uring_t *u);

/* Hands every completion ready now to the owner's callback. */
void gw_uring_reap(gw_uring_t *u);

/* Operations submitted or queued whose completion has not been reaped. */
unsigned gw_uring_inflight(const gw_uring_t *u);

/*
 * The loop stops: what is queued is submitted, what does not complete at
 * once is cancelled, and every completion is waited for and reaped, so that
 * nothing of the owner's is left in the kernel's hands.
 */
void gw_uring_drain(gw_uring_t *u);

/* Frees the ring (drained first); its poll handle closes on the loop,
 * which frees the rest in the close callback. */
void gw_uring_free(gw_uring_t *u);

#endif
