#include "tlsclient.h"

#include <mbedtls/ctr_drbg.h>
#include <mbedtls/entropy.h>
#include <mbedtls/net_sockets.h>
#include <mbedtls/ssl.h>
#include <stdlib.h>
#include <string.h>

#include "gw/alloc.h"

/* The suites and groups a browser offers for TLS 1.2 (ECDHE with AEAD);
 * the server chooses among them. */
static const int tlsclient_suites[] = {
    MBEDTLS_TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
    MBEDTLS_TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
    MBEDTLS_TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
    MBEDTLS_TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
    MBEDTLS_TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
    MBEDTLS_TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
    0,
};

static const mbedtls_ecp_group_id tlsclient_curves[] = {
    MBEDTLS_ECP_DP_CURVE25519,
    MBEDTLS_ECP_DP_SECP256R1,
    MBEDTLS_ECP_DP_SECP384R1,
    MBEDTLS_ECP_DP_NONE,
};

static const char *tlsclient_alpn[] = {"http/1.1", NULL};

struct tlsclient_conf {
    const tlsclient_cb_t *cb; /* borrowed */
    mbedtls_entropy_context entropy;
    mbedtls_ctr_drbg_context drbg;
    mbedtls_ssl_config ssl;
    uint8_t plain[MBEDTLS_SSL_IN_CONTENT_LEN]; /* one record's plaintext */
};

struct tlsclient {
    tlsclient_conf_t *tc; /* borrowed: the loop's */
    void *ud;
    mbedtls_ssl_context ssl;
    const uint8_t *in; /* input not yet taken by mbedtls, during a call */
    size_t in_len;
    unsigned open : 1;    /* the handshake is done */
    unsigned full : 1;    /* the server sent its certificate */
    unsigned offered : 1; /* a saved session was offered */
};

struct tlsclient_session {
    mbedtls_ssl_session s;
};

tlsclient_conf_t *tlsclient_conf_new(const tlsclient_cb_t *cb, uint64_t seed)
{
    tlsclient_conf_t *tc = gw_calloc(1, sizeof(*tc));
    mbedtls_ssl_config *c = &tc->ssl;

    tc->cb = cb;
    mbedtls_entropy_init(&tc->entropy);
    mbedtls_ctr_drbg_init(&tc->drbg);
    mbedtls_ssl_config_init(c);
    if (mbedtls_ctr_drbg_seed(&tc->drbg, mbedtls_entropy_func, &tc->entropy,
                              (const unsigned char *)&seed,
                              sizeof(seed)) != 0 ||
        mbedtls_ssl_config_defaults(c, MBEDTLS_SSL_IS_CLIENT,
                                    MBEDTLS_SSL_TRANSPORT_STREAM,
                                    MBEDTLS_SSL_PRESET_DEFAULT) != 0 ||
        mbedtls_ssl_conf_alpn_protocols(c, tlsclient_alpn) != 0) {
        tlsclient_conf_free(tc);
        return NULL;
    }
    mbedtls_ssl_conf_rng(c, mbedtls_ctr_drbg_random, &tc->drbg);
    mbedtls_ssl_conf_authmode(c, MBEDTLS_SSL_VERIFY_NONE);
    mbedtls_ssl_conf_min_version(c, MBEDTLS_SSL_MAJOR_VERSION_3,
                                 MBEDTLS_SSL_MINOR_VERSION_3);
    mbedtls_ssl_conf_ciphersuites(c, tlsclient_suites);
    mbedtls_ssl_conf_curves(c, tlsclient_curves);
    mbedtls_ssl_conf_session_tickets(c, MBEDTLS_SSL_SESSION_TICKETS_ENABLED);
    return tc;
}

void tlsclient_conf_free(tlsclient_conf_t *tc)
{
    if (tc == NULL)
        return;
    mbedtls_ssl_config_free(&tc->ssl);
    mbedtls_ctr_drbg_free(&tc->drbg);
    mbedtls_entropy_free(&tc->entropy);
    free(tc);
}

/* ---- the bytes beneath mbedtls ----------------------------------------- */

static int tlsclient_bio_send(void *ctx, const unsigned char *buf, size_t len)
{
    tlsclient_t *t = ctx;

    if (t->tc->cb->send(t->ud, buf, len) != 0)
        return MBEDTLS_ERR_NET_SEND_FAILED;
    return (int)len;
}

static int tlsclient_bio_recv(void *ctx, unsigned char *buf, size_t len)
{
    tlsclient_t *t = ctx;
    size_t n = len < t->in_len ? len : t->in_len;

    if (n == 0)
        return MBEDTLS_ERR_SSL_WANT_READ;
    memcpy(buf, t->in, n);
    t->in += n;
    t->in_len -= n;
    return (int)n;
}

/* ---- the connection ------------------------------------------------------ */

