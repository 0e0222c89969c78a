/*
 * gwbench's TLS client (bench/tlsclient.c) against an mbedtls server in
 * memory: the handshake, full and then resumed with the session saved
 * from the first, a ticket the server cannot read (a full handshake
 * again, said so), records both ways with the server's bytes fed in
 * pieces of every size, the server's close_notify, and garbage. Then the
 * server's fan-out histogram read from /stats (bench/totals.c).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "tlsclient.h"
#include "totals.h"

#include <mbedtls/ctr_drbg.h>
#include <mbedtls/entropy.h>
#include <mbedtls/pk.h>
#include <mbedtls/ssl.h>
#include <mbedtls/ssl_ticket.h>
#include <mbedtls/x509_crt.h>
#include <stdlib.h>
#include <string.h>

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

#define T_BUF 65536
#define T_ROUNDS 50 /* exchanges a handshake may take at most */

/* Bytes on their way one direction. */
typedef struct pipe_buf {
    uint8_t b[T_BUF];
    size_t len, off;
} pipe_buf_t;

static void pipe_put(pipe_buf_t *p, const uint8_t *data, size_t len)
{
    assert_true(p->len + len <= sizeof(p->b));
    memcpy(p->b + p->len, data, len);
    p->len += len;
}

/* The server: mbedtls with tickets, fed from and writing to memory. */
typedef struct server {
    mbedtls_entropy_context entropy;
    mbedtls_ctr_drbg_context drbg;
    mbedtls_x509_crt crt;
    mbedtls_pk_context key;
    mbedtls_ssl_ticket_context ticket;
    mbedtls_ssl_config conf;
    mbedtls_ssl_context ssl;
} server_t;

/* The connection between them, and what the client's owner was told. */
typedef struct link {
    pipe_buf_t up;   /* client -> server */
    pipe_buf_t down; /* server -> client */
    uint8_t plain[T_BUF];
    size_t plain_len;
    int opened;
    int closing; /* the owner answers "closing" from now on */
} link_t;

static int srv_send(void *ctx, const unsigned char *buf, size_t len)
{
    pipe_put(&((link_t *)ctx)->down, buf, len);
    return (int)len;
}

static int srv_recv(void *ctx, unsigned char *buf, size_t len)
{
    pipe_buf_t *p = &((link_t *)ctx)->up;
    size_t n = p->len - p->off < len ? p->len - p->off : len;

    if (n == 0)
        return MBEDTLS_ERR_SSL_WANT_READ;
    memcpy(buf, p->b + p->off, n);
    p->off += n;
    return (int)n;
}

static int cli_send(void *ud, const uint8_t *data, size_t len)
{
    pipe_put(&((link_t *)ud)->up, data, len);
    return 0;
}

static int cli_open(void *ud)
{
    link_t *l = ud;

    l->opened++;
    return l->closing;
}

static int cli_data(void *ud, const uint8_t *data, size_t len)
{
    link_t *l = ud;

    assert_true(l->plain_len + len <= sizeof(l->plain));
    memcpy(l->plain + l->plain_len, data, len);
    l->plain_len += len;
    return l->closing;
}

static const tlsclient_cb_t t_cb = {cli_send, cli_open, cli_data};

static void server_init(server_t *s)
{
    memset(s, 0, sizeof(*s));
    mbedtls_entropy_init(&s->entropy);
    mbedtls_ctr_drbg_init(&s->drbg);
    mbedtls_x509_crt_init(&s->crt);
    mbedtls_pk_init(&s->key);
    mbedtls_ssl_ticket_init(&s->ticket);
    mbedtls_ssl_config_init(&s->conf);
    assert_int_equal(mbedtls_ctr_drbg_seed(&s->drbg, mbedtls_entropy_func,
                                           &s->entropy, NULL, 0),
                     0);
    assert_int_equal(mbedtls_x509_crt_parse(&s->crt,
                                            (const unsigned char *)t_cert,
                                            sizeof(t_cert)),
                     0);
    assert_int_equal(mbedtls_pk_parse_key(&s->key, (const unsigned char *)t_key,
                                          sizeof(t_key), NULL, 0),
                     0);
    assert_int_equal(mbedtls_ssl_config_defaults(&s->conf,
                                                 MBEDTLS_SSL_IS_SERVER,
                                                 MBEDTLS_SSL_TRANSPORT_STREAM,
                                                 MBEDTLS_SSL_PRESET_DEFAULT),
                     0);
    mbedtls_ssl_conf_rng(&s->conf, mbedtls_ctr_drbg_random, &s->drbg);
    assert_int_equal(mbedtls_ssl_conf_own_cert(&s->conf, &s->crt, &s->key), 0);
    assert_int_equal(mbedtls_ssl_ticket_setup(&s->ticket,
                                              mbedtls_ctr_drbg_random, &s->drbg,
                                              MBEDTLS_CIPHER_AES_256_GCM, 3600),
                     0);
    mbedtls_ssl_conf_session_tickets_cb(&s->conf, mbedtls_ssl_ticket_write,
                                        mbedtls_ssl_ticket_parse, &s->ticket);
}

