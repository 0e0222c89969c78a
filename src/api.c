#include "gw/api.h"

#include "gw/alloc.h"
#include "gw/broker.h"
#include "gw/buf.h"
#include "gw/dashboard.h"
#include "gw/error.h"
#include "gw/json.h"
#include "gw/log.h"
#include "gw/metrics.h"
#include "gw/presence.h"
#include "gw/query.h"
#include "gw/version.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct api_route {
    const char *method;
    const char *path;
    void (*fn)(gw_broker_t *b, const gw_http_request_t *req,
               gw_http_response_t *res);
} api_route_t;

static void api_reply(gw_http_response_t *res, int status, gw_buf_t *body)
{
    res->status = status;
    res->body = gw_buf_steal(body, &res->body_len);
}

static void api_error(gw_http_response_t *res, int status, const char *reason)
{
    gw_buf_t b = {0};

    gw_buf_printf(&b, "{\"error\":\"%s\"}\n", reason);
    api_reply(res, status, &b);
}

/* A link counts against health only when it is enabled and not up. */
static int api_link_ok(gw_link_state_t s)
{
    return s == GW_LINK_DISABLED || s == GW_LINK_UP;
}

/*
 * GET /health. Runs on the broker thread, where the links change state, so
 * their state and time are read without a lock. links_since is when each
 * link entered its state, and time the gateway's clock now: a reader
 * subtracts the two, whatever its own clock says.
 */
static void api_health(gw_broker_t *br, const gw_http_request_t *req,
                       gw_http_response_t *res)
{
    gw_server_t *srv = gw_broker_server(br);
    gw_link_status_t redis = gw_broker_redis_link(br);
    gw_link_status_t amqp = gw_broker_amqp_link(br);
    int draining = atomic_load(&srv->draining);
    const char *status = draining ? "draining"
                         : api_link_ok(redis.state) && api_link_ok(amqp.state)
                             ? "ok"
                             : "degraded";
    gw_buf_t b = {0};
    (void)req;

    /* Degraded still serves clients and /publish: 200, so that a load
     * balancer keeps sending traffic; draining is 503. */
    gw_buf_printf(
        &b,
        "{\"status\":\"%s\",\"instance\":\"%s\",\"version\":\"%s\","
        "\"uptime\":%llu,\"connections\":%llu,\"sessions\":%llu,"
        "\"links\":{\"redis\":\"%s\",\"amqp\":\"%s\"},"
        "\"links_since\":{\"redis\":%llu,\"amqp\":%llu},"
        "\"redis_channels\":%llu,\"time\":%llu",
        status, gw_broker_instance_id(br), GW_VERSION,
        (unsigned long long)((gw_now_ms() - srv->start_ms) / 1000),
        (unsigned long long)gw_metrics_total(srv, GW_STAT_CONNECTIONS),
        (unsigned long long)gw_metrics_total(srv, GW_STAT_SESSIONS),
        gw_link_state_name(redis.state), gw_link_state_name(amqp.state),
        (unsigned long long)redis.since_ms, (unsigned long long)amqp.since_ms,
        (unsigned long long)gw_stat_get(gw_broker_stats(br),
                                        GW_STAT_REDIS_CHANNELS),
        (unsigned long long)gw_link_clock_ms());
    gw_metrics_shards_json(srv, &b);
    gw_buf_printf(&b, "}\n");
    api_reply(res, draining ? 503 : 200, &b);
}

static void api_stats(gw_broker_t *br, const gw_http_request_t *req,
                      gw_http_response_t *res)
{
    gw_buf_t b = {0};
    (void)req;

    gw_metrics_json(gw_broker_server(br), &b);
    api_reply(res, 200, &b);
}

static void api_metrics(gw_broker_t *br, const gw_http_request_t *req,
                        gw_http_response_t *res)
{
    gw_buf_t b = {0};
    (void)req;

    gw_metrics_prometheus(gw_broker_server(br), &b);
    res->content_type = "text/plain; version=0.0.4";
    api_reply(res, 200, &b);
}

/* Compares without an early exit, so timing does not reveal the key. */
static int api_key_ok(const char *want, const char *got)
{
    size_t n = strlen(want), m = got ? strlen(got) : 0;
    unsigned char diff = (unsigned char)(n != m);

    if (n == 0 || got == NULL)
        return 0;
    for (size_t i = 0; i < n; i++)
        diff |= (unsigned char)(want[i] ^ got[i < m ? i : 0]);
    return diff == 0;
}

/* Whether the request carries the API key; refused with 401 when not. */
static int api_authorized(gw_broker_t *br, const gw_http_request_t *req,
                          gw_http_response_t *res)
{
    if (api_key_ok(gw_broker_config(br)->publish_api_key, req->api_key))
        return 1;
    gw_audit(GW_LOG_WARN, "api key refused", "path", req->path, "key",
             req->api_key ? "wrong" : "none", NULL);
    api_error(res, 401, "a valid API key is required");
    return 0;
}

