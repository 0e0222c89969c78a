/*
 * The keys that verify client tokens, from the configuration: the PEM
 * files of auth.jwt_public_keys and the JWKS file of auth.jwks_file, read
 * at start and on SIGHUP, and the verifier a worker (or gwctl) builds from
 * them. Apart from sessions (auth.h), so that whatever checks a token as
 * the daemon does needs only the configuration, JWT and JWKS modules.
 */
#ifndef GW_AUTHKEYS_H
#define GW_AUTHKEYS_H

#include "gw/config.h"
#include "gw/jwt.h"

/*
 * Reads the key files that cfg names (auth.jwt_public_keys, auth.jwks_file)
 * into cfg->jwt_keys, which cfg owns from then on: 0, or a negative
 * gw_err_t with "option: file: what is wrong" in err, cfg unchanged. The
 * set is read, never written, by the verifiers of every worker.
 */
int gw_authkeys_load(gw_config_t *cfg, char *err, size_t errlen);

/* Prepares v from cfg's auth section; free it with gw_jwt_verifier_free.
 * cfg must outlive v (v borrows its strings and keys). */
void gw_authkeys_verifier_init(gw_jwt_verifier_t *v, const gw_config_t *cfg);

#endif
