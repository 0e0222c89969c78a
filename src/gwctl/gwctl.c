/*
 * gwctl: a command-line client of gatewayd, for trying it out and
 * operating it from a shell. This file only finds the command, parses its
 * options with its table (args.c) and runs it; each command lives in the
 * module of its concern. It shares gatewayd's configuration module, so
 * that it reaches a gateway with that gateway's own ports, secrets and
 * brokers.
 */
#include "args.h"
#include "backend.h"
#include "msg.h"
#include "ops.h"
#include "tail.h"
#include "tokens.h"

#include "gw/version.h"

#include <signal.h>
#include <stdio.h>
#include <string.h>

static const ctl_cmd_t *const gwctl_cmds[] = {
    &ctl_token_cmd,    &ctl_tail_cmd,       &ctl_publish_cmd,
    &ctl_health_cmd,   &ctl_stats_cmd,      &ctl_check_token_cmd,
    &ctl_presence_cmd, &ctl_disconnect_cmd,
};
#define GWCTL_NCMDS (sizeof(gwctl_cmds) / sizeof(gwctl_cmds[0]))

static void gwctl_usage(FILE *out)
{
    fputs("usage: gwctl COMMAND [options]\n"
          "A client of gatewayd for a shell: sign tokens, watch events "
          "arrive, publish\nthem, and look at a running gateway.\n\n"
          "commands:\n",
          out);
    for (size_t i = 0; i < GWCTL_NCMDS; i++)
        fprintf(out, "  %-12s %s\n", gwctl_cmds[i]->name,
                gwctl_cmds[i]->summary);
    fputs("\nThe gateway's address, secret and API key come from its "
          "configuration:\n-c FILE (default conf/gateway.toml), the "
          "environment (GATEWAYD_JWT_SECRET,\nGATEWAYD_API_KEY), -s K=V; "
          "flags such as --url and --secret win.\n"
          "`gwctl COMMAND --help` describes a command. Try it after "
          "`make run`:\n"
          "  ./gwctl tail --dev --user u1 --guild g1 &\n"
          "  ./gwctl publish --guild g1 --event message.create "
          "--data '{\"content\":\"hello\"}'\n"
          "\nExit status: 0 done, 1 refused or failed, 2 usage error.\n",
          out);
}

static const ctl_cmd_t *gwctl_find(const char *name)
{
    for (size_t i = 0; i < GWCTL_NCMDS; i++)
        if (strcmp(gwctl_cmds[i]->name, name) == 0)
            return gwctl_cmds[i];
    return NULL;
}

static int gwctl_run(const ctl_cmd_t *cmd, int argc, char **argv)
{
    ctl_opts_t o;
    char err[512];
    int rc;

    ctl_msg_command(cmd->name);
    if (ctl_args_parse(cmd, argc, argv, &o, err, sizeof(err)) != 0)
        rc = ctl_msg_usage("%s", err);
    else if (o.help) {
        ctl_args_help(cmd, stdout);
        rc = CTL_EXIT_OK;
    } else
        rc = cmd->run(&o);
    ctl_args_free(&o);
    return rc;
}

int main(int argc, char **argv)
{
    const ctl_cmd_t *cmd;

    /* A gateway that resets the connection costs an EPIPE, not gwctl. */
    signal(SIGPIPE, SIG_IGN);
    if (argc < 2)
        return ctl_msg_usage("which command? (token, tail, publish, stats, "
                             "...)");
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
        strcmp(argv[1], "help") == 0) {
        gwctl_usage(stdout);
        return CTL_EXIT_OK;
    }
    if (strcmp(argv[1], "--version") == 0 || strcmp(argv[1], "-v") == 0) {
        printf("gwctl %s\n", GW_VERSION);
        return CTL_EXIT_OK;
    }
    if (argv[1][0] == '-')
        return ctl_msg_usage("options go after the command: gwctl COMMAND "
                             "%s ...",
                             argv[1]);
    if ((cmd = gwctl_find(argv[1])) == NULL)
        return ctl_msg_usage("unknown command '%s'", argv[1]);
    return gwctl_run(cmd, argc - 2, argv + 2);
}
