#include "tokens.h"

#include "mint.h"
#include "msg.h"
#include "setup.h"
#include "table.h"

#include "gw/alloc.h"
#include "gw/authkeys.h"
#include "gw/error.h"
#include "gw/json.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* A token lives this long unless --ttl says otherwise. */
#define TOKENS_TTL_S 3600
/* The longest token check-token reads from stdin (the gateway's limit is
 * 8 KiB; more is read to say so). */
#define TOKENS_STDIN_MAX 65536

/* A part of the token decoded and parsed as a JSON object, or NULL. */
static cJSON *tokens_part(const char *p, size_t len)
{
    uint8_t *raw = gw_malloc(len * 3 / 4 + 1);
    size_t n;
    cJSON *obj = NULL;

    if (gw_jwt_b64url_decode(p, len, raw, &n) == 0) {
        obj = gw_json_parse((const char *)raw, n);
        if (!cJSON_IsObject(obj)) {
            cJSON_Delete(obj);
            obj = NULL;
        }
    }
    free(raw);
    return obj;
}

typedef struct tokens_view {
    cJSON *header; /* owned, or NULL when that part is not a JSON object */
    cJSON *claims; /* owned, likewise */
    int parts;     /* dot-separated parts */
} tokens_view_t;

static void tokens_view(const char *token, tokens_view_t *tv)
{
    const char *dot1 = strchr(token, '.');
    const char *dot2 = dot1 ? strchr(dot1 + 1, '.') : NULL;

    *tv = (tokens_view_t){.parts = 1};
    for (const char *p = token; (p = strchr(p, '.')) != NULL; p++)
        tv->parts++;
    if (dot1 != NULL)
        tv->header = tokens_part(token, (size_t)(dot1 - token));
    if (dot2 != NULL)
        tv->claims = tokens_part(dot1 + 1, (size_t)(dot2 - dot1 - 1));
}

static void tokens_time(gw_buf_t *out, const char *label, const cJSON *claims,
                        const char *name, int64_t now)
{
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(claims, name);
    char when[64], span[32];
    struct tm tm;
    time_t secs;

    if (!cJSON_IsNumber(t) || t->valuedouble < 0 || t->valuedouble > 1e15)
        return;
    secs = (time_t)t->valuedouble;
    gmtime_r(&secs, &tm);
    strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S UTC", &tm);
    ctl_table_span(secs > now ? secs - now : now - secs, span, sizeof(span));
    gw_buf_printf(out, "%-8s %s (%s%s%s)\n", label, when,
                  secs > now ? "in " : "", span, secs > now ? "" : " ago");
}

static void tokens_json_line(gw_buf_t *out, const char *label, const cJSON *obj)
{
    char *text = obj ? cJSON_PrintUnformatted(obj) : NULL;

    gw_buf_printf(out, "%-8s %s\n", label,
                  text ? text : "(not base64url of a JSON object)");
    free(text);
}

/* What the token holds, as far as it can be read. */
static void tokens_describe(const tokens_view_t *tv, int64_t now, gw_buf_t *out)
{
    const cJSON *sub = cJSON_GetObjectItemCaseSensitive(tv->claims, "sub");
    const cJSON *guilds =
        cJSON_GetObjectItemCaseSensitive(tv->claims, "guilds");
    char *list;

    tokens_json_line(out, "header", tv->header);
    tokens_json_line(out, "claims", tv->claims);
    if (tv->claims == NULL)
        return;
    if (cJSON_IsString(sub))
        gw_buf_printf(out, "%-8s %s\n", "user", sub->valuestring);
    tokens_time(out, "issued", tv->claims, "iat", now);
    tokens_time(out, "from", tv->claims, "nbf", now);
    tokens_time(out, "expires", tv->claims, "exp", now);
    list = guilds ? cJSON_PrintUnformatted(guilds) : NULL;
    gw_buf_printf(out, "%-8s %s\n", "guilds",
                  list ? list : "any (no guilds claim)");
    free(list);
}

/* Whether aud (a string, or an array of them) holds want. */
static int tokens_aud_has(const cJSON *aud, const char *want)
{
    const cJSON *it;

    if (cJSON_IsString(aud))
        return strcmp(aud->valuestring, want) == 0;
    if (!cJSON_IsArray(aud))
        return 0;
    cJSON_ArrayForEach(it, aud)
    {
        if (cJSON_IsString(it) && strcmp(it->valuestring, want) == 0)
            return 1;
    }
    return 0;
}

