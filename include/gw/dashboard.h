/*
 * The operators' dashboard (GET /dashboard): one self-contained page,
 * dashboard/dashboard.html, compiled into the binary by the Makefile.
 */
#ifndef GW_DASHBOARD_H
#define GW_DASHBOARD_H

#include <stddef.h>

/* The page's bytes (static; never freed), and their length in *len. */
const char *gw_dashboard_page(size_t *len);

#endif
