#include "gw/auth.h"

#include "gw/addr.h"
#include "gw/error.h"
#include "gw/log.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

void gw_auth_verifier_init(gw_jwt_verifier_t *v, const gw_config_t *cfg)
{
    *v = (gw_jwt_verifier_t){
        .alg = cfg->jwt_algorithm,
        .secret = (const uint8_t *)cfg->jwt_secret,
        .secret_len = strlen(cfg->jwt_secret),
        .audience = cfg->jwt_audience,
        .issuer = cfg->jwt_issuer,
        .leeway_s = 0,
    };
    gw_jwt_verifier_init(v);
}

/* The audit line of SPEC section 5, and the failure counter. */
static void auth_audit(gw_session_t *s, const char *user, int rc)
{
    char peer[GW_ADDR_NAME_MAX] = "?", conn[24];

    if (rc != 0)
        gw_stat_add(s->set->stats, GW_STAT_AUTH_FAILURES, 1);
    /* The peer's address costs a system call: only for a line written. */
    if (!gw_audit_on())
        return;
    if (s->ws != NULL)
        gw_ws_peer_name(s->ws, peer, sizeof(peer));
    snprintf(conn, sizeof(conn), "%" PRIu64, gw_session_conn_id(s));
    if (rc == 0)
        gw_audit(GW_LOG_INFO, "auth ok", "conn", conn, "peer", peer, "user",
                 user, NULL);
    else
        gw_audit(GW_LOG_WARN, "auth failed", "conn", conn, "peer", peer, "user",
                 user ? user : "-", "reason", gw_strerror(rc), NULL);
}

int gw_auth_verify(const gw_jwt_verifier_t *v, gw_session_t *s,
                   const char *token, const char *user, gw_jwt_claims_t *claims)
{
    int rc =
        gw_jwt_verify(v, token, strlen(token), (int64_t)time(NULL), claims);

    if (rc == 0 && user != NULL && strcmp(claims->sub, user) != 0) {
        gw_jwt_claims_free(claims);
        rc = GW_EAUTH;
    }
    auth_audit(s, user ? user : (rc == 0 ? claims->sub : NULL), rc);
    return rc;
}
