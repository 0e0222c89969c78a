#include "backend.h"

#include "call.h"
#include "envelope.h"
#include "msg.h"
#include "setup.h"

#include "gw/alloc.h"

#include <amqp.h>
#include <amqp_tcp_socket.h>
#include <errno.h>
#include <hiredis/hiredis.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

/* The largest --data gwctl reads (the gateway's own limit is
 * http.max_body_size, 1 MiB by default: it says so itself). */
#define BACKEND_DATA_MAX (16u << 20)
/* Connecting, logging in, and each answer of a broker. */
#define BACKEND_TIMEOUT_S 10
#define BACKEND_CHANNEL 1

/* The text of --data: as given, from @FILE, or from stdin for "-" (heap,
 * NUL-terminated). */
static int backend_read_data(const char *spec, char **out, size_t *len)
{
    FILE *f = NULL;
    int rc = CTL_EXIT_OK;

    *out = NULL;
    if (spec[0] != '@' && strcmp(spec, "-") != 0) {
        *len = strlen(spec);
        *out = gw_strdup(spec);
        return CTL_EXIT_OK;
    }
    f = spec[0] == '@' ? fopen(spec + 1, "rb") : stdin;
    if (f == NULL)
        return ctl_msg_fail("--data %s: %s", spec, strerror(errno));
    *out = gw_malloc(BACKEND_DATA_MAX + 1);
    *len = fread(*out, 1, BACKEND_DATA_MAX + 1, f);
    (*out)[*len > BACKEND_DATA_MAX ? BACKEND_DATA_MAX : *len] = '\0';
    if (ferror(f) || *len > BACKEND_DATA_MAX)
        rc = ctl_msg_fail("--data %s: %s", spec,
                          ferror(f) ? "cannot read" : "larger than 16 MiB");
    if (f != stdin)
        fclose(f);
    return rc;
}

/* ---- POST /publish --------------------------------------------------- */

static int backend_http(const ctl_setup_t *s, const ctl_opts_t *o,
                        const char *env)
{
    ctl_httpc_resp_t resp;
    int rc = ctl_call(s, o, "POST", "/publish", 1, env, &resp);

    if (rc == CTL_EXIT_OK && resp.status == 202)
        printf("%s%s", resp.body ? resp.body : "",
               resp.body && resp.body_len &&
                       resp.body[resp.body_len - 1] == '\n'
                   ? ""
                   : "\n");
    else if (rc == CTL_EXIT_OK && resp.status == 400)
        rc = ctl_msg_fail("the gateway refused the envelope (400): %s",
                          resp.body ? resp.body : "");
    else if (rc == CTL_EXIT_OK)
        rc = ctl_call_refused(s, o, &resp);
    ctl_httpc_resp_free(&resp);
    return rc;
}

/* ---- Redis ----------------------------------------------------------- */

/* The reply of a command, or NULL with the failure said. */
static redisReply *backend_redis_command(redisContext *c, const char *what,
                                         const char *fmt, ...)
{
    redisReply *r;
    va_list ap;

    va_start(ap, fmt);
    r = redisvCommand(c, fmt, ap);
    va_end(ap);
    if (r == NULL)
        ctl_msg_fail("Redis %s: %s", what, c->errstr);
    else if (r->type == REDIS_REPLY_ERROR) {
        ctl_msg_fail("Redis %s: %s", what, r->str);
        freeReplyObject(r);
        r = NULL;
    }
    return r;
}

