#include "totals.h"

#include <math.h>
#include <string.h>

int totals_read(const cJSON *doc, const totals_field_t *fields, size_t n,
                void *out, size_t size)
{
    return totals_read_in(doc, "totals", fields, n, out, size);
}

int totals_read_in(const cJSON *doc, const char *object,
                   const totals_field_t *fields, size_t n, void *out,
                   size_t size)
{
    const cJSON *obj = cJSON_GetObjectItemCaseSensitive(doc, object);

    memset(out, 0, size);
    for (size_t i = 0; i < n; i++) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, fields[i].name);

        if (!cJSON_IsNumber(v)) {
            memset(out, 0, size);
            return -1;
        }
        *(double *)((char *)out + fields[i].offset) = v->valuedouble;
    }
    return 0;
}

/* Reads a JSON array of numbers into v (at most max); their count, or -1. */
static int totals_numbers(const cJSON *a, double *v, unsigned max)
{
    const cJSON *it;
    int n = 0;

    if (!cJSON_IsArray(a) || (unsigned)cJSON_GetArraySize(a) > max)
        return -1;
    cJSON_ArrayForEach(it, a)
    {
        if (!cJSON_IsNumber(it))
            return -1;
        v[n++] = it->valuedouble;
    }
    return n;
}

int totals_lat_read(const cJSON *doc, totals_lat_t *h)
{
    const cJSON *l = cJSON_GetObjectItemCaseSensitive(doc, "fanout_latency");
    int nb = totals_numbers(cJSON_GetObjectItemCaseSensitive(l, "le_us"),
                            h->le_us, TOTALS_LAT_MAX - 1);
    int nc = totals_numbers(cJSON_GetObjectItemCaseSensitive(l, "counts"),
                            h->counts, TOTALS_LAT_MAX);

    if (nb < 1 || nc != nb + 1) {
        memset(h, 0, sizeof(*h));
        return -1;
    }
    h->nb = (unsigned)nc;
    return 0;
}

/* Whether two readings have the same buckets. */
static int totals_lat_fit(const totals_lat_t *a, const totals_lat_t *b)
{
    if (a->nb == 0 || a->nb != b->nb)
        return 0;
    for (unsigned i = 0; i + 1 < a->nb; i++)
        if (a->le_us[i] != b->le_us[i])
            return 0;
    return 1;
}

int totals_lat_over(const totals_lat_t *a, const totals_lat_t *b,
                    double over_us, double *count, double *over)
{
    int seen = 0;

    *count = *over = 0;
    if (!totals_lat_fit(a, b))
        return -1;
    for (unsigned i = 0; i < b->nb; i++) {
        double d = b->counts[i] - a->counts[i];

        *count += d;
        if (seen)
            *over += d;
        if (i + 1 < b->nb && b->le_us[i] == over_us)
            seen = 1;
    }
    return seen ? 0 : -1;
}

double totals_lat_quantile(const totals_lat_t *a, const totals_lat_t *b,
                           double q)
{
    double total = 0, seen = 0;

    if (!totals_lat_fit(a, b))
        return -1;
    for (unsigned i = 0; i < b->nb; i++)
        total += b->counts[i] - a->counts[i];
    if (total <= 0)
        return -1;
    for (unsigned i = 0; i + 1 < b->nb; i++) {
        seen += b->counts[i] - a->counts[i];
        if (seen >= ceil(q * total))
            return b->le_us[i];
    }
    return -1;
}
