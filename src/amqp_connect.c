/*
 * The RabbitMQ link's connection attempt on the thread pool
 * (include/gw/amqp_connect.h). Every call here blocks, each bounded by
 * RMQ_JOB_TIMEOUT_S; any failure destroys the connection without the
 * polite close, which could wait on a dead socket.
 *
 * Static helpers are rmq_job_*: amqp_* is rabbitmq-c's namespace.
 */
#include "gw/amqp_connect.h"

#include "gw/alloc.h"
#include "gw/amqp_key.h"
#include "gw/amqp_wire.h"
#include "gw/error.h"

#include <amqp_tcp_socket.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#define RMQ_JOB_TIMEOUT_S 5    /* connect, login, each declaration, close */
#define RMQ_JOB_HEARTBEAT_S 30 /* asked for; the server may lower it */

static char *rmq_job_concat(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    char *s = gw_malloc(la + lb + 1);

    memcpy(s, a, la);
    memcpy(s + la, b, lb + 1);
    return s;
}

gw_amqp_connect_t *gw_amqp_connect_new(gw_amqp_t *link, const gw_config_t *cfg,
                                       const char *instance_id)
{
    gw_amqp_connect_t *job = gw_calloc(1, sizeof(*job));

    job->req.data = job;
    job->link = link;
    job->fd = -1;
    uv_mutex_init(&job->lock);
    job->host = gw_strdup(cfg->amqp_host);
    job->user = gw_strdup(cfg->amqp_user);
    job->password = gw_strdup(cfg->amqp_password);
    job->vhost = gw_strdup(cfg->amqp_vhost);
    job->exchange = gw_strdup(cfg->amqp_exchange);
    job->upstream = gw_strdup(cfg->amqp_upstream_exchange);
    job->dlx = rmq_job_concat(cfg->amqp_exchange, ".dlx");
    job->dlq = rmq_job_concat(cfg->amqp_exchange, ".dlq");
    job->queue = rmq_job_concat(cfg->amqp_queue_prefix, instance_id);
    job->keys = gw_strdup(cfg->amqp_binding_keys);
    job->port = cfg->amqp_port;
    job->durable = cfg->amqp_durable;
    job->targeted = gw_amqp_key_targeted(cfg);
    job->prefetch = (uint16_t)cfg->amqp_prefetch;
    return job;
}

void gw_amqp_connect_free(gw_amqp_connect_t *job)
{
    uv_mutex_destroy(&job->lock);
    free(job->host);
    free(job->user);
    free(job->password);
    free(job->vhost);
    free(job->exchange);
    free(job->upstream);
    free(job->dlx);
    free(job->dlq);
    free(job->queue);
    free(job->keys);
    free(job->generation);
    free(job->previous);
    free(job);
}

/* 0 when reply is normal; otherwise describes it in job->err. */
static int rmq_job_reply(gw_amqp_connect_t *job, amqp_rpc_reply_t r,
                         const char *what)
{
    char text[200];

    switch (r.reply_type) {
    case AMQP_RESPONSE_NORMAL: return 0;
    case AMQP_RESPONSE_LIBRARY_EXCEPTION:
        snprintf(text, sizeof(text), "%s", amqp_error_string2(r.library_error));
        break;
    case AMQP_RESPONSE_SERVER_EXCEPTION:
        if (gw_amqp_wire_close_text(&r.reply, text, sizeof(text)) != 0)
            snprintf(text, sizeof(text), "unexpected method 0x%08x",
                     r.reply.id);
        break;
    default: snprintf(text, sizeof(text), "no reply"); break;
    }
    snprintf(job->err, sizeof(job->err), "%s: %s", what, text);
    return GW_ECLOSED;
}

static int rmq_job_check(gw_amqp_connect_t *job, const char *what)
{
    return rmq_job_reply(job, amqp_get_rpc_reply(job->conn), what);
}

static int rmq_job_exchange(gw_amqp_connect_t *job, const char *name)
{
    amqp_exchange_declare(job->conn, GW_AMQP_CHANNEL_CONSUME,
                          amqp_cstring_bytes(name), amqp_cstring_bytes("topic"),
                          0, 1, 0, 0, amqp_empty_table);
    return rmq_job_check(job, "exchange.declare");
}

static int rmq_job_bind(gw_amqp_connect_t *job, const char *queue,
                        const char *exchange, amqp_bytes_t key)
{
    amqp_queue_bind(job->conn, GW_AMQP_CHANNEL_CONSUME,
                    amqp_cstring_bytes(queue), amqp_cstring_bytes(exchange),
                    key, amqp_empty_table);
    return rmq_job_check(job, "queue.bind");
}

