/* One RESP connection against a scripted server on the same loop: replies
 * handed in order to their commands or to the push hook, AUTH, failures
 * told once, closing from within a callback, and no handle left behind. */
#include "gw/error.h"
#include "gw/resp.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <uv.h>

/* The server's side, and what the client's hooks saw. */
typedef struct fake {
    uv_loop_t loop;
    uv_tcp_t listener, peer;
    uv_timer_t deadline;
    uv_write_t write;
    int port;
    int peer_open, stopped;
    const char *script; /* sent once the client is accepted */
    int hangup;         /* and then the server closes */
    char got[1024];     /* what the client sent */
    size_t ngot, want_got;
    gw_resp_t *r;
    char log[1024]; /* the hooks' calls, "what|" each */
    int events, want_events;
    int close_in_reply; /* the first reply's callback closes r */
} fake_t;

static void fake_noop_close(uv_handle_t *h)
{
    (void)h;
}

/* Ends the run: the server's handles, and the client if still open. */
static void fake_stop(fake_t *f)
{
    if (f->stopped)
        return;
    f->stopped = 1;
    uv_close((uv_handle_t *)&f->listener, fake_noop_close);
    uv_close((uv_handle_t *)&f->deadline, fake_noop_close);
    if (f->peer_open)
        uv_close((uv_handle_t *)&f->peer, fake_noop_close);
    f->peer_open = 0;
    if (f->r != NULL)
        gw_resp_close(f->r);
    f->r = NULL;
}

static void fake_check_done(fake_t *f)
{
    if (f->events >= f->want_events && f->ngot >= f->want_got)
        fake_stop(f);
}

static void fake_event(fake_t *f, const char *what)
{
    size_t n = strlen(f->log);

    snprintf(f->log + n, sizeof(f->log) - n, "%s|", what);
    f->events++;
    fake_check_done(f);
}

static void fake_alloc(uv_handle_t *h, size_t size, uv_buf_t *buf)
{
    fake_t *f = h->data;

    (void)size;
    *buf = uv_buf_init(f->got + f->ngot, (unsigned)(sizeof(f->got) - f->ngot));
}

static void fake_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
    fake_t *f = s->data;

    (void)buf;
    if (n > 0) {
        f->ngot += (size_t)n;
        fake_check_done(f);
    }
}

static void fake_written(uv_write_t *w, int status)
{
    fake_t *f = w->data;

    (void)status;
    if (f->hangup && f->peer_open) {
        uv_close((uv_handle_t *)&f->peer, fake_noop_close);
        f->peer_open = 0;
    }
}

static void fake_accept(uv_stream_t *l, int status)
{
    fake_t *f = l->data;
    uv_buf_t b;

    assert_int_equal(status, 0);
    uv_tcp_init(&f->loop, &f->peer);
    f->peer.data = f;
    assert_int_equal(uv_accept(l, (uv_stream_t *)&f->peer), 0);
    f->peer_open = 1;
    uv_read_start((uv_stream_t *)&f->peer, fake_alloc, fake_read);
    b = uv_buf_init((char *)f->script, (unsigned)strlen(f->script));
    f->write.data = f;
    uv_write(&f->write, (uv_stream_t *)&f->peer, &b, 1, fake_written);
}

static void fake_deadline(uv_timer_t *t)
{
    fake_t *f = t->data;

    fake_stop(f);
    fail_msg("the run did not end: log \"%s\", %zu bytes received", f->log,
             f->ngot);
}

/* A server on 127.0.0.1 that sends script to whoever connects. */
static fake_t *fake_new(const char *script, int hangup)
{
    fake_t *f = calloc(1, sizeof(*f));
    struct sockaddr_storage sa;
    int len = sizeof(sa);

    assert_int_equal(uv_loop_init(&f->loop), 0);
    f->script = script;
    f->hangup = hangup;
    uv_tcp_init(&f->loop, &f->listener);
    f->listener.data = f;
    uv_ip4_addr("127.0.0.1", 0, (struct sockaddr_in *)&sa);
    assert_int_equal(uv_tcp_bind(&f->listener, (const struct sockaddr *)&sa, 0),
                     0);
    assert_int_equal(uv_listen((uv_stream_t *)&f->listener, 4, fake_accept), 0);
    uv_tcp_getsockname(&f->listener, (struct sockaddr *)&sa, &len);
    f->port = ntohs(((struct sockaddr_in *)&sa)->sin_port);
    uv_timer_init(&f->loop, &f->deadline);
    f->deadline.data = f;
    uv_timer_start(&f->deadline, fake_deadline, 5000, 0);
    return f;
}

/* Runs until the run ends, and checks that no handle was left open. */
static void fake_run(fake_t *f)
{
    uv_run(&f->loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&f->loop), 0);
}

/* ---- the client's hooks ----------------------------------------------- */

