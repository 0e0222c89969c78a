/*
 * A TLS session that moves between two workers' loops with its socket:
 * the handshake on worker 0's loop, then detach there and adopt on worker
 * 1's, and the records go on both ways with nothing lost or repeated. The
 * server is the real transport (gw_tls_open over one end of a socket
 * pair); the client is mbedtls's, driven by hand on the other end. The
 * server echoes what it reads, so one round trip checks both directions.
 *
 * A worker's handshakes stop taking steps in a loop turn once they have
 * spent tls.handshake_us_per_turn in it: the others wait for the next.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "gw/error.h"
#include "gw/tls.h"

#include <errno.h>
#include <mbedtls/ctr_drbg.h>
#include <mbedtls/entropy.h>
#include <mbedtls/ssl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* A throwaway P-256 certificate and key (fuzz/fuzz_tls.c's). */
static const char t_cert[] =
    "-----BEGIN CERTIFICATE-----\n"
    "MIIBdTCCARugAwIBAgIUETaPmbi4WQaqP61t3vF1/inCpZ0wCgYIKoZIzj0EAwIw\n"
    "DzENMAsGA1UEAwwEZnV6ejAgFw0yNjEyMDIwNTUyMjRaGA8yMTI2MTEwODA1NTIy\n"
    "NFowDzENMAsGA1UEAwwEZnV6ejBZMBMGByqGSM49AgEGCCqGSM49AwEHA0IABGmZ\n"
    "LYmGZTkSuYCN+jaJlRiWDa/9QS+7MSfIh8GZInjg89EkPOC3j9Ov7+f2rA12709O\n"
    "GjZg1hfphUzozdUMAJOjUzBRMB0GA1UdDgQWBBQKQoslqaWnDr66CGuEVO8JToeT\n"
    "JzAfBgNVHSMEGDAWgBQKQoslqaWnDr66CGuEVO8JToeTJzAPBgNVHRMBAf8EBTAD\n"
    "AQH/MAoGCCqGSM49BAMCA0gAMEUCIEbIq99Q8W3xWfY/Z5fgS3XjtQtFEz+BsH3n\n"
    "LXejHhx4AiEA8ceHFxNbR1h+z+G+5e9gOV3kTb+9JhIxCAJ8mZOQF8E=\n"
    "-----END CERTIFICATE-----\n";

static const char t_key[] =
    "-----BEGIN PRIVATE KEY-----\n"
    "MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgfXM8PCGxDJQbfS6L\n"
    "1zsI1I7jfJQ4nvASZLuoPeAvG32hRANCAARpmS2JhmU5ErmAjfo2iZUYlg2v/UEv\n"
    "uzEnyIfBmSJ44PPRJDzgt4/Tr+/n9qwNdu9PTho2YNYX6YVM6M3VDACT\n"
    "-----END PRIVATE KEY-----\n";

#define T_TURNS 200 /* loop turns a step may take at most */

static struct {
    char in[16384]; /* what the server read, on either loop */
    size_t len;
    int closes;
} srv;

static void on_data(gw_transport_t *t, const uint8_t *buf, size_t len)
{
    assert_true(srv.len + len <= sizeof(srv.in));
    memcpy(srv.in + srv.len, buf, len);
    srv.len += len;
    gw_transport_push_copy(t, buf, len); /* the echo */
}

static void on_drained(gw_transport_t *t)
{
    (void)t;
}

static void on_close(gw_transport_t *t)
{
    (void)t;
    srv.closes++;
}

static const gw_transport_cb_t cb = {
    .on_data = on_data, .on_drained = on_drained, .on_close = on_close};

/* The client's end: mbedtls over the socket, or into `held` while
 * holding (to send a record in two pieces). */
typedef struct client {
    int fd;
    int holding;
    uint8_t held[512];
    size_t held_len;
    mbedtls_entropy_context entropy;
    mbedtls_ctr_drbg_context drbg;
    mbedtls_ssl_config conf;
    mbedtls_ssl_context ssl;
} client_t;

