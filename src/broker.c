#include "gw/broker.h"

#include "gw/alloc.h"
#include "gw/api.h"
#include "gw/error.h"
#include "gw/http.h"
#include "gw/log.h"
#include "gw/worker.h"

#include <stdlib.h>

struct gw_broker {
    gw_server_t *srv; /* borrowed */
    uv_thread_t thread;
    uv_loop_t loop;
    uv_async_t stop;        /* main thread -> broker: stop */
    gw_http_server_t *http; /* owned; freed by its close callbacks */
};

gw_server_t *gw_broker_server(gw_broker_t *b)
{
    return b->srv;
}

int gw_broker_publish(gw_broker_t *b, gw_event_t *ev)
{
    gw_server_t *srv = b->srv;

    /* This thread is every event queue's only producer, so room seen now is
     * still there for the pushes below: all workers get it or none does. */
    for (int i = 0; i < srv->nworkers; i++) {
        if (gw_queue_room(&srv->workers[i]->events) == 0) {
            gw_event_unref(ev);
            return GW_EFULL;
        }
    }
    gw_event_set_refs(ev, (unsigned)srv->nworkers);
    for (int i = 0; i < srv->nworkers; i++)
        gw_queue_push(&srv->workers[i]->events, ev);
    return srv->nworkers;
}

static void broker_stop_cb(uv_async_t *h)
{
    gw_broker_t *b = h->data;

    gw_http_server_close(b->http);
    uv_close((uv_handle_t *)&b->stop, NULL);
}

static void broker_main(void *arg)
{
    gw_broker_t *b = arg;

    uv_run(&b->loop, UV_RUN_DEFAULT);
}

gw_broker_t *gw_broker_start(gw_server_t *srv)
{
    gw_broker_t *b = gw_calloc(1, sizeof(*b));
    const gw_config_t *cfg = srv->cfg;
    int rc;

    b->srv = srv;
    uv_loop_init(&b->loop);
    uv_async_init(&b->loop, &b->stop, broker_stop_cb);
    b->stop.data = b;
    rc = gw_http_server_start(&b->http, &b->loop, cfg->bind, cfg->http_port,
                              cfg->max_body_size, gw_api_handle, b);
    if (rc != 0) {
        gw_error("cannot listen on %s:%d for HTTP: %s", cfg->bind,
                 cfg->http_port, gw_strerror(rc));
        goto Error;
    }
    if (uv_thread_create(&b->thread, broker_main, b) != 0) {
        gw_error("cannot start the broker thread");
        gw_http_server_close(b->http);
        goto Error;
    }
    return b;
Error:
    uv_close((uv_handle_t *)&b->stop, NULL);
    uv_run(&b->loop, UV_RUN_DEFAULT);
    uv_loop_close(&b->loop);
    free(b);
    return NULL;
}

void gw_broker_stop(gw_broker_t *b)
{
    uv_async_send(&b->stop);
    uv_thread_join(&b->thread);
    uv_loop_close(&b->loop);
    free(b);
}
