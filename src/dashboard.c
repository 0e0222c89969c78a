/*
 * The dashboard page: dashboard/dashboard.html as a string, made by the
 * Makefile (build/dashboard/dashboard.html.h), so that the daemon serves
 * it with nothing beside the binary. The page reads /stats and /health.
 */
#include "gw/dashboard.h"

static const char dashboard_html[] =
#include "dashboard.html.h"
    ;

const char *gw_dashboard_page(size_t *len)
{
    *len = sizeof(dashboard_html) - 1;
    return dashboard_html;
}
