/*
 * The client side of TLS (wss://) for the simulated clients: mbedtls 2.28's
 * ssl module over bytes the client loop reads from its socket and writes
 * to it, never blocking and never touching the socket itself. The loop
 * hands each read to tlsclient_input(), which runs the handshake and then
 * decrypts records into plaintext; what mbedtls sends goes out through the
 * send callback, which takes every byte (queueing what the socket does not
 * take), so mbedtls never waits for room.
 *
 * What a browser would offer: TLS 1.2, ECDHE (X25519, P-256, P-384) with
 * the AEAD suites, ALPN http/1.1, session tickets. The server's
 * certificate is not verified: the generator measures the server, and a
 * check would add the client's own signature verification to every
 * handshake (mbedtls's ECDSA verify costs three times its sign).
 *
 * A session can be saved once the handshake is done and offered by a later
 * connection (its ticket): the server then resumes it with an abbreviated
 * handshake, or refuses and runs a full one; tlsclient_resumed() says
 * which happened.
 */
#ifndef BENCH_TLSCLIENT_H
#define BENCH_TLSCLIENT_H

#include <stddef.h>
#include <stdint.h>

/* What a connection tells its owner; ud is the connection's. */
typedef struct tlsclient_cb {
    /* Wire bytes to write: 0 when all were taken (written or queued), or
     * a negative error, which fails the connection. */
    int (*send)(void *ud, const uint8_t *data, size_t len);
    /* The handshake is done: plaintext may be written from now on.
     * Returns nonzero when the owner is closing the connection. */
    int (*open)(void *ud);
    /* Plaintext from the server, valid during the call. Returns nonzero
     * when the owner is closing the connection: no more is read. */
    int (*data)(void *ud, const uint8_t *data, size_t len);
} tlsclient_cb_t;

/* The settings, random generator and plaintext buffer of one client loop
 * (one thread). */
typedef struct tlsclient_conf tlsclient_conf_t;

/* One connection's TLS state. */
typedef struct tlsclient tlsclient_t;

/* A saved session, with its ticket. */
typedef struct tlsclient_session tlsclient_session_t;

/* Results of tlsclient_input(). */
#define TLSCLIENT_OK 0        /* everything given was consumed */
#define TLSCLIENT_CLOSED 1    /* the server ended the session (close_notify) */
#define TLSCLIENT_FAILED (-1) /* a handshake refused, a bad record */

/* A loop's settings, its generator seeded from the system's entropy and
 * seed (which tells loops apart). cb: the callbacks of every connection
 * made with it (borrowed, static). */
tlsclient_conf_t *tlsclient_conf_new(const tlsclient_cb_t *cb, uint64_t seed);

void tlsclient_conf_free(tlsclient_conf_t *tc);

/* A connection over a socket just connected, its ClientHello sent through
 * cb->send. offer: a saved session to resume (copied), or NULL. Returns
 * NULL when mbedtls refuses to start (out of memory, a send that failed). */
tlsclient_t *tlsclient_new(tlsclient_conf_t *tc,
                           const tlsclient_session_t *offer, void *ud);

/* Frees a connection; its socket is the owner's. */
void tlsclient_free(tlsclient_t *t);

/*
 * Bytes read from the socket, any split: the handshake goes on (open is
 * called once it is done), then records are decrypted and their plaintext
 * handed to data. Every byte is consumed (mbedtls keeps an unfinished
 * record), unless a callback says the owner is closing. Returns a
 * TLSCLIENT_* result.
 */
int tlsclient_input(tlsclient_t *t, const uint8_t *data, size_t len);

/* Encrypts len bytes into records and sends them. Only once open. Returns 0
 * or TLSCLIENT_FAILED. */
int tlsclient_write(tlsclient_t *t, const uint8_t *data, size_t len);

/* Once open: 1 when the server resumed the session offered, 0 when it ran
 * a full handshake. */
int tlsclient_resumed(const tlsclient_t *t);

/* Once open: saves the session (with the ticket the server issued, if any)
 * into *s, allocated on first use, replacing what it held. Returns 0, or
 * TLSCLIENT_FAILED when there is none to save. */
int tlsclient_save(const tlsclient_t *t, tlsclient_session_t **s);

/* Frees a saved session; NULL is fine. */
void tlsclient_session_free(tlsclient_session_t *s);

#endif
