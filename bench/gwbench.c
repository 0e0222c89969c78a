/*
 * gwbench: the load generator of gatewayd (bench/README.md).
 *
 *     gwbench SCENARIO [--flag value ...]
 *
 * Each scenario starts its own gatewayd (or measures --target), drives
 * simulated clients from forked processes, and prints one JSON object and
 * a summary.
 */
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "opts.h"
#include "scenario.h"
#include "summary.h"

typedef struct gwbench_cmd {
    const char *name;
    int (*run)(const opts_t *o);
    const char *what;
    int instances; /* takes several --target: a cluster */
} gwbench_cmd_t;

static const gwbench_cmd_t gwbench_cmds[] = {
    {"connect", scenario_connect,
     "N clients connect, upgrade and identify at --rate", 0},
    {"idle", scenario_idle,
     "N identified sessions held --duration s: server RSS and CPU", 0},
    {"fanout", scenario_fanout,
     "--guilds x --members sessions, --event-rate events/s --via "
     "redis|http|amqp",
     0},
    {"typing", scenario_typing,
     "guild members send typing.start at --typing-rate, relayed", 0},
    {"reconnect", scenario_reconnect,
     "drop and reconnect --churn % of N sessions per second", 0},
    {"relay", scenario_relay,
     "N sessions send requests at --rate/s up through RabbitMQ to an echo "
     "backend: round trips",
     0},
    {"presence", scenario_presence,
     "N users over the --target instances: the cluster's presence view "
     "after connects and after a reconnect storm",
     1},
};

#define GWBENCH_NCMDS (sizeof(gwbench_cmds) / sizeof(gwbench_cmds[0]))

static void gwbench_usage(void)
{
    fputs("usage: gwbench SCENARIO [options]\n"
          "       gwbench summary REPORT.json...\n\nscenarios:\n",
          stderr);
    for (size_t i = 0; i < GWBENCH_NCMDS; i++)
        fprintf(stderr, "  %-10s %s\n", gwbench_cmds[i].name,
                gwbench_cmds[i].what);
    fputs("\noptions:\n", stderr);
    opts_usage();
}

int main(int argc, char **argv)
{
    opts_t o;
    int rc;

    if (argc < 2) {
        gwbench_usage();
        return 2;
    }
    if (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0) {
        gwbench_usage();
        return 0;
    }
    if (strcmp(argv[1], "summary") == 0)
        return summary_main(argc - 2, argv + 2);
    /* A client socket the server reset must not kill us on write. */
    signal(SIGPIPE, SIG_IGN);
    opts_defaults(&o);
    rc = opts_parse(&o, argc - 2, argv + 2);
    if (rc != 0) {
        gwbench_usage();
        return rc > 0 ? 0 : 2;
    }
    for (size_t i = 0; i < GWBENCH_NCMDS; i++) {
        if (strcmp(argv[1], gwbench_cmds[i].name) != 0)
            continue;
        if (o.target.n > 1 && !gwbench_cmds[i].instances) {
            fprintf(stderr, "gwbench: %s takes one --target\n", argv[1]);
            return 2;
        }
        return gwbench_cmds[i].run(&o);
    }
    gwbench_usage();
    return 2;
}
