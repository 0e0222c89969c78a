#include "stats.h"

#include <math.h>
#include <string.h>

const stats_counter_info_t stats_counter_table[] = {
#define STATS_INFO(name, doc) {#name, doc, offsetof(stats_counters_t, name)},
    STATS_COUNTERS(STATS_INFO)
#undef STATS_INFO
};
const size_t stats_ncounters =
    sizeof(stats_counter_table) / sizeof(stats_counter_table[0]);

void stats_hist_reset(stats_hist_t *h)
{
    memset(h, 0, sizeof(*h));
    h->min = UINT64_MAX;
}

/*
 * Values below 2 * STATS_SUB are their own bucket. Above, a value whose top
 * bit is p keeps its STATS_SUB_BITS + 1 leading bits: v >> (p - SUB_BITS)
 * lies in [SUB, 2 * SUB), and each power of two adds SUB buckets, so the
 * index grows with the value and is continuous at 2 * SUB.
 */
unsigned stats_bucket(uint64_t v)
{
    unsigned p, shift, idx;

    if (v < 2 * STATS_SUB)
        return (unsigned)v;
    p = 63u - (unsigned)__builtin_clzll(v);
    shift = p - STATS_SUB_BITS;
    idx = shift * STATS_SUB + (unsigned)(v >> shift);
    return idx < STATS_BUCKETS ? idx : STATS_BUCKETS - 1;
}

uint64_t stats_bucket_high(unsigned idx)
{
    unsigned shift;
    uint64_t top;

    if (idx < 2 * STATS_SUB)
        return idx;
    shift = idx / STATS_SUB - 1;
    top = idx - shift * STATS_SUB; /* the kept leading bits, SUB..2*SUB-1 */
    return ((top + 1) << shift) - 1;
}

void stats_hist_record(stats_hist_t *h, uint64_t v)
{
    h->b[stats_bucket(v)]++;
    h->count++;
    h->sum += v;
    if (v < h->min)
        h->min = v;
    if (v > h->max)
        h->max = v;
}

void stats_hist_merge(stats_hist_t *dst, const stats_hist_t *src)
{
    if (src->count == 0)
        return;
    for (unsigned i = 0; i < STATS_BUCKETS; i++)
        dst->b[i] += src->b[i];
    dst->count += src->count;
    dst->sum += src->sum;
    if (src->min < dst->min)
        dst->min = src->min;
    if (src->max > dst->max)
        dst->max = src->max;
}

uint64_t stats_hist_quantile(const stats_hist_t *h, double q)
{
    uint64_t rank, seen = 0, v;

    if (h->count == 0)
        return 0;
    if (q <= 0)
        return h->min;
    if (q >= 1)
        return h->max;
    /* The rank of the q-quantile among count sorted values, 1-based; the
     * small epsilon keeps 0.99 * 100 from becoming 99.0000001 -> 100. */
    rank = (uint64_t)ceil(q * (double)h->count - 1e-9);
    if (rank < 1)
        rank = 1;
    for (unsigned i = 0; i < STATS_BUCKETS; i++) {
        seen += h->b[i];
        if (seen >= rank) {
            /* The last bucket holds everything larger: no upper bound. */
            v = i == STATS_BUCKETS - 1 ? h->max : stats_bucket_high(i);
            if (v > h->max)
                v = h->max;
            return v < h->min ? h->min : v;
        }
    }
    return h->max;
}

double stats_hist_mean(const stats_hist_t *h)
{
    return h->count ? (double)h->sum / (double)h->count : 0;
}

uint64_t stats_counter_get(const stats_counters_t *c, size_t i)
{
    uint64_t v;

    memcpy(&v, (const char *)c + stats_counter_table[i].offset, sizeof(v));
    return v;
}

void stats_counters_add(stats_counters_t *dst, const stats_counters_t *src)
{
#define STATS_ADD(name, doc) dst->name += src->name;
    STATS_COUNTERS(STATS_ADD)
#undef STATS_ADD
}
