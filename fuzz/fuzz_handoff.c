/*
 * The handoff's control-message parser on arbitrary bytes: a message it
 * accepts names two 32-digit ids and instance ids that lie inside the
 * input, without a newline or NUL, and rebuilds to the same bytes.
 */
#include "gw/handoff.h"
#include "gw/hex.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Whether [s, s+n) is a non-empty line of the input. */
static int fuzz_inside(const char *in, size_t size, const char *s, size_t n)
{
    return n > 0 && s >= in && s + n <= in + size && !memchr(s, '\n', n) &&
           !memchr(s, '\0', n);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *const words[] = {"claim", "snap", "lost"};
    char *in = malloc(size ? size : 1), *back;
    char ids[2][2 * GW_SESSION_ID_LEN + 1];
    gw_handoff_note_t n;
    int len;

    memcpy(in, data, size);
    if (gw_handoff_parse(in, size, &n) != 0)
        goto Done;
    if (!fuzz_inside(in, size, n.claimer, n.claimer_len) ||
        (n.kind == GW_HANDOFF_CLAIMED &&
         !fuzz_inside(in, size, n.owner, n.owner_len)))
        abort();
    gw_hex_encode(n.session, GW_SESSION_ID_LEN, ids[0]);
    gw_hex_encode(n.requester, GW_SESSION_ID_LEN, ids[1]);
    ids[0][2 * GW_SESSION_ID_LEN] = ids[1][2 * GW_SESSION_ID_LEN] = '\0';
    back = malloc(size + 1);
    if (n.kind == GW_HANDOFF_CLAIMED)
        len = snprintf(back, size + 1, "%s %s %s\n%.*s\n%.*s", words[n.kind],
                       ids[0], ids[1], (int)n.owner_len, n.owner,
                       (int)n.claimer_len, n.claimer);
    else
        len = snprintf(back, size + 1, "%s %s %s\n%.*s", words[n.kind], ids[0],
                       ids[1], (int)n.claimer_len, n.claimer);
    /* Hex is accepted in either case; the rest must come back as it was. */
    if (len < 0 || (size_t)len != size || strncasecmp(back, in, size) != 0)
        abort();
    free(back);
Done:
    free(in);
    return 0;
}
