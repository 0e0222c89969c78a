#include "tlsc.h"

#include "gw/alloc.h"
#include "gw/buf.h"
#include "gw/error.h"

#include <arpa/inet.h>
#include <mbedtls/asn1.h>
#include <mbedtls/ctr_drbg.h>
#include <mbedtls/entropy.h>
#include <mbedtls/error.h>
#include <mbedtls/ssl.h>
#include <mbedtls/x509_crt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A subjectAltName entry of type iPAddress (RFC 5280 4.2.1.6). */
#define TLSC_SAN_IP (MBEDTLS_ASN1_CONTEXT_SPECIFIC | 7)

struct ctl_tlsc {
    mbedtls_ssl_context ssl;
    mbedtls_ssl_config conf;
    mbedtls_x509_crt ca;
    mbedtls_entropy_context entropy;
    mbedtls_ctr_drbg_context drbg;
    gw_buf_t in;          /* read from the peer, not yet taken by mbedtls */
    size_t in_off;        /* bytes of in already taken */
    gw_buf_t out;         /* records to send */
    unsigned char ip[16]; /* the dialled address when it is a literal */
    size_t ip_len;        /* 4 or 16, or 0 for a name */
};

static int tlsc_send_cb(void *ctx, const unsigned char *buf, size_t len)
{
    ctl_tlsc_t *t = ctx;

    gw_buf_append(&t->out, (const char *)buf, len);
    return (int)len;
}

static int tlsc_recv_cb(void *ctx, unsigned char *buf, size_t len)
{
    ctl_tlsc_t *t = ctx;
    size_t n = t->in.len - t->in_off;

    if (n == 0)
        return MBEDTLS_ERR_SSL_WANT_READ;
    if (n > len)
        n = len;
    memcpy(buf, t->in.data + t->in_off, n);
    t->in_off += n;
    if (t->in_off == t->in.len)
        t->in.len = t->in_off = 0;
    return (int)n;
}

/*
 * mbedtls 2.28 checks a DNS name against the certificate, not an address:
 * for a literal, the leaf's subjectAltName must list it as an iPAddress
 * (as browsers require; the CN is never an address).
 */
static int tlsc_verify_cb(void *ctx, mbedtls_x509_crt *crt, int depth,
                          uint32_t *flags)
{
    ctl_tlsc_t *t = ctx;

    if (depth != 0 || t->ip_len == 0)
        return 0;
    for (const mbedtls_x509_sequence *s = &crt->subject_alt_names;
         s != NULL && s->buf.p != NULL; s = s->next)
        if (s->buf.tag == TLSC_SAN_IP && s->buf.len == t->ip_len &&
            memcmp(s->buf.p, t->ip, t->ip_len) == 0)
            return 0;
    *flags |= MBEDTLS_X509_BADCERT_CN_MISMATCH;
    return 0;
}

static void tlsc_strerror(int rc, const char *what, char *err, size_t errlen)
{
    char text[160];

    mbedtls_strerror(rc, text, sizeof(text));
    snprintf(err, errlen, "%s: %s", what, text);
}

/* The trust: the CA file, and the name or address the certificate must
 * carry. */
static int tlsc_trust(ctl_tlsc_t *t, const char *host,
                      const ctl_tls_opts_t *opts, char *err, size_t errlen)
{
    const char *ca = opts->ca_file ? opts->ca_file : CTL_TLSC_SYSTEM_CA;
    int rc;

    if (opts->insecure) {
        mbedtls_ssl_conf_authmode(&t->conf, MBEDTLS_SSL_VERIFY_NONE);
        return mbedtls_ssl_set_hostname(&t->ssl, host);
    }
    if ((rc = mbedtls_x509_crt_parse_file(&t->ca, ca)) < 0) {
        snprintf(err, errlen,
                 "cannot load the trusted certificates from %s%s; give "
                 "--ca-file FILE (PEM), or --insecure to skip the check",
                 ca, opts->ca_file ? "" : " (the system's)");
        return rc;
    }
    mbedtls_ssl_conf_ca_chain(&t->conf, &t->ca, NULL);
    mbedtls_ssl_conf_authmode(&t->conf, MBEDTLS_SSL_VERIFY_REQUIRED);
    if (inet_pton(AF_INET, host, t->ip) == 1)
        t->ip_len = 4;
    else if (inet_pton(AF_INET6, host, t->ip) == 1)
        t->ip_len = 16;
    mbedtls_ssl_conf_verify(&t->conf, tlsc_verify_cb, t);
    /* A name is checked by mbedtls and sent as SNI; an address is neither
     * (RFC 6066 3: no literals in SNI) and is checked above. */
    return mbedtls_ssl_set_hostname(&t->ssl, t->ip_len ? NULL : host);
}

