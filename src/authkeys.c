#include "gw/authkeys.h"

#include "gw/alloc.h"
#include "gw/error.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A key file larger than this is a mistake, not keys. */
#define AUTHKEYS_FILE_MAX (1 << 20)
/* The longest kid a PEM file's name gives. */
#define AUTHKEYS_KID_MAX 128

void gw_authkeys_verifier_init(gw_jwt_verifier_t *v, const gw_config_t *cfg)
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

static int authkeys_fail(char *err, size_t errlen, int rc, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    return rc;
}

/* Reads a whole key file into *buf (owned by the caller). */
static int authkeys_read(const char *opt, const char *path, char **buf,
                         size_t *len, char *err, size_t errlen)
{
    FILE *f = fopen(path, "rb");
    int rc = 0;

    if (f == NULL)
        return authkeys_fail(err, errlen, GW_EIO, "%s: %s: %s", opt, path,
                             strerror(errno));
    *buf = gw_malloc(AUTHKEYS_FILE_MAX + 1);
    *len = fread(*buf, 1, AUTHKEYS_FILE_MAX + 1, f);
    if (ferror(f))
        rc = authkeys_fail(err, errlen, GW_EIO, "%s: %s: cannot read", opt,
                           path);
    else if (*len > AUTHKEYS_FILE_MAX)
        rc = authkeys_fail(err, errlen, GW_ETOOBIG, "%s: %s: larger than 1 MiB",
                           opt, path);
    fclose(f);
    if (rc != 0)
        free(*buf);
    return rc;
}

/* The kid of a PEM file: its name without the directory and ".pem". */
static int authkeys_pem_kid(const char *path, size_t n,
                            char kid[AUTHKEYS_KID_MAX])
{
    const char *name = path, *slash;

    while ((slash = memchr(name, '/', n - (size_t)(name - path))) != NULL)
        name = slash + 1;
    n -= (size_t)(name - path);
    if (n > 4 && memcmp(name + n - 4, ".pem", 4) == 0)
        n -= 4;
    if (n == 0 || n >= AUTHKEYS_KID_MAX)
        return GW_EINVAL;
    memcpy(kid, name, n);
    kid[n] = '\0';
    return 0;
}

/* Adds the keys of each PEM file of the comma-separated list. */
static int authkeys_load_pems(gw_jwks_t *ks, const char *list, char *err,
                              size_t errlen)
{
    static const char opt[] = "auth.jwt_public_keys";
    char path[4096], kid[AUTHKEYS_KID_MAX], *buf;
    size_t n, len;
    int rc = 0;

    for (list += strspn(list, " ,"); *list != '\0' && rc == 0;
         list += strspn(list, " ,")) {
        n = strcspn(list, ",");
        while (n > 0 && list[n - 1] == ' ')
            n--;
        if (n >= sizeof(path) || authkeys_pem_kid(list, n, kid) != 0)
            return authkeys_fail(err, errlen, GW_EINVAL,
                                 "%s: '%.*s' names no file", opt, (int)n, list);
        memcpy(path, list, n);
        path[n] = '\0';
        list += n;
        if ((rc = authkeys_read(opt, path, &buf, &len, err, errlen)) != 0)
            break;
        if ((rc = gw_jwks_add_pem(ks, kid, (uint8_t *)buf, len)) != 0)
            authkeys_fail(
                err, errlen, rc, "%s: %s: %s", opt, path,
                rc == GW_EPARSE
                    ? "not a PEM public key"
                    : "not RSA 2048-4096 or EC P-256/P-384, or its kid "
                      "is taken");
        free(buf);
    }
    return rc;
}

static int authkeys_load_jwks(gw_jwks_t *ks, const char *path, char *err,
                              size_t errlen)
{
    static const char opt[] = "auth.jwks_file";
    char *buf;
    size_t len;
    int rc;

    if ((rc = authkeys_read(opt, path, &buf, &len, err, errlen)) != 0)
        return rc;
    if ((rc = gw_jwks_parse(ks, buf, len)) != 0)
        authkeys_fail(err, errlen, rc, "%s: %s: %s", opt, path,
                      rc == GW_EPARSE    ? "not a JSON Web Key Set"
                      : rc == GW_ETOOBIG ? "more than 64 keys"
                                         : "a signing key is malformed, weak, "
                                           "off its curve, or has no or a "
                                           "duplicate kid");
    free(buf);
    return rc;
}

int gw_authkeys_load(gw_config_t *cfg, char *err, size_t errlen)
{
    gw_jwks_t *ks = gw_calloc(1, sizeof(*ks));
    int rc;

    if ((rc = authkeys_load_pems(ks, cfg->jwt_public_keys, err, errlen)) != 0 ||
        (cfg->jwks_file[0] != '\0' &&
         (rc = authkeys_load_jwks(ks, cfg->jwks_file, err, errlen)) != 0)) {
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
