#include "gw/auth.h"

#include "gw/addr.h"
#include "gw/alloc.h"
#include "gw/error.h"
#include "gw/guard.h"
#include "gw/log.h"
#include "gw/server.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* The connection id and peer an audit line names, from the address the
 * verification read once (NULL: not known). */
static void auth_who(const gw_session_t *s, const struct sockaddr *addr,
                     char conn[24], char peer[GW_ADDR_NAME_MAX])
{
    snprintf(conn, 24, "%" PRIu64, gw_session_conn_id(s));
    if (addr != NULL)
        gw_addr_name(addr, 0, peer, GW_ADDR_NAME_MAX);
    else
        snprintf(peer, GW_ADDR_NAME_MAX, "?");
}

/* The audit line of SPEC section 5, and the failure counter. */
static void auth_audit(gw_session_t *s, const struct sockaddr *addr,
                       const char *user, int rc)
{
    char peer[GW_ADDR_NAME_MAX], conn[24];

    if (rc != 0)
        gw_stat_add(s->set->stats, GW_STAT_AUTH_FAILURES, 1);
    if (!gw_audit_on())
        return;
    auth_who(s, addr, conn, peer);
    if (rc == 0)
        gw_audit(GW_LOG_INFO, "auth ok", "conn", conn, "peer", peer, "user",
                 user, NULL);
    else
        gw_audit(GW_LOG_WARN, "auth failed", "conn", conn, "peer", peer, "user",
                 user ? user : "-", "reason", gw_strerror(rc), NULL);
}

/* The refusal's audit line and counter: the attempt was not heard. */
static void auth_refused(gw_session_t *s, const struct sockaddr *addr,
                         const char *user, const char *why, uint64_t wait_ms)
{
    char peer[GW_ADDR_NAME_MAX], conn[24], wait[24];

    gw_stat_add(s->set->stats, GW_STAT_AUTH_LIMITED, 1);
    if (!gw_audit_on())
        return;
    auth_who(s, addr, conn, peer);
    snprintf(wait, sizeof(wait), "%" PRIu64, wait_ms);
    gw_audit(GW_LOG_WARN, "auth refused", "conn", conn, "peer", peer, "user",
             user ? user : "-", "reason", why, "retry_ms", wait, NULL);
}

/* The peer's address for the abuse limits and the audit line, or NULL:
 * read once per verification (one system call; a proxied client's
 * address, from its PROXY header, costs none). */
static const struct sockaddr *auth_peer(const gw_session_t *s,
                                        struct sockaddr_storage *ss)
{
    if (s->ws == NULL || gw_transport_peer(&s->ws->transport, ss) != 0)
        return NULL;
    return (const struct sockaddr *)ss;
}

/*
 * The abuse limits around a verification: the address's attempts and
 * backoff before it, a failure after it, and the user's identifies once
 * the token says who it is.
 */
static int auth_guarded(gw_session_t *s, int rc, gw_jwt_claims_t *claims,
                        const struct sockaddr *addr, uint64_t now)
{
    const gw_config_t *cfg = s->set->cfg;

    if (rc != 0) {
        gw_guard_failed(s->set->guard, addr, now, cfg);
        return rc;
    }
    if (gw_guard_user(s->set->guard, claims->sub, now, cfg) == 0)
        return 0;
    auth_refused(s, addr, claims->sub, "user over identify_user_rate", 0);
    gw_jwt_claims_free(claims);
    return GW_ELIMITED;
}

int gw_auth_verify(const gw_jwt_verifier_t *v, gw_session_t *s,
                   const char *token, const char *user, gw_jwt_claims_t *claims)
{
    struct sockaddr_storage ss;
    const struct sockaddr *addr = auth_peer(s, &ss);
    uint64_t now = gw_now_ms(), wait;
    int rc;

    if (gw_guard_attempt(s->set->guard, addr, now, s->set->cfg, &wait) != 0) {
        auth_refused(s, addr, user,
                     wait > 0 ? "address backing off after failures"
                              : "address over identify_rate",
                     wait);
        return GW_ELIMITED;
    }
    rc = gw_jwt_verify(v, token, strlen(token), (int64_t)time(NULL), claims);
    if (rc == 0 && user != NULL && strcmp(claims->sub, user) != 0) {
        gw_jwt_claims_free(claims);
        rc = GW_EAUTH;
    }
    auth_audit(s, addr, user ? user : (rc == 0 ? claims->sub : NULL), rc);
    return auth_guarded(s, rc, claims, addr, now);
}
