/*
 * TLS over mbedtls 2.28's ssl module (include/gw/tls.h says what is shared
 * between workers and why). mbedtls reads and writes the socket through
 * two callbacks that never block: a full socket is MBEDTLS_ERR_SSL_WANT_*,
 * which this file turns into the transport's "nothing now" (GW_EAGAIN, or a
 * short write) and a wait for readability or writability.
 *
 * The handshake runs from the read path: each readable event takes it as
 * far as the bytes allow; when its output does not fit the socket, the
 * transport waits for writability and the writable op goes on from there.
 * Output the layer above queues before the handshake is done (an early
 * refusal) waits in the ring, and the end of the handshake asks for the
 * flush that writes it.
 *
 * A connection resuming a session of another worker takes its TLS session
 * along (tls_detach): the ssl context itself moves, as the socket does.
 */
#include "gw/tls.h"

#include "gw/alloc.h"
#include "gw/error.h"
#include "gw/sni.h"

#include <errno.h>
#include <mbedtls/ctr_drbg.h>
#include <mbedtls/entropy.h>
#include <mbedtls/error.h>
#include <mbedtls/net_sockets.h>
#include <mbedtls/pk.h>
#include <mbedtls/platform_util.h>
#include <mbedtls/ssl.h>
#include <mbedtls/ssl_ticket.h>
#include <mbedtls/x509_crt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

/* The largest plaintext of one record: a record is built from this many
 * queued bytes at most, and a read takes whole records only. */
#define TLS_RECORD MBEDTLS_SSL_OUT_CONTENT_LEN
/* A ticket lets a client that comes back within a day skip the full
 * handshake; the ticket module rotates its keys at the same period. */
#define TLS_TICKET_LIFETIME_S 86400
/* A certificate chain or key file larger than this is a mistake. */
#define TLS_FILE_MAX (1 << 20)
/* The head of a record buffer that holds state between records: its
 * sequence number and the record header, with room to spare. The buffers
 * are longer than their content length, so a release within that length
 * stays inside them. */
#define TLS_LIVE_HEAD 64

_Static_assert(MBEDTLS_SSL_IN_CONTENT_LEN == TLS_RECORD,
               "a read buffer holds whole records");

/* ECDHE with AEAD only, TLS 1.2, in the server's order of preference:
 * mbedtls 2.28 picks by the server's list (MBEDTLS_SSL_SRV_RESPECT_CLIENT_
 * PREFERENCE is off in Debian's build). Each certificate kind keeps the
 * suites that fit it. ChaCha20-Poly1305 first: mbedtls 2.28's GCM works a
 * 16-byte block at a time, each a call into AES-NI and one into the
 * carry-less multiply, and seals a 256-byte record in 1.26 us here
 * against 0.85 us (1 KiB: 5.1 against 2.7 us); every delivery is a record,
 * and the ChaCha context is 240 bytes against GCM's 424. */
static const int tls_suites[] = {
    MBEDTLS_TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
    MBEDTLS_TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
    MBEDTLS_TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
    MBEDTLS_TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
    MBEDTLS_TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
    MBEDTLS_TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
    0,
};

/* Key exchange groups: the ones browsers offer, not the legacy curves
 * Debian's build also enables. */
static const mbedtls_ecp_group_id tls_curves[] = {
    MBEDTLS_ECP_DP_CURVE25519,
    MBEDTLS_ECP_DP_SECP256R1,
    MBEDTLS_ECP_DP_SECP384R1,
    MBEDTLS_ECP_DP_NONE,
};

static const char *tls_alpn[] = {"http/1.1", NULL};

/* A certificate chain and its key, copied once per worker. */
typedef struct tls_cert {
    mbedtls_x509_crt chain;
    mbedtls_pk_context *keys; /* owned: one per worker */
} tls_cert_t;

/* One worker's view of a generation: its configuration. */
typedef struct tls_slot {
    gw_tls_pair_t *pair; /* the generation, for the SNI callback */
    unsigned worker;     /* the index of this slot, and of its keys */
    mbedtls_ssl_config conf;
} tls_slot_t;

struct gw_tls_pair {
    gw_tls_pair_t *older; /* the generation this one replaced */
    tls_cert_t *certs;    /* owned: [0] the default pair (tls.cert_file),
                             then those of tls.sni_certs, in order */
    unsigned ncerts;
    unsigned nslots;
    tls_slot_t slot[]; /* one per worker */
};

struct gw_tls {
    unsigned workers;
    uint32_t handshake_us_per_turn; /* tls.handshake_us_per_turn */
    uint32_t buffer_release_ms;     /* tls.buffer_release_ms */
    mbedtls_entropy_context entropy;
    mbedtls_ctr_drbg_context *drbg; /* owned: one per worker */
    mbedtls_ctr_drbg_context ticket_drbg;
    mbedtls_ssl_ticket_context ticket; /* the process's ticket keys */
    _Atomic(gw_tls_pair_t *) pair;     /* the newest generation, owned with
                                          every older one */
};

/* A connection's TLS state: the transport's impl, and what travels when
 * the connection moves to another worker. */
