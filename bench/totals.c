#include "totals.h"

#include <string.h>

int totals_read(const cJSON *doc, const totals_field_t *fields, size_t n,
                void *out, size_t size)
{
    const cJSON *totals = cJSON_GetObjectItemCaseSensitive(doc, "totals");

    memset(out, 0, size);
    for (size_t i = 0; i < n; i++) {
        const cJSON *v =
            cJSON_GetObjectItemCaseSensitive(totals, fields[i].name);

        if (!cJSON_IsNumber(v)) {
            memset(out, 0, size);
            return -1;
        }
        *(double *)((char *)out + fields[i].offset) = v->valuedouble;
    }
    return 0;
}