static int backend_redis(const ctl_setup_t *s, const char *env)
{
    const gw_config_t *cfg = &s->cfg;
    struct timeval tv = {BACKEND_TIMEOUT_S, 0};
    redisContext *c =
        redisConnectWithTimeout(cfg->redis_host, cfg->redis_port, tv);
    redisReply *r = NULL;
    int rc = CTL_EXIT_FAIL;

    if (c == NULL || c->err) {
        ctl_msg_fail("cannot connect to Redis at %s:%d: %s (the gateway's "
                     "[redis] host and port, from %s)",
                     cfg->redis_host, cfg->redis_port,
                     c ? c->errstr : "out of memory", ctl_setup_source(s));
        goto done;
    }
    redisSetTimeout(c, tv);
    if (cfg->redis_password[0] != '\0' &&
        (r = backend_redis_command(c, "AUTH", "AUTH %s",
                                   cfg->redis_password)) == NULL)
        goto done;
    freeReplyObject(r);
    r = backend_redis_command(c, "PUBLISH", "PUBLISH %s %s", cfg->redis_channel,
                              env);
    if (r == NULL)
        goto done;
    if (r->integer == 0) {
        ctl_msg_fail("no gateway listens on Redis channel %s at %s:%d, so the "
                     "event reached no one (is redis.enabled on in the "
                     "gateway's config, with this Redis?)",
                     cfg->redis_channel, cfg->redis_host, cfg->redis_port);
        goto done;
    }
    printf("published on Redis channel %s at %s:%d: %lld gateway%s listening\n",
           cfg->redis_channel, cfg->redis_host, cfg->redis_port, r->integer,
           r->integer == 1 ? "" : "s");
    rc = CTL_EXIT_OK;
done:
    if (r != NULL)
        freeReplyObject(r);
    if (c != NULL)
        redisFree(c);
    return rc;
}

/* ---- RabbitMQ -------------------------------------------------------- */

/* Says why an AMQP call failed; returns CTL_EXIT_FAIL. */
static int backend_amqp_fail(const char *what, amqp_rpc_reply_t r)
{
    const amqp_method_t *m = &r.reply;

    if (r.reply_type == AMQP_RESPONSE_LIBRARY_EXCEPTION)
        return ctl_msg_fail("RabbitMQ %s: %s", what,
                            amqp_error_string2(r.library_error));
    if (r.reply_type == AMQP_RESPONSE_SERVER_EXCEPTION &&
        m->id == AMQP_CONNECTION_CLOSE_METHOD) {
        const amqp_connection_close_t *c = m->decoded;

        return ctl_msg_fail("RabbitMQ %s: %u %.*s", what, c->reply_code,
                            (int)c->reply_text.len,
                            (const char *)c->reply_text.bytes);
    }
    if (r.reply_type == AMQP_RESPONSE_SERVER_EXCEPTION &&
        m->id == AMQP_CHANNEL_CLOSE_METHOD) {
        const amqp_channel_close_t *c = m->decoded;

        return ctl_msg_fail("RabbitMQ %s: %u %.*s", what, c->reply_code,
                            (int)c->reply_text.len,
                            (const char *)c->reply_text.bytes);
    }
    return ctl_msg_fail("RabbitMQ %s: no answer", what);
}

/* Connects and logs in as the gateway does, then opens a channel in
 * confirm mode. */
static int backend_amqp_open(amqp_connection_state_t conn, const ctl_setup_t *s)
{
    const gw_config_t *cfg = &s->cfg;
    struct timeval tv = {BACKEND_TIMEOUT_S, 0};
    amqp_socket_t *sock = amqp_tcp_socket_new(conn);
    amqp_rpc_reply_t r;
    int st;

    if (sock == NULL)
        return ctl_msg_fail("RabbitMQ: cannot make a socket");
    st = amqp_socket_open_noblock(sock, cfg->amqp_host, cfg->amqp_port, &tv);
    if (st != AMQP_STATUS_OK)
        return ctl_msg_fail("cannot connect to RabbitMQ at %s:%d: %s (the "
                            "gateway's [amqp] host and port, from %s)",
                            cfg->amqp_host, cfg->amqp_port,
                            amqp_error_string2(st), ctl_setup_source(s));
    amqp_set_handshake_timeout(conn, &tv);
    amqp_set_rpc_timeout(conn, &tv);
    r = amqp_login(conn, cfg->amqp_vhost, 0, 131072, 0, AMQP_SASL_METHOD_PLAIN,
                   cfg->amqp_user, cfg->amqp_password);
    if (r.reply_type != AMQP_RESPONSE_NORMAL)
        return backend_amqp_fail("login", r);
    amqp_channel_open(conn, BACKEND_CHANNEL);
    if ((r = amqp_get_rpc_reply(conn)).reply_type != AMQP_RESPONSE_NORMAL)
        return backend_amqp_fail("channel.open", r);
    amqp_confirm_select(conn, BACKEND_CHANNEL);
    if ((r = amqp_get_rpc_reply(conn)).reply_type != AMQP_RESPONSE_NORMAL)
        return backend_amqp_fail("confirm.select", r);
    return CTL_EXIT_OK;
}

