/*
 * gwctl token and gwctl check-token: sign a token as a backend would, and
 * say whether the gateway would take one, and if not, why. The report of
 * check-token is pure (a verifier, a token and the time in, the text
 * out), for the unit tests.
 */
#ifndef CTL_TOKENS_H
#define CTL_TOKENS_H

#include "args.h"

#include "gw/buf.h"
#include "gw/jwt.h"

#include <stdint.h>

extern const ctl_cmd_t ctl_token_cmd;
extern const ctl_cmd_t ctl_check_token_cmd;

/*
 * Decodes token (without trusting it) and verifies it with v at now,
 * appending to out what it holds and the verdict: "valid: ..." or
 * "refused: <why>; <what to do>". Returns 0 when valid, else the
 * gw_jwt_verify code.
 */
int ctl_tokens_check(const gw_jwt_verifier_t *v, const char *token, int64_t now,
                     gw_buf_t *out);

#endif
