#include "gw/proxyproto.h"

#include "gw/error.h"

#include <arpa/inet.h>
#include <string.h>

/* The version 2 signature, then its version nibble: 2. */
static const uint8_t proxyproto_v2_sig[12] = {
    0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a};
#define PROXYPROTO_V2_HEAD 16

enum { PROXYPROTO_LOCAL = 0, PROXYPROTO_PROXY = 1 };
enum { PROXYPROTO_UNSPEC = 0, PROXYPROTO_INET, PROXYPROTO_INET6 };
enum { PROXYPROTO_STREAM = 1 };

/* Bytes of the address block of each family (source and destination
 * addresses, then their ports), UNSPEC's none. */
static const size_t proxyproto_v2_addr_len[] = {0, 12, 36, 216};

static size_t proxyproto_min(size_t a, size_t b)
{
    return a < b ? a : b;
}

/* Fills client from an address and a port, both in network order. */
static void proxyproto_client(gw_sockaddr_t *client, int family,
                              const void *addr, const void *port)
{
    memset(client, 0, sizeof(*client));
    if (family == AF_INET) {
        client->in.sin_family = AF_INET;
        memcpy(&client->in.sin_addr, addr, 4);
        memcpy(&client->in.sin_port, port, 2);
    } else {
        client->in6.sin6_family = AF_INET6;
        memcpy(&client->in6.sin6_addr, addr, 16);
        memcpy(&client->in6.sin6_port, port, 2);
    }
}

/* ---- version 1: one line of text ---- */

/* A port as version 1 writes it: 0..65535 in decimal, no leading zero. */
static int proxyproto_v1_port(const char *s, uint16_t *port)
{
    size_t n = strspn(s, "0123456789");
    unsigned long v = 0;

    if (n == 0 || n > 5 || s[n] != '\0' || (s[0] == '0' && n > 1))
        return GW_EPARSE;
    for (size_t i = 0; i < n; i++)
        v = v * 10 + (unsigned long)(s[i] - '0');
    if (v > 65535)
        return GW_EPARSE;
    *port = (uint16_t)v;
    return 0;
}

/* Splits line at single spaces into exactly n non-empty fields. */
static int proxyproto_v1_split(char *line, char **field, int n)
{
    int i = 0;

    for (char *p = line;; p++) {
        if (i == n)
            return GW_EPARSE;
        field[i++] = p;
        p = strchr(p, ' ');
        if (p == NULL)
            break;
        *p = '\0';
    }
    for (int k = 0; k < i; k++)
        if (field[k][0] == '\0')
            return GW_EPARSE;
    return i == n ? 0 : GW_EPARSE;
}

/*
 * The fields after "PROXY ": "TCP4|TCP6 src dst sport dport", or
 * "UNKNOWN" and whatever the sender adds (ignored). inet_pton is the
 * canonical form's parser: dotted quads without leading zeros, and IPv6
 * in any of its text forms.
 */
static int proxyproto_v1_fields(char *line, gw_sockaddr_t *client)
{
    uint8_t src[16], dst[16];
    uint16_t sport, dport, port;
    char *f[5];
    int family;

    if (strncmp(line, "UNKNOWN", 7) == 0 && (line[7] == '\0' || line[7] == ' '))
        return 0;
    if (proxyproto_v1_split(line, f, 5) != 0)
        return GW_EPARSE;
    if (strcmp(f[0], "TCP4") == 0)
        family = AF_INET;
    else if (strcmp(f[0], "TCP6") == 0)
        family = AF_INET6;
    else
        return GW_EPARSE;
    if (inet_pton(family, f[1], src) != 1 ||
        inet_pton(family, f[2], dst) != 1 ||
        proxyproto_v1_port(f[3], &sport) != 0 ||
        proxyproto_v1_port(f[4], &dport) != 0)
        return GW_EPARSE;
    port = htons(sport);
    proxyproto_client(client, family, src, &port);
    return 0;
}