/* Which claim of aud and iss the verifier wants otherwise. */
static void tokens_claim_mismatch(const gw_jwt_verifier_t *v,
                                  const cJSON *claims, gw_buf_t *out)
{
    const cJSON *aud = cJSON_GetObjectItemCaseSensitive(claims, "aud");
    const cJSON *iss = cJSON_GetObjectItemCaseSensitive(claims, "iss");
    char *have = aud ? cJSON_PrintUnformatted(aud) : NULL;

    if (v->audience && v->audience[0] && !tokens_aud_has(aud, v->audience))
        gw_buf_printf(out,
                      "refused: its aud is %s, the gateway wants \"%s\" "
                      "(auth.jwt_audience); sign it with --aud %s\n",
                      have ? have : "missing", v->audience, v->audience);
    else
        gw_buf_printf(out,
                      "refused: its iss is %s%s%s, the gateway wants \"%s\" "
                      "(auth.jwt_issuer); sign it with --iss %s\n",
                      cJSON_IsString(iss) ? "\"" : "",
                      cJSON_IsString(iss) ? iss->valuestring : "missing",
                      cJSON_IsString(iss) ? "\"" : "", v->issuer, v->issuer);
    free(have);
}

/* Why GW_EAUTH: the signature, no sub, or aud/iss. A second check without
 * aud and iss tells the claims from the signature, which comes first. */
static void tokens_why_auth(const gw_jwt_verifier_t *v, const char *token,
                            const tokens_view_t *tv, int64_t now, gw_buf_t *out)
{
    gw_jwt_verifier_t loose = *v;
    gw_jwt_claims_t c;
    const cJSON *sub = cJSON_GetObjectItemCaseSensitive(tv->claims, "sub");
    const cJSON *alg = cJSON_GetObjectItemCaseSensitive(tv->header, "alg");
    unsigned bit = cJSON_IsString(alg) ? gw_jwt_alg_bit(alg->valuestring) : 0;
    int rc;

    if ((bit & GW_JWT_HMAC) && !(v->ready & bit)) {
        gw_buf_printf(out,
                      "refused: there is no secret to verify %s tokens "
                      "with (auth.jwt_secret, GATEWAYD_JWT_SECRET; "
                      "--secret here)\n",
                      alg->valuestring);
        return;
    }
    loose.audience = loose.issuer = NULL;
    rc = gw_jwt_verify(&loose, token, strlen(token), now, &c);
    gw_jwt_claims_free(&c);
    if (rc != GW_EAUTH)
        tokens_claim_mismatch(v, tv->claims, out);
    else if (!cJSON_IsString(sub) || sub->valuestring[0] == '\0')
        gw_buf_printf(out, "refused: it has no sub claim (the user id)\n");
    else
        gw_buf_printf(out,
                      "refused: the signature does not match: it was signed "
                      "with another secret or key than this configuration's "
                      "(check -c FILE, --secret, GATEWAYD_JWT_SECRET)\n");
}

static void tokens_why_time(const gw_jwt_verifier_t *v, int rc, gw_buf_t *out)
{
    if (rc == GW_EEXPIRED)
        gw_buf_printf(out,
                      "refused: it has expired (exp, with auth.leeway_s = "
                      "%lld s of skew); sign a new one (gwctl token)\n",
                      (long long)v->leeway_s);
    else
        gw_buf_printf(out,
                      "refused: it is not valid yet (nbf, with auth.leeway_s "
                      "= %lld s of skew); check the clocks\n",
                      (long long)v->leeway_s);
}

static void tokens_why_key(const gw_jwt_verifier_t *v, int rc,
                           const tokens_view_t *tv, gw_buf_t *out)
{
    const cJSON *alg = cJSON_GetObjectItemCaseSensitive(tv->header, "alg");
    const cJSON *kid = cJSON_GetObjectItemCaseSensitive(tv->header, "kid");
    const char *name = cJSON_IsString(alg) ? alg->valuestring : "?";

    if (rc == GW_ENOKEY && cJSON_IsString(kid))
        gw_buf_printf(out,
                      "refused: no key has its kid \"%s\" (auth.jwt_public_keys"
                      ", auth.jwks_file)\n",
                      kid->valuestring);
    else if (rc == GW_ENOKEY)
        gw_buf_printf(out,
                      "refused: it has no kid, and the gateway has %zu public "
                      "keys to choose from (a token without kid needs exactly "
                      "one)\n",
                      v->npub);
    else if (!(v->algs & gw_jwt_alg_bit(name)))
        gw_buf_printf(out,
                      "refused: its alg %s is not accepted (\"none\" never "
                      "is; auth.jwt_algorithms, and each needs a key)\n",
                      name);
    else
        gw_buf_printf(out,
                      "refused: its alg %s is not what the key it names "
                      "verifies (an RSA key never an HMAC or ES token, a P-256 "
                      "key never ES384)\n",
                      name);
}

