/*
 * What gwctl takes from gatewayd's own configuration, so that it reaches
 * the daemon with the daemon's ports, secrets and broker links: the file
 * (-c, or conf/gateway.toml when it exists), the environment's overrides
 * (GATEWAYD_JWT_SECRET, GATEWAYD_API_KEY, ...), then -s, loaded by the
 * daemon's own config module. The command-line flags (--url, --secret,
 * --api-key) win over all of them.
 *
 * Each function that can fail says why on stderr (msg.h) and returns a
 * CTL_EXIT_* status.
 */
#ifndef CTL_SETUP_H
#define CTL_SETUP_H

#include "args.h"
#include "url.h"

#include "gw/config.h"

/* The file gwctl reads when not given -c, if it is there. */
#define CTL_SETUP_DEFAULT_PATH "conf/gateway.toml"

typedef struct ctl_setup {
    gw_config_t cfg;  /* owned */
    const char *path; /* borrowed: the file read, or NULL for none */
} ctl_setup_t;

/* Loads the configuration; with keys, also the public key files it
 * names (auth.jwt_public_keys, auth.jwks_file). Free s either way. */
int ctl_setup_load(ctl_setup_t *s, const ctl_opts_t *o, int keys);

void ctl_setup_free(ctl_setup_t *s);

/* Where the configuration came from, for messages: the file, or "the
 * built-in defaults and the environment". */
const char *ctl_setup_source(const ctl_setup_t *s);

/*
 * The HMAC secret to sign tokens with: --secret, else auth.jwt_secret.
 * Refuses an empty one, and the shipped development secret unless --dev,
 * saying why.
 */
int ctl_setup_secret(const ctl_setup_t *s, const ctl_opts_t *o,
                     const char **secret);

/* The key of the HTTP API: --api-key, else http.publish_api_key; refuses
 * an empty one (POST /publish is then disabled). */
int ctl_setup_api_key(const ctl_setup_t *s, const ctl_opts_t *o,
                      const char **key);

/* The gateway's WebSocket (websocket true) or HTTP address: --url, which
 * must be of that kind, else the configured port on the bind address
 * (loopback when it binds every address). */
int ctl_setup_url(const ctl_setup_t *s, const ctl_opts_t *o, int websocket,
                  ctl_url_t *u);

#endif
