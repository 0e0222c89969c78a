/*
 * Client authentication (seed 003 layer 2, SPEC section 5): a session's
 * token verified against the configuration's verifier, with the audit
 * line and the failure counter every attempt owes. The keys and the
 * verifier come from authkeys.h.
 */
#ifndef GW_AUTH_H
#define GW_AUTH_H

#include "gw/config.h"
#include "gw/jwt.h"
#include "gw/session.h"

/*
 * Verifies token for session s, now: 0 with claims filled (the caller
 * frees them with gw_jwt_claims_free), or a negative gw_err_t. When user
 * is not NULL the token must be that user's (GW_EAUTH otherwise). Every
 * attempt is audited; a failure is counted. GW_ELIMITED when the abuse
 * limits (gw_guard_t) refused the attempt, audited and counted too: the
 * caller closes with 4008 rather than 4004.
 */
int gw_auth_verify(const gw_jwt_verifier_t *v, gw_session_t *s,
                   const char *token, const char *user,
                   gw_jwt_claims_t *claims);

#endif