static int rmq_job_dead_letters(gw_amqp_connect_t *job)
{
    if (rmq_job_exchange(job, job->dlx) != 0)
        return GW_ECLOSED;
    amqp_queue_declare(job->conn, GW_AMQP_CHANNEL_CONSUME,
                       amqp_cstring_bytes(job->dlq), 0, 1, 0, 0,
                       amqp_empty_table);
    if (rmq_job_check(job, "queue.declare (dead letters)") != 0)
        return GW_ECLOSED;
    /* Dead-lettered messages keep their routing key: "#" takes them all. */
    return rmq_job_bind(job, job->dlq, job->dlx, amqp_cstring_bytes("#"));
}

/*
 * This instance's queue. Durable: it outlives the connection and keeps the
 * events published while the instance restarts. Otherwise exclusive and
 * auto-delete: RabbitMQ drops it with the connection.
 */
static int rmq_job_queue(gw_amqp_connect_t *job)
{
    amqp_table_entry_t dlx = {
        .key = amqp_cstring_bytes("x-dead-letter-exchange"),
        .value = {.kind = AMQP_FIELD_KIND_UTF8,
                  .value.bytes = amqp_cstring_bytes(job->dlx)},
    };
    amqp_table_t args = {.num_entries = 1, .entries = &dlx};
    int durable = job->durable != 0;

    amqp_queue_declare(job->conn, GW_AMQP_CHANNEL_CONSUME,
                       amqp_cstring_bytes(job->queue), 0, durable, !durable,
                       !durable, args);
    return rmq_job_check(job, "queue.declare");
}

/* Binds (on) or unbinds the queue with one pattern. An unbind of a
 * binding that does not exist succeeds. */
static int rmq_job_key(gw_amqp_connect_t *job, int on, amqp_bytes_t key)
{
    if (on)
        return rmq_job_bind(job, job->queue, job->exchange, key);
    amqp_queue_unbind(job->conn, GW_AMQP_CHANNEL_CONSUME,
                      amqp_cstring_bytes(job->queue),
                      amqp_cstring_bytes(job->exchange), key, amqp_empty_table);
    return rmq_job_check(job, "queue.unbind");
}

/* The same with each comma-separated pattern of amqp.binding_keys, spaces
 * trimmed. */
static int rmq_job_keys(gw_amqp_connect_t *job, int on)
{
    const char *p = job->keys;

    while (*p != '\0') {
        size_t n = strcspn(p, ",");
        const char *start = p, *end = p + n;

        while (start < end && (*start == ' ' || *start == '\t'))
            start++;
        while (end > start && (end[-1] == ' ' || end[-1] == '\t'))
            end--;
        amqp_bytes_t key = {.len = (size_t)(end - start),
                            .bytes = (void *)start};
        if (key.len > 0 && rmq_job_key(job, on, key) != 0)
            return GW_ECLOSED;
        p += n + (p[n] == ',');
    }
    return 0;
}

/* ---- targeted routing's generations ---------------------------------- */

/*
 * Whether exchange `name` exists: 1 or 0, or GW_ECLOSED. Asked on the
 * binding channel with a passive declare, which RabbitMQ answers for a
 * missing exchange by closing the channel (404): it is opened again.
 */
static int rmq_job_exists(gw_amqp_connect_t *job, const char *name)
{
    amqp_rpc_reply_t r;
    amqp_channel_close_ok_t ok = {0};

    amqp_exchange_declare(
        job->conn, GW_AMQP_CHANNEL_BIND, amqp_cstring_bytes(name),
        amqp_cstring_bytes("fanout"), 1, 0, 0, 0, amqp_empty_table);
    r = amqp_get_rpc_reply(job->conn);
    if (r.reply_type == AMQP_RESPONSE_NORMAL)
        return 1;
    if (r.reply_type != AMQP_RESPONSE_SERVER_EXCEPTION ||
        r.reply.id != AMQP_CHANNEL_CLOSE_METHOD ||
        ((amqp_channel_close_t *)r.reply.decoded)->reply_code != AMQP_NOT_FOUND)
        return rmq_job_reply(job, r, "exchange.declare (passive)");
    if (amqp_send_method(job->conn, GW_AMQP_CHANNEL_BIND,
                         AMQP_CHANNEL_CLOSE_OK_METHOD, &ok) != AMQP_STATUS_OK) {
        snprintf(job->err, sizeof(job->err), "channel.close-ok: write failed");
        return GW_ECLOSED;
    }
    amqp_channel_open(job->conn, GW_AMQP_CHANNEL_BIND);
    return rmq_job_check(job, "channel.open (bindings)") != 0 ? GW_ECLOSED : 0;
}