int ctl_tokens_check(const gw_jwt_verifier_t *v, const char *token, int64_t now,
                     gw_buf_t *out)
{
    tokens_view_t tv;
    gw_jwt_claims_t c;
    int rc = gw_jwt_verify(v, token, strlen(token), now, &c);

    tokens_view(token, &tv);
    tokens_describe(&tv, now, out);
    gw_buf_printf(out, "%-8s ", "verdict");
    if (rc == 0)
        gw_buf_printf(out, "valid: the gateway takes it for user %s\n", c.sub);
    else if (rc == GW_EAUTH)
        tokens_why_auth(v, token, &tv, now, out);
    else if (rc == GW_EEXPIRED || rc == GW_ENOTYET)
        tokens_why_time(v, rc, out);
    else if (rc == GW_ENOKEY || rc == GW_EALG)
        tokens_why_key(v, rc, &tv, out);
    else if (rc == GW_ETOOBIG)
        gw_buf_printf(out, "refused: it is longer than 8 KiB\n");
    else if (tv.parts != 3)
        gw_buf_printf(out,
                      "refused: malformed: %d part%s, a JWT has three "
                      "(header.claims.signature, base64url)\n",
                      tv.parts, tv.parts == 1 ? "" : "s");
    else
        gw_buf_printf(out, "refused: malformed: %s\n",
                      tv.header == NULL ? "the header is not base64url of a "
                                          "JSON object"
                      : tv.claims == NULL
                          ? "the claims are not base64url of a JSON object"
                          : "a field has the wrong type (typ not JWT, crit, "
                            "exp/nbf not numbers, guilds not strings) or the "
                            "signature is not base64url");
    gw_jwt_claims_free(&c);
    cJSON_Delete(tv.header);
    cJSON_Delete(tv.claims);
    return rc;
}

/* ---- the commands ----------------------------------------------------- */

static int tokens_token_run(const ctl_opts_t *o)
{
    ctl_setup_t setup;
    const char *secret;
    int64_t now = (int64_t)time(NULL);
    char *token;
    int rc;

    if (o->users.n != 1)
        return ctl_msg_usage("--user: give the user the token is for, once");
    if ((rc = ctl_setup_load(&setup, o, 0)) == CTL_EXIT_OK &&
        (rc = ctl_setup_secret(&setup, o, &secret)) == CTL_EXIT_OK) {
        ctl_mint_t m = {
            .sub = o->users.v[0],
            .guilds = o->guilds.n ? o->guilds.v : NULL,
            .nguilds = o->guilds.n,
            .aud = o->aud ? o->aud : setup.cfg.jwt_audience,
            .iss = o->iss ? o->iss : setup.cfg.jwt_issuer,
            .iat = now,
            .exp = now + (o->ttl_s ? o->ttl_s : TOKENS_TTL_S),
        };

        token = ctl_mint_hs256(&m, secret);
        printf("%s\n", token);
        free(token);
    }
    ctl_setup_free(&setup);
    return rc;
}

/* The token argument, or the first line of stdin for "-" (heap). */
static char *tokens_argument(const char *arg)
{
    char *buf;
    size_t n;

    if (strcmp(arg, "-") != 0)
        return gw_strdup(arg);
    buf = gw_malloc(TOKENS_STDIN_MAX + 1);
    n = fread(buf, 1, TOKENS_STDIN_MAX, stdin);
    buf[n] = '\0';
    buf[strcspn(buf, "\r\n")] = '\0';
    return buf;
}

/* Replaces an owned string of the configuration. */
static void tokens_override(char **field, const char *value)
{
    if (value == NULL)
        return;
    free(*field);
    *field = gw_strdup(value);
}

