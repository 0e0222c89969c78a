/*
 * gwctl's parsers on arbitrary bytes; the first byte picks one:
 *   0  a command line (words split at NUL) through every command's table:
 *      list items never empty, numbers within their bounds
 *   1  a duration: never negative
 *   2  a URL: a host, a port 1-65535, a path from '/' without blanks
 *   3  an HTTP response in two pieces (the next byte splits): a 101 ends
 *      within the input
 *   4  JSON from the gateway: the /stats table, the /health fields, and
 *      tail's line
 *   5  a token through check-token's report
 */
#include "args.h"
#include "backend.h"
#include "httpc.h"
#include "ops.h"
#include "table.h"
#include "tail.h"
#include "tokens.h"
#include "url.h"

#include "gw/json.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const ctl_cmd_t *const fuzz_cmds[] = {
    &ctl_token_cmd,    &ctl_tail_cmd,       &ctl_publish_cmd,
    &ctl_health_cmd,   &ctl_stats_cmd,      &ctl_check_token_cmd,
    &ctl_presence_cmd, &ctl_disconnect_cmd,
};

static void fuzz_list(const ctl_list_t *l)
{
    for (size_t i = 0; i < l->n; i++)
        if (l->v[i][0] == '\0')
            abort();
}

static void fuzz_args(char *text, size_t len)
{
    char *words[64];
    int n = 0;
    ctl_opts_t o;
    char err[256];

    for (size_t i = 0; i < len && n < 64; i += strlen(text + i) + 1)
        words[n++] = text + i;
    for (size_t c = 0; c < sizeof(fuzz_cmds) / sizeof(fuzz_cmds[0]); c++) {
        if (ctl_args_parse(fuzz_cmds[c], n, words, &o, err, sizeof(err)) == 0) {
            fuzz_list(&o.users);
            fuzz_list(&o.guilds);
            if (o.ttl_s < 0 || o.priority < 0 || o.priority > 4 ||
                (o.code != 0 && (o.code < 4000 || o.code > 4999)))
                abort();
        }
        ctl_args_free(&o);
    }
}

static void fuzz_url(const char *text)
{
    ctl_url_t u;

    if (ctl_url_parse(text, &u) != 0)
        return;
    if (u.host[0] == '\0' || atoi(u.port) < 1 || atoi(u.port) > 65535 ||
        u.path[0] != '/' || strpbrk(u.path, " \r\n\t") != NULL)
        abort();
}

static void fuzz_http(const char *text, size_t len)
{
    ctl_httpc_resp_t r;
    size_t at = len > 0 ? (unsigned char)text[0] % len : 0, used;
    int rc;

    ctl_httpc_resp_init(&r, "Sec-WebSocket-Accept");
    rc = ctl_httpc_resp_feed(&r, text, at, 0, &used);
    if (rc == 0)
        rc = ctl_httpc_resp_feed(&r, text + at, len - at, 0, &used);
    if (rc == 0)
        rc = ctl_httpc_resp_feed(&r, NULL, 0, 1, &used);
    if (rc == 1 && r.status == 101 && used > len)
        abort();
    ctl_httpc_resp_free(&r);
}

static void fuzz_json(const char *text, size_t len)
{
    cJSON *j = gw_json_parse(text, len);
    gw_buf_t out = {0};

    (void)ctl_table_stats(j, len % 2, &out);
    ctl_table_health(j, &out);
    (void)ctl_tail_format(j, 0, &out);
    free(out.data);
    cJSON_Delete(j);
}

static void fuzz_token(const char *text)
{
    static const char secret[] = "fuzz-secret";
    gw_jwt_verifier_t v = {.algs = GW_JWT_ALL,
                           .secret = (const uint8_t *)secret,
                           .secret_len = sizeof(secret) - 1,
                           .audience = "app",
                           .issuer = "idp"};
    gw_buf_t out = {0};

    gw_jwt_verifier_init(&v);
    (void)ctl_tokens_check(&v, text, 1800000000, &out);
    free(out.data);
    gw_jwt_verifier_free(&v);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text;
    size_t len;

    if (size == 0)
        return 0;
    /* An exact-size copy and its NUL, so that ASan sees reads past it. */
    len = size - 1;
    text = malloc(len + 1);
    memcpy(text, data + 1, len);
    text[len] = '\0';
    switch (data[0] % 6) {
    case 0: fuzz_args(text, len); break;
    case 1: {
        int64_t s;

        if (ctl_args_duration(text, &s) == 0 && s < 0)
            abort();
        break;
    }
    case 2: fuzz_url(text); break;
    case 3: fuzz_http(text, len); break;
    case 4: fuzz_json(text, len); break;
    default: fuzz_token(text); break;
    }
    free(text);
    return 0;
}
