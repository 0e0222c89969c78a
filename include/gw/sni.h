/*
 * Choosing a certificate by the host a client names (SNI): the
 * tls.sni_certs list, which the configuration checks and TLS loads, and
 * the match of a certificate's DNS names against the host. Pure, so that
 * the configuration needs no TLS to check the list.
 */
#ifndef GW_SNI_H
#define GW_SNI_H

#include <stddef.h>

/* One "cert_file:key_file" entry of tls.sni_certs: spans of the list. */
typedef struct gw_sni_entry {
    const char *cert, *key; /* not NUL-terminated */
    size_t cert_len, key_len;
} gw_sni_entry_t;

/*
 * Reads the next entry of a tls.sni_certs list (comma-separated
 * "cert_file:key_file" pairs, spaces around them ignored) from *list:
 * 1 with *e filled in and *list past it, 0 at the end, or GW_EINVAL when
 * the entry is not two non-empty paths joined by one ':'. Pure.
 */
int gw_sni_next(const char **list, gw_sni_entry_t *e);

/*
 * Whether a certificate name (a DNS subjectAltName: "chat.example.com",
 * or "*.example.com" for any one label in its place) covers the host a
 * client asked for; ASCII case is ignored. Pure.
 */
int gw_sni_name_matches(const char *pattern, size_t plen, const char *host,
                        size_t hlen);

#endif