static int tokens_check_run(const ctl_opts_t *o)
{
    ctl_setup_t setup;
    gw_jwt_verifier_t v;
    gw_buf_t out = {0};
    char *token;
    int rc;

    if ((rc = ctl_setup_load(&setup, o, 1)) != CTL_EXIT_OK)
        goto done;
    tokens_override(&setup.cfg.jwt_secret, o->secret);
    tokens_override(&setup.cfg.jwt_audience, o->aud);
    tokens_override(&setup.cfg.jwt_issuer, o->iss);
    gw_authkeys_verifier_init(&v, &setup.cfg);
    token = tokens_argument(o->arg);
    rc = ctl_tokens_check(&v, token, (int64_t)time(NULL), &out) == 0
             ? CTL_EXIT_OK
             : CTL_EXIT_FAIL;
    fwrite(out.data, 1, out.len, stdout);
    free(out.data);
    free(token);
    gw_jwt_verifier_free(&v);
done:
    ctl_setup_free(&setup);
    return rc;
}

static const ctl_opt_t tokens_token_opts[] = {
    CTL_OPT("user", 0, CTL_LIST, users, "USER",
            "the user the token is for (its sub claim)"),
    CTL_OPT("guilds", 0, CTL_LIST, guilds, "G1,G2",
            "the guilds it may join (its guilds claim; default: any)"),
    CTL_OPT_NUM("ttl", CTL_SECONDS, ttl_s, 1, 366 * 86400, "DURATION",
                "its lifetime: 90s, 30m, 1h, 2d... (default 1h)"),
    CTL_OPT("aud", 0, CTL_STR, aud, "AUD",
            "its aud claim (default: the config's auth.jwt_audience)"),
    CTL_OPT("iss", 0, CTL_STR, iss, "ISS",
            "its iss claim (default: the config's auth.jwt_issuer)"),
    CTL_OPT("secret", 0, CTL_STR, secret, "SECRET",
            "sign with this HMAC secret (default: the config's "
            "auth.jwt_secret)"),
    CTL_OPT("dev", 0, CTL_FLAG, dev, NULL,
            "allow the shipped development secret (a local try-out)"),
};

const ctl_cmd_t ctl_token_cmd = {
    .name = "token",
    .synopsis = "--user U [--guilds g1,g2] [--ttl 1h] [--aud A] [--iss I]",
    .summary = "Print an HS256 token signed with the gateway's secret.",
    .details =
        "The token is what a backend gives its client for identify (or\n"
        "?token= on the upgrade): the user as sub, iat, exp, and the\n"
        "optional guilds, aud and iss claims. It alone goes to stdout:\n"
        "  TOKEN=$(gwctl token --dev --user u1)\n"
        "The secret is the one gatewayd uses: GATEWAYD_JWT_SECRET, else\n"
        "auth.jwt_secret of its config; the shipped development secret is\n"
        "refused without --dev, since anyone can sign with it.\n",
    .opts = tokens_token_opts,
    .nopts = sizeof(tokens_token_opts) / sizeof(tokens_token_opts[0]),
    .run = tokens_token_run,
};

static const ctl_opt_t tokens_check_opts[] = {
    CTL_OPT("secret", 0, CTL_STR, secret, "SECRET",
            "verify HMAC tokens with this secret (default: the config's)"),
    CTL_OPT("aud", 0, CTL_STR, aud, "AUD",
            "require this aud (default: the config's auth.jwt_audience)"),
    CTL_OPT("iss", 0, CTL_STR, iss, "ISS",
            "require this iss (default: the config's auth.jwt_issuer)"),
};

const ctl_cmd_t ctl_check_token_cmd = {
    .name = "check-token",
    .synopsis = "TOKEN | -",
    .summary = "Decode a token and say whether the gateway takes it, or why "
               "not.",
    .details =
        "The token is checked as gatewayd checks it, with its configuration:\n"
        "auth.jwt_algorithms, the secret, the public keys of\n"
        "auth.jwt_public_keys and auth.jwks_file, aud, iss, exp and nbf\n"
        "with auth.leeway_s. '-' reads the token from stdin. What the token\n"
        "holds and the verdict go to stdout; the exit status is 0 when it\n"
        "is valid, 1 when it is refused.\n",
    .opts = tokens_check_opts,
    .nopts = sizeof(tokens_check_opts) / sizeof(tokens_check_opts[0]),
    .positional = "TOKEN",
    .run = tokens_check_run,
};
