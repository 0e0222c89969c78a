/* The HTTP API routes (SPEC section 2): /health, /stats, /metrics, /publish. */
#ifndef GW_API_H
#define GW_API_H

#include "gw/http.h"

/* The gw_http_handler_cb of the API port; data is the gw_broker_t. */
void gw_api_handle(const gw_http_request_t *req, gw_http_response_t *res,
                   void *data);

#endif