static int client_send(void *ctx, const unsigned char *buf, size_t len)
{
    client_t *c = ctx;
    ssize_t n;

    if (c->holding) {
        assert_true(c->held_len + len <= sizeof(c->held));
        memcpy(c->held + c->held_len, buf, len);
        c->held_len += len;
        return (int)len;
    }
    n = send(c->fd, buf, len, MSG_DONTWAIT);
    return n >= 0 ? (int)n : MBEDTLS_ERR_SSL_WANT_WRITE;
}

static int client_recv(void *ctx, unsigned char *buf, size_t len)
{
    client_t *c = ctx;
    ssize_t n = recv(c->fd, buf, len, MSG_DONTWAIT);

    if (n >= 0)
        return (int)n;
    return errno == EAGAIN ? MBEDTLS_ERR_SSL_WANT_READ
                           : MBEDTLS_ERR_SSL_CONN_EOF;
}

typedef struct fx {
    gw_tls_t *tls;
    uv_loop_t loop;
    gw_stats_t stats;
    gw_tls_loop_t tl[2];       /* two workers' shares */
    gw_transport_loop_t io[2]; /* and their transports */
    gw_transport_t t[2];       /* the server's end, on each loop in turn */
    client_t c;
} fx_t;

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");

    assert_non_null(f);
    assert_true(fputs(text, f) >= 0);
    assert_int_equal(fclose(f), 0);
}

static gw_tls_t *make_tls(unsigned workers, uint32_t handshake_us_per_turn)
{
    char dir[] = "/tmp/test_tls.XXXXXX", cert[64], key[64], err[256];
    gw_config_t cfg = {0};
    gw_tls_t *tls;

    assert_non_null(mkdtemp(dir));
    snprintf(cert, sizeof(cert), "%s/cert.pem", dir);
    snprintf(key, sizeof(key), "%s/key.pem", dir);
    write_file(cert, t_cert);
    write_file(key, t_key);
    cfg.tls_cert_file = cert;
    cfg.tls_key_file = key;
    cfg.tls_key_password = "";
    cfg.tls_sni_certs = "";
    cfg.tls_handshake_us_per_turn = handshake_us_per_turn;
    tls = gw_tls_new(&cfg, workers, err, sizeof(err));
    unlink(cert);
    unlink(key);
    rmdir(dir);
    assert_non_null(tls);
    return tls;
}

static void client_init(client_t *c, int fd)
{
    c->fd = fd;
    mbedtls_entropy_init(&c->entropy);
    mbedtls_ctr_drbg_init(&c->drbg);
    mbedtls_ssl_config_init(&c->conf);
    mbedtls_ssl_init(&c->ssl);
    assert_int_equal(mbedtls_ctr_drbg_seed(&c->drbg, mbedtls_entropy_func,
                                           &c->entropy, NULL, 0),
                     0);
    assert_int_equal(mbedtls_ssl_config_defaults(&c->conf,
                                                 MBEDTLS_SSL_IS_CLIENT,
                                                 MBEDTLS_SSL_TRANSPORT_STREAM,
                                                 MBEDTLS_SSL_PRESET_DEFAULT),
                     0);
    mbedtls_ssl_conf_authmode(&c->conf, MBEDTLS_SSL_VERIFY_NONE);
    mbedtls_ssl_conf_rng(&c->conf, mbedtls_ctr_drbg_random, &c->drbg);
    assert_int_equal(mbedtls_ssl_setup(&c->ssl, &c->conf), 0);
    mbedtls_ssl_set_bio(&c->ssl, c, client_send, client_recv, NULL);
}

static void client_free(client_t *c)
{
    mbedtls_ssl_free(&c->ssl);
    mbedtls_ssl_config_free(&c->conf);
    mbedtls_ctr_drbg_free(&c->drbg);
    mbedtls_entropy_free(&c->entropy);
    close(c->fd);
}

