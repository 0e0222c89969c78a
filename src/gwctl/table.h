/*
 * The readable forms of the HTTP API's answers: GET /stats as a table of
 * counters per worker with their totals, then the acceptor, the broker,
 * closes by code and the fan-out latency; GET /health as one field a
 * line. Pure: parsed JSON in, text out, whatever the JSON holds (a field
 * missing or of another type is left out).
 */
#ifndef CTL_TABLE_H
#define CTL_TABLE_H

#include "gw/buf.h"

#include <cjson/cJSON.h>
#include <stdint.h>

/* Appends the /stats table; all also lists counters that are zero
 * everywhere (otherwise counted in one line). GW_EPARSE when stats has no
 * "workers" array. */
int ctl_table_stats(const cJSON *stats, int all, gw_buf_t *out);

/* Appends the /health fields, one a line; how long each link has been in
 * its state comes from the answer's own clock ("time"). */
void ctl_table_health(const cJSON *health, gw_buf_t *out);

/* "3d 4h", "2h 5m", "4m 30s", "12s": the larger two units of s >= 0. */
void ctl_table_span(int64_t s, char *out, size_t cap);

/*
 * The upper bound of the histogram bucket that holds quantile q (0..1) of
 * counts[0..n] (counts[n] is past the last bound): le[i], or -1 when it is
 * past the last bound, or 0 when the histogram is empty.
 */
double ctl_table_quantile(const double *le, const double *counts, size_t n,
                          double q);

#endif