ctl_tlsc_t *ctl_tlsc_new(const char *host, const ctl_tls_opts_t *opts,
                         char *err, size_t errlen)
{
    ctl_tlsc_t *t = gw_calloc(1, sizeof(*t));
    static const char pers[] = "gwctl";
    int rc;

    mbedtls_ssl_init(&t->ssl);
    mbedtls_ssl_config_init(&t->conf);
    mbedtls_x509_crt_init(&t->ca);
    mbedtls_entropy_init(&t->entropy);
    mbedtls_ctr_drbg_init(&t->drbg);
    if ((rc = mbedtls_ctr_drbg_seed(&t->drbg, mbedtls_entropy_func, &t->entropy,
                                    (const unsigned char *)pers,
                                    sizeof(pers) - 1)) != 0 ||
        (rc = mbedtls_ssl_config_defaults(&t->conf, MBEDTLS_SSL_IS_CLIENT,
                                          MBEDTLS_SSL_TRANSPORT_STREAM,
                                          MBEDTLS_SSL_PRESET_DEFAULT)) != 0) {
        tlsc_strerror(rc, "TLS setup", err, errlen);
        goto Error;
    }
    mbedtls_ssl_conf_rng(&t->conf, mbedtls_ctr_drbg_random, &t->drbg);
    mbedtls_ssl_conf_min_version(&t->conf, MBEDTLS_SSL_MAJOR_VERSION_3,
                                 MBEDTLS_SSL_MINOR_VERSION_3);
    if ((rc = mbedtls_ssl_setup(&t->ssl, &t->conf)) != 0) {
        tlsc_strerror(rc, "TLS setup", err, errlen);
        goto Error;
    }
    if (tlsc_trust(t, host, opts, err, errlen) != 0)
        goto Error;
    mbedtls_ssl_set_bio(&t->ssl, t, tlsc_send_cb, tlsc_recv_cb, NULL);
    return t;

Error:
    ctl_tlsc_free(t);
    return NULL;
}

void ctl_tlsc_free(ctl_tlsc_t *t)
{
    mbedtls_ssl_free(&t->ssl);
    mbedtls_ssl_config_free(&t->conf);
    mbedtls_x509_crt_free(&t->ca);
    mbedtls_ctr_drbg_free(&t->drbg);
    mbedtls_entropy_free(&t->entropy);
    free(t->in.data);
    free(t->out.data);
    free(t);
}

void ctl_tlsc_feed(ctl_tlsc_t *t, const char *buf, size_t len)
{
    gw_buf_append(&t->in, buf, len);
}

/* Why the certificate was refused, as mbedtls words it. */
static void tlsc_verify_error(ctl_tlsc_t *t, char *err, size_t errlen)
{
    char why[512];
    int n;

    n = mbedtls_x509_crt_verify_info(why, sizeof(why), "",
                                     mbedtls_ssl_get_verify_result(&t->ssl));
    /* One line: the reasons come one per line. */
    for (int i = 0; i < n; i++)
        if (why[i] == '\n')
            why[i] = i == n - 1 ? '\0' : ';';
    snprintf(err, errlen,
             "the server's certificate is refused: %s (--ca-file names the "
             "CA that signed it, --insecure skips the check)",
             n > 0 ? why : "unknown reason");
}

int ctl_tlsc_handshake(ctl_tlsc_t *t, char *err, size_t errlen)
{
    int rc = mbedtls_ssl_handshake(&t->ssl);

    if (rc == 0)
        return 0;
    if (rc == MBEDTLS_ERR_SSL_WANT_READ || rc == MBEDTLS_ERR_SSL_WANT_WRITE)
        return GW_EAGAIN;
    if (rc == MBEDTLS_ERR_X509_CERT_VERIFY_FAILED) {
        tlsc_verify_error(t, err, errlen);
        return GW_EAUTH;
    }
    tlsc_strerror(rc, "TLS handshake", err, errlen);
    return GW_EIO;
}

ssize_t ctl_tlsc_read(ctl_tlsc_t *t, char *buf, size_t cap, char *err,
                      size_t errlen)
{
    int rc = mbedtls_ssl_read(&t->ssl, (unsigned char *)buf, cap);

    if (rc >= 0)
        return rc;
    if (rc == MBEDTLS_ERR_SSL_PEER_CLOSE_NOTIFY)
        return 0;
    if (rc == MBEDTLS_ERR_SSL_WANT_READ || rc == MBEDTLS_ERR_SSL_WANT_WRITE)
        return GW_EAGAIN;
    tlsc_strerror(rc, "TLS", err, errlen);
    return GW_EIO;
}

int ctl_tlsc_write(ctl_tlsc_t *t, const char *buf, size_t len, char *err,
                   size_t errlen)
{
    /* The output callback takes everything, so a write completes at once,
     * possibly in several records. */
    while (len > 0) {
        int rc = mbedtls_ssl_write(&t->ssl, (const unsigned char *)buf, len);

        if (rc < 0) {
            tlsc_strerror(rc, "TLS", err, errlen);
            return GW_EIO;
        }
        buf += rc;
        len -= (size_t)rc;
    }
    return 0;
}

void ctl_tlsc_close_notify(ctl_tlsc_t *t)
{
    /* Written into memory at once; nothing can be left pending. */
    (void)mbedtls_ssl_close_notify(&t->ssl);
}

char *ctl_tlsc_take_output(ctl_tlsc_t *t, size_t *len)
{
    if (t->out.len == 0)
        return NULL;
    return gw_buf_steal(&t->out, len);
}