/* One turn of the server's loops, then its writes. */
static void turn(fx_t *f)
{
    uv_run(&f->loop, UV_RUN_NOWAIT);
    gw_transport_loop_flush(&f->io[0]);
    gw_transport_loop_flush(&f->io[1]);
}

static void handshake(fx_t *f)
{
    int rc = MBEDTLS_ERR_SSL_WANT_READ;

    for (int i = 0; i < T_TURNS && rc != 0; i++) {
        rc = mbedtls_ssl_handshake(&f->c.ssl);
        assert_true(rc == 0 || rc == MBEDTLS_ERR_SSL_WANT_READ ||
                    rc == MBEDTLS_ERR_SSL_WANT_WRITE);
        turn(f);
    }
    assert_int_equal(rc, 0);
}

/* The client reads what the server echoed until it has `want`. */
static void expect_echo(fx_t *f, const char *want)
{
    static char got[16384];
    size_t n = 0, len = strlen(want);

    for (int i = 0; i < T_TURNS && n < len; i++) {
        int rc;
        turn(f);
        rc = mbedtls_ssl_read(&f->c.ssl, (unsigned char *)got + n,
                              sizeof(got) - n);
        if (rc > 0)
            n += (size_t)rc;
        else
            assert_int_equal(rc, MBEDTLS_ERR_SSL_WANT_READ);
    }
    assert_int_equal(n, len);
    assert_memory_equal(got, want, len);
}

static void say(fx_t *f, const char *text)
{
    size_t len = strlen(text);

    assert_int_equal(
        mbedtls_ssl_write(&f->c.ssl, (const unsigned char *)text, len),
        (int)len);
}

static int fx_setup(void **state)
{
    fx_t *f = calloc(1, sizeof(*f));
    int sv[2];

    memset(&srv, 0, sizeof(srv));
    f->tls = make_tls(2, 0);
    uv_loop_init(&f->loop);
    for (unsigned i = 0; i < 2; i++) {
        gw_tls_loop_init(&f->tl[i], f->tls, i);
        gw_transport_loop_init(&f->io[i], &f->loop, &cb, &f->stats, 4);
        f->io[i].ops_data = &f->tl[i];
    }
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    assert_int_equal(gw_tls_open(&f->t[0], &f->io[0], sv[0]), 0);
    client_init(&f->c, sv[1]);
    *state = f;
    return 0;
}

static int fx_teardown(void **state)
{
    fx_t *f = *state;

    gw_transport_close(&f->t[0]);
    if (f->t[1].loop != NULL)
        gw_transport_close(&f->t[1]);
    turn(f);
    assert_int_equal(f->stats.v[GW_STAT_CONNECTIONS], 0);
    for (unsigned i = 0; i < 2; i++)
        gw_transport_loop_stop(&f->io[i]);
    uv_run(&f->loop, UV_RUN_NOWAIT);
    for (unsigned i = 0; i < 2; i++) {
        gw_transport_loop_free(&f->io[i]);
        gw_tls_loop_free(&f->tl[i]);
    }
    assert_int_equal(uv_loop_close(&f->loop), 0);
    client_free(&f->c);
    gw_tls_free(f->tls);
    free(f);
    return 0;
}

/* Detaches the server's end from worker 0 and adopts it on worker 1. */
static void move(fx_t *f)
{
    gw_transport_state_t *moving = NULL;
    int fd = -1;

    assert_int_equal(gw_transport_detach(&f->t[0], &fd, &moving), 0);
    assert_non_null(moving);
    turn(f); /* worker 0's transport is gone, the socket open */
    assert_int_equal(srv.closes, 1);
    assert_int_equal(gw_transport_adopt(&f->t[1], &f->io[1], fd, moving), 0);
}

/* Records go both ways before the move and after it, on the same
 * session: the sequence numbers and keys went along. */
