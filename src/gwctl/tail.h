/*
 * gwctl tail: a client of the gateway that prints what it is sent. It
 * identifies with a token it signs, answers heartbeats, refreshes the token
 * before it expires, prints each dispatch as one line, and reconnects with
 * backoff until Ctrl-C (or --count dispatches). The verdict on a close and
 * the line of a dispatch are pure, for the unit tests.
 */
#ifndef CTL_TAIL_H
#define CTL_TAIL_H

#include "args.h"

#include "gw/buf.h"

#include <cjson/cJSON.h>

extern const ctl_cmd_t ctl_tail_cmd;

typedef enum ctl_tail_verdict {
    CTL_TAIL_RETRY,      /* reconnect after the backoff */
    CTL_TAIL_RETRY_SLOW, /* reconnect, but not before a rate limit eases */
    CTL_TAIL_GIVE_UP,    /* another try would fail the same way */
} ctl_tail_verdict_t;

/*
 * What to do after a connection ended: status, http_status and code as
 * ctl_wsc_hooks_t's on_close gives them.
 */
ctl_tail_verdict_t ctl_tail_verdict(int status, int http_status, unsigned code);

/* What a close code means, in a few words ("authentication failed"), or
 * NULL for one the gateway does not send. */
const char *ctl_tail_code_name(unsigned code);

/*
 * Appends the line of a server message to out if it is a dispatch (it has
 * a "seq"): "SEQ EVENT GUILD DATA" (GUILD "-" when absent, DATA compact
 * JSON), or with json the whole message compact; returns 1, or 0 for
 * another message.
 */
int ctl_tail_format(const cJSON *msg, int json, gw_buf_t *out);

#endif
