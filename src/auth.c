#include "gw/auth.h"

#include "gw/addr.h"
#include "gw/error.h"
#include "gw/log.h"

#include <inttypes.h>
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
    char peer[GW_ADDR_NAME_MAX] = "?";

    if (rc != 0)
        gw_stat_add(s->set->stats, GW_STAT_AUTH_FAILURES, 1);
    /* The peer's address costs a system call: only for a line written. */
    if (!gw_log_on(rc == 0 ? GW_LOG_INFO : GW_LOG_WARN))
        return;
    if (s->ws != NULL)
        gw_ws_peer_name(s->ws, peer, sizeof(peer));
    if (rc == 0)
        gw_info("audit: auth ok conn=%" PRIu64 " peer=%s user=%s",
                gw_session_conn_id(s), peer, user);
    else
        gw_warn("audit: auth failed conn=%" PRIu64 " peer=%s user=%s reason=%s",
                gw_session_conn_id(s), peer, user ? user : "-",
                gw_strerror(rc));
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
