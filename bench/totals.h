/*
 * Figures of gatewayd's GET /stats answer: the named numbers of its
 * "totals" object, read into a struct of doubles by a table of names and
 * offsets (the presence and resume scenarios read their own sets).
 */
#ifndef BENCH_TOTALS_H
#define BENCH_TOTALS_H

#include <cjson/cJSON.h>
#include <stddef.h>

typedef struct totals_field {
    const char *name; /* the key in "totals" */
    size_t offset;    /* of the double it goes to */
} totals_field_t;

/* Reads each field of doc's "totals" into out. Returns 0, or -1 when one
 * is missing or not a number (out is then zeroed, size bytes). */
int totals_read(const cJSON *doc, const totals_field_t *fields, size_t n,
                void *out, size_t size);

/* The same from doc's object named object ("broker", "acceptor", ...). */
int totals_read_in(const cJSON *doc, const char *object,
                   const totals_field_t *fields, size_t n, void *out,
                   size_t size);

#define TOTALS_LAT_MAX 32 /* buckets of a fan-out histogram, at most */

/* The workers' fan-out latency (broker ingress to the last write queued)
 * as /stats gives it: counts per bucket, not cumulative; bucket i holds
 * what took at most le_us[i], the last one (nb - 1) what took longer. */
typedef struct totals_lat {
    double le_us[TOTALS_LAT_MAX];
    double counts[TOTALS_LAT_MAX];
    unsigned nb; /* buckets: the bounds and one past them */
} totals_lat_t;

/* Reads doc's "fanout_latency" into *h. Returns 0, or -1 when it is
 * missing or malformed (*h is then empty). */
int totals_lat_read(const cJSON *doc, totals_lat_t *h);

/* The fan-outs between two readings of one server (b later than a): how
 * many, and how many took longer than over_us (a bucket bound). Returns 0,
 * or -1 when the readings do not fit together or over_us is no bound. */
int totals_lat_over(const totals_lat_t *a, const totals_lat_t *b,
                    double over_us, double *count, double *over);

/* The bound of the bucket where the q-quantile of those fan-outs falls
 * (0 < q <= 1): at most that many microseconds; -1 past the last bound,
 * or when there were none or the readings do not fit together. */
double totals_lat_quantile(const totals_lat_t *a, const totals_lat_t *b,
                           double q);

#endif
