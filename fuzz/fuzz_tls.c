/*
 * TLS record input on the server side: arbitrary client bytes, in pieces
 * whose sizes the input chooses, reach a real TLS transport (gw_tls_open
 * over one end of a socketpair, the fuzzer writing into the other), whose
 * handshake and record layer run on them from the loop's readable events
 * as they do in a worker; what the transport decrypts is queued back, so
 * the write path runs too when a handshake gets that far. The connection
 * must end cleanly: its close reported once, nothing leaked, and no
 * input may hold the loop.
 */
#include "gw/error.h"
#include "gw/tls.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* A throwaway P-256 certificate and key for the fuzzed server. */
static const char fz_cert[] =
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

static const char fz_key[] =
    "-----BEGIN PRIVATE KEY-----\n"
    "MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgfXM8PCGxDJQbfS6L\n"
    "1zsI1I7jfJQ4nvASZLuoPeAvG32hRANCAARpmS2JhmU5ErmAjfo2iZUYlg2v/UEv\n"
    "uzEnyIfBmSJ44PPRJDzgt4/Tr+/n9qwNdu9PTho2YNYX6YVM6M3VDACT\n"
    "-----END PRIVATE KEY-----\n";

#define FZ_TURNS 64 /* loop turns per input at most */

static int closes;

static void fz_data(gw_transport_t *t, const uint8_t *buf, size_t len)
{
    gw_transport_push_copy(t, buf, len);
}

static void fz_drained(gw_transport_t *t)
{
    (void)t;
}

static void fz_close(gw_transport_t *t)
{
    (void)t;
    closes++;
}

static const gw_transport_cb_t fz_cb = {
    .on_data = fz_data, .on_drained = fz_drained, .on_close = fz_close};

/* Writes a file of the fixture into dir; the path into out. */
static void fz_write(const char *dir, const char *name, const char *text,
                     char *out, size_t len)
{
    FILE *f;

    snprintf(out, len, "%s/%s", dir, name);
    if ((f = fopen(out, "w")) == NULL || fputs(text, f) < 0 || fclose(f) != 0)
        abort();
}

/* The process's TLS state, made once from the fixture. */
static gw_tls_t *fz_tls(void)
{
    static char dir[] = "/tmp/fuzz_tls.XXXXXX", cert[64], key[64];
    gw_config_t cfg = {0};
    char err[256];
    gw_tls_t *tls;

    if (mkdtemp(dir) == NULL)
        abort();
    fz_write(dir, "cert.pem", fz_cert, cert, sizeof(cert));
    fz_write(dir, "key.pem", fz_key, key, sizeof(key));
    cfg.tls_cert_file = cert;
    cfg.tls_key_file = key;
    cfg.tls_key_password = "";
    cfg.tls_sni_certs = "";
    if ((tls = gw_tls_new(&cfg, 1, err, sizeof(err))) == NULL) {
        fprintf(stderr, "%s\n", err);
        abort();
    }
    unlink(cert);
    unlink(key);
    rmdir(dir);
    return tls;
}

/* Reads and drops what the server wrote, so that it never blocks. */
static void fz_drain(int fd)
{
    uint8_t sink[4096];

    while (recv(fd, sink, sizeof(sink), MSG_DONTWAIT) > 0)
        ;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static uv_loop_t loop;
    static gw_transport_loop_t l;
    static gw_tls_loop_t tl;
    static gw_stats_t stats;
    static int ready;
    gw_transport_t t;
    size_t pos = 0, step;
    int sv[2];

    if (!ready) {
        uv_loop_init(&loop);
        gw_transport_loop_init(&l, &loop, &fz_cb, &stats, 4);
        gw_tls_loop_init(&tl, fz_tls(), 0);
        l.ops_data = &tl;
        gw_log_level = GW_LOG_ERROR;
        ready = 1;
    }
    if (size < 1 || socketpair(AF_UNIX, SOCK_STREAM, 0, sv) != 0)
        return 0;
    closes = 0;
    step = 1 + data[0] % 512; /* the size of each piece */
    data++;
    size--;
    if (gw_tls_open(&t, &l, sv[0]) != 0)
        abort();
    for (int turn = 0; turn < FZ_TURNS && !t.closed; turn++) {
        size_t n = size - pos < step ? size - pos : step;
        if (n > 0 && send(sv[1], data + pos, n, MSG_DONTWAIT) > 0)
            pos += n;
        else if (pos == size)
            shutdown(sv[1], SHUT_WR); /* the end of the input: EOF */
        uv_run(&loop, UV_RUN_NOWAIT);
        gw_transport_loop_flush(&l);
        fz_drain(sv[1]);
    }
    gw_transport_close(&t);
    gw_transport_loop_flush(&l);
    uv_run(&loop, UV_RUN_NOWAIT);
    if (closes != 1)
        abort();
    close(sv[1]);
    return 0;
}
