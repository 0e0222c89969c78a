#include "setup.h"

#include "msg.h"

#include "gw/authkeys.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

int ctl_setup_load(ctl_setup_t *s, const ctl_opts_t *o, int keys)
{
    char err[512];
    int rc = 0;

    gw_config_init(&s->cfg);
    s->path = o->config;
    if (s->path == NULL && access(CTL_SETUP_DEFAULT_PATH, F_OK) == 0)
        s->path = CTL_SETUP_DEFAULT_PATH;
    if (s->path != NULL)
        rc = gw_config_load(&s->cfg, s->path, err, sizeof(err));
    else
        rc = gw_config_load_env(&s->cfg, err, sizeof(err));
    for (size_t i = 0; rc == 0 && i < o->sets.n; i++)
        rc = gw_config_set(&s->cfg, o->sets.v[i], err, sizeof(err));
    if (rc == 0 && keys)
        rc = gw_authkeys_load(&s->cfg, err, sizeof(err));
    if (rc != 0)
        return ctl_msg_fail("%s (gwctl reads gatewayd's configuration; "
                            "-c FILE names another, -s K=V overrides it)",
                            err);
    return CTL_EXIT_OK;
}

void ctl_setup_free(ctl_setup_t *s)
{
    gw_config_free(&s->cfg);
}

const char *ctl_setup_source(const ctl_setup_t *s)
{
    return s->path != NULL ? s->path
                           : "the built-in defaults and the environment";
}

int ctl_setup_secret(const ctl_setup_t *s, const ctl_opts_t *o,
                     const char **secret)
{
    *secret = o->secret != NULL ? o->secret : s->cfg.jwt_secret;
    if (**secret == '\0')
        return ctl_msg_fail(
            "no secret to sign tokens with: auth.jwt_secret is empty in %s "
            "and GATEWAYD_JWT_SECRET is not set. Give the gateway's config "
            "with -c FILE, its secret with --secret, or set "
            "GATEWAYD_JWT_SECRET",
            ctl_setup_source(s));
    if (strcmp(*secret, GW_CONFIG_DEV_JWT_SECRET) == 0 && !o->dev)
        return ctl_msg_fail(
            "refusing to sign with the shipped development secret "
            "(\"%s\", from %s): it is public, so a gateway using it lets "
            "anyone in as anyone. Trying gatewayd out on this machine? Add "
            "--dev. Otherwise give the gateway a secret of its own "
            "(GATEWAYD_JWT_SECRET, or auth.jwt_secret) and gwctl the same",
            GW_CONFIG_DEV_JWT_SECRET,
            o->secret != NULL ? "--secret" : ctl_setup_source(s));
    return CTL_EXIT_OK;
}

int ctl_setup_api_key(const ctl_setup_t *s, const ctl_opts_t *o,
                      const char **key)
{
    *key = o->api_key != NULL ? o->api_key : s->cfg.publish_api_key;
    if (**key == '\0')
        return ctl_msg_fail(
            "no API key: http.publish_api_key is empty in %s and "
            "GATEWAYD_API_KEY is not set (the gateway's HTTP API is then "
            "closed). Give the gateway's config with -c FILE, or the key "
            "with --api-key",
            ctl_setup_source(s));
    return CTL_EXIT_OK;
}

/* The address that reaches a daemon bound to bind. */
static const char *setup_connect_host(const char *bind)
{
    if (bind[0] == '\0' || strcmp(bind, "0.0.0.0") == 0)
        return "127.0.0.1";
    return strcmp(bind, "::") == 0 ? "::1" : bind;
}

int ctl_setup_url(const ctl_setup_t *s, const ctl_opts_t *o, int websocket,
                  ctl_url_t *u)
{
    const char *host = setup_connect_host(s->cfg.bind);
    char text[CTL_URL_HOST_MAX + 32];

    if (o->url != NULL) {
        if (ctl_url_parse(o->url, u) != 0 || u->websocket != websocket)
            return ctl_msg_usage("--url: '%s' is not a %s URL", o->url,
                                 websocket ? "ws:// or wss://"
                                           : "http:// or https://");
        return CTL_EXIT_OK;
    }
    snprintf(text, sizeof(text),
             strchr(host, ':') ? "%s://[%s]:%d/" : "%s://%s:%d/",
             websocket ? "ws" : "http", host,
             websocket ? s->cfg.ws_port : s->cfg.http_port);
    if (ctl_url_parse(text, u) != 0)
        return ctl_msg_fail("server.bind '%s' in %s makes no address to "
                            "connect to; give --url",
                            s->cfg.bind, ctl_setup_source(s));
    return CTL_EXIT_OK;
}
