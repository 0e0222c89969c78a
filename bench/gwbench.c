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
    int instances;               /* takes several --target: a cluster */
    const char *const *defaults; /* flags of its own defaults, parsed
                                    before the command line's; NULL ended */
} gwbench_cmd_t;

static const char *const gwbench_resume_defaults[] = {"--duration", "20", NULL};
static const char *const gwbench_drain_defaults[] = {
    "--sessions", "2000", "--guilds", "20", "--event-rate", "500", NULL};

static const gwbench_cmd_t gwbench_cmds[] = {
    {"connect", scenario_connect,
     "N clients connect, upgrade and identify at --rate", 0, NULL},
    {"idle", scenario_idle,
     "N identified sessions held --duration s: server RSS and CPU", 0, NULL},
    {"fanout", scenario_fanout,
     "--guilds x --members sessions, --event-rate events/s --via "
     "redis|http|amqp",
     0, NULL},
    {"typing", scenario_typing,
     "guild members send typing.start at --typing-rate, relayed", 0, NULL},
    {"reconnect", scenario_reconnect,
     "drop and reconnect --churn % of N sessions per second", 0, NULL},
    {"relay", scenario_relay,
     "N sessions send requests at --rate/s up through RabbitMQ to an echo "
     "backend: round trips",
     0, NULL},
    {"presence", scenario_presence,
     "N users over the --target instances: the cluster's presence view "
     "after connects and after a reconnect storm",
     1, NULL},
    {"resume", scenario_resume,
     "N sessions get --event-rate events while --churn % a second are reset "
     "and resume: lost, duplicated, out of order, resume latency "
     "(--duration defaults to 20)",
     0, gwbench_resume_defaults},
    {"park", scenario_park,
     "server RSS per parked session, after --fill dispatches each (0: an "
     "empty replay buffer), over rounds of N sessions reset",
     0, NULL},
    {"drain", scenario_drain,
     "two instances behind HAProxy, one drained with SIGTERM while events "
     "flow: its sessions resume on the other (lost, duplicated, out of "
     "order, resume latency, handoff counters; -n defaults to 2000, "
     "--guilds to 20, --event-rate to 500)",
     0, gwbench_drain_defaults},
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

/* The defaults, the scenario's own, then the command line. Returns
 * opts_parse's answer. */
static int gwbench_options(const gwbench_cmd_t *cmd, opts_t *o, int argc,
                           char **argv)
{
    int n = 0;

    opts_defaults(o);
    while (cmd->defaults != NULL && cmd->defaults[n] != NULL)
        n++;
    if (n > 0 && opts_parse(o, n, (char **)cmd->defaults) != 0)
        return -1;
    return opts_parse(o, argc, argv);
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
    for (size_t i = 0; i < GWBENCH_NCMDS; i++) {
        if (strcmp(argv[1], gwbench_cmds[i].name) != 0)
            continue;
        rc = gwbench_options(&gwbench_cmds[i], &o, argc - 2, argv + 2);
        if (rc != 0) {
            gwbench_usage();
            return rc > 0 ? 0 : 2;
        }
        if (o.target.n > 1 && !gwbench_cmds[i].instances) {
            fprintf(stderr, "gwbench: %s takes one --target\n", argv[1]);
            return 2;
        }
        return gwbench_cmds[i].run(&o);
    }
    gwbench_usage();
    return 2;
}
