#include "ops.h"

#include "call.h"
#include "msg.h"
#include "setup.h"
#include "table.h"

#include "gw/alloc.h"
#include "gw/buf.h"
#include "gw/json.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Prints the body as it came, ending with a newline. */
static void ops_print_raw(const ctl_httpc_resp_t *resp)
{
    const char *body = resp->body ? resp->body : "";

    fputs(body, stdout);
    if (resp->body_len == 0 || body[resp->body_len - 1] != '\n')
        fputc('\n', stdout);
}

/* The answer's JSON, or NULL with the failure said. */
static cJSON *ops_json(const ctl_httpc_resp_t *resp)
{
    cJSON *j = resp->body ? gw_json_parse(resp->body, resp->body_len) : NULL;

    if (!cJSON_IsObject(j)) {
        cJSON_Delete(j);
        ctl_msg_fail("the gateway's answer is not a JSON object: %.80s",
                     resp->body ? resp->body : "(empty)");
        return NULL;
    }
    return j;
}

static void ops_print_buf(gw_buf_t *b)
{
    fwrite(b->data, 1, b->len, stdout);
    free(b->data);
}

/* ---- health ----------------------------------------------------------- */

/* Whether health is "ok"; otherwise says what is wrong. */
static int ops_health_verdict(const cJSON *h)
{
    const cJSON *status = cJSON_GetObjectItemCaseSensitive(h, "status");
    const cJSON *links = cJSON_GetObjectItemCaseSensitive(h, "links"), *it;

    if (cJSON_IsString(status) && strcmp(status->valuestring, "ok") == 0)
        return CTL_EXIT_OK;
    if (cJSON_IsString(status) && strcmp(status->valuestring, "draining") == 0)
        return ctl_msg_fail("the gateway is draining (SIGTERM): it is "
                            "closing its clients and will exit");
    cJSON_ArrayForEach(it, links)
    {
        if (cJSON_IsString(it) && strcmp(it->valuestring, "up") != 0 &&
            strcmp(it->valuestring, "disabled") != 0)
            ctl_msg_note("the %s link is %s: the gateway retries it; is the "
                         "server up at the [%s] address of its config?",
                         it->string, it->valuestring, it->string);
    }
    return ctl_msg_fail("the gateway is %s: it serves its clients, without "
                        "the links above",
                        cJSON_IsString(status) ? status->valuestring : "?");
}

static int ops_health_run(const ctl_opts_t *o)
{
    ctl_setup_t setup;
    ctl_httpc_resp_t resp = {0};
    cJSON *h = NULL;
    gw_buf_t b = {0};
    int rc;

    if ((rc = ctl_setup_load(&setup, o, 0)) != CTL_EXIT_OK ||
        (rc = ctl_call(&setup, o, "GET", "/health", 0, NULL, &resp)) !=
            CTL_EXIT_OK)
        goto done;
    if (resp.status != 200 && resp.status != 503) {
        rc = ctl_call_refused(&setup, o, &resp);
        goto done;
    }
    if ((h = ops_json(&resp)) == NULL) {
        rc = CTL_EXIT_FAIL;
        goto done;
    }
    if (o->json)
        ops_print_raw(&resp);
    else {
        ctl_table_health(h, &b);
        ops_print_buf(&b);
    }
    rc = ops_health_verdict(h);
done:
    cJSON_Delete(h);
    ctl_httpc_resp_free(&resp);
    ctl_setup_free(&setup);
    return rc;
}

/* ---- stats ------------------------------------------------------------ */