/* ---- the dashboard --------------------------------------------------- */

/* The page is inline HTML, CSS and script that fetches only from here. */
#define API_DASHBOARD_HEADERS                                                  \
    "Cache-Control: no-store\r\n"                                              \
    "X-Content-Type-Options: nosniff\r\n"                                      \
    "X-Frame-Options: DENY\r\n"                                                \
    "Content-Security-Policy: default-src 'none'; connect-src 'self'; "        \
    "img-src data:; style-src 'unsafe-inline'; script-src 'unsafe-inline'\r\n"

/*
 * GET /dashboard: the page, which only reads /stats and /health. With
 * http.dashboard_auth it asks for the API key first, through the browser's
 * own prompt (HTTP Basic, any user name, the key as the password).
 */
static void api_dashboard(gw_broker_t *br, const gw_http_request_t *req,
                          gw_http_response_t *res)
{
    const gw_config_t *cfg = gw_broker_config(br);
    size_t len;
    const char *page = gw_dashboard_page(&len);

    if (cfg->dashboard_auth &&
        !api_key_ok(cfg->publish_api_key, req->api_key)) {
        if (req->api_key != NULL)
            gw_warn("audit: /dashboard rejected: wrong API key");
        res->headers = "WWW-Authenticate: Basic realm=\"gatewayd dashboard\", "
                       "charset=\"UTF-8\"\r\n";
        api_error(res, 401, "the dashboard asks for the API key");
        return;
    }
    res->status = 200;
    res->content_type = "text/html; charset=utf-8";
    res->headers = API_DASHBOARD_HEADERS;
    res->body = gw_malloc(len);
    memcpy(res->body, page, len);
    res->body_len = len;
}

/* GET /: a person who types the port alone lands on the dashboard. */
static void api_root(gw_broker_t *br, const gw_http_request_t *req,
                     gw_http_response_t *res)
{
    gw_buf_t b = {0};
    (void)br;
    (void)req;

    res->headers = "Location: /dashboard\r\n";
    gw_buf_printf(&b, "{\"location\":\"/dashboard\"}\n");
    api_reply(res, 302, &b);
}

/* Hands an envelope to the broker, and answers as /publish does: the
 * workers reached here, and whether it went to the whole cluster. */
static void api_ingest(gw_broker_t *br, const char *json, size_t len,
                       gw_http_response_t *res)
{
    const char *reason;
    gw_buf_t b = {0};
    int cluster;
    int n = gw_broker_publish(br, json, len, &reason, &cluster);

    if (n < 0) {
        api_error(res, n == GW_EFULL ? 503 : 400, reason);
        return;
    }
    gw_buf_printf(&b, "{\"accepted\":true,\"workers\":%d,\"scope\":\"%s\"}\n",
                  n, cluster ? "cluster" : "instance");
    api_reply(res, 202, &b);
}

static void api_publish(gw_broker_t *br, const gw_http_request_t *req,
                        gw_http_response_t *res)
{
    if (api_authorized(br, req, res))
        api_ingest(br, req->body, req->body_len, res);
}

/*
 * POST /sessions/{subscribe,unsubscribe,disconnect}: the envelope action
 * of the path's last part, for the sessions the body names.
 */
static void api_session_action(gw_broker_t *br, const gw_http_request_t *req,
                               gw_http_response_t *res)
{
    const char *action = strrchr(req->path, '/') + 1;
    cJSON *doc;
    char *text;

    if (!api_authorized(br, req, res))
        return;
    doc = gw_json_parse(req->body, req->body_len);
    if (!cJSON_IsObject(doc) ||
        cJSON_GetObjectItemCaseSensitive(doc, "action") != NULL) {
        api_error(res, 400, "the body must be a JSON object without action");
        cJSON_Delete(doc);
        return;
    }
    cJSON_AddStringToObject(doc, "action", action);
    text = cJSON_PrintUnformatted(doc);
    cJSON_Delete(doc);
    if (text == NULL) {
        gw_error("out of memory encoding a session action");
        abort();
    }
    api_ingest(br, text, strlen(text), res);
    cJSON_free(text);
}

/* ---- presence ------------------------------------------------------ */

#define API_PRESENCE_MAX_USERS 100 /* ids one GET /presence may ask for */

/* Presence answered: the deferred request gets the document, or 503. */
static void api_presence_cb(void *data, int status, char *json, size_t len)
{
    gw_buf_t b = {0};
    char *body;

    if (status == 0) {
        gw_http_answer(data, 200, NULL, json, len);
        return;
    }
    free(json);
    gw_buf_printf(&b, "{\"error\":\"%s\"}\n",
                  status == GW_ECLOSED ? "the cluster view needs Redis, "
                                         "which is not connected"
                                       : "Redis failed to answer");
    /* Stolen first: the order of a call's arguments is not defined. */
    body = gw_buf_steal(&b, &len);
    gw_http_answer(data, 503, NULL, body, len);
}