typedef struct tls_conn {
    gw_transport_state_t moving; /* first: the state in transit */
    mbedtls_ssl_context ssl;
    gw_tls_pair_t *pair; /* borrowed: the generation it was made with */
    gw_transport_t *t;   /* borrowed: whose impl it is (NULL in transit) */
    struct tls_conn *due_prev; /* in its loop's due list while open and */
    struct tls_conn *due_next; /* not released (gw_tls_loop_tick) */
    uint64_t due_ms;           /* loop time its buffers are due for release */
    unsigned open : 1;         /* the handshake is done */
    unsigned released : 1;     /* the record buffers' pages went back */
    unsigned direct : 1;       /* records go to the socket, never staged */
} tls_conn_t;

/* Writes "what: mbedtls's words" into err. */
static int tls_fail(char *err, size_t errlen, int rc, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int tls_fail(char *err, size_t errlen, int rc, const char *fmt, ...)
{
    char what[512], why[160];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(what, sizeof(what), fmt, ap);
    va_end(ap);
    mbedtls_strerror(rc, why, sizeof(why));
    snprintf(err, errlen, "%s: %s", what, why);
    return GW_EINVAL;
}

/* Reads a whole file, NUL-terminated as mbedtls's PEM parser wants it,
 * into *buf (owned by the caller, who wipes it: it may hold a key). */
static int tls_read_file(const char *path, unsigned char **buf, size_t *len,
                         char *err, size_t errlen)
{
    FILE *f = fopen(path, "rb");
    size_t cap = 4096, n = 0;
    unsigned char *b = NULL;

    if (f == NULL)
        goto Error;
    b = gw_malloc(cap);
    for (;;) {
        n += fread(b + n, 1, cap - n - 1, f);
        if (ferror(f) || n >= TLS_FILE_MAX)
            goto Error;
        if (feof(f))
            break;
        cap *= 2;
        b = gw_realloc(b, cap);
    }
    fclose(f);
    b[n] = '\0';
    *buf = b;
    *len = n + 1;
    return 0;
Error:
    snprintf(err, errlen, "%s: %s", path,
             f == NULL || ferror(f) ? strerror(errno) : "larger than 1 MiB");
    if (f != NULL)
        fclose(f);
    if (b != NULL) {
        mbedtls_platform_zeroize(b, cap);
        free(b);
    }
    return GW_EINVAL;
}

/* ---- the certificates ---- */

/* Whether a subjectAltName entry is a DNS name (mbedtls keeps the tag). */
static int tls_san_is_dns(const mbedtls_x509_sequence *san)
{
    return san->buf.tag ==
           (MBEDTLS_ASN1_CONTEXT_SPECIFIC | MBEDTLS_X509_SAN_DNS_NAME);
}

/* Whether the chain's own certificate names host, or (host NULL) names
 * any DNS host at all. */
static int tls_cert_names(const mbedtls_x509_crt *chain, const char *host,
                          size_t len)
{
    for (const mbedtls_x509_sequence *san = &chain->subject_alt_names;
         san != NULL && san->buf.p != NULL; san = san->next)
        if (tls_san_is_dns(san) &&
            (host == NULL || gw_sni_name_matches((const char *)san->buf.p,
                                                 san->buf.len, host, len)))
            return 1;
    return 0;
}

/*
 * mbedtls's SNI callback: the handshake takes the first certificate of
 * tls.sni_certs that names the host the client asked for, with this
 * worker's copy of its key. A host none names gets the default pair,
 * which the configuration holds, as a client that sends no SNI does.
 */
static int tls_sni(void *arg, mbedtls_ssl_context *ssl,
                   const unsigned char *host, size_t len)
{
    const tls_slot_t *s = arg;
    gw_tls_pair_t *p = s->pair;

    for (unsigned i = 1; i < p->ncerts; i++)
        if (tls_cert_names(&p->certs[i].chain, (const char *)host, len))
            return mbedtls_ssl_set_hs_own_cert(ssl, &p->certs[i].chain,
                                               &p->certs[i].keys[s->worker]);
    return 0;
}

/* A pair's files, and how errors name them. */
typedef struct tls_files {
    const char *cert, *key;         /* paths */
    const char *cert_opt, *key_opt; /* the options that named them */
} tls_files_t;

/* Parses one worker's copy of the key, and checks it against the chain. */
static int tls_key_parse(tls_cert_t *c, unsigned i, const tls_files_t *f,
                         const unsigned char *key, size_t keylen,
                         const char *password, char *err, size_t errlen)
{
    int rc =
        mbedtls_pk_parse_key(&c->keys[i], key, keylen,
                             (const unsigned char *)password, strlen(password));

    if (rc != 0)
        return tls_fail(err, errlen, rc, "%s %s: %s", f->key_opt, f->key,
                        rc == MBEDTLS_ERR_PK_PASSWORD_REQUIRED
                            ? "encrypted (set GATEWAYD_TLS_KEY_PASSWORD)"
                            : "cannot be read as a private key");
    if ((rc = mbedtls_pk_check_pair(&c->chain.pk, &c->keys[i])) != 0)
        return tls_fail(err, errlen, rc, "%s %s does not match %s", f->key_opt,
                        f->key, f->cert_opt);
    return 0;
}

/* Loads a chain and nkeys copies of its key into c (initialised). */
static int tls_cert_load(tls_cert_t *c, unsigned nkeys, const tls_files_t *f,
                         const char *password, char *err, size_t errlen)
{
    unsigned char *key = NULL;
    size_t keylen = 0;
    int rc;

    if ((rc = mbedtls_x509_crt_parse_file(&c->chain, f->cert)) != 0) {
        rc = tls_fail(err, errlen, rc, "%s %s", f->cert_opt, f->cert);
        goto Done;
    }
    if ((rc = tls_read_file(f->key, &key, &keylen, err, errlen)) != 0)
        goto Done;
    for (unsigned i = 0; i < nkeys; i++)
        if ((rc = tls_key_parse(c, i, f, key, keylen, password, err, errlen)) !=
            0)
            goto Done;
Done:
    if (key != NULL) {
        mbedtls_platform_zeroize(key, keylen);
        free(key);
    }
    return rc;
}

/* Loads the pair of one tls.sni_certs entry, which must name a host. */
static int tls_sni_load(tls_cert_t *c, unsigned nkeys, const gw_sni_entry_t *e,
                        const char *password, char *err, size_t errlen)
{
    char *cert = gw_strndup(e->cert, e->cert_len);
    char *key = gw_strndup(e->key, e->key_len);
    tls_files_t f = {cert, key, "tls.sni_certs certificate",
                     "tls.sni_certs key"};
    int rc = tls_cert_load(c, nkeys, &f, password, err, errlen);

    if (rc == 0 && !tls_cert_names(&c->chain, NULL, 0)) {
        snprintf(err, errlen,
                 "tls.sni_certs certificate %s names no host (it has no DNS "
                 "subjectAltName)",
                 cert);
        rc = GW_EINVAL;
    }
    free(cert);
    free(key);
    return rc;
}

/* One worker's configuration of a generation, on its own generator. */
static int tls_slot_init(gw_tls_t *tls, gw_tls_pair_t *p, unsigned i, char *err,
                         size_t errlen)
{
    tls_slot_t *s = &p->slot[i];
    int rc;

    rc = mbedtls_ssl_config_defaults(&s->conf, MBEDTLS_SSL_IS_SERVER,
                                     MBEDTLS_SSL_TRANSPORT_STREAM,
                                     MBEDTLS_SSL_PRESET_DEFAULT);
    if (rc == 0)
        rc = mbedtls_ssl_conf_own_cert(&s->conf, &p->certs[0].chain,
                                       &p->certs[0].keys[i]);
    if (rc == 0)
        rc = mbedtls_ssl_conf_alpn_protocols(&s->conf, tls_alpn);
    if (rc != 0)
        return tls_fail(err, errlen, rc, "%s", "tls: configuration");
    mbedtls_ssl_conf_rng(&s->conf, mbedtls_ctr_drbg_random, &tls->drbg[i]);
    mbedtls_ssl_conf_min_version(&s->conf, MBEDTLS_SSL_MAJOR_VERSION_3,
                                 MBEDTLS_SSL_MINOR_VERSION_3);
    mbedtls_ssl_conf_ciphersuites(&s->conf, tls_suites);
    mbedtls_ssl_conf_curves(&s->conf, tls_curves);
    mbedtls_ssl_conf_renegotiation(&s->conf,
                                   MBEDTLS_SSL_RENEGOTIATION_DISABLED);
    mbedtls_ssl_conf_session_tickets_cb(&s->conf, mbedtls_ssl_ticket_write,
                                        mbedtls_ssl_ticket_parse, &tls->ticket);
    if (p->ncerts > 1)
        mbedtls_ssl_conf_sni(&s->conf, tls_sni, s);
    return 0;
}

static void tls_pair_free(gw_tls_pair_t *p)
{
    for (unsigned i = 0; i < p->nslots; i++)
        mbedtls_ssl_config_free(&p->slot[i].conf);
    for (unsigned c = 0; c < p->ncerts; c++) {
        for (unsigned i = 0; i < p->nslots; i++)
            mbedtls_pk_free(&p->certs[c].keys[i]);
        free(p->certs[c].keys);
        mbedtls_x509_crt_free(&p->certs[c].chain);
    }
    free(p->certs);
    free(p);
}

/* Counts the entries of a tls.sni_certs list; GW_EINVAL if one is bad. */
static int tls_sni_count(const char *list, unsigned *n)
{
    gw_sni_entry_t e;
    int rc;

    *n = 0;
    while ((rc = gw_sni_next(&list, &e)) == 1)
        (*n)++;
    return rc;
}

/* An empty generation of ncerts certificates for the workers. */
static gw_tls_pair_t *tls_pair_alloc(unsigned workers, unsigned ncerts)
{
    gw_tls_pair_t *p = gw_calloc(1, sizeof(*p) + workers * sizeof(p->slot[0]));

    p->certs = gw_calloc(ncerts, sizeof(p->certs[0]));
    p->ncerts = ncerts;
    p->nslots = workers;
    for (unsigned c = 0; c < ncerts; c++) {
        mbedtls_x509_crt_init(&p->certs[c].chain);
        p->certs[c].keys = gw_calloc(workers, sizeof(p->certs[c].keys[0]));
        for (unsigned i = 0; i < workers; i++)
            mbedtls_pk_init(&p->certs[c].keys[i]);
    }
    for (unsigned i = 0; i < workers; i++) {
        p->slot[i].pair = p;
        p->slot[i].worker = i;
        mbedtls_ssl_config_init(&p->slot[i].conf);
    }
    return p;
}

/* Loads the pairs cfg names, one configuration per worker. */
static gw_tls_pair_t *tls_pair_new(gw_tls_t *tls, const gw_config_t *cfg,
                                   char *err, size_t errlen)
{
    const tls_files_t def = {cfg->tls_cert_file, cfg->tls_key_file,
                             "tls.cert_file", "tls.key_file"};
    const char *list = cfg->tls_sni_certs;
    gw_sni_entry_t e;
    gw_tls_pair_t *p = NULL;
    unsigned nsni;

    if (cfg->tls_cert_file[0] == '\0' || cfg->tls_key_file[0] == '\0') {
        snprintf(err, errlen,
                 "tls.enabled needs tls.cert_file and "
                 "tls.key_file");
        goto Error;
    }
    if (tls_sni_count(list, &nsni) != 0) {
        snprintf(err, errlen,
                 "tls.sni_certs: not a list of cert_file:key_file pairs");
        goto Error;
    }
    p = tls_pair_alloc(tls->workers, 1 + nsni);
    if (tls_cert_load(&p->certs[0], p->nslots, &def, cfg->tls_key_password, err,
                      errlen) != 0)
        goto Error;
    for (unsigned c = 1; gw_sni_next(&list, &e) == 1; c++)
        if (tls_sni_load(&p->certs[c], p->nslots, &e, cfg->tls_key_password,
                         err, errlen) != 0)
            goto Error;
    for (unsigned i = 0; i < p->nslots; i++)
        if (tls_slot_init(tls, p, i, err, errlen) != 0)
            goto Error;
    return p;
Error:
    if (p != NULL)
        tls_pair_free(p);
    return NULL;
}

gw_tls_t *gw_tls_new(const gw_config_t *cfg, unsigned workers, char *err,
                     size_t errlen)
{
    static const char who[] = "gatewayd tls";
    gw_tls_t *tls = gw_calloc(1, sizeof(*tls));
    gw_tls_pair_t *p;
    int rc;

    tls->workers = workers;
    tls->handshake_us_per_turn = cfg->tls_handshake_us_per_turn;
    tls->buffer_release_ms = cfg->tls_buffer_release_ms;
    tls->drbg = gw_calloc(workers, sizeof(*tls->drbg));
    mbedtls_entropy_init(&tls->entropy);
    mbedtls_ctr_drbg_init(&tls->ticket_drbg);
    mbedtls_ssl_ticket_init(&tls->ticket);
    atomic_init(&tls->pair, NULL);
    for (unsigned i = 0; i < workers; i++)
        mbedtls_ctr_drbg_init(&tls->drbg[i]);
    /* The personalisation string tells the generators apart even if the
     * entropy source ever repeated itself. */
    rc = mbedtls_ctr_drbg_seed(&tls->ticket_drbg, mbedtls_entropy_func,
                               &tls->entropy, (const unsigned char *)who,
                               sizeof(who) - 1);
    for (unsigned i = 0; rc == 0 && i < workers; i++) {
        char pers[32];
        int n = snprintf(pers, sizeof(pers), "%s worker %u", who, i);
        rc = mbedtls_ctr_drbg_seed(&tls->drbg[i], mbedtls_entropy_func,
                                   &tls->entropy, (const unsigned char *)pers,
                                   (size_t)n);
    }
    if (rc == 0)
        rc = mbedtls_ssl_ticket_setup(
            &tls->ticket, mbedtls_ctr_drbg_random, &tls->ticket_drbg,
            MBEDTLS_CIPHER_AES_256_GCM, TLS_TICKET_LIFETIME_S);
    if (rc != 0) {
        tls_fail(err, errlen, rc, "%s", "tls: random generators");
        goto Error;
    }
    if ((p = tls_pair_new(tls, cfg, err, errlen)) == NULL)
        goto Error;
    atomic_store(&tls->pair, p);
    return tls;
Error:
    gw_tls_free(tls);
    return NULL;
}

int gw_tls_reload(gw_tls_t *tls, const gw_config_t *cfg, char *err,
                  size_t errlen)
{
    gw_tls_pair_t *p = tls_pair_new(tls, cfg, err, errlen);

    if (p == NULL)
        return GW_EINVAL;
    /* Workers load the pointer at each accept: release orders the pair's
     * construction before it. The older pair stays, for the connections
     * made with it. */
    p->older = atomic_load_explicit(&tls->pair, memory_order_relaxed);
    atomic_store_explicit(&tls->pair, p, memory_order_release);
    return 0;
}

void gw_tls_free(gw_tls_t *tls)
{
    gw_tls_pair_t *p = atomic_load(&tls->pair);

    while (p != NULL) {
        gw_tls_pair_t *older = p->older;
        tls_pair_free(p);
        p = older;
    }
    mbedtls_ssl_ticket_free(&tls->ticket);
    mbedtls_ctr_drbg_free(&tls->ticket_drbg);
    for (unsigned i = 0; i < tls->workers; i++)
        mbedtls_ctr_drbg_free(&tls->drbg[i]);
    free(tls->drbg);
    mbedtls_entropy_free(&tls->entropy);
    free(tls);
}

void gw_tls_loop_init(gw_tls_loop_t *tl, gw_tls_t *tls, unsigned worker)
{
    *tl = (gw_tls_loop_t){.tls = tls,
                          .worker = worker,
                          .budget_ns = tls->handshake_us_per_turn * 1000ull,
                          .release_ms = tls->buffer_release_ms};
    tl->stage = gw_malloc(TLS_RECORD);
}

void gw_tls_loop_free(gw_tls_loop_t *tl)
{
    free(tl->stage);
    tl->stage = NULL;
}

/* ---- the socket beneath mbedtls ---- */

/*
 * Records of an open session are staged for the loop's io_uring, which
 * the transport sends once a turn (a full buffer is a full socket to
 * mbedtls, which keeps the rest of the record). The handshake's flights
 * go to the socket at once, as everything does without a ring.
 */
static int tls_bio_send(void *ctx, const unsigned char *buf, size_t len)
{
    gw_transport_t *t = ctx;
    tls_conn_t *c = t->impl;
    ssize_t n;

    if (c->open && !c->direct && gw_transport_staging(t)) {
        n = (ssize_t)gw_transport_stage(t, buf, len);
        return n > 0 ? (int)n : MBEDTLS_ERR_SSL_WANT_WRITE;
    }
    do
        n = send(t->fd, buf, len, MSG_DONTWAIT | MSG_NOSIGNAL);
    while (n < 0 && errno == EINTR);
    if (n >= 0)
        return (int)n;
    return errno == EAGAIN || errno == EWOULDBLOCK
               ? MBEDTLS_ERR_SSL_WANT_WRITE
               : MBEDTLS_ERR_NET_SEND_FAILED;
}

static int tls_bio_recv(void *ctx, unsigned char *buf, size_t len)
{
    gw_transport_t *t = ctx;
    ssize_t n;

    do
        n = recv(t->fd, buf, len, MSG_DONTWAIT);
    while (n < 0 && errno == EINTR);
    if (n >= 0)
        return (int)n;
    return errno == EAGAIN || errno == EWOULDBLOCK
               ? MBEDTLS_ERR_SSL_WANT_READ
               : MBEDTLS_ERR_NET_RECV_FAILED;
}

/* ---- the ops ---- */

/* A failure is logged here, rate-limited: clients cause them. */
static ssize_t tls_failed(gw_transport_t *t, const char *what, int rc)
{
    gw_tls_loop_t *tl = t->loop->ops_data;
    char peer[64], why[128];

    if (gw_log_on(GW_LOG_INFO)) {
        gw_transport_peer_name(t, peer, sizeof(peer));
        mbedtls_strerror(rc, why, sizeof(why));
        gw_log_limited(&tl->log, GW_LOG_INFO, "tls fd %d (%s): %s: %s", t->fd,
                       peer, what, why);
    }
    return GW_EIO;
}

/* Gives back to the kernel the whole pages of len bytes at buf, past its
 * first `keep` bytes: they read as zeros from then on. */
static void tls_release_pages(unsigned char *buf, size_t keep, size_t len)
{
    uintptr_t page = (uintptr_t)sysconf(_SC_PAGESIZE);
    uintptr_t from = ((uintptr_t)buf + keep + page - 1) & ~(page - 1);
    uintptr_t to = ((uintptr_t)buf + len) & ~(page - 1);

    if (to > from)
        madvise((void *)from, to - from, MADV_DONTNEED);
}

/*
 * The record buffers' pages go back to the kernel, all but the one where
 * each starts. mbedtls 2.28 as Debian builds it (no
 * MBEDTLS_SSL_VARIABLE_BUFFER_LENGTH) keeps a 16 KiB input and output
 * buffer in every session, calloc'd, so written in full by glibc when it
 * reuses freed memory for them, and the handshake's certificates and key
 * shares pass through them; an idle session needs neither. Only their
 * first bytes hold state between records in TLS (the 8-byte sequence
 * numbers), and nothing may be pending (tls_quiet). A page a later record
 * reaches comes back zeroed on its first touch.
 *
 * Not at the handshake's end, but tls.buffer_release_ms later: the two
 * madvise calls, and the faults when mbedtls_ssl_free clears the released
 * pages at the close, cost a connection about 200 us (bench/README.md),
 * which one that closes soon pays for nothing. So an open session waits
 * in its loop's due list, in the order it opened, and the worker's tick
 * releases those whose time has come (gw_tls_loop_tick).
 */
static void tls_release_buffers(gw_transport_t *t, tls_conn_t *c)
{
    tls_release_pages(c->ssl.in_buf, TLS_LIVE_HEAD, MBEDTLS_SSL_IN_CONTENT_LEN);
    tls_release_pages(c->ssl.out_buf, TLS_LIVE_HEAD,
                      MBEDTLS_SSL_OUT_CONTENT_LEN);
    c->released = 1;
    gw_stat_add(t->loop->stats, GW_STAT_TLS_BUFFERS_RELEASED, 1);
}

/* Whether the record buffers hold nothing but the state between records:
 * no record half read (in_left) or half written (out_left, t->busy), no
 * input decrypted and not yet read. */
static int tls_quiet(const gw_transport_t *t, const tls_conn_t *c)
{
    return t->busy == 0 && c->ssl.out_left == 0 && c->ssl.in_left == 0 &&
           !mbedtls_ssl_check_pending(&c->ssl);
}

/* Appends c, due at c->due_ms, to its loop's due list. */
static void tls_due_link(gw_tls_loop_t *tl, tls_conn_t *c)
{
    c->due_next = NULL;
    c->due_prev = tl->due_tail;
    if (tl->due_tail != NULL)
        tl->due_tail->due_next = c;
    else
        tl->due_head = c;
    tl->due_tail = c;
}

static void tls_due_unlink(gw_tls_loop_t *tl, tls_conn_t *c)
{
    if (c->due_prev != NULL)
        c->due_prev->due_next = c->due_next;
    else
        tl->due_head = c->due_next;
    if (c->due_next != NULL)
        c->due_next->due_prev = c->due_prev;
    else
        tl->due_tail = c->due_prev;
    c->due_prev = c->due_next = NULL;
}

/* Whether c is in its loop's due list: open here, not released yet. */
static int tls_due_listed(const tls_conn_t *c)
{
    return c->open && !c->released && c->t != NULL;
}

/* The handshake is over: the buffers are released now
 * (tls.buffer_release_ms = 0) or wait their time in the due list. */
static void tls_opened(gw_transport_t *t, tls_conn_t *c)
{
    gw_tls_loop_t *tl = t->loop->ops_data;

    c->open = 1;
    if (tl->release_ms == 0 && tls_quiet(t, c)) {
        tls_release_buffers(t, c);
        return;
    }
    c->due_ms = uv_now(t->loop->loop) + tl->release_ms;
    tls_due_link(tl, c);
}

/*
 * The list is in the order sessions opened, so due times rise along it
 * but for sessions adopted from another loop, which keep theirs: one due
 * behind a later one waits for it, at most tls.buffer_release_ms longer.
 * A session not quiet now goes to the back, due at the next tick.
 */
void gw_tls_loop_tick(gw_tls_loop_t *tl, uint64_t now)
{
    tls_conn_t *c;

    while ((c = tl->due_head) != NULL && c->due_ms <= now) {
        tls_due_unlink(tl, c);
        if (tls_quiet(c->t, c)) {
            tls_release_buffers(c->t, c);
            continue;
        }
        c->due_ms = now + 1;
        tls_due_link(tl, c);
    }
}

/* Takes the handshake as far as the socket allows: 0 once it is done,
 * GW_EAGAIN while it waits for the peer or for room, GW_EIO if refused. */
static int tls_handshake(gw_transport_t *t)
{
    tls_conn_t *c = t->impl;
    int rc = mbedtls_ssl_handshake(&c->ssl);

    if (rc == 0) {
        tls_opened(t, c);
        /* What the layer above queued meanwhile can go now. */
        if (gw_transport_queued(t) > 0)
            gw_transport_want_flush(t);
        return 0;
    }
    if (rc == MBEDTLS_ERR_SSL_WANT_READ)
        return GW_EAGAIN;
    if (rc == MBEDTLS_ERR_SSL_WANT_WRITE) {
        gw_transport_wait_writable(t);
        return GW_EAGAIN;
    }
    return (int)tls_failed(t, "handshake refused", rc);
}

static uint64_t tls_now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/*
 * The handshake's next step, if this loop turn has time left for it. A
 * full handshake does its public-key work in two steps (the ClientHello
 * answered with a signed key share, then the client's key share), each
 * about a millisecond of mbedtls 2.28's CPU here with ECDSA and more with
 * RSA, on the worker that owns the socket: a connect storm would take
 * whole turns, and the worker's fan-out would wait behind it (hundreds of
 * milliseconds, measured with bench/tls.sh). So once the turn's handshakes
 * have taken tls.handshake_us_per_turn, the others wait for the next turn
 * (h2o caps its accepts a turn for the same reason). Time, not a count:
 * a resumed handshake's steps are cheap and should not wait behind a
 * count the full ones set. A step begun within the budget runs to its
 * end. The waiting keep their bytes in the socket, whose level-triggered
 * poll brings them back next turn, and their handshake timeout runs on.
 */
static int tls_handshake_paced(gw_transport_t *t)
{
    gw_tls_loop_t *tl = t->loop->ops_data;
    uint64_t t0;
    int rc;

    if (tl->budget_ns == 0)
        return tls_handshake(t);
    if (tl->turn != t->loop->turns) {
        tl->turn = t->loop->turns;
        tl->spent_ns = 0;
    }
    if (tl->spent_ns >= tl->budget_ns) {
        gw_stat_add(t->loop->stats, GW_STAT_TLS_HANDSHAKES_DEFERRED, 1);
        return GW_EAGAIN;
    }
    t0 = tls_now_ns();
    rc = tls_handshake(t);
    tl->spent_ns += tls_now_ns() - t0;
    return rc;
}

static ssize_t tls_read(gw_transport_t *t, uint8_t *buf, size_t len)
{
    tls_conn_t *c = t->impl;
    size_t n = 0;
    int rc;

    if (!c->open && (rc = tls_handshake_paced(t)) != 0)
        return rc;
    /* Whole records only: the rest of one left inside mbedtls would have
     * no readable event to fetch it. mbedtls reads no further than the
     * record it decrypts, so whatever else came stays in the socket. */
    while (len - n >= TLS_RECORD) {
        rc = mbedtls_ssl_read(&c->ssl, buf + n, len - n);
        if (rc > 0) {
            n += (size_t)rc;
            continue;
        }
        if (n > 0 || rc == MBEDTLS_ERR_SSL_WANT_READ)
            break;
        if (rc == 0 || rc == MBEDTLS_ERR_SSL_PEER_CLOSE_NOTIFY)
            return 0;
        /* A write while reading is an alert (a refused renegotiation):
         * a client that asks for one against a full socket is let go. */
        return tls_failed(t, "read", rc);
    }
    /* A record the read made (an alert) goes out with the next flush. */
    if (t->out != NULL)
        gw_transport_want_flush(t);
    return n > 0 ? (ssize_t)n : GW_EAGAIN;
}

/* Copies len bytes from iov, starting `skip` bytes in, to out. */
static void tls_gather(const struct iovec *iov, unsigned n, size_t skip,
                       uint8_t *out, size_t len)
{
    for (unsigned i = 0; i < n && len > 0; i++) {
        size_t take;
        if (skip >= iov[i].iov_len) {
            skip -= iov[i].iov_len;
            continue;
        }
        take = iov[i].iov_len - skip;
        take = take < len ? take : len;
        memcpy(out, (const uint8_t *)iov[i].iov_base + skip, take);
        out += take;
        len -= take;
        skip = 0;
    }
}

/*
 * Encrypts what the ring hands over into records as large as mbedtls
 * allows, and sends them. A record mbedtls could not send whole must be
 * retried with the same bytes: they are not reported as taken, so they
 * stay at the head of the ring, and t->busy says how many the retry takes
 * again (the ring keeps them through a shed; gw_transport_admit).
 */
static ssize_t tls_writev(gw_transport_t *t, const struct iovec *iov,
                          unsigned n)
{
    tls_conn_t *c = t->impl;
    gw_tls_loop_t *tl = t->loop->ops_data;
    size_t total = 0, taken = 0;
    int max = mbedtls_ssl_get_max_out_record_payload(&c->ssl);

    if (!c->open)
        return GW_EAGAIN; /* the handshake's end asks for a flush */
    if (max <= 0)
        return tls_failed(t, "record size", max);
    for (unsigned i = 0; i < n; i++)
        total += iov[i].iov_len;
    while (taken < total) {
        size_t len = t->busy ? t->busy : total - taken;
        int rc;
        len = len < (size_t)max ? len : (size_t)max;
        tls_gather(iov, n, taken, tl->stage, len);
        rc = mbedtls_ssl_write(&c->ssl, tl->stage, len);
        if (rc == MBEDTLS_ERR_SSL_WANT_WRITE) {
            t->busy = (uint32_t)len;
            break;
        }
        if (rc < 0)
            return tls_failed(t, "write", rc);
        t->busy = 0;
        taken += (size_t)rc;
    }
    return (ssize_t)taken;
}

static void tls_writable(gw_transport_t *t)
{
    tls_conn_t *c = t->impl;

    if (!c->open && tls_handshake(t) == GW_EIO)
        gw_transport_close(t);
}

static int tls_shutdown(gw_transport_t *t)
{
    tls_conn_t *c = t->impl;

    /* close_notify, then FIN, straight to the socket: the owner lingers
     * once all is written, so nothing staged is still to go, normally.
     * Output that is still to go (staged records, one that does not fit
     * the socket) is not cut short by the FIN: the owner's deadline ends
     * the wait instead. */
    if (t->out != NULL)
        return 0;
    c->direct = 1;
    if (c->open && t->busy == 0 &&
        mbedtls_ssl_close_notify(&c->ssl) == MBEDTLS_ERR_SSL_WANT_WRITE)
        return 0;
    return shutdown(t->fd, SHUT_WR) == 0 || errno == ENOTCONN ? 0 : GW_EIO;
}

static void tls_free_state(gw_transport_state_t *state)
{
    tls_conn_t *c = (tls_conn_t *)state;

    mbedtls_ssl_free(&c->ssl);
    free(c);
}

static void tls_close(gw_transport_t *t)
{
    tls_conn_t *c = t->impl;

    if (c == NULL) /* the session left with the socket */
        return;
    if (!c->open)
        gw_stat_add(t->loop->stats, GW_STAT_TLS_HANDSHAKE_FAILURES, 1);
    if (tls_due_listed(c))
        tls_due_unlink(t->loop->ops_data, c);
    tls_free_state(&c->moving);
    t->impl = NULL;
}

/* Why a session cannot leave its worker now, or NULL when it can. */
static const char *tls_unmovable(const gw_transport_t *t, const tls_conn_t *c)
{
    if (!c->open)
        return "handshake not done";
    /* A record half sent: its rest is mbedtls's to send from here. */
    if (t->busy != 0 || c->ssl.out_left != 0)
        return "a record half written";
    /* Plaintext decrypted and not yet read has no readable event to
     * fetch it there; tls_read takes whole records, so this finds only
     * a handshake message mbedtls has not finished with. */
    if (mbedtls_ssl_check_pending(&c->ssl))
        return "input held by mbedtls";
    return NULL;
}

/*
 * The session leaves with its socket, for a worker that holds the
 * session the client resumes. mbedtls_ssl_context_save cannot carry it:
 * mbedtls 2.28 serialises DTLS contexts only, and refuses TLS (whose
 * implicit read sequence number it does not save). So the context moves
 * as it is, as the socket does: one process, one owner at a time, handed
 * over through the relay and event queues, which order the two workers'
 * accesses. A record half received is in the context's input buffer and
 * goes with it; its rest is in the socket.
 */
static int tls_detach(gw_transport_t *t, gw_transport_state_t **state)
{
    tls_conn_t *c = t->impl;
    gw_tls_loop_t *tl = t->loop->ops_data;
    const char *why = tls_unmovable(t, c);

    if (why != NULL) {
        gw_log_limited(&tl->log, GW_LOG_INFO,
                       "tls fd %d: cannot move to another worker: %s", t->fd,
                       why);
        return GW_EAGAIN;
    }
    if (tls_due_listed(c))
        tls_due_unlink(tl, c); /* the due time goes along */
    mbedtls_ssl_set_bio(&c->ssl, NULL, NULL, NULL, NULL);
    c->t = NULL;
    t->impl = NULL;
    *state = &c->moving;
    return 0;
}

/*
 * The session carries on from this worker, with this worker's
 * configuration of its generation: the same settings (tls_slot_init made
 * every slot alike, which is what mbedtls asks of a context loaded
 * elsewhere), and this worker's random generator, which no other thread
 * draws from. mbedtls_ssl_setup is the only setter of conf and would
 * start the session afresh; mbedtls 2.28 keeps the field public.
 */
static void tls_adopt(gw_transport_t *t, gw_transport_state_t *state)
{
    tls_conn_t *c = (tls_conn_t *)state;
    gw_tls_loop_t *tl = t->loop->ops_data;

    c->ssl.conf = &c->pair->slot[tl->worker].conf;
    mbedtls_ssl_set_bio(&c->ssl, t, tls_bio_send, tls_bio_recv, NULL);
    t->impl = c;
    c->t = t;
    if (tls_due_listed(c))
        tls_due_link(tl, c);
}

static const gw_transport_ops_t tls_ops = {
    .read = tls_read,
    .writev = tls_writev,
    .shutdown = tls_shutdown,
    .writable = tls_writable,
    .close = tls_close,
    .detach = tls_detach,
    .adopt = tls_adopt,
    .free_state = tls_free_state,
    .staged = 1,
};

int gw_tls_open(gw_transport_t *t, gw_transport_loop_t *l, int fd)
{
    gw_tls_loop_t *tl = l->ops_data;
    /* Acquire: the pair a reload published is whole when seen. */
    gw_tls_pair_t *p =
        atomic_load_explicit(&tl->tls->pair, memory_order_acquire);
    tls_conn_t *c = gw_malloc(sizeof(*c));
    int rc;

    *c = (tls_conn_t){.moving = {.ops = &tls_ops}, .pair = p};
    mbedtls_ssl_init(&c->ssl);
    if ((rc = mbedtls_ssl_setup(&c->ssl, &p->slot[tl->worker].conf)) != 0) {
        gw_warn("tls fd %d: cannot set up a session: -0x%04x", fd, -rc);
        mbedtls_ssl_free(&c->ssl);
        free(c);
        close(fd);
        return UV_ENOMEM;
    }
    if ((rc = gw_transport_init(t, l, fd, &tls_ops)) != 0) {
        mbedtls_ssl_free(&c->ssl);
        free(c);
        return rc;
    }
    t->impl = c;
    c->t = t;
    mbedtls_ssl_set_bio(&c->ssl, t, tls_bio_send, tls_bio_recv, NULL);
    return 0;
}
