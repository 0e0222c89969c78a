/* Renders the counters of every thread as /stats JSON or /metrics text. */
#ifndef GW_METRICS_H
#define GW_METRICS_H

#include "gw/buf.h"
#include "gw/server.h"
#include "gw/stats.h"

uint64_t gw_metrics_total(const gw_server_t *srv, gw_stat_t k);
void gw_metrics_json(const gw_server_t *srv, gw_buf_t *out);
void gw_metrics_prometheus(const gw_server_t *srv, gw_buf_t *out);

/* ,"redis_shards":[{"address","state","since","slots","channels","lost"}
 * ...] on a Redis Cluster (for /health), else nothing. Broker thread. */
void gw_metrics_shards_json(const gw_server_t *srv, gw_buf_t *out);

#endif