static void server_free(server_t *s)
{
    mbedtls_ssl_config_free(&s->conf);
    mbedtls_ssl_ticket_free(&s->ticket);
    mbedtls_pk_free(&s->key);
    mbedtls_x509_crt_free(&s->crt);
    mbedtls_ctr_drbg_free(&s->drbg);
    mbedtls_entropy_free(&s->entropy);
}

typedef struct fx {
    server_t srv;
    tlsclient_conf_t *tc;
} fx_t;

static int fx_setup(void **state)
{
    fx_t *f = calloc(1, sizeof(*f));

    server_init(&f->srv);
    f->tc = tlsclient_conf_new(&t_cb, 7);
    assert_non_null(f->tc);
    *state = f;
    return 0;
}

static int fx_teardown(void **state)
{
    fx_t *f = *state;

    tlsclient_conf_free(f->tc);
    server_free(&f->srv);
    free(f);
    return 0;
}

/* Hands what the server wrote to the client, in pieces of `piece` bytes
 * (0: all at once). Returns the last tlsclient_input result. */
static int feed(tlsclient_t *c, link_t *l, size_t piece)
{
    int rc = TLSCLIENT_OK;

    while (l->down.off < l->down.len && rc == TLSCLIENT_OK) {
        size_t n = l->down.len - l->down.off;
        if (piece > 0 && piece < n)
            n = piece;
        rc = tlsclient_input(c, l->down.b + l->down.off, n);
        l->down.off += n;
    }
    l->down.len = l->down.off = 0;
    return rc;
}

/* A connection: the client (offering `offer`) and a fresh server session
 * talk until the handshake is done on both sides. */
static tlsclient_t *connect_to(fx_t *f, link_t *l, mbedtls_ssl_context *ssl,
                               const tlsclient_session_t *offer, size_t piece)
{
    tlsclient_t *c;
    int done = 0;

    memset(l, 0, sizeof(*l));
    mbedtls_ssl_init(ssl);
    assert_int_equal(mbedtls_ssl_setup(ssl, &f->srv.conf), 0);
    mbedtls_ssl_set_bio(ssl, l, srv_send, srv_recv, NULL);
    c = tlsclient_new(f->tc, offer, l);
    assert_non_null(c);
    assert_true(l->up.len > 0); /* the ClientHello */
    for (int i = 0; i < T_ROUNDS && !(done && l->opened); i++) {
        int rc = mbedtls_ssl_handshake(ssl);
        assert_true(rc == 0 || rc == MBEDTLS_ERR_SSL_WANT_READ);
        done = rc == 0;
        assert_int_equal(feed(c, l, piece), TLSCLIENT_OK);
    }
    assert_true(done);
    assert_int_equal(l->opened, 1);
    return c;
}

/* The client writes; the server reads it whole. */
static void client_says(tlsclient_t *c, mbedtls_ssl_context *ssl,
                        const char *text)
{
    unsigned char got[256];
    size_t n = 0, len = strlen(text);

    assert_int_equal(tlsclient_write(c, (const uint8_t *)text, len), 0);
    while (n < len) {
        int rc = mbedtls_ssl_read(ssl, got + n, sizeof(got) - n);
        assert_true(rc > 0);
        n += (size_t)rc;
    }
    assert_memory_equal(got, text, len);
}

/* The server writes; the client gets it through its data callback. */
static void server_says(tlsclient_t *c, link_t *l, mbedtls_ssl_context *ssl,
                        const char *text, size_t piece)
{
    size_t len = strlen(text);

    l->plain_len = 0;
    assert_int_equal(mbedtls_ssl_write(ssl, (const unsigned char *)text, len),
                     (int)len);
    assert_int_equal(feed(c, l, piece), TLSCLIENT_OK);
    assert_int_equal(l->plain_len, len);
    assert_memory_equal(l->plain, text, len);
}

/* A full handshake, then one that resumes the session saved from it: the
 * server's certificate is not sent again, and the client says so. */