static void on_reply(void *data, const redisReply *rep)
{
    fake_t *f = data;
    char what[200];

    if (rep == NULL)
        snprintf(what, sizeof(what), "NULL");
    else if (rep->type == REDIS_REPLY_INTEGER)
        snprintf(what, sizeof(what), "%lld", rep->integer);
    else if (rep->type == REDIS_REPLY_NIL)
        snprintf(what, sizeof(what), "nil");
    else
        snprintf(what, sizeof(what), "%s", rep->str);
    if (f->close_in_reply && f->r != NULL) {
        gw_resp_t *r = f->r;
        f->r = NULL;
        gw_resp_close(r);
    }
    fake_event(f, what);
}

static void on_push(void *data, const redisReply *rep)
{
    fake_t *f = data;
    char what[200];

    snprintf(what, sizeof(what), "%s %s", rep->element[0]->str,
             rep->element[1]->str);
    fake_event(f, what);
}

static void on_closed(void *data, const char *why)
{
    fake_t *f = data;
    char what[200];

    f->r = NULL; /* closed by itself */
    snprintf(what, sizeof(what), "closed: %s", why);
    fake_event(f, what);
}

static int connected;

static void on_connected(void *data)
{
    (void)data;
    connected++;
}

static gw_resp_t *open_to(fake_t *f, const char *host, const char *pw, int push)
{
    const char *why = NULL;
    gw_resp_t *r = gw_resp_open(
        &f->loop, host, f->port, pw,
        &(gw_resp_hooks_t){on_connected, push ? on_push : NULL, on_closed, f},
        &why);

    assert_non_null(r);
    assert_null(why);
    f->r = r;
    return r;
}

static void command(fake_t *f, gw_resp_reply_cb cb, int argc, ...)
{
    const char *argv[8];
    size_t lens[8];
    va_list ap;

    va_start(ap, argc);
    for (int i = 0; i < argc; i++) {
        argv[i] = va_arg(ap, const char *);
        lens[i] = strlen(argv[i]);
    }
    va_end(ap);
    assert_int_equal(gw_resp_command(f->r, argc, argv, lens, cb, f), 0);
}

/* ---- tests ------------------------------------------------------------ */

#define PING "*1\r\n$4\r\nPING\r\n"
#define GETK "*2\r\n$3\r\nGET\r\n$1\r\nk\r\n"

/* Each reply to its command, in order; the commands of one turn leave
 * together, formatted as Redis reads them. */
static void test_requests_answered_in_order(void **state)
{
    fake_t *f = fake_new("+PONG\r\n$1\r\nv\r\n$-1\r\n:7\r\n", 0);
    static const char want[] =
        PING GETK GETK "*3\r\n$8\r\nSPUBLISH\r\n$1\r\nc\r\n$2\r\nhi\r\n";

    (void)state;
    connected = 0;
    open_to(f, "127.0.0.1", "", 0);
    command(f, on_reply, 1, "PING");
    command(f, on_reply, 2, "GET", "k");
    command(f, on_reply, 2, "GET", "k");
    command(f, on_reply, 3, "SPUBLISH", "c", "hi");
    assert_int_equal(gw_resp_pending(f->r), 4);
    f->want_events = 4;
    f->want_got = sizeof(want) - 1;
    fake_run(f);
    assert_string_equal(f->log, "PONG|v|nil|7|");
    assert_int_equal(f->ngot, sizeof(want) - 1);
    assert_memory_equal(f->got, want, sizeof(want) - 1);
    assert_int_equal(connected, 1);
    free(f);
}

/* A push connection: every reply to the hook, asked for or not. */
static void test_push_connection(void **state)
{
    fake_t *f = fake_new("*3\r\n$10\r\nssubscribe\r\n$1\r\na\r\n:1\r\n"
                         "*3\r\n$10\r\nssubscribe\r\n$1\r\nb\r\n:2\r\n"
                         "*3\r\n$8\r\nsmessage\r\n$1\r\na\r\n$2\r\nhi\r\n",
                         0);

    (void)state;
    open_to(f, "127.0.0.1", "", 1);
    command(f, NULL, 3, "SSUBSCRIBE", "a", "b");
    assert_int_equal(gw_resp_pending(f->r), 0);
    f->want_events = 3;
    fake_run(f);
    assert_string_equal(f->log, "ssubscribe a|ssubscribe b|smessage a|");
    free(f);
}

/* AUTH goes first; its refusal is a failure, told once, after the
 * commands waiting are answered NULL. */
static void test_auth_refused(void **state)
{
    static const char auth[] = "*2\r\n$4\r\nAUTH\r\n$2\r\npw\r\n";
    fake_t *f = fake_new("-WRONGPASS invalid password\r\n", 0);

    (void)state;
    open_to(f, "127.0.0.1", "pw", 0);
    command(f, on_reply, 2, "GET", "k");
    f->want_events = 2;
    f->want_got = sizeof(auth) - 1 + sizeof(GETK) - 1;
    fake_run(f);
    assert_string_equal(f->log, "NULL|closed: AUTH: WRONGPASS invalid "
                                "password|");
    assert_memory_equal(f->got, auth, sizeof(auth) - 1);
    free(f);
}

