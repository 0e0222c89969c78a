/*
 * A WebSocket client (RFC 6455) over a connection of net.c: the opening
 * handshake (its 101 read by httpc's parser, the Sec-WebSocket-Accept
 * checked), then wslay's event API for framing, masking, pings and the
 * closing handshake. Text messages only: the gateway's protocol is text.
 *
 * Lifetime as net.c's: on_close is called once, never from inside a call
 * into this module, and the client is freed right after it.
 */
#ifndef CTL_WSC_H
#define CTL_WSC_H

#include "tlsc.h"
#include "url.h"

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

typedef struct ctl_wsc ctl_wsc_t;

typedef struct ctl_wsc_hooks {
    /* The upgrade succeeded: messages may be sent. */
    void (*on_open)(void *data);
    /* One text message, borrowed for the call. */
    void (*on_message)(void *data, const char *text, size_t len);
    /*
     * The end. status: 0 once the connection was open, else why it never
     * opened (a GW_E* of net.c, or GW_EINVAL when the server answered the
     * upgrade with http_status). code: the close code the server sent, or
     * 1006 when none came. why: words for a message.
     */
    void (*on_close)(void *data, int status, int http_status, unsigned code,
                     const char *why);
} ctl_wsc_hooks_t;

/* Connects and upgrades; hooks and opts->ca_file are borrowed until
 * on_close. */
ctl_wsc_t *ctl_wsc_open(uv_loop_t *loop, const ctl_url_t *u,
                        const ctl_tls_opts_t *opts, uint32_t timeout_ms,
                        const ctl_wsc_hooks_t *hooks, void *data);

/* Sends a text message: 0, or GW_ECLOSED when not open. */
int ctl_wsc_send(ctl_wsc_t *w, const char *text, size_t len);

/* Starts the closing handshake with code (1000: done), waiting a moment
 * for the server's answer; before the upgrade, just disconnects. Harmless
 * twice. */
void ctl_wsc_close(ctl_wsc_t *w, unsigned code);

#endif