static void test_full_then_resumed(void **state)
{
    fx_t *f = *state;
    mbedtls_ssl_context s1, s2;
    tlsclient_session_t *saved = NULL;
    link_t *l = calloc(1, sizeof(*l));
    tlsclient_t *c;

    c = connect_to(f, l, &s1, NULL, 0);
    assert_int_equal(tlsclient_resumed(c), 0);
    assert_int_equal(tlsclient_save(c, &saved), 0);
    assert_non_null(saved);
    client_says(c, &s1, "GET / HTTP/1.1");
    server_says(c, l, &s1, "HTTP/1.1 101", 0);
    tlsclient_free(c);
    mbedtls_ssl_free(&s1);

    c = connect_to(f, l, &s2, saved, 0);
    assert_int_equal(tlsclient_resumed(c), 1);
    client_says(c, &s2, "after the resume");
    server_says(c, l, &s2, "both ways", 0);
    /* The session of a resumed connection can be saved again. */
    assert_int_equal(tlsclient_save(c, &saved), 0);
    tlsclient_free(c);
    mbedtls_ssl_free(&s2);
    tlsclient_session_free(saved);
    free(l);
}

/* A ticket the server cannot read (its keys are new: a restart) is
 * answered with a full handshake, and the client says it was not
 * resumed. */
static void test_ticket_refused_is_a_full_handshake(void **state)
{
    fx_t *f = *state;
    mbedtls_ssl_context s1, s2;
    tlsclient_session_t *saved = NULL;
    link_t *l = calloc(1, sizeof(*l));
    tlsclient_t *c;

    c = connect_to(f, l, &s1, NULL, 0);
    assert_int_equal(tlsclient_save(c, &saved), 0);
    tlsclient_free(c);
    mbedtls_ssl_free(&s1);
    mbedtls_ssl_ticket_free(&f->srv.ticket);
    mbedtls_ssl_ticket_init(&f->srv.ticket);
    assert_int_equal(mbedtls_ssl_ticket_setup(
                         &f->srv.ticket, mbedtls_ctr_drbg_random, &f->srv.drbg,
                         MBEDTLS_CIPHER_AES_256_GCM, 3600),
                     0);

    c = connect_to(f, l, &s2, saved, 0);
    assert_int_equal(tlsclient_resumed(c), 0);
    client_says(c, &s2, "still works");
    tlsclient_free(c);
    mbedtls_ssl_free(&s2);
    tlsclient_session_free(saved);
    free(l);
}

/* The server's flights and records in pieces of every size up to 64
 * bytes: the handshake and the plaintext come out the same. */
static void test_input_in_pieces(void **state)
{
    fx_t *f = *state;
    link_t *l = calloc(1, sizeof(*l));

    for (size_t piece = 1; piece <= 64; piece++) {
        mbedtls_ssl_context s;
        tlsclient_t *c = connect_to(f, l, &s, NULL, piece);

        server_says(c, l, &s, "{\"event\":\"ready\",\"data\":{}}", piece);
        tlsclient_free(c);
        mbedtls_ssl_free(&s);
    }
    free(l);
}

/* Two records in one read, and a third split across two reads. */
static void test_records_coalesced(void **state)
{
    fx_t *f = *state;
    link_t *l = calloc(1, sizeof(*l));
    mbedtls_ssl_context s;
    tlsclient_t *c = connect_to(f, l, &s, NULL, 0);
    size_t half;

    mbedtls_ssl_write(&s, (const unsigned char *)"one,", 4);
    mbedtls_ssl_write(&s, (const unsigned char *)"two,", 4);
    mbedtls_ssl_write(&s, (const unsigned char *)"three", 5);
    half = l->down.len - 10;
    l->plain_len = 0;
    assert_int_equal(tlsclient_input(c, l->down.b, half), TLSCLIENT_OK);
    assert_int_equal(l->plain_len, 8);
    assert_int_equal(tlsclient_input(c, l->down.b + half, l->down.len - half),
                     TLSCLIENT_OK);
    assert_int_equal(l->plain_len, 13);
    assert_memory_equal(l->plain, "one,two,three", 13);
    tlsclient_free(c);
    mbedtls_ssl_free(&s);
    free(l);
}

/* The owner closing in its data callback stops the reading there. */
static void test_owner_closing_stops_reading(void **state)
{
    fx_t *f = *state;
    link_t *l = calloc(1, sizeof(*l));
    mbedtls_ssl_context s;
    tlsclient_t *c = connect_to(f, l, &s, NULL, 0);

    mbedtls_ssl_write(&s, (const unsigned char *)"first", 5);
    mbedtls_ssl_write(&s, (const unsigned char *)"second", 6);
    l->plain_len = 0;
    l->closing = 1;
    assert_int_equal(feed(c, l, 0), TLSCLIENT_OK);
    assert_int_equal(l->plain_len, 5);
    tlsclient_free(c);
    mbedtls_ssl_free(&s);
    free(l);
}

