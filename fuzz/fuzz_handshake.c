/*
 * libFuzzer driver for the upgrade parser. The first input byte chooses the
 * piece size (1..256), the rest is the request. Besides the sanitizers, the
 * oracle is the parser itself: fed in pieces it must reach exactly the
 * result it reaches when fed whole, and every result must be answerable.
 */
#include "gw/error.h"
#include "gw/handshake.h"
#include "gw/origin.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* Small enough that 431 is reachable from short inputs. */
#define FUZZ_MAX_HEADER 1024

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(int cond)
{
    if (!cond)
        abort();
}

/* Feeds buf in pieces of `step`; returns the result and the request length
 * (bytes consumed through the end of the headers). */
static int feed(gw_handshake_t *hs, const char *buf, size_t len, size_t step,
                size_t *total)
{
    int rc = GW_EAGAIN;
    size_t off = 0;

    *total = 0;
    while (off < len && rc == GW_EAGAIN) {
        size_t n = len - off < step ? len - off : step;
        size_t used = 0;

        rc = gw_handshake_feed(hs, buf + off, n, &used);
        check(used <= n);
        check(rc != GW_EAGAIN || used == n);
        *total += used;
        off += n;
    }
    return rc;
}

static void check_answer(const gw_handshake_t *hs, int rc)
{
    char out[256];

    if (rc == 0) {
        check(gw_handshake_accept(hs, out, sizeof(out)) > 0);
        check(hs->path != NULL);
    } else if (rc != GW_EAGAIN) {
        check(hs->status == 400 || hs->status == 405 || hs->status == 426 ||
              hs->status == 431);
        check(gw_handshake_reject(hs->status, out, sizeof(out)) > 0);
    }
}

static int same_str(const char *a, const char *b)
{
    return (a == NULL && b == NULL) || (a && b && strcmp(a, b) == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    gw_handshake_t whole, pieces;
    size_t step, tw, tp;
    const char *req;
    int rw, rp;

    if (size < 1)
        return 0;
    step = (size_t)data[0] + 1;
    req = (const char *)data + 1;
    size--;

    gw_handshake_init(&whole, FUZZ_MAX_HEADER);
    gw_handshake_init(&pieces, FUZZ_MAX_HEADER);
    rw = feed(&whole, req, size, size ? size : 1, &tw);
    rp = feed(&pieces, req, size, step, &tp);

    check(rw == rp);
    check(whole.status == pieces.status);
    check(rw != 0 || (tw == tp && tw == whole.seen && tw <= size));
    check(rw != 0 || (same_str(whole.path, pieces.path) &&
                      same_str(whole.token, pieces.token) &&
                      same_str(whole.origin, pieces.origin)));
    check(whole.seen <= FUZZ_MAX_HEADER && pieces.seen <= FUZZ_MAX_HEADER);
    /* The client's Origin against a list of every kind of entry, as the
     * WebSocket layer checks it: no crash, and a verdict either way. */
    check(whole.origin == NULL ||
          gw_origin_allowed("https://a.example, *.b.example, "
                            "http://*.c.example:8080, null",
                            whole.origin) <= 1);
    check_answer(&pieces, rp);

    gw_handshake_free(&whole);
    gw_handshake_free(&pieces);
    return 0;
}
