/*
 * tls.sni_certs lists and certificate names on arbitrary text. Every
 * entry read is two non-empty spans of the list, within it, with no ','
 * and the key's with no ':'; the list is read to its end or to GW_EINVAL.
 * A name covers itself, and the match is the same whatever the case of
 * the host's ASCII letters.
 */
#include "gw/error.h"
#include "gw/sni.h"

#include <ctype.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int fuzz_span_ok(const char *s, size_t size, const char *p, size_t n)
{
    return n > 0 && p >= s && p + n <= s + size && memchr(p, ',', n) == NULL;
}

static void fuzz_list(const char *s, size_t size)
{
    const char *list = s;
    gw_sni_entry_t e;
    int rc;

    while ((rc = gw_sni_next(&list, &e)) == 1) {
        if (!fuzz_span_ok(s, size, e.cert, e.cert_len) ||
            !fuzz_span_ok(s, size, e.key, e.key_len) ||
            memchr(e.key, ':', e.key_len) != NULL || list > s + size)
            abort();
    }
    if (rc != 0 && rc != GW_EINVAL)
        abort();
}

static void fuzz_names(const char *s, size_t size)
{
    char *upper = malloc(size + 1);
    size_t half = size / 2;

    for (size_t i = 0; i < size; i++)
        upper[i] = (char)toupper((unsigned char)s[i]);
    if (!gw_sni_name_matches(s, size, s, size) ||
        !gw_sni_name_matches(s, size, upper, size))
        abort();
    if (gw_sni_name_matches(s, half, s + half, size - half) !=
        gw_sni_name_matches(s, half, upper + half, size - half))
        abort();
    free(upper);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *s = malloc(size + 1);

    memcpy(s, data, size);
    s[size] = '\0';
    fuzz_list(s, strlen(s));
    fuzz_names(s, strlen(s));
    free(s);
    return 0;
}