/* close_notify ends the session; garbage fails it. */
static void test_close_notify_and_garbage(void **state)
{
    fx_t *f = *state;
    link_t *l = calloc(1, sizeof(*l));
    mbedtls_ssl_context s;
    tlsclient_t *c = connect_to(f, l, &s, NULL, 0);
    static const uint8_t junk[] = "HTTP/1.1 400 Bad Request\r\n\r\n";

    assert_int_equal(mbedtls_ssl_close_notify(&s), 0);
    assert_int_equal(feed(c, l, 0), TLSCLIENT_CLOSED);
    tlsclient_free(c);
    mbedtls_ssl_free(&s);

    c = connect_to(f, l, &s, NULL, 0);
    assert_int_equal(tlsclient_input(c, junk, sizeof(junk) - 1),
                     TLSCLIENT_FAILED);
    tlsclient_free(c);
    mbedtls_ssl_free(&s);

    /* A server that answers the ClientHello with garbage. */
    memset(l, 0, sizeof(*l));
    c = tlsclient_new(f->tc, NULL, l);
    assert_non_null(c);
    assert_int_equal(tlsclient_input(c, junk, sizeof(junk) - 1),
                     TLSCLIENT_FAILED);
    assert_int_equal(l->opened, 0);
    assert_int_equal(tlsclient_write(c, junk, 4), TLSCLIENT_FAILED);
    tlsclient_free(c);
    free(l);
}

/* ---- the server's fan-out histogram from /stats ---- */

static void lat_parse(const char *json, totals_lat_t *h, int want)
{
    cJSON *doc = cJSON_Parse(json);

    assert_non_null(doc);
    assert_int_equal(totals_lat_read(doc, h), want);
    cJSON_Delete(doc);
}

static void test_server_latency_between_readings(void **state)
{
    totals_lat_t a, b, other;
    double n, over;
    (void)state;

    lat_parse("{\"totals\":{},\"fanout_latency\":{\"le_us\":[1000,10000,"
              "100000],\"counts\":[10,2,1,0]}}",
              &a, 0);
    lat_parse("{\"fanout_latency\":{\"le_us\":[1000,10000,100000],"
              "\"counts\":[90,12,8,3]}}",
              &b, 0);
    /* 100 fan-outs between: 80 within 1 ms, 10 within 10 ms, 7 within
     * 100 ms, 3 past it. */
    assert_int_equal(totals_lat_over(&a, &b, 10000, &n, &over), 0);
    assert_true(n == 100 && over == 10);
    assert_int_equal(totals_lat_over(&a, &b, 100000, &n, &over), 0);
    assert_true(over == 3);
    assert_int_equal(totals_lat_over(&a, &b, 5000, &n, &over), -1);
    assert_true(totals_lat_quantile(&a, &b, .5) == 1000);
    assert_true(totals_lat_quantile(&a, &b, .8) == 1000);
    assert_true(totals_lat_quantile(&a, &b, .81) == 10000);
    assert_true(totals_lat_quantile(&a, &b, .9) == 10000);
    assert_true(totals_lat_quantile(&a, &b, .91) == 100000);
    assert_true(totals_lat_quantile(&a, &b, .97) == 100000);
    assert_true(totals_lat_quantile(&a, &b, .98) == -1);
    assert_true(totals_lat_quantile(&a, &a, .5) == -1);
    /* Readings with other buckets do not fit together. */
    lat_parse("{\"fanout_latency\":{\"le_us\":[1000,20000,100000],"
              "\"counts\":[90,12,5,3]}}",
              &other, 0);
    assert_int_equal(totals_lat_over(&a, &other, 10000, &n, &over), -1);
    assert_true(totals_lat_quantile(&a, &other, .5) == -1);
}

static void test_server_latency_malformed(void **state)
{
    totals_lat_t h;
    (void)state;

    lat_parse("{\"totals\":{}}", &h, -1);
    assert_int_equal(h.nb, 0);
    lat_parse("{\"fanout_latency\":{\"le_us\":[1,2],\"counts\":[1,2]}}", &h,
              -1);
    lat_parse("{\"fanout_latency\":{\"le_us\":[1,2],\"counts\":[1,2,\"x\"]}}",
              &h, -1);
    lat_parse("{\"fanout_latency\":{\"le_us\":[],\"counts\":[1]}}", &h, -1);
    lat_parse("{\"fanout_latency\":{\"le_us\":7,\"counts\":[1,2]}}", &h, -1);
    lat_parse("{\"fanout_latency\":{\"le_us\":[1],\"counts\":[1,2]}}", &h, 0);
    assert_int_equal(h.nb, 2);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, fx_setup, fx_teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_full_then_resumed),
        T(test_ticket_refused_is_a_full_handshake),
        T(test_input_in_pieces),
        T(test_records_coalesced),
        T(test_owner_closing_stops_reading),
        T(test_close_notify_and_garbage),
        cmocka_unit_test(test_server_latency_between_readings),
        cmocka_unit_test(test_server_latency_malformed),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
