/*
 * Client authentication (seed 003 layer 2, SPEC section 5): a session's
 * token verified against the configuration's verifier, with the audit
 * line and the failure counter every attempt owes.
 */
#ifndef GW_AUTH_H
#define GW_AUTH_H

#include "gw/config.h"
#include "gw/jwt.h"
#include "gw/session.h"

/*
 * Reads the key files that cfg names (auth.jwt_public_keys, auth.jwks_file)
 * into cfg->jwt_keys, which cfg owns from then on: 0, or a negative
 * gw_err_t with "option: file: what is wrong" in err, cfg unchanged. The
 * set is read, never written, by the verifiers of every worker.
 */
int gw_auth_load_keys(gw_config_t *cfg, char *err, size_t errlen);

/* Prepares v from cfg's auth section; free it with gw_jwt_verifier_free.
 * cfg must outlive v (v borrows its strings and keys). */
void gw_auth_verifier_init(gw_jwt_verifier_t *v, const gw_config_t *cfg);

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