static int proxyproto_v1(const uint8_t *buf, size_t len, size_t *used,
                         gw_sockaddr_t *client)
{
    static const char sig[] = "PROXY ";
    size_t scan = proxyproto_min(len, GW_PROXYPROTO_V1_MAX);
    const uint8_t *lf;
    char line[GW_PROXYPROTO_V1_MAX];
    size_t n;

    if (memcmp(buf, sig, proxyproto_min(len, sizeof(sig) - 1)) != 0)
        return GW_EPARSE;
    lf = memchr(buf, '\n', scan);
    if (lf == NULL)
        return len >= GW_PROXYPROTO_V1_MAX ? GW_EPARSE : GW_EAGAIN;
    n = (size_t)(lf - buf);
    /* The line ends with CRLF, and holds no other CR nor a NUL. */
    if (n < sizeof(sig) || buf[n - 1] != '\r' ||
        memchr(buf, '\r', n - 1) != NULL || memchr(buf, '\0', n) != NULL)
        return GW_EPARSE;
    memcpy(line, buf + sizeof(sig) - 1, n - sizeof(sig));
    line[n - sizeof(sig)] = '\0';
    *used = n + 1;
    return proxyproto_v1_fields(line, client);
}

/* ---- version 2: binary ---- */

/* Each TLV (a type byte, a 2-byte length, the value) must fit in what the
 * header's length leaves for them. */
static int proxyproto_v2_tlvs(const uint8_t *p, size_t len)
{
    while (len > 0) {
        size_t n;
        if (len < 3)
            return GW_EPARSE;
        n = 3 + ((size_t)p[1] << 8 | p[2]);
        if (n > len)
            return GW_EPARSE;
        p += n;
        len -= n;
    }
    return 0;
}

/* The block after the 16-byte head of a PROXY command: addresses of the
 * family byte fam, then TLVs. */
static int proxyproto_v2_addresses(uint8_t fam, const uint8_t *p, size_t len,
                                   gw_sockaddr_t *client)
{
    unsigned family = fam >> 4, proto = fam & 0x0f;
    size_t need;

    if (family > 3 || proto > 2)
        return GW_EPARSE;
    /* UNSPEC: what follows is neither addresses nor TLVs we can tell. */
    if (family == PROXYPROTO_UNSPEC || proto == 0)
        return 0;
    need = proxyproto_v2_addr_len[family];
    if (len < need || proxyproto_v2_tlvs(p + need, len - need) != 0)
        return GW_EPARSE;
    if (proto != PROXYPROTO_STREAM || family > PROXYPROTO_INET6)
        return 0; /* UDP, or UNIX sockets: the connection's own addresses */
    /* Source and destination addresses, then the source port. */
    if (family == PROXYPROTO_INET)
        proxyproto_client(client, AF_INET, p, p + 8);
    else
        proxyproto_client(client, AF_INET6, p, p + 32);
    return 0;
}

static int proxyproto_v2(const uint8_t *buf, size_t len, size_t *used,
                         gw_sockaddr_t *client)
{
    size_t total;

    if (memcmp(buf, proxyproto_v2_sig,
               proxyproto_min(len, sizeof(proxyproto_v2_sig))) != 0)
        return GW_EPARSE;
    /* The version and the command, as soon as their byte is there. */
    if (len > 12 && ((buf[12] >> 4) != 2 || (buf[12] & 0x0f) > 1))
        return GW_EPARSE;
    if (len < PROXYPROTO_V2_HEAD)
        return GW_EAGAIN;
    total = PROXYPROTO_V2_HEAD + ((size_t)buf[14] << 8 | buf[15]);
    if (total > GW_PROXYPROTO_MAX)
        return GW_ETOOBIG;
    if (len < total)
        return GW_EAGAIN;
    *used = total;
    /* LOCAL: the proxy speaks for itself; whatever follows is skipped. */
    if ((buf[12] & 0x0f) == PROXYPROTO_LOCAL)
        return 0;
    return proxyproto_v2_addresses(buf[13], buf + PROXYPROTO_V2_HEAD,
                                   total - PROXYPROTO_V2_HEAD, client);
}

int gw_proxyproto_parse(const uint8_t *buf, size_t len, size_t *used,
                        gw_sockaddr_t *client)
{
    int rc;

    memset(client, 0, sizeof(*client));
    *used = 0;
    if (len == 0)
        return GW_EAGAIN;
    /* The first byte tells the versions apart: 'P' or CR. */
    if (buf[0] == 'P')
        rc = proxyproto_v1(buf, len, used, client);
    else if (buf[0] == proxyproto_v2_sig[0])
        rc = proxyproto_v2(buf, len, used, client);
    else
        rc = GW_EPARSE;
    if (rc != 0) {
        memset(client, 0, sizeof(*client));
        *used = 0;
    }
    return rc;
}
