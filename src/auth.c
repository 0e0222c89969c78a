#include "gw/auth.h"

#include "gw/addr.h"
#include "gw/alloc.h"
#include "gw/error.h"
#include "gw/guard.h"
#include "gw/log.h"
#include "gw/server.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* A key file larger than this is a mistake, not keys. */
#define AUTH_KEY_FILE_MAX (1 << 20)
/* The longest kid a PEM file's name gives. */
#define AUTH_KID_MAX 128

void gw_auth_verifier_init(gw_jwt_verifier_t *v, const gw_config_t *cfg)
{
    unsigned algs = 0;

    /* Config checked the list: a failure here leaves algs 0, all refused. */
    (void)gw_jwt_algs_parse(cfg->jwt_algorithms, &algs);
    *v = (gw_jwt_verifier_t){
        .algs = algs,
        .secret = (const uint8_t *)cfg->jwt_secret,
        .secret_len = strlen(cfg->jwt_secret),
        .keys = cfg->jwt_keys,
        .audience = cfg->jwt_audience,
        .issuer = cfg->jwt_issuer,
        .leeway_s = cfg->leeway_s,
    };
    gw_jwt_verifier_init(v);
}

static int auth_fail(char *err, size_t errlen, int rc, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    return rc;
}

/* Reads a whole key file into *buf (owned by the caller). */
static int auth_read(const char *opt, const char *path, char **buf, size_t *len,
                     char *err, size_t errlen)
{
    FILE *f = fopen(path, "rb");
    int rc = 0;

    if (f == NULL)
        return auth_fail(err, errlen, GW_EIO, "%s: %s: %s", opt, path,
                         strerror(errno));
    *buf = gw_malloc(AUTH_KEY_FILE_MAX + 1);
    *len = fread(*buf, 1, AUTH_KEY_FILE_MAX + 1, f);
    if (ferror(f))
        rc = auth_fail(err, errlen, GW_EIO, "%s: %s: cannot read", opt, path);
    else if (*len > AUTH_KEY_FILE_MAX)
        rc = auth_fail(err, errlen, GW_ETOOBIG, "%s: %s: larger than 1 MiB",
                       opt, path);
    fclose(f);
    if (rc != 0)
        free(*buf);
    return rc;
}

/* The kid of a PEM file: its name without the directory and ".pem". */
static int auth_pem_kid(const char *path, size_t n, char kid[AUTH_KID_MAX])
{
    const char *name = path, *slash;

    while ((slash = memchr(name, '/', n - (size_t)(name - path))) != NULL)
        name = slash + 1;
    n -= (size_t)(name - path);
    if (n > 4 && memcmp(name + n - 4, ".pem", 4) == 0)
        n -= 4;
    if (n == 0 || n >= AUTH_KID_MAX)
        return GW_EINVAL;
    memcpy(kid, name, n);
    kid[n] = '\0';
    return 0;
}

/* Adds the keys of each PEM file of the comma-separated list. */
static int auth_load_pems(gw_jwks_t *ks, const char *list, char *err,
                          size_t errlen)
{
    static const char opt[] = "auth.jwt_public_keys";
    char path[4096], kid[AUTH_KID_MAX], *buf;
    size_t n, len;
    int rc = 0;

    for (list += strspn(list, " ,"); *list != '\0' && rc == 0;
         list += strspn(list, " ,")) {
        n = strcspn(list, ",");
        while (n > 0 && list[n - 1] == ' ')
            n--;
        if (n >= sizeof(path) || auth_pem_kid(list, n, kid) != 0)
            return auth_fail(err, errlen, GW_EINVAL, "%s: '%.*s' names no file",
                             opt, (int)n, list);
        memcpy(path, list, n);
        path[n] = '\0';
        list += n;
        if ((rc = auth_read(opt, path, &buf, &len, err, errlen)) != 0)
            break;
        if ((rc = gw_jwks_add_pem(ks, kid, (uint8_t *)buf, len)) != 0)
            auth_fail(err, errlen, rc, "%s: %s: %s", opt, path,
                      rc == GW_EPARSE
                          ? "not a PEM public key"
                          : "not RSA 2048-4096 or EC P-256/P-384, or its kid "
                            "is taken");
        free(buf);
    }
    return rc;
}