static int ops_stats_run(const ctl_opts_t *o)
{
    ctl_setup_t setup;
    ctl_httpc_resp_t resp = {0};
    cJSON *s = NULL;
    gw_buf_t b = {0};
    int rc;

    if ((rc = ctl_setup_load(&setup, o, 0)) != CTL_EXIT_OK ||
        (rc = ctl_call(&setup, o, "GET", "/stats", 0, NULL, &resp)) !=
            CTL_EXIT_OK)
        goto done;
    if (resp.status != 200) {
        rc = ctl_call_refused(&setup, o, &resp);
        goto done;
    }
    if (o->json) {
        ops_print_raw(&resp);
        goto done;
    }
    if ((s = ops_json(&resp)) == NULL) {
        rc = CTL_EXIT_FAIL;
        goto done;
    }
    if (ctl_table_stats(s, o->all, &b) != 0) {
        free(b.data);
        rc = ctl_msg_fail("the gateway's /stats has no workers: is it "
                          "gatewayd? (--json shows what it said)");
        goto done;
    }
    ops_print_buf(&b);
done:
    cJSON_Delete(s);
    ctl_httpc_resp_free(&resp);
    ctl_setup_free(&setup);
    return rc;
}

/* ---- presence --------------------------------------------------------- */

/* Appends s percent-encoded but for RFC 3986's unreserved characters. */
static void ops_escape(gw_buf_t *b, const char *s)
{
    for (; *s != '\0'; s++) {
        unsigned char c = (unsigned char)*s;

        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
            (c >= '0' && c <= '9') || strchr("-._~", c) != NULL)
            gw_buf_append(b, s, 1);
        else
            gw_buf_printf(b, "%%%02X", c);
    }
}

/* The path of the question: the users' or the guild's. */
static int ops_presence_path(const ctl_opts_t *o, gw_buf_t *b)
{
    const char *g;

    if ((o->users.n > 0) == (o->guilds.n > 0) || o->guilds.n > 1)
        return ctl_msg_usage("give --user U (one or more), or one --guild G");
    if (o->users.n > 0) {
        gw_buf_printf(b, "/presence?userIds=");
        for (size_t i = 0; i < o->users.n; i++) {
            if (i > 0)
                gw_buf_printf(b, ",");
            ops_escape(b, o->users.v[i]);
        }
        return CTL_EXIT_OK;
    }
    /* The gateway reads the guild from the path as it is, undecoded. */
    g = o->guilds.v[0];
    if (g[strspn(g, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                    "0123456789-._~:@")] != '\0')
        return ctl_msg_usage("--guild: '%s' cannot go into the path "
                             "/guilds/{id}/presence as it is",
                             g);
    gw_buf_printf(b, "/guilds/%s/presence", g);
    return CTL_EXIT_OK;
}

static void ops_presence_users(const cJSON *p, gw_buf_t *b)
{
    const cJSON *users = cJSON_GetObjectItemCaseSensitive(p, "users"), *u;
    const cJSON *scope = cJSON_GetObjectItemCaseSensitive(p, "scope");

    cJSON_ArrayForEach(u, users)
    {
        const cJSON *id = cJSON_GetObjectItemCaseSensitive(u, "userId");
        const cJSON *st = cJSON_GetObjectItemCaseSensitive(u, "status");
        const cJSON *n = cJSON_GetObjectItemCaseSensitive(u, "sessions");

        if (cJSON_IsString(id) && cJSON_IsString(st) && cJSON_IsNumber(n))
            gw_buf_printf(b, "%s %s, %.0f session%s\n", id->valuestring,
                          st->valuestring, n->valuedouble,
                          n->valuedouble == 1 ? "" : "s");
    }
    if (cJSON_IsString(scope) && strcmp(scope->valuestring, "instance") == 0)
        gw_buf_printf(b, "(this instance only: the gateway has no Redis to "
                         "count the cluster's)\n");
}

static void ops_presence_guild(const cJSON *p, gw_buf_t *b)
{
    const cJSON *g = cJSON_GetObjectItemCaseSensitive(p, "guildId");
    const cJSON *n = cJSON_GetObjectItemCaseSensitive(p, "online");
    const cJSON *ids = cJSON_GetObjectItemCaseSensitive(p, "userIds"), *u;

    gw_buf_printf(b, "guild %s: %.0f online\n",
                  cJSON_IsString(g) ? g->valuestring : "?",
                  cJSON_IsNumber(n) ? n->valuedouble : 0);
    cJSON_ArrayForEach(u, ids)
    {
        if (cJSON_IsString(u))
            gw_buf_printf(b, "  %s\n", u->valuestring);
    }
}

