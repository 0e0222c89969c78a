#include "call.h"

#include "msg.h"

#include "gw/error.h"

#include <string.h>

int ctl_call(const ctl_setup_t *s, const ctl_opts_t *o, const char *method,
             const char *path, int with_key, const char *body,
             ctl_httpc_resp_t *resp)
{
    ctl_tls_opts_t tls = {o->insecure, o->ca_file};
    ctl_url_t url;
    ctl_httpc_req_t req = {.base = &url,
                           .method = method,
                           .path = path,
                           .body = body,
                           .body_len = body ? strlen(body) : 0,
                           .tls = &tls,
                           .timeout_ms = CTL_CALL_TIMEOUT_MS};
    char err[512];
    int rc;

    ctl_httpc_resp_init(resp, NULL);
    if ((rc = ctl_setup_url(s, o, 0, &url)) != CTL_EXIT_OK ||
        (with_key &&
         (rc = ctl_setup_api_key(s, o, &req.api_key)) != CTL_EXIT_OK))
        return rc;
    rc = ctl_httpc_fetch(&req, resp, err, sizeof(err));
    if (rc == GW_EIO && o->url == NULL)
        return ctl_msg_fail("%s. Is gatewayd running? `make run` starts one "
                            "with conf/gateway.toml; for another, give its "
                            "config (-c FILE) or address (--url http://...)",
                            err);
    if (rc == GW_EIO)
        return ctl_msg_fail("%s. Is gatewayd's HTTP port (server.http_port) "
                            "at %s?",
                            err, o->url);
    if (rc != 0)
        return ctl_msg_fail("%s", err);
    return CTL_EXIT_OK;
}

int ctl_call_refused(const ctl_setup_t *s, const ctl_opts_t *o,
                     const ctl_httpc_resp_t *resp)
{
    const char *body = resp->body ? resp->body : "";
    size_t n = strcspn(body, "\r\n");

    switch (resp->status) {
    case 401:
        return ctl_msg_fail("the gateway refused the API key (401): gwctl "
                            "sent the one from %s. Give the gateway's config "
                            "(-c FILE) or key (--api-key, GATEWAYD_API_KEY)",
                            o->api_key ? "--api-key" : ctl_setup_source(s));
    case 503:
        return ctl_msg_fail("the gateway cannot take it now (503): %.*s; "
                            "try again",
                            (int)n, body);
    default:
        return ctl_msg_fail("the gateway answered HTTP %d: %.*s", resp->status,
                            (int)n, body);
    }
}
