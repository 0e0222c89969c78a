/*
 * The command line of gwctl: `gwctl COMMAND [options] [ARG]`. Each command
 * declares a table of the options it takes (name, type, the field of
 * ctl_opts_t it fills, bounds, help), as gatewayd's config table declares
 * its options; the one parser below reads any command's table, and the
 * same table prints the command's --help. Pure: no I/O but the help.
 */
#ifndef CTL_ARGS_H
#define CTL_ARGS_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* Items one list option may collect (--guild, --user, -s). */
#define CTL_LIST_MAX 256

typedef struct ctl_list {
    char **v; /* owned: copies of the items, in order */
    size_t n;
} ctl_list_t;

/* Everything any command can be told; zero is "not given" throughout. The
 * strings are borrowed from argv, the lists' items are owned. */
typedef struct ctl_opts {
    /* every command */
    const char *config; /* -c: the daemon's config file */
    ctl_list_t sets;    /* -s section.key=value, in order */
    int help;           /* -h, --help */
    /* where the gateway is, and how to get in */
    const char *url;     /* --url: ws(s):// for tail, http(s):// else */
    const char *ca_file; /* --ca-file: trusted certificates for wss/https */
    int insecure;        /* --insecure: no certificate check */
    const char *api_key; /* --api-key, else the config's */
    /* tokens */
    const char *secret; /* --secret, else the config's */
    int dev;            /* --dev: the shipped development secret is fine */
    int64_t ttl_s;      /* --ttl */
    const char *aud;    /* --aud, else the config's auth.jwt_audience */
    const char *iss;    /* --iss, else the config's auth.jwt_issuer */
    /* who and what */
    ctl_list_t users;            /* --user */
    ctl_list_t guilds;           /* --guild, --guilds */
    ctl_list_t sessions;         /* --session */
    int broadcast;               /* --broadcast */
    const char *event;           /* --event */
    const char *data;            /* --data: JSON, @file, or - for stdin */
    const char *id;              /* --id: the event's identity */
    const char *exclude_session; /* --exclude-session */
    const char *exclude_user;    /* --exclude-user */
    int64_t priority;            /* --priority 1..4 */
    int redis;                   /* --redis: publish through Redis */
    int amqp;                    /* --amqp: publish through RabbitMQ */
    const char *routing_key;     /* --routing-key, else the event name */
    int64_t code;                /* --code: a disconnect's close code */
    const char *reason;          /* --reason: a disconnect's reason */
    int64_t count;               /* --count: tail exits after so many */
    int json;                    /* --json: raw JSON out */
    int all;                     /* --all: zero counters too */
    const char *arg;             /* the positional argument */
} ctl_opts_t;

typedef enum ctl_opt_type {
    CTL_FLAG,    /* int set to 1 */
    CTL_STR,     /* const char *, the last one given wins */
    CTL_LIST,    /* ctl_list_t, repeatable, each value split on commas */
    CTL_REPEAT,  /* ctl_list_t, repeatable, each value whole (-s) */
    CTL_INT,     /* int64_t within [min, max] */
    CTL_SECONDS, /* int64_t: a duration (90s, 30m, 1h, 2d) within bounds */
} ctl_opt_type_t;

typedef struct ctl_opt {
    const char *name; /* long name without the dashes */
    char short_name;  /* 'c' for -c, or 0 */
    ctl_opt_type_t type;
    size_t offset;       /* of the field in ctl_opts_t */
    int64_t min, max;    /* CTL_INT and CTL_SECONDS */
    const char *metavar; /* "USER"; NULL for a flag */
    const char *help;
} ctl_opt_t;

#define CTL_OPT(name, short_name, type, field, metavar, help)                  \
    {                                                                          \
        name, short_name, type, offsetof(ctl_opts_t, field), 0, 0, metavar,    \
            help                                                               \
    }
#define CTL_OPT_NUM(name, type, field, min, max, metavar, help)                \
    {                                                                          \
        name, 0, type, offsetof(ctl_opts_t, field), min, max, metavar, help    \
    }

typedef struct ctl_cmd {
    const char *name;      /* "publish" */
    const char *synopsis;  /* what follows the name in the usage line */
    const char *summary;   /* one line for `gwctl --help` */
    const char *details;   /* paragraphs for `gwctl CMD --help`, or NULL */
    const ctl_opt_t *opts; /* the command's own options */
    size_t nopts;
    const char *positional; /* "TOKEN" when it takes one argument */
    /* Runs the command; returns a CTL_EXIT_* status. */
    int (*run)(const ctl_opts_t *o);
} ctl_cmd_t;

/*
 * Parses the arguments after the command name (argv[0..argc)) into o,
 * which it zeroes first: the command's options and the common ones (-c,
 * -s, -h), as "--name value", "--name=value" or "-c value", then at most
 * the one positional argument the command takes ("-" included; "--" ends
 * the options). Returns 0, or GW_EINVAL with what is wrong in err. Free o
 * with ctl_args_free either way.
 */
int ctl_args_parse(const ctl_cmd_t *cmd, int argc, char *const *argv,
                   ctl_opts_t *o, char *err, size_t errlen);

void ctl_args_free(ctl_opts_t *o);

/* Writes the command's usage, options and details (its --help). */
void ctl_args_help(const ctl_cmd_t *cmd, FILE *out);

/*
 * Parses a duration into seconds: a number of seconds ("90"), or numbers
 * each followed by a unit s, m, h or d, largest first ("1h30m"). 0 with
 * *out set, or GW_EINVAL (empty, other characters, overflow).
 */
int ctl_args_duration(const char *s, int64_t *out);

#endif
