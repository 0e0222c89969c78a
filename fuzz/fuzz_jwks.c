/*
 * libFuzzer driver for gw_jwks_parse and gw_jwks_add_pem. Each input is
 * parsed as a JWKS document into a set that already holds one key, and
 * as a PEM document. Beyond the sanitizers, it aborts on a result outside
 * the documented set, on a refused document that left keys behind, and
 * on an accepted key whose DER a verifier cannot parse or that verifies
 * no algorithm.
 */
#include "gw/error.h"
#include "gw/jwks.h"

#include <mbedtls/pk.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* A P-256 key, there before the document: its kid may collide. */
static const char fuzz_seed[] =
    "{\"keys\":[{\"kty\":\"EC\",\"kid\":\"seed\",\"crv\":\"P-256\","
    "\"x\":\"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU\","
    "\"y\":\"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0\"}]}";

static void fuzz_check_keys(const gw_jwks_t *ks)
{
    mbedtls_pk_context pk;

    for (size_t i = 0; i < ks->n; i++) {
        if (ks->keys[i].algs == 0 || (ks->keys[i].algs & ~GW_JWT_ALL) != 0)
            abort();
        mbedtls_pk_init(&pk);
        if (mbedtls_pk_parse_public_key(&pk, ks->keys[i].der,
                                        ks->keys[i].der_len) != 0)
            abort();
        mbedtls_pk_free(&pk);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    gw_jwks_t ks = {NULL, 0};
    int ret;

    if (gw_jwks_parse(&ks, fuzz_seed, sizeof(fuzz_seed) - 1) != 0 || ks.n != 1)
        abort();
    ret = gw_jwks_parse(&ks, (const char *)data, size);
    if (ret != 0 && ret != GW_EPARSE && ret != GW_EINVAL && ret != GW_ETOOBIG)
        abort();
    if ((ret != 0 && ks.n != 1) || ks.n > GW_JWKS_MAX_KEYS)
        abort();
    fuzz_check_keys(&ks);
    gw_jwks_free(&ks);

    ret = gw_jwks_add_pem(&ks, "pem", data, size);
    if (ret != 0 && ret != GW_EPARSE && ret != GW_EINVAL)
        abort();
    if (ks.n != (ret == 0))
        abort();
    fuzz_check_keys(&ks);
    gw_jwks_free(&ks);
    return 0;
}