/*
 * Waits for RabbitMQ's verdict on the one publish: basic.ack, after a
 * basic.return when no queue took it (mandatory), or basic.nack; a
 * channel closed by the server (an exchange that does not exist) says why.
 */
static int backend_amqp_confirm(amqp_connection_state_t conn,
                                const gw_config_t *cfg, const char *key)
{
    struct timeval tv = {BACKEND_TIMEOUT_S, 0};
    amqp_frame_t f;
    int returned = 0, st;

    for (;;) {
        st = amqp_simple_wait_frame_noblock(conn, &f, &tv);
        if (st != AMQP_STATUS_OK)
            return ctl_msg_fail("RabbitMQ did not confirm the publish: %s",
                                amqp_error_string2(st));
        if (f.frame_type != AMQP_FRAME_METHOD)
            continue; /* the returned message's header and body */
        switch (f.payload.method.id) {
        case AMQP_BASIC_RETURN_METHOD: returned = 1; break;
        case AMQP_BASIC_NACK_METHOD:
            return ctl_msg_fail("RabbitMQ refused the publish (basic.nack)");
        case AMQP_BASIC_ACK_METHOD:
            if (returned)
                return ctl_msg_fail(
                    "no queue is bound to exchange %s for routing key %s, so "
                    "no gateway takes it (amqp.binding_keys; is amqp.enabled "
                    "on in the gateway's config, with this RabbitMQ?)",
                    cfg->amqp_exchange, key);
            return CTL_EXIT_OK;
        case AMQP_CHANNEL_CLOSE_METHOD:
        case AMQP_CONNECTION_CLOSE_METHOD: {
            amqp_rpc_reply_t r = {.reply_type = AMQP_RESPONSE_SERVER_EXCEPTION,
                                  .reply = f.payload.method};

            return backend_amqp_fail("basic.publish", r);
        }
        default: break;
        }
    }
}

static int backend_amqp(const ctl_setup_t *s, const ctl_opts_t *o,
                        const char *env)
{
    const gw_config_t *cfg = &s->cfg;
    const char *key = o->routing_key ? o->routing_key : o->event;
    amqp_connection_state_t conn = amqp_new_connection();
    amqp_basic_properties_t props = {
        ._flags = AMQP_BASIC_CONTENT_TYPE_FLAG | AMQP_BASIC_DELIVERY_MODE_FLAG,
        .content_type = amqp_cstring_bytes("application/json"),
        .delivery_mode = AMQP_DELIVERY_PERSISTENT,
    };
    int rc, st;

    if (conn == NULL)
        abort(); /* rabbitmq-c fails only when out of memory */
    if ((rc = backend_amqp_open(conn, s)) != CTL_EXIT_OK)
        goto done;
    st = amqp_basic_publish(
        conn, BACKEND_CHANNEL, amqp_cstring_bytes(cfg->amqp_exchange),
        amqp_cstring_bytes(key), 1, 0, &props, amqp_cstring_bytes(env));
    if (st != AMQP_STATUS_OK)
        rc = ctl_msg_fail("RabbitMQ basic.publish: %s", amqp_error_string2(st));
    else if ((rc = backend_amqp_confirm(conn, cfg, key)) == CTL_EXIT_OK)
        printf("published to RabbitMQ exchange %s at %s:%d with routing key "
               "%s: confirmed\n",
               cfg->amqp_exchange, cfg->amqp_host, cfg->amqp_port, key);
    if (rc == CTL_EXIT_OK)
        amqp_connection_close(conn, AMQP_REPLY_SUCCESS);
done:
    amqp_destroy_connection(conn);
    return rc;
}

/* ---- the command ----------------------------------------------------- */

