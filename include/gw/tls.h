/*
 * TLS: the transport ops that run mbedtls's ssl module over a non-blocking
 * socket, driven from the worker's loop, beneath the WebSocket layer.
 *
 * What is shared and what is not. mbedtls's RSA private operation holds
 * the key's mutex for its whole length, and an ssl configuration has one
 * random generator; so each worker gets its own copy of the key, its own
 * configuration and its own CTR_DRBG, and no two workers' handshakes wait
 * for each other. The certificate chain is parsed once per pair and read
 * by all. The session ticket keys are the process's (a client that
 * reconnects is hashed onto any worker), behind the ticket module's own
 * mutex and generator. The entropy source is shared: it has its own
 * mutex, and is drawn from only to seed and reseed the generators.
 *
 * The certificates, once loaded, are a generation: the default pair
 * (tls.cert_file, tls.key_file) and those of tls.sni_certs, which a
 * client's SNI selects by the DNS names each certificate holds. SIGHUP
 * loads them all again as a new generation, which new handshakes use; a
 * connection keeps the one it was made with. Generations are kept until
 * exit, as configuration snapshots are (reloads are rare; each is a few
 * kilobytes per certificate and worker).
 */
#ifndef GW_TLS_H
#define GW_TLS_H

#include "gw/config.h"
#include "gw/log.h"
#include "gw/transport.h"

#include <stdatomic.h>

typedef struct gw_tls gw_tls_t;
typedef struct gw_tls_pair gw_tls_pair_t;

/* A worker's share of TLS: what its transport loop's ops_data points to.
 * One thread only. */
typedef struct gw_tls_loop {
    gw_tls_t *tls;       /* borrowed: the process's */
    unsigned worker;     /* this loop's slot in every pair */
    uint8_t *stage;      /* owned: plaintext of the record being built */
    gw_log_limit_t log;  /* failed handshakes, rate-limited */
    uint64_t budget_ns;  /* tls.handshake_us_per_turn; 0 = no cap */
    uint64_t spent_ns;   /* on handshakes in loop turn `turn` */
    uint64_t turn;       /* the transport loop's turn it was counted in */
    uint64_t release_ms; /* tls.buffer_release_ms */
    /* This loop's open sessions whose record buffers are still whole, in
     * the order they are due (tls.c's tls_conn), linked through them. */
    struct tls_conn *due_head, *due_tail;
} gw_tls_loop_t;

/*
 * Loads the pair that cfg's tls.cert_file and tls.key_file name (the key
 * decrypted with tls.key_password when it is encrypted), checks that they
 * match, then each pair of tls.sni_certs likewise (the same password;
 * each certificate must name a DNS host), and builds the ssl
 * configurations of `workers` workers. Returns the process's TLS state,
 * or NULL with the reason in err.
 */
gw_tls_t *gw_tls_new(const gw_config_t *cfg, unsigned workers, char *err,
                     size_t errlen);

/*
 * SIGHUP: loads the pairs cfg names as a new generation, which handshakes
 * begun from now on use. Returns 0, or a negative gw_err_t with the reason
 * in err and nothing changed. Main thread.
 */
int gw_tls_reload(gw_tls_t *tls, const gw_config_t *cfg, char *err,
                  size_t errlen);

/* Frees everything, every generation with it: the workers are gone. */
void gw_tls_free(gw_tls_t *tls);

/* Prepares worker `worker`'s share; the stage buffer is allocated here.
 * Its handshakes take no new step in a loop turn once they have spent
 * tls.handshake_us_per_turn in it (a turn ends at each
 * gw_transport_loop_flush). */
void gw_tls_loop_init(gw_tls_loop_t *tl, gw_tls_t *tls, unsigned worker);

/*
 * Called from the worker's tick (now: its loop's time, ms): the sessions
 * of this loop that have been open tls.buffer_release_ms give their record
 * buffers' pages back to the kernel, unless a record is half read or
 * written in them, which puts theirs off to a later tick. Counted in
 * tls_buffers_released.
 */
void gw_tls_loop_tick(gw_tls_loop_t *tl, uint64_t now);

/* Frees the worker's share; its connections are gone. */
void gw_tls_loop_free(gw_tls_loop_t *tl);

/*
 * Adopts an accepted non-blocking socket as a TLS transport of l, whose
 * ops_data is a gw_tls_loop_t: the handshake runs from the socket's
 * reads, and the layer above sees only the plaintext. Same contract as
 * gw_transport_init. Once the handshake is done, the connection may move
 * to another worker's loop: gw_transport_detach gives its session up with
 * the socket, and gw_transport_adopt there carries on with it, on that
 * worker's configuration of the same pair.
 */
int gw_tls_open(gw_transport_t *t, gw_transport_loop_t *l, int fd);

#endif
