/*
 * The frame-boundary scanner on arbitrary bytes, fed whole and then in two
 * pieces: it must never read past len, and scanning the whole input must
 * agree with scanning the complete prefix it reported.
 */
#include "gw/error.h"
#include "gw/ws.h"

#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t complete, need, again, need2;
    int frag = 0, frag2 = 0;
    int rc = gw_ws_scan(data, size, 70000, &frag, &complete, &need);

    if (complete > size || (need != 0 && need <= size - complete))
        abort();
    if (gw_ws_scan(data, complete, 70000, &frag2, &again, &need2) != 0 ||
        again != complete || frag2 != frag)
        abort();
    (void)rc;
    return 0;
}