static int auth_load_jwks(gw_jwks_t *ks, const char *path, char *err,
                          size_t errlen)
{
    static const char opt[] = "auth.jwks_file";
    char *buf;
    size_t len;
    int rc;

    if ((rc = auth_read(opt, path, &buf, &len, err, errlen)) != 0)
        return rc;
    if ((rc = gw_jwks_parse(ks, buf, len)) != 0)
        auth_fail(err, errlen, rc, "%s: %s: %s", opt, path,
                  rc == GW_EPARSE    ? "not a JSON Web Key Set"
                  : rc == GW_ETOOBIG ? "more than 64 keys"
                                     : "a signing key is malformed, weak, "
                                       "off its curve, or has no or a "
                                       "duplicate kid");
    free(buf);
    return rc;
}

int gw_auth_load_keys(gw_config_t *cfg, char *err, size_t errlen)
{
    gw_jwks_t *ks = gw_calloc(1, sizeof(*ks));
    int rc;

    if ((rc = auth_load_pems(ks, cfg->jwt_public_keys, err, errlen)) != 0 ||
        (cfg->jwks_file[0] != '\0' &&
         (rc = auth_load_jwks(ks, cfg->jwks_file, err, errlen)) != 0)) {
        gw_jwks_free(ks);
        free(ks);
        return rc;
    }
    if (cfg->jwt_keys != NULL) {
        gw_jwks_free(cfg->jwt_keys);
        free(cfg->jwt_keys);
    }
    cfg->jwt_keys = ks;
    return 0;
}

/* The connection id and peer an audit line names. The peer's address
 * costs a system call: only for a line written. */
static void auth_who(const gw_session_t *s, char conn[24],
                     char peer[GW_ADDR_NAME_MAX])
{
    snprintf(conn, 24, "%" PRIu64, gw_session_conn_id(s));
    snprintf(peer, GW_ADDR_NAME_MAX, "?");
    if (s->ws != NULL)
        gw_ws_peer_name(s->ws, peer, GW_ADDR_NAME_MAX);
}

/* The audit line of SPEC section 5, and the failure counter. */
static void auth_audit(gw_session_t *s, const char *user, int rc)
{
    char peer[GW_ADDR_NAME_MAX], conn[24];

    if (rc != 0)
        gw_stat_add(s->set->stats, GW_STAT_AUTH_FAILURES, 1);
    if (!gw_audit_on())
        return;
    auth_who(s, conn, peer);
    if (rc == 0)
        gw_audit(GW_LOG_INFO, "auth ok", "conn", conn, "peer", peer, "user",
                 user, NULL);
    else
        gw_audit(GW_LOG_WARN, "auth failed", "conn", conn, "peer", peer, "user",
                 user ? user : "-", "reason", gw_strerror(rc), NULL);
}

/* The refusal's audit line and counter: the attempt was not heard. */
static void auth_refused(gw_session_t *s, const char *user, const char *why,
                         uint64_t wait_ms)
{
    char peer[GW_ADDR_NAME_MAX], conn[24], wait[24];

    gw_stat_add(s->set->stats, GW_STAT_AUTH_LIMITED, 1);
    if (!gw_audit_on())
        return;
    auth_who(s, conn, peer);
    snprintf(wait, sizeof(wait), "%" PRIu64, wait_ms);
    gw_audit(GW_LOG_WARN, "auth refused", "conn", conn, "peer", peer, "user",
             user ? user : "-", "reason", why, "retry_ms", wait, NULL);
}

/* The peer's address for the abuse limits, or NULL. */
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
    auth_refused(s, claims->sub, "user over identify_user_rate", 0);
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
        auth_refused(s, user,
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
    auth_audit(s, user ? user : (rc == 0 ? claims->sub : NULL), rc);
    return auth_guarded(s, rc, claims, addr, now);
}