/* The generations that exist, one bit each. */
static int rmq_job_generations(gw_amqp_connect_t *job, unsigned *exists)
{
    *exists = 0;
    for (int g = 0; g < GW_AMQP_KEY_GENERATIONS; g++) {
        char *name = gw_amqp_key_exchange(job->queue, g);
        int rc = rmq_job_exists(job, name);
        free(name);
        if (rc < 0)
            return rc;
        *exists |= (unsigned)rc << g;
    }
    return 0;
}

static int rmq_job_drop(gw_amqp_connect_t *job, unsigned drop)
{
    for (int g = 0; g < GW_AMQP_KEY_GENERATIONS; g++) {
        char *name;
        if (!(drop & 1u << g))
            continue;
        name = gw_amqp_key_exchange(job->queue, g);
        amqp_exchange_delete(job->conn, GW_AMQP_CHANNEL_CONSUME,
                             amqp_cstring_bytes(name), 0);
        free(name);
        if (rmq_job_check(job, "exchange.delete (a stale generation)") != 0)
            return GW_ECLOSED;
    }
    return 0;
}

/* The generation this connection builds: a fanout exchange to the queue,
 * which lives as long as the queue does (durable, or auto-deleted with an
 * exclusive queue), taking broadcast.# from the events exchange. */
static int rmq_job_generation(gw_amqp_connect_t *job)
{
    int durable = job->durable != 0;

    amqp_exchange_declare(job->conn, GW_AMQP_CHANNEL_CONSUME,
                          amqp_cstring_bytes(job->generation),
                          amqp_cstring_bytes("fanout"), 0, durable, !durable, 0,
                          amqp_empty_table);
    if (rmq_job_check(job, "exchange.declare (generation)") != 0 ||
        rmq_job_bind(job, job->queue, job->generation, amqp_empty_bytes) != 0)
        return GW_ECLOSED;
    amqp_exchange_bind(
        job->conn, GW_AMQP_CHANNEL_CONSUME, amqp_cstring_bytes(job->generation),
        amqp_cstring_bytes(job->exchange),
        amqp_cstring_bytes(GW_AMQP_KEY_BROADCAST), amqp_empty_table);
    return rmq_job_check(job, "exchange.bind (broadcast)");
}

/* Targeted routing: see the header. */
static int rmq_job_targeted(gw_amqp_connect_t *job)
{
    unsigned exists, drop;
    int gen, old;

    amqp_channel_open(job->conn, GW_AMQP_CHANNEL_BIND);
    if (rmq_job_check(job, "channel.open (bindings)") != 0 ||
        rmq_job_generations(job, &exists) != 0)
        return GW_ECLOSED;
    gw_amqp_key_generation(exists, &gen, &old, &drop);
    free(job->generation);
    free(job->previous);
    job->generation = gw_amqp_key_exchange(job->queue, gen);
    job->previous = old >= 0 ? gw_amqp_key_exchange(job->queue, old) : NULL;
    if (rmq_job_drop(job, drop) != 0 || rmq_job_generation(job) != 0)
        return GW_ECLOSED;
    return rmq_job_keys(job, 0);
}

/* ---- the attempt ------------------------------------------------------- */

/* The exchange client events go up to, and their channel in confirm mode:
 * RabbitMQ acks each publish once it has taken charge of it (written to
 * disk, for a persistent message in a durable queue). */
static int rmq_job_publisher(gw_amqp_connect_t *job)
{
    if (rmq_job_exchange(job, job->upstream) != 0)
        return GW_ECLOSED;
    amqp_channel_open(job->conn, GW_AMQP_CHANNEL_PUBLISH);
    if (rmq_job_check(job, "channel.open (publishing)") != 0)
        return GW_ECLOSED;
    amqp_confirm_select(job->conn, GW_AMQP_CHANNEL_PUBLISH);
    return rmq_job_check(job, "confirm.select");
}

static int rmq_job_consume(gw_amqp_connect_t *job)
{
    amqp_basic_qos(job->conn, GW_AMQP_CHANNEL_CONSUME, 0, job->prefetch, 0);
    if (rmq_job_check(job, "basic.qos") != 0)
        return GW_ECLOSED;
    amqp_basic_consume(job->conn, GW_AMQP_CHANNEL_CONSUME,
                       amqp_cstring_bytes(job->queue), amqp_empty_bytes, 0, 0,
                       0, amqp_empty_table);
    return rmq_job_check(job, "basic.consume");
}

