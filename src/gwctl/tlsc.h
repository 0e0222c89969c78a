/*
 * The client side of TLS for wss:// and https://, with mbedtls, over
 * memory: the connection (net.c) feeds what it read and sends what this
 * module leaves to send, so that TLS never touches a socket. The
 * certificate is checked by default, against the system's CA bundle or a
 * given file, for the name (DNS) or address (IP) that was dialled.
 */
#ifndef CTL_TLSC_H
#define CTL_TLSC_H

#include <stddef.h>
#include <sys/types.h>

/* Debian's bundle of the system's trusted certificates. */
#define CTL_TLSC_SYSTEM_CA "/etc/ssl/certs/ca-certificates.crt"

typedef struct ctl_tls_opts {
    int insecure;        /* no certificate check at all */
    const char *ca_file; /* PEM certificates to trust; NULL = the system's */
} ctl_tls_opts_t;

typedef struct ctl_tlsc ctl_tlsc_t;

/* A client for host (name or address literal), or NULL with why in err
 * (the CA file does not load). */
ctl_tlsc_t *ctl_tlsc_new(const char *host, const ctl_tls_opts_t *opts,
                         char *err, size_t errlen);
void ctl_tlsc_free(ctl_tlsc_t *t);

/* Takes bytes read from the peer (copied). */
void ctl_tlsc_feed(ctl_tlsc_t *t, const char *buf, size_t len);

/* Advances the handshake: 0 once done, GW_EAGAIN while it needs more
 * input, or GW_EAUTH (certificate refused) / GW_EIO with why in err. */
int ctl_tlsc_handshake(ctl_tlsc_t *t, char *err, size_t errlen);

/* Decrypts into buf: the byte count, 0 when the peer closed (close_notify),
 * GW_EAGAIN when more input is needed, or GW_EIO with why in err. */
ssize_t ctl_tlsc_read(ctl_tlsc_t *t, char *buf, size_t cap, char *err,
                      size_t errlen);

/* Encrypts len bytes for the peer: 0, or GW_EIO with why in err. */
int ctl_tlsc_write(ctl_tlsc_t *t, const char *buf, size_t len, char *err,
                   size_t errlen);

/* Queues the close_notify alert. */
void ctl_tlsc_close_notify(ctl_tlsc_t *t);

/* Hands over the bytes to send (heap, the caller frees them; NULL when
 * there are none). */
char *ctl_tlsc_take_output(ctl_tlsc_t *t, size_t *len);

#endif