static void test_session_moves_to_another_worker(void **state)
{
    fx_t *f = *state;

    handshake(f);
    say(f, "before");
    expect_echo(f, "before");
    move(f);
    say(f, "after");
    expect_echo(f, "after");
    say(f, "and again");
    expect_echo(f, "and again");
    assert_int_equal(srv.len, strlen("beforeafterand again"));
    assert_memory_equal(srv.in, "beforeafterand again", srv.len);
    assert_int_equal(f->stats.v[GW_STAT_TLS_HANDSHAKE_FAILURES], 0);
}

/* A record half received when the connection leaves: its first bytes are
 * in the session, the rest in the socket, and the new worker joins them. */
static void test_half_a_record_moves_too(void **state)
{
    fx_t *f = *state;

    handshake(f);
    f->c.holding = 1;
    say(f, "split in two");
    f->c.holding = 0;
    assert_true(f->c.held_len > 10);
    assert_int_equal(send(f->c.fd, f->c.held, 10, 0), 10);
    turn(f); /* worker 0 reads the first ten bytes */
    assert_int_equal(srv.len, 0);
    move(f);
    assert_int_equal(send(f->c.fd, f->c.held + 10, f->c.held_len - 10, 0),
                     (ssize_t)(f->c.held_len - 10));
    expect_echo(f, "split in two");
}

/* Once the handshake is done the pages of the record buffers past their
 * first go back to the kernel (they read as zeros after): records that
 * fill those pages, both ways, come through whole, and the sequence
 * numbers at the buffers' heads went on counting. */
static void test_records_after_the_buffers_were_released(void **state)
{
    fx_t *f = *state;
    static char big[12001];

    handshake(f); /* tls.buffer_release_ms = 0: released at its end */
    assert_int_equal(f->stats.v[GW_STAT_TLS_BUFFERS_RELEASED], 1);
    for (size_t i = 0; i + 1 < sizeof(big); i++)
        big[i] = (char)('a' + i % 26);
    say(f, "small first");
    expect_echo(f, "small first");
    say(f, big);
    expect_echo(f, big);
    say(f, "and small again");
    expect_echo(f, "and small again");
    assert_int_equal(srv.len, strlen("small first") + strlen(big) +
                                  strlen("and small again"));
}

/* ---- the record buffers' release, tls.buffer_release_ms later ---- */

#define T_RELEASE_MS 1000

/* The handshake, with the release put off by T_RELEASE_MS on both
 * workers; returns the loop time before it began. */
static uint64_t handshake_late_release(fx_t *f)
{
    uint64_t t0;

    f->tl[0].release_ms = f->tl[1].release_ms = T_RELEASE_MS;
    uv_update_time(&f->loop);
    t0 = uv_now(&f->loop);
    handshake(f);
    return t0;
}

/* A session that stays open has its buffers released once it has been
 * open that long, not before, and once only; records go on after. */
static void test_buffers_released_once_the_session_stayed_open(void **state)
{
    fx_t *f = *state;
    uint64_t t0 = handshake_late_release(f);

    gw_tls_loop_tick(&f->tl[0], t0 + T_RELEASE_MS - 1);
    assert_int_equal(f->stats.v[GW_STAT_TLS_BUFFERS_RELEASED], 0);
    uv_update_time(&f->loop);
    gw_tls_loop_tick(&f->tl[0], uv_now(&f->loop) + T_RELEASE_MS);
    assert_int_equal(f->stats.v[GW_STAT_TLS_BUFFERS_RELEASED], 1);
    say(f, "after the release");
    expect_echo(f, "after the release");
    gw_tls_loop_tick(&f->tl[0], uv_now(&f->loop) + 10 * T_RELEASE_MS);
    assert_int_equal(f->stats.v[GW_STAT_TLS_BUFFERS_RELEASED], 1);
}

/* A connection that closes before its time releases nothing, and leaves
 * nothing behind in the loop's list (ASan sees a use after free). */
static void test_no_release_for_a_session_closed_before(void **state)
{
    fx_t *f = *state;
    uint64_t t0 = handshake_late_release(f);

    gw_transport_close(&f->t[0]);
    turn(f);
    assert_int_equal(srv.closes, 1);
    assert_null(f->tl[0].due_head);
    gw_tls_loop_tick(&f->tl[0], t0 + 10 * T_RELEASE_MS);
    assert_int_equal(f->stats.v[GW_STAT_TLS_BUFFERS_RELEASED], 0);
}

