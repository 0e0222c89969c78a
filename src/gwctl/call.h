/*
 * A request to the gateway's HTTP API, for the commands that use it
 * (publish, health, stats, presence, disconnect): the address and key
 * from the setup, and when it fails, a message that says what to check.
 */
#ifndef CTL_CALL_H
#define CTL_CALL_H

#include "args.h"
#include "httpc.h"
#include "setup.h"

/* The answer's wait, and each stage of the connection's. */
#define CTL_CALL_TIMEOUT_MS 10000

/*
 * Sends METHOD path (with the API key when with_key, and body as JSON
 * when not NULL) and reads the answer into resp (initialised here; the
 * caller frees it either way). CTL_EXIT_OK once an answer came, whatever
 * its status; otherwise says why (unreachable: is gatewayd running, and
 * where) and returns CTL_EXIT_FAIL.
 */
int ctl_call(const ctl_setup_t *s, const ctl_opts_t *o, const char *method,
             const char *path, int with_key, const char *body,
             ctl_httpc_resp_t *resp);

/* Says what an answer other than 2xx means (a wrong key, a disabled
 * feature, a full gateway) and returns CTL_EXIT_FAIL. */
int ctl_call_refused(const ctl_setup_t *s, const ctl_opts_t *o,
                     const ctl_httpc_resp_t *resp);

#endif