static int ops_presence_run(const ctl_opts_t *o)
{
    ctl_setup_t setup;
    ctl_httpc_resp_t resp = {0};
    gw_buf_t path = {0}, b = {0};
    cJSON *p = NULL;
    int rc;

    if ((rc = ops_presence_path(o, &path)) != CTL_EXIT_OK) {
        free(path.data);
        return rc;
    }
    if ((rc = ctl_setup_load(&setup, o, 0)) != CTL_EXIT_OK ||
        (rc = ctl_call(&setup, o, "GET", path.data, 1, NULL, &resp)) !=
            CTL_EXIT_OK)
        goto done;
    if (resp.status == 404)
        rc = ctl_msg_fail("presence is off on this gateway "
                          "(presence.enabled = false)");
    else if (resp.status != 200)
        rc = ctl_call_refused(&setup, o, &resp);
    else if (o->json)
        ops_print_raw(&resp);
    else if ((p = ops_json(&resp)) == NULL)
        rc = CTL_EXIT_FAIL;
    else {
        (o->users.n > 0 ? ops_presence_users : ops_presence_guild)(p, &b);
        ops_print_buf(&b);
    }
done:
    cJSON_Delete(p);
    free(path.data);
    ctl_httpc_resp_free(&resp);
    ctl_setup_free(&setup);
    return rc;
}

/* ---- disconnect ------------------------------------------------------- */

/* The body of POST /sessions/disconnect, or NULL after a usage error. */
static char *ops_disconnect_body(const ctl_opts_t *o)
{
    cJSON *body;
    char *text;

    if ((o->users.n > 0) == (o->sessions.n > 0) || o->sessions.n > 1) {
        ctl_msg_usage("give --user U (one or more), or one --session S");
        return NULL;
    }
    body = cJSON_CreateObject();
    if (o->sessions.n == 1)
        cJSON_AddStringToObject(body, "sessionId", o->sessions.v[0]);
    else if (o->users.n == 1)
        cJSON_AddStringToObject(body, "userId", o->users.v[0]);
    else
        cJSON_AddItemToObject(
            body, "userIds",
            cJSON_CreateStringArray((const char *const *)o->users.v,
                                    (int)o->users.n));
    if (o->code != 0)
        cJSON_AddNumberToObject(body, "code", (double)o->code);
    if (o->reason != NULL)
        cJSON_AddStringToObject(body, "reason", o->reason);
    if ((text = cJSON_PrintUnformatted(body)) == NULL)
        abort(); /* cJSON fails only when out of memory */
    cJSON_Delete(body);
    return text;
}

static int ops_disconnect_run(const ctl_opts_t *o)
{
    ctl_setup_t setup;
    ctl_httpc_resp_t resp = {0};
    char *body = ops_disconnect_body(o);
    int rc;

    if (body == NULL)
        return CTL_EXIT_USAGE;
    if ((rc = ctl_setup_load(&setup, o, 0)) == CTL_EXIT_OK &&
        (rc = ctl_call(&setup, o, "POST", "/sessions/disconnect", 1, body,
                       &resp)) == CTL_EXIT_OK) {
        if (resp.status == 202)
            ops_print_raw(&resp);
        else if (resp.status == 400)
            rc = ctl_msg_fail("the gateway refused it (400): %s",
                              resp.body ? resp.body : "");
        else
            rc = ctl_call_refused(&setup, o, &resp);
    }
    free(body);
    ctl_httpc_resp_free(&resp);
    ctl_setup_free(&setup);
    return rc;
}

/* ---- the tables ------------------------------------------------------- */

#define OPS_URL                                                                \
    CTL_OPT("url", 0, CTL_STR, url, "URL",                                     \
            "the gateway's http:// address (default: the config's "            \
            "server.http_port on loopback)")
