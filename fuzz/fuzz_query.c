/*
 * The query parameter parser on arbitrary bytes: the first byte picks the
 * parameter name, the rest is the query. A value found must decode back:
 * no NUL inside it, and no longer than the input it came from.
 */
#include "gw/error.h"
#include "gw/query.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *const names[] = {"token", "userIds", "a", "t"};
    char *q, *value;
    int rc;

    if (size == 0)
        return 0;
    /* An exact-size copy, so that ASan sees any read past len. */
    q = malloc(size - 1 ? size - 1 : 1);
    memcpy(q, data + 1, size - 1);
    rc = gw_query_get(q, size - 1, names[data[0] % 4], &value);
    if (rc == 0) {
        if (strlen(value) > size - 1)
            abort();
        free(value);
    } else if (value != NULL || (rc != GW_EINVAL && rc != GW_EPARSE)) {
        abort();
    }
    free(q);
    return 0;
}
