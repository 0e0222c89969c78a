/*
 * The operator's commands on the gateway's HTTP API: gwctl health
 * (GET /health), stats (GET /stats), presence (GET /presence,
 * GET /guilds/{id}/presence) and disconnect (POST /sessions/disconnect).
 * Each prints a readable form, or the JSON as it came with --json.
 */
#ifndef CTL_OPS_H
#define CTL_OPS_H

#include "args.h"

extern const ctl_cmd_t ctl_health_cmd;
extern const ctl_cmd_t ctl_stats_cmd;
extern const ctl_cmd_t ctl_presence_cmd;
extern const ctl_cmd_t ctl_disconnect_cmd;

#endif