#define OPS_KEY                                                                \
    CTL_OPT("api-key", 0, CTL_STR, api_key, "KEY",                             \
            "the HTTP API's key (default: the config's "                       \
            "http.publish_api_key)")
#define OPS_JSON                                                               \
    CTL_OPT("json", 0, CTL_FLAG, json, NULL, "print the JSON as it came")

static const ctl_opt_t ops_health_opts[] = {OPS_URL, OPS_JSON};

const ctl_cmd_t ctl_health_cmd = {
    .name = "health",
    .synopsis = "[--url http://...] [--json]",
    .summary = "Show GET /health; exit 0 only when the gateway is ok.",
    .details = "Exit status 1 when the gateway is degraded (a broker link "
               "down) or\ndraining, or cannot be reached.\n",
    .opts = ops_health_opts,
    .nopts = sizeof(ops_health_opts) / sizeof(ops_health_opts[0]),
    .run = ops_health_run,
};

static const ctl_opt_t ops_stats_opts[] = {
    OPS_URL,
    OPS_JSON,
    CTL_OPT("all", 0, CTL_FLAG, all, NULL,
            "also the counters that are zero everywhere"),
};

const ctl_cmd_t ctl_stats_cmd = {
    .name = "stats",
    .synopsis = "[--url http://...] [--json] [--all]",
    .summary = "Show GET /stats: counters per worker and in total.",
    .details = "The names are /stats' own; the README's HTTP API section "
               "says what each counts.\nLatency quantiles are the upper "
               "bounds of their histogram buckets.\n",
    .opts = ops_stats_opts,
    .nopts = sizeof(ops_stats_opts) / sizeof(ops_stats_opts[0]),
    .run = ops_stats_run,
};

static const ctl_opt_t ops_presence_opts[] = {
    CTL_OPT("user", 0, CTL_LIST, users, "USER",
            "whether the user is online, and its sessions (repeat, or "
            "u1,u2)"),
    CTL_OPT("guild", 0, CTL_LIST, guilds, "GUILD",
            "how many of the guild's members are online, and some"),
    OPS_URL,
    OPS_KEY,
    OPS_JSON,
};

const ctl_cmd_t ctl_presence_cmd = {
    .name = "presence",
    .synopsis = "--user U... | --guild G [--url http://...] [--json]",
    .summary = "Ask who is online (GET /presence, GET /guilds/{id}/presence).",
    .details = "Counts are the cluster's when the gateway has Redis, else its "
               "own.\n",
    .opts = ops_presence_opts,
    .nopts = sizeof(ops_presence_opts) / sizeof(ops_presence_opts[0]),
    .run = ops_presence_run,
};

static const ctl_opt_t ops_disconnect_opts[] = {
    CTL_OPT("user", 0, CTL_LIST, users, "USER",
            "every session of the user (repeat for several)"),
    CTL_OPT("session", 0, CTL_LIST, sessions, "SESSION", "one session"),
    CTL_OPT_NUM("code", CTL_INT, code, 4000, 4999, "CODE",
                "the close code the clients get (default 4000)"),
    CTL_OPT("reason", 0, CTL_STR, reason, "TEXT",
            "the close reason, at most 120 bytes"),
    OPS_URL,
    OPS_KEY,
};

const ctl_cmd_t ctl_disconnect_cmd = {
    .name = "disconnect",
    .synopsis = "--user U... | --session S [--code 4000-4999] [--reason TEXT]",
    .summary = "Close sessions (POST /sessions/disconnect).",
    .details = "The sessions on the instance that answers the request are "
               "closed, parked\nones included; for every instance, publish "
               "the action through Redis\nor RabbitMQ from a backend.\n",
    .opts = ops_disconnect_opts,
    .nopts = sizeof(ops_disconnect_opts) / sizeof(ops_disconnect_opts[0]),
    .run = ops_disconnect_run,
};
