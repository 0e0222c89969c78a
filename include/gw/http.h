/*
 * A small HTTP/1.1 server for the API port, on a caller's libuv loop, built
 * on http-parser. Keep-alive, bounded headers and bodies, one handler per
 * request, which answers at once or defers the answer (gw_http_defer).
 */
#ifndef GW_HTTP_H
#define GW_HTTP_H

/* Connections the HTTP port serves at once: operators and probes, not
 * clients. Part of the descriptor reserve (gw_peers_default_cap). */
#define GW_HTTP_MAX_CONNS 256

#include <stddef.h>
#include <uv.h>

typedef struct gw_http_request {
    const char *method; /* "GET", "POST", ... */
    const char *path;   /* without the query string, NUL-terminated */
    const char *query;  /* after the '?', NUL-terminated; "" when none */
    /* X-API-Key, Authorization: Bearer, or the password of Authorization:
     * Basic (a browser's own prompt); NULL if absent. */
    const char *api_key;
    const char *body; /* NUL-terminated copy; "" when none */
    size_t body_len;
} gw_http_request_t;

typedef struct gw_http_response {
    int status;
    const char *content_type; /* static string; default application/json */
    const char *headers;      /* static extra header lines, each ending in
                                 \r\n (Location, WWW-Authenticate); or NULL */
    char *body;               /* heap; the server frees it after sending */
    size_t body_len;
} gw_http_response_t;

/* req and everything it points to are valid only during the call. */
typedef void (*gw_http_handler_cb)(const gw_http_request_t *req,
                                   gw_http_response_t *res, void *data);

typedef struct gw_http_server gw_http_server_t;

/* A request whose answer comes later; see gw_http_defer. */
typedef struct gw_http_later gw_http_later_t;

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

/*
 * Called by a handler, on the res it was given, to answer the request later
 * with gw_http_answer. The server then ignores res (a body already put there
 * is freed unsent). Until the answer is written no further request on the
 * connection is parsed, so responses keep their order; input that arrives
 * meanwhile waits, unparsed. The caller owns the returned object until it
 * passes it to gw_http_answer, which it must do exactly once.
 *
 * The connection can go away meanwhile: the client closes or half-closes
 * its side, gw_http_server_close is called, or the connection's idle
 * timeout (60 s, restarted by this call) passes without an answer. The
 * answer is then discarded.
 */
gw_http_later_t *gw_http_defer(gw_http_response_t *res);

/*
 * Answers a deferred request as the handler would have through res: takes
 * ownership of body (heap, or NULL with body_len 0); content_type is a
 * static string, NULL for application/json. HEAD gets no body, and the
 * connection is kept alive or closed as the request asked. If the
 * connection is gone, body is only freed. Frees l in every case. Call on
 * the server's loop thread, at any time after gw_http_defer returned (even
 * from the handler itself, or after gw_http_server_close).
 */
void gw_http_answer(gw_http_later_t *l, int status, const char *content_type,
                    char *body, size_t body_len);

#endif
