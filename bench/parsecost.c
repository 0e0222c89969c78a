/*
 * A callgrind subject for the broker's work per event: gw_event_parse on
 * the envelope `gwbench fanout` publishes (200 bytes by default), N times.
 *
 *   valgrind --tool=callgrind bench/parsecost 10000
 *   callgrind_annotate --inclusive=yes callgrind.out.PID | grep gw_
 *
 * gw_event_parse's inclusive count over N is the cost of one event;
 * instruction counts repeat exactly, whatever else the machine does.
 */
#include "gw/event.h"
#include "publish.h"

#include <stdio.h>
#include <stdlib.h>

int main(int argc, char **argv)
{
    publish_conf_t conf = {.guilds = 50, .payload = 200};
    long n = argc > 1 ? strtol(argv[1], NULL, 10) : 10000, ok = 0;
    char env[512];
    size_t len =
        publish_envelope(&conf, 7, 1732262400123456ULL, env, sizeof(env));

    for (long i = 0; i < n; i++) {
        gw_event_t *ev;
        const char *reason;
        if (gw_event_parse(env, len, &ev, &reason) == 0) {
            ok++;
            gw_event_unref(ev);
        }
    }
    printf("%ld of %ld %zu-byte envelopes parsed\n", ok, n, len);
    return ok == n ? 0 : 1;
}