static int backend_run(const ctl_opts_t *o)
{
    ctl_setup_t setup;
    char *data = NULL, *env = NULL, err[256];
    size_t len = 0;
    int rc;

    if (o->redis && o->amqp)
        return ctl_msg_usage("--redis or --amqp, not both");
    if ((rc = ctl_setup_load(&setup, o, 0)) != CTL_EXIT_OK ||
        (o->data != NULL &&
         (rc = backend_read_data(o->data, &data, &len)) != CTL_EXIT_OK))
        goto done;
    if (ctl_envelope_build(o, data, len, &env, err, sizeof(err)) != 0) {
        rc = ctl_msg_usage("%s", err);
        goto done;
    }
    rc = o->redis  ? backend_redis(&setup, env)
         : o->amqp ? backend_amqp(&setup, o, env)
                   : backend_http(&setup, o, env);
done:
    free(env);
    free(data);
    ctl_setup_free(&setup);
    return rc;
}

static const ctl_opt_t backend_opts[] = {
    CTL_OPT("guild", 0, CTL_LIST, guilds, "GUILD", "to the guild's members"),
    CTL_OPT("user", 0, CTL_LIST, users, "USER",
            "to every session of the user (repeat for several)"),
    CTL_OPT("session", 0, CTL_LIST, sessions, "SESSION",
            "to one session (its id from ready/identified)"),
    CTL_OPT("broadcast", 0, CTL_FLAG, broadcast, NULL, "to everyone"),
    CTL_OPT("event", 0, CTL_STR, event, "NAME",
            "the event's name, e.g. message.create"),
    CTL_OPT("data", 0, CTL_STR, data, "JSON|@FILE|-",
            "its data, a JSON object: inline, from a file, or from stdin"),
    CTL_OPT_NUM("priority", CTL_INT, priority, 1, 4, "1-4",
                "1 critical .. 4 low (default 3)"),
    CTL_OPT("exclude-session", 0, CTL_STR, exclude_session, "SID",
            "skip that session"),
    CTL_OPT("exclude-user", 0, CTL_STR, exclude_user, "USER",
            "skip every session of that user"),
    CTL_OPT("id", 0, CTL_STR, id, "ID",
            "the event's identity across instances"),
    CTL_OPT("redis", 0, CTL_FLAG, redis, NULL,
            "publish on the config's Redis channel (redis.*)"),
    CTL_OPT("amqp", 0, CTL_FLAG, amqp, NULL,
            "publish to the config's RabbitMQ exchange (amqp.*)"),
    CTL_OPT("routing-key", 0, CTL_STR, routing_key, "KEY",
            "with --amqp: the routing key (default: the event's name)"),
    CTL_OPT("url", 0, CTL_STR, url, "URL",
            "the gateway's http:// address (default: the config's "
            "server.http_port on loopback)"),
    CTL_OPT("api-key", 0, CTL_STR, api_key, "KEY",
            "the HTTP API's key (default: the config's "
            "http.publish_api_key)"),
    CTL_OPT("ca-file", 0, CTL_STR, ca_file, "FILE",
            "trust the certificates of this PEM file for https://"),
    CTL_OPT("insecure", 0, CTL_FLAG, insecure, NULL,
            "do not check the server's certificate"),
};

const ctl_cmd_t ctl_publish_cmd = {
    .name = "publish",
    .synopsis = "--guild G | --user U... | --session S | --broadcast "
                "--event NAME [--data JSON|@FILE|-] [--redis | --amqp]",
    .summary = "Send an event to clients, as a backend does.",
    .details =
        "By default the envelope goes to POST /publish with the API key,\n"
        "and the gateway's answer is printed ({\"accepted\":true,\n"
        "\"workers\":N}). --redis publishes it on redis.channel, which every\n"
        "gateway with Redis enabled delivers; --amqp to amqp.exchange with\n"
        "publisher confirms, as a mandatory message, so that one no queue\n"
        "takes is reported. Example:\n"
        "  gwctl publish --guild g1 --event message.create "
        "--data '{\"content\":\"hello\"}'\n",
    .opts = backend_opts,
    .nopts = sizeof(backend_opts) / sizeof(backend_opts[0]),
    .run = backend_run,
};