/* AUTH accepted: its reply is the link's own, not a command's. */
static void test_auth_accepted(void **state)
{
    fake_t *f = fake_new("+OK\r\n$1\r\nv\r\n", 0);

    (void)state;
    open_to(f, "127.0.0.1", "pw", 0);
    command(f, on_reply, 2, "GET", "k");
    f->want_events = 1;
    fake_run(f);
    assert_string_equal(f->log, "v|");
    free(f);
}

static void test_server_hangs_up(void **state)
{
    fake_t *f = fake_new("+OK\r\n", 1);

    (void)state;
    open_to(f, "127.0.0.1", "", 0);
    command(f, on_reply, 1, "PING");
    command(f, on_reply, 1, "PING");
    f->want_events = 3;
    fake_run(f);
    assert_string_equal(f->log, "OK|NULL|closed: closed by the server|");
    free(f);
}

static void test_protocol_error(void **state)
{
    fake_t *f = fake_new("!oops\r\n", 0);

    (void)state;
    open_to(f, "127.0.0.1", "", 0);
    command(f, on_reply, 1, "PING");
    f->want_events = 2;
    fake_run(f);
    assert_non_null(strstr(f->log, "NULL|closed: Protocol error"));
    free(f);
}

/* A reply with no command: the connection cannot be trusted any more. */
static void test_reply_to_no_command(void **state)
{
    fake_t *f = fake_new("+OK\r\n", 0);

    (void)state;
    open_to(f, "127.0.0.1", "", 0);
    f->want_events = 1;
    fake_run(f);
    assert_string_equal(f->log, "closed: a reply to no command|");
    free(f);
}

static void test_connect_refused(void **state)
{
    fake_t *f = fake_new("", 0);
    uv_tcp_t probe;
    struct sockaddr_storage sa;
    int len = sizeof(sa);

    (void)state;
    /* A port that was free a moment ago, and is closed now. */
    uv_tcp_init(&f->loop, &probe);
    uv_ip4_addr("127.0.0.1", 0, (struct sockaddr_in *)&sa);
    uv_tcp_bind(&probe, (const struct sockaddr *)&sa, 0);
    uv_tcp_getsockname(&probe, (struct sockaddr *)&sa, &len);
    uv_close((uv_handle_t *)&probe, NULL);
    f->port = ntohs(((struct sockaddr_in *)&sa)->sin_port);
    open_to(f, "127.0.0.1", "", 0);
    command(f, on_reply, 1, "PING");
    f->want_events = 2;
    fake_run(f);
    assert_string_equal(f->log, "NULL|closed: connection refused|");
    free(f);
}

/* Closing from within a reply's callback: what waits is answered NULL
 * at once, the replies already read are not handed on, no hook follows. */
static void test_close_from_a_callback(void **state)
{
    fake_t *f = fake_new("+A\r\n+B\r\n+C\r\n", 0);

    (void)state;
    open_to(f, "127.0.0.1", "", 0);
    command(f, on_reply, 1, "PING");
    command(f, on_reply, 1, "PING");
    command(f, on_reply, 1, "PING");
    f->close_in_reply = 1;
    f->want_events = 3;
    fake_run(f);
    assert_string_equal(f->log, "NULL|NULL|A|");
    free(f);
}

/* A host name is resolved off the loop, its IPv4 address first. */
static void test_name_resolved(void **state)
{
    fake_t *f = fake_new("+PONG\r\n", 0);

    (void)state;
    open_to(f, "localhost", "", 0);
    command(f, on_reply, 1, "PING");
    f->want_events = 1;
    fake_run(f);
    assert_string_equal(f->log, "PONG|");
    free(f);
}

/* Closed before it connected, or while its name resolves: nothing is
 * told, everything is freed. */
static void test_closed_at_once(void **state)
{
    static const char *hosts[] = {"127.0.0.1", "localhost"};

    (void)state;
    for (size_t i = 0; i < 2; i++) {
        fake_t *f = fake_new("", 0);
        open_to(f, hosts[i], "", 0);
        command(f, on_reply, 1, "PING");
        gw_resp_close(f->r);
        f->r = NULL;
        assert_string_equal(f->log, "NULL|");
        fake_stop(f);
        fake_run(f);
        assert_string_equal(f->log, "NULL|");
        free(f);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_requests_answered_in_order),
        cmocka_unit_test(test_push_connection),
        cmocka_unit_test(test_auth_refused),
        cmocka_unit_test(test_auth_accepted),
        cmocka_unit_test(test_server_hangs_up),
        cmocka_unit_test(test_protocol_error),
        cmocka_unit_test(test_reply_to_no_command),
        cmocka_unit_test(test_connect_refused),
        cmocka_unit_test(test_close_from_a_callback),
        cmocka_unit_test(test_name_resolved),
        cmocka_unit_test(test_closed_at_once),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