/* A query that could not be asked is answered at once. */
static void api_presence_asked(gw_http_later_t *l, int rc)
{
    if (rc != 0)
        api_presence_cb(l, rc == GW_EFULL ? GW_EIO : rc, NULL, 0);
}

/* Whether presence is on; 404 as for a route that does not exist when
 * not. */
static gw_presence_t *api_presence(gw_broker_t *br, gw_http_response_t *res)
{
    gw_presence_t *p = gw_broker_presence(br);

    if (p == NULL)
        api_error(res, 404, "presence is disabled (presence.enabled)");
    return p;
}

/* Splits "a,b,c" in place into at most max ids: how many, or -1 past max. */
static int api_split_ids(char *list, const char **ids, int max)
{
    int n = 0;

    for (char *save, *id = strtok_r(list, ",", &save); id != NULL;
         id = strtok_r(NULL, ",", &save)) {
        if (n == max)
            return -1;
        ids[n++] = id;
    }
    return n;
}

/* GET /presence?userIds=a,b,c: each user's status and session count. */
static void api_presence_users(gw_broker_t *br, const gw_http_request_t *req,
                               gw_http_response_t *res)
{
    const char *ids[API_PRESENCE_MAX_USERS];
    gw_presence_t *p;
    gw_http_later_t *l;
    char *list = NULL;
    int n;

    if (!api_authorized(br, req, res) || (p = api_presence(br, res)) == NULL)
        return;
    if (gw_query_get(req->query, strlen(req->query), "userIds", &list) != 0 ||
        (n = api_split_ids(list, ids, API_PRESENCE_MAX_USERS)) <= 0) {
        api_error(res, 400,
                  "userIds must list 1 to 100 user ids, comma-separated");
        goto Done;
    }
    l = gw_http_defer(res);
    api_presence_asked(l, gw_presence_users(p, ids, n, api_presence_cb, l));
Done:
    free(list);
}

/* The guild of a /guilds/{id}/presence path (heap), or NULL for any other
 * path. */
static char *api_presence_guild_of(const char *path)
{
    static const char head[] = "/guilds/", tail[] = "/presence";
    size_t len = strlen(path), h = sizeof(head) - 1, t = sizeof(tail) - 1;
    char *guild;

    if (len <= h + t || strncmp(path, head, h) != 0 ||
        strcmp(path + len - t, tail) != 0 ||
        memchr(path + h, '/', len - h - t) != NULL)
        return NULL;
    guild = gw_malloc(len - h - t + 1);
    memcpy(guild, path + h, len - h - t);
    guild[len - h - t] = '\0';
    return guild;
}

/* GET /guilds/{id}/presence: how many members are online, and some. */
static void api_presence_guild(gw_broker_t *br, const gw_http_request_t *req,
                               gw_http_response_t *res, const char *guild)
{
    gw_presence_t *p;
    gw_http_later_t *l;

    if (strcmp(req->method, "GET") != 0) {
        api_error(res, 405, "method not allowed");
        return;
    }
    if (!api_authorized(br, req, res) || (p = api_presence(br, res)) == NULL)
        return;
    l = gw_http_defer(res);
    api_presence_asked(l, gw_presence_guild(p, guild, api_presence_cb, l));
}

static const api_route_t api_routes[] = {
    {"GET", "/", api_root},
    {"GET", "/dashboard", api_dashboard},
    {"GET", "/health", api_health},
    {"GET", "/stats", api_stats},
    {"GET", "/metrics", api_metrics},
    {"POST", "/publish", api_publish},
    {"POST", "/sessions/subscribe", api_session_action},
    {"POST", "/sessions/unsubscribe", api_session_action},
    {"POST", "/sessions/disconnect", api_session_action},
    {"GET", "/presence", api_presence_users},
};

void gw_api_handle(const gw_http_request_t *req, gw_http_response_t *res,
                   void *data)
{
    char *guild = api_presence_guild_of(req->path);
    int path_found = 0;

    if (guild != NULL) {
        api_presence_guild(data, req, res, guild);
        free(guild);
        return;
    }
    for (size_t i = 0; i < sizeof(api_routes) / sizeof(api_routes[0]); i++) {
        if (strcmp(api_routes[i].path, req->path) != 0)
            continue;
        path_found = 1;
        if (strcmp(api_routes[i].method, req->method) == 0) {
            api_routes[i].fn(data, req, res);
            return;
        }
    }
    if (path_found)
        api_error(res, 405, "method not allowed");
    else
        api_error(res, 404, "not found");
}