/* A session that moves keeps its due time, and the worker that adopted
 * it releases its buffers; the one it left has nothing to do. */
static void test_release_follows_a_moved_session(void **state)
{
    fx_t *f = *state;
    uint64_t later;

    handshake_late_release(f);
    move(f);
    uv_update_time(&f->loop);
    later = uv_now(&f->loop) + T_RELEASE_MS;
    gw_tls_loop_tick(&f->tl[0], later);
    assert_int_equal(f->stats.v[GW_STAT_TLS_BUFFERS_RELEASED], 0);
    gw_tls_loop_tick(&f->tl[1], later);
    assert_int_equal(f->stats.v[GW_STAT_TLS_BUFFERS_RELEASED], 1);
    say(f, "moved, then released");
    expect_echo(f, "moved, then released");
}

/* A record half read when the session is due keeps the buffers whole:
 * the release waits for a tick after the record's rest came. */
static void test_release_waits_for_a_record_half_read(void **state)
{
    fx_t *f = *state;
    uint64_t later;

    handshake_late_release(f);
    f->c.holding = 1;
    say(f, "split in two");
    f->c.holding = 0;
    assert_int_equal(send(f->c.fd, f->c.held, 10, 0), 10);
    turn(f); /* the server reads the first ten bytes */
    uv_update_time(&f->loop);
    later = uv_now(&f->loop) + T_RELEASE_MS;
    gw_tls_loop_tick(&f->tl[0], later);
    assert_int_equal(f->stats.v[GW_STAT_TLS_BUFFERS_RELEASED], 0);
    assert_int_equal(send(f->c.fd, f->c.held + 10, f->c.held_len - 10, 0),
                     (ssize_t)(f->c.held_len - 10));
    expect_echo(f, "split in two");
    gw_tls_loop_tick(&f->tl[0], later + 1);
    assert_int_equal(f->stats.v[GW_STAT_TLS_BUFFERS_RELEASED], 1);
}

/* Before its handshake is done a session cannot move: the transport keeps
 * its socket, and closes as usual. */
static void test_no_move_before_the_handshake(void **state)
{
    fx_t *f = *state;
    gw_transport_state_t *moving = NULL;
    int fd = -1;

    assert_int_equal(gw_transport_detach(&f->t[0], &fd, &moving), GW_EAGAIN);
    assert_null(moving);
    assert_int_equal(fd, -1);
    assert_false(f->t[0].closed);
}

/* A session that no worker adopts is freed by whoever holds it. */
static void test_a_state_not_adopted_is_freed(void **state)
{
    fx_t *f = *state;
    gw_transport_state_t *moving = NULL;
    int fd = -1;

    handshake(f);
    assert_int_equal(gw_transport_detach(&f->t[0], &fd, &moving), 0);
    gw_transport_state_free(moving); /* leaks show under ASan */
    close(fd);
    turn(f);
    assert_int_equal(srv.closes, 1);
}

/* ---- handshake work per loop turn ---- */

#define T_CLIENTS 3

/* T_CLIENTS clients of one worker, each with its ClientHello sent. */
typedef struct storm {
    gw_tls_t *tls;
    uv_loop_t loop;
    gw_stats_t stats;
    gw_tls_loop_t tl;
    gw_transport_loop_t io;
    gw_transport_t t[T_CLIENTS];
    client_t c[T_CLIENTS];
} storm_t;