/*
 * Takes the handshake as far as the input allows, a state at a time: in a
 * full handshake the server's certificate follows its hello, while a
 * resumed one goes on to the ticket or ChangeCipherSpec (mbedtls 2.28 has
 * no call that says which it was, and frees its handshake state at the
 * end). Returns 0 once done, or mbedtls's code.
 */
static int tlsclient_handshake(tlsclient_t *t)
{
    while (t->ssl.state != MBEDTLS_SSL_HANDSHAKE_OVER) {
        int rc = mbedtls_ssl_handshake_step(&t->ssl);

        if (t->ssl.state == MBEDTLS_SSL_SERVER_CERTIFICATE)
            t->full = 1;
        if (rc != 0)
            return rc;
    }
    return 0;
}

tlsclient_t *tlsclient_new(tlsclient_conf_t *tc,
                           const tlsclient_session_t *offer, void *ud)
{
    tlsclient_t *t = gw_calloc(1, sizeof(*t));
    int rc;

    t->tc = tc;
    t->ud = ud;
    mbedtls_ssl_init(&t->ssl);
    if (mbedtls_ssl_setup(&t->ssl, &tc->ssl) != 0)
        goto Error;
    mbedtls_ssl_set_bio(&t->ssl, t, tlsclient_bio_send, tlsclient_bio_recv,
                        NULL);
    if (offer != NULL) {
        if (mbedtls_ssl_set_session(&t->ssl, &offer->s) != 0)
            goto Error;
        t->offered = 1;
    }
    rc = tlsclient_handshake(t); /* the ClientHello */
    if (rc != MBEDTLS_ERR_SSL_WANT_READ)
        goto Error;
    return t;
Error:
    tlsclient_free(t);
    return NULL;
}

void tlsclient_free(tlsclient_t *t)
{
    if (t == NULL)
        return;
    mbedtls_ssl_free(&t->ssl);
    free(t);
}

/* Decrypts what the input holds, record by record, until it is used up. */
static int tlsclient_read(tlsclient_t *t)
{
    tlsclient_conf_t *tc = t->tc;

    for (;;) {
        int rc = mbedtls_ssl_read(&t->ssl, tc->plain, sizeof(tc->plain));

        if (rc > 0) {
            if (tc->cb->data(t->ud, tc->plain, (size_t)rc) != 0)
                return TLSCLIENT_OK;
            continue;
        }
        if (rc == MBEDTLS_ERR_SSL_WANT_READ)
            return TLSCLIENT_OK;
        if (rc == 0 || rc == MBEDTLS_ERR_SSL_PEER_CLOSE_NOTIFY)
            return TLSCLIENT_CLOSED;
        return TLSCLIENT_FAILED;
    }
}

/* The handshake, then the records: a TLSCLIENT_* result. */
static int tlsclient_consume(tlsclient_t *t)
{
    int rc;

    if (!t->open) {
        rc = tlsclient_handshake(t);
        if (rc == MBEDTLS_ERR_SSL_WANT_READ)
            return TLSCLIENT_OK;
        if (rc != 0)
            return TLSCLIENT_FAILED;
        t->open = 1;
        if (t->tc->cb->open(t->ud) != 0)
            return TLSCLIENT_OK;
    }
    return tlsclient_read(t);
}

int tlsclient_input(tlsclient_t *t, const uint8_t *data, size_t len)
{
    int rc;

    t->in = data;
    t->in_len = len;
    rc = tlsclient_consume(t);
    /* What the owner left unread as it closed is dropped. */
    t->in = NULL;
    t->in_len = 0;
    return rc;
}

int tlsclient_write(tlsclient_t *t, const uint8_t *data, size_t len)
{
    if (!t->open)
        return TLSCLIENT_FAILED;
    while (len > 0) {
        int rc = mbedtls_ssl_write(&t->ssl, data, len);

        if (rc <= 0)
            return TLSCLIENT_FAILED;
        data += rc;
        len -= (size_t)rc;
    }
    return 0;
}

int tlsclient_resumed(const tlsclient_t *t)
{
    return t->open && t->offered && !t->full;
}

int tlsclient_save(const tlsclient_t *t, tlsclient_session_t **s)
{
    if (!t->open)
        return TLSCLIENT_FAILED;
    if (*s == NULL)
        *s = gw_calloc(1, sizeof(**s));
    else
        mbedtls_ssl_session_free(&(*s)->s);
    mbedtls_ssl_session_init(&(*s)->s);
    if (mbedtls_ssl_get_session(&t->ssl, &(*s)->s) != 0) {
        tlsclient_session_free(*s);
        *s = NULL;
        return TLSCLIENT_FAILED;
    }
    return 0;
}

void tlsclient_session_free(tlsclient_session_t *s)
{
    if (s == NULL)
        return;
    mbedtls_ssl_session_free(&s->s);
    free(s);
}
