/*
 * A small HTTP/1.1 server for the API port, on a caller's libuv loop, built
 * on http-parser. Keep-alive, bounded headers and bodies, one synchronous
 * handler per request.
 */
#ifndef GW_HTTP_H
#define GW_HTTP_H

#include <stddef.h>
#include <uv.h>

typedef struct gw_http_request {
    const char *method; /* "GET", "POST", ... */
    const char *path;   /* without the query string, NUL-terminated */
    const char
        *api_key;     /* X-API-Key, or Authorization: Bearer; NULL if absent */
    const char *body; /* NUL-terminated copy; "" when none */
    size_t body_len;
} gw_http_request_t;

typedef struct gw_http_response {
    int status;
    const char *content_type; /* static string; default application/json */
    char *body;               /* heap; the server frees it after sending */
    size_t body_len;
} gw_http_response_t;

typedef void (*gw_http_handler_cb)(const gw_http_request_t *req,
                                   gw_http_response_t *res, void *data);

typedef struct gw_http_server gw_http_server_t;

/*
 * Listens on bind:port on `loop` and answers every request with `cb`.
 * Bodies over max_body get 413, headers over 8 KiB 431, malformed requests
 * 400. Returns 0 and the server in *out, or a negative gw_err_t.
 */
int gw_http_server_start(gw_http_server_t **out, uv_loop_t *loop,
                         const char *bind, int port, size_t max_body,
                         gw_http_handler_cb cb, void *data);

/* Stops listening and closes every connection; memory is freed in the close
 * callbacks, so run the loop afterwards until it has no handles. */
void gw_http_server_close(gw_http_server_t *srv);

#endif