static void storm_open(storm_t *s, uint32_t handshake_us_per_turn)
{
    memset(&srv, 0, sizeof(srv));
    s->tls = make_tls(1, handshake_us_per_turn);
    uv_loop_init(&s->loop);
    gw_tls_loop_init(&s->tl, s->tls, 0);
    gw_transport_loop_init(&s->io, &s->loop, &cb, &s->stats, 4);
    s->io.ops_data = &s->tl;
    for (unsigned i = 0; i < T_CLIENTS; i++) {
        int sv[2];
        assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
        assert_int_equal(gw_tls_open(&s->t[i], &s->io, sv[0]), 0);
        client_init(&s->c[i], sv[1]);
        assert_int_equal(mbedtls_ssl_handshake(&s->c[i].ssl),
                         MBEDTLS_ERR_SSL_WANT_READ);
    }
}

static void storm_close(storm_t *s)
{
    for (unsigned i = 0; i < T_CLIENTS; i++)
        gw_transport_close(&s->t[i]);
    uv_run(&s->loop, UV_RUN_NOWAIT);
    gw_transport_loop_flush(&s->io);
    assert_int_equal(s->stats.v[GW_STAT_CONNECTIONS], 0);
    gw_transport_loop_stop(&s->io);
    uv_run(&s->loop, UV_RUN_NOWAIT);
    gw_transport_loop_free(&s->io);
    gw_tls_loop_free(&s->tl);
    assert_int_equal(uv_loop_close(&s->loop), 0);
    for (unsigned i = 0; i < T_CLIENTS; i++)
        client_free(&s->c[i]);
    gw_tls_free(s->tls);
}

/* One turn of the worker's loop; returns how many clients have the
 * server's answer to their ClientHello waiting by then. */
static unsigned storm_turn(storm_t *s)
{
    unsigned answered = 0;
    char b;

    uv_run(&s->loop, UV_RUN_NOWAIT);
    gw_transport_loop_flush(&s->io);
    for (unsigned i = 0; i < T_CLIENTS; i++)
        answered += recv(s->c[i].fd, &b, 1, MSG_PEEK | MSG_DONTWAIT) == 1;
    return answered;
}

/* Answering a ClientHello (a key share made and signed) takes far more
 * than a microsecond: with that budget each turn answers one, and the
 * others wait, counted, for the turns that follow. */
static void test_handshakes_wait_for_the_next_turn(void **state)
{
    storm_t *s = calloc(1, sizeof(*s));
    (void)state;

    storm_open(s, 1);
    assert_int_equal(storm_turn(s), 1);
    assert_int_equal(s->stats.v[GW_STAT_TLS_HANDSHAKES_DEFERRED],
                     T_CLIENTS - 1);
    assert_int_equal(storm_turn(s), 2);
    assert_int_equal(storm_turn(s), 3);
    assert_int_equal(s->stats.v[GW_STAT_TLS_HANDSHAKES_DEFERRED],
                     T_CLIENTS - 1 + T_CLIENTS - 2);
    assert_int_equal(s->stats.v[GW_STAT_TLS_HANDSHAKE_FAILURES], 0);
    storm_close(s);
    free(s);
}

/* With no budget (0) one turn answers every ClientHello. */
static void test_no_budget_answers_all_at_once(void **state)
{
    storm_t *s = calloc(1, sizeof(*s));
    (void)state;

    storm_open(s, 0);
    assert_int_equal(storm_turn(s), T_CLIENTS);
    assert_int_equal(s->stats.v[GW_STAT_TLS_HANDSHAKES_DEFERRED], 0);
    storm_close(s);
    free(s);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, fx_setup, fx_teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_session_moves_to_another_worker),
        T(test_half_a_record_moves_too),
        T(test_no_move_before_the_handshake),
        T(test_a_state_not_adopted_is_freed),
        T(test_records_after_the_buffers_were_released),
        T(test_buffers_released_once_the_session_stayed_open),
        T(test_no_release_for_a_session_closed_before),
        T(test_release_follows_a_moved_session),
        T(test_release_waits_for_a_record_half_read),
        cmocka_unit_test(test_handshakes_wait_for_the_next_turn),
        cmocka_unit_test(test_no_budget_answers_all_at_once),
    };
    gw_log_level = GW_LOG_ERROR;
    return cmocka_run_group_tests(tests, NULL, NULL);
}
