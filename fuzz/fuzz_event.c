/* The backend envelope parser on arbitrary bytes. */
#include "gw/event.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    gw_event_t *ev;
    const char *reason = NULL;

    if (gw_event_parse((const char *)data, size, &ev, &reason) == 0) {
        /* The body must close the dispatch object it continues. */
        if (ev->body->len == 0 || ev->body->data[ev->body->len - 1] != '}')
            abort();
        gw_event_unref(ev);
    } else if (reason == NULL) {
        abort();
    }
    return 0;
}
