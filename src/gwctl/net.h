/*
 * One client connection of gwctl on a libuv loop: resolve, connect (each
 * address in turn), TLS when the URL asks for it (tlsc.c), then bytes
 * both ways. The layer above (HTTP, WebSocket) hears from it only through
 * the hooks it installs, as the daemon's layers do.
 *
 * Lifetime, as libuv's: the connection is freed after its last handle
 * closed, right after on_close, which is called exactly once and never
 * from inside a call into this module.
 */
#ifndef CTL_NET_H
#define CTL_NET_H

#include "tlsc.h"
#include "url.h"

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

typedef struct ctl_net ctl_net_t;

typedef struct ctl_net_hooks {
    /* Connected, and for TLS the handshake done and the certificate
     * accepted: writes may start. */
    void (*on_open)(void *data);
    /* Bytes from the peer, decrypted; borrowed for the call. */
    void (*on_data)(void *data, const char *buf, size_t len);
    /* The end: status 0 when closed by ctl_net_close or by the peer in
     * order, else a GW_E* code (GW_EAUTH: the certificate was refused);
     * why says what happened, for a message. */
    void (*on_close)(void *data, int status, const char *why);
} ctl_net_hooks_t;

/*
 * Starts connecting to u (tls from u->tls, with opts); timeout_ms bounds
 * each stage before the connection opens. Failures arrive in on_close.
 * opts->ca_file and hooks are borrowed until on_close.
 */
ctl_net_t *ctl_net_open(uv_loop_t *loop, const ctl_url_t *u,
                        const ctl_tls_opts_t *opts, uint32_t timeout_ms,
                        const ctl_net_hooks_t *hooks, void *data);

/* Sends len bytes (copied): 0, or GW_ECLOSED when not open. */
int ctl_net_write(ctl_net_t *n, const void *buf, size_t len);

/* Ends the connection: what was written goes first (for a short while at
 * most), then on_close(0) unless something failed before. Harmless twice
 * and on a connection that is still connecting. */
void ctl_net_close(ctl_net_t *n);

#endif