/*
 * Thread pool: makes fd the socket that gw_amqp_connect_abort may shut
 * down (-1: none, before the connection is destroyed). Returns GW_ECLOSED
 * when the abort has come already.
 */
static int rmq_job_publish_fd(gw_amqp_connect_t *job, int fd)
{
    int aborted;

    uv_mutex_lock(&job->lock);
    job->fd = fd;
    aborted = job->aborted;
    uv_mutex_unlock(&job->lock);
    return aborted ? GW_ECLOSED : 0;
}

void gw_amqp_connect_abort(gw_amqp_connect_t *job)
{
    uv_mutex_lock(&job->lock);
    job->aborted = 1;
    if (job->fd >= 0)
        shutdown(job->fd, SHUT_RDWR);
    uv_mutex_unlock(&job->lock);
}

/* Logs in, asking RabbitMQ to say when a resource alarm makes it stop
 * reading our publishes (connection.blocked), rather than go silent. */
static int rmq_job_login(gw_amqp_connect_t *job)
{
    amqp_table_entry_t blocked = {
        .key = amqp_cstring_bytes("connection.blocked"),
        .value = {.kind = AMQP_FIELD_KIND_BOOLEAN, .value.boolean = 1},
    };
    amqp_table_entry_t caps = {
        .key = amqp_cstring_bytes("capabilities"),
        .value = {.kind = AMQP_FIELD_KIND_TABLE,
                  .value.table = {.num_entries = 1, .entries = &blocked}},
    };
    amqp_table_t props = {.num_entries = 1, .entries = &caps};

    return rmq_job_reply(job,
                         amqp_login_with_properties(
                             job->conn, job->vhost, 0, AMQP_DEFAULT_FRAME_SIZE,
                             RMQ_JOB_HEARTBEAT_S, &props,
                             AMQP_SASL_METHOD_PLAIN, job->user, job->password),
                         "login");
}

static int rmq_job_open(gw_amqp_connect_t *job)
{
    struct timeval tv = {.tv_sec = RMQ_JOB_TIMEOUT_S};
    amqp_socket_t *sock = amqp_tcp_socket_new(job->conn);
    int rc;

    if (sock == NULL) {
        snprintf(job->err, sizeof(job->err), "cannot create a socket");
        return GW_EIO;
    }
    rc = amqp_socket_open_noblock(sock, job->host, job->port, &tv);
    if (rc != AMQP_STATUS_OK) {
        snprintf(job->err, sizeof(job->err), "connect to %s:%d: %s", job->host,
                 job->port, amqp_error_string2(rc));
        return GW_EIO;
    }
    if (rmq_job_publish_fd(job, amqp_get_sockfd(job->conn)) != 0) {
        snprintf(job->err, sizeof(job->err), "stopped");
        return GW_ECLOSED;
    }
    amqp_set_handshake_timeout(job->conn, &tv);
    amqp_set_rpc_timeout(job->conn, &tv);
    if (rmq_job_login(job) != 0)
        return GW_ECLOSED;
    amqp_channel_open(job->conn, GW_AMQP_CHANNEL_CONSUME);
    return rmq_job_check(job, "channel.open");
}

/* The queue's bindings, by amqp.routing. */
static int rmq_job_routing(gw_amqp_connect_t *job)
{
    return job->targeted ? rmq_job_targeted(job) : rmq_job_keys(job, 1);
}

void gw_amqp_connect_work(uv_work_t *req)
{
    gw_amqp_connect_t *job = req->data;

    job->err[0] = '\0';
    job->conn = amqp_new_connection();
    if (job->conn == NULL) {
        snprintf(job->err, sizeof(job->err), "out of memory");
        return;
    }
    if (rmq_job_open(job) != 0 || rmq_job_exchange(job, job->exchange) != 0 ||
        rmq_job_dead_letters(job) != 0 || rmq_job_queue(job) != 0 ||
        rmq_job_routing(job) != 0 || rmq_job_publisher(job) != 0 ||
        rmq_job_consume(job) != 0)
        goto Error;
    rmq_job_publish_fd(job, -1); /* the loop takes the connection over */
    return;
Error:
    rmq_job_publish_fd(job, -1);
    amqp_destroy_connection(job->conn);
    job->conn = NULL;
}

void gw_amqp_connect_close_work(uv_work_t *req)
{
    gw_amqp_connect_t *job = req->data;

    amqp_connection_close(job->conn, AMQP_REPLY_SUCCESS);
    amqp_destroy_connection(job->conn);
    job->conn = NULL;
}
