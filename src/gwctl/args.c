#include "args.h"

#include "gw/alloc.h"
#include "gw/error.h"

#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

/* What every command takes besides its own options. */
static const ctl_opt_t args_common[] = {
    CTL_OPT("config", 'c', CTL_STR, config, "FILE",
            "gatewayd's configuration, for its ports, secrets and brokers "
            "(default conf/gateway.toml, when it exists)"),
    CTL_OPT("set", 's', CTL_REPEAT, sets, "K=V",
            "override one of its options, as gatewayd -s does "
            "(e.g. -s redis.port=6380)"),
    CTL_OPT("help", 'h', CTL_FLAG, help, NULL, "this help"),
};
#define ARGS_NCOMMON (sizeof(args_common) / sizeof(args_common[0]))

static int args_fail(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int args_fail(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    return GW_EINVAL;
}

/* The option a command-line word names: "--name", "--name=value" or "-c".
 * *value points past the '=' when the word carries one. */
static const ctl_opt_t *args_find_in(const ctl_opt_t *opts, size_t n,
                                     const char *word, const char **value)
{
    for (size_t i = 0; i < n; i++) {
        size_t len = strlen(opts[i].name);

        if (word[1] != '-') {
            if (opts[i].short_name != 0 && word[1] == opts[i].short_name &&
                word[2] == '\0')
                return &opts[i];
            continue;
        }
        if (strncmp(word + 2, opts[i].name, len) != 0)
            continue;
        if (word[2 + len] == '=')
            *value = word + 3 + len;
        if (word[2 + len] == '=' || word[2 + len] == '\0')
            return &opts[i];
    }
    return NULL;
}

static const ctl_opt_t *args_find(const ctl_cmd_t *cmd, const char *word,
                                  const char **value)
{
    const ctl_opt_t *opt = args_find_in(cmd->opts, cmd->nopts, word, value);

    return opt != NULL ? opt
                       : args_find_in(args_common, ARGS_NCOMMON, word, value);
}

static int args_push(ctl_list_t *l, const char *s, size_t n)
{
    if (l->n == CTL_LIST_MAX)
        return GW_ETOOBIG;
    l->v = gw_realloc(l->v, (l->n + 1) * sizeof(*l->v));
    l->v[l->n++] = gw_strndup(s, n);
    return 0;
}

/* Adds each comma-separated item of s, blanks around them dropped. */
static int args_push_split(ctl_list_t *l, const char *s)
{
    int rc = 0;

    while (rc == 0 && *s != '\0') {
        size_t n = strcspn(s, ","), m = n;
        const char *item = s + strspn(s, " ");

        while (m > 0 && s[m - 1] == ' ')
            m--;
        if (item < s + m)
            rc = args_push(l, item, (size_t)(s + m - item));
        s += n + (s[n] == ',');
    }
    return rc;
}

static int args_int(const char *s, int64_t *out)
{
    char *end;
    long long v;

    errno = 0;
    v = strtoll(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0')
        return GW_EINVAL;
    *out = v;
    return 0;
}

int ctl_args_duration(const char *s, int64_t *out)
{
    static const char units[] = "dhms";
    static const int64_t scale[] = {86400, 3600, 60, 1};
    size_t next_unit = 0;
    int64_t total = 0;

    if (*s == '\0')
        return GW_EINVAL;
    while (*s != '\0') {
        int64_t v = 0;
        const char *u;

        if (*s < '0' || *s > '9')
            return GW_EINVAL;
        for (; *s >= '0' && *s <= '9'; s++) {
            if (v > (INT64_MAX - 9) / 10)
                return GW_EINVAL;
            v = v * 10 + (*s - '0');
        }
        /* A bare number is seconds, and only alone. */
        if (*s == '\0' && next_unit == 0) {
            *out = v;
            return 0;
        }
        u = *s != '\0' ? strchr(units + next_unit, *s) : NULL;
        if (u == NULL)
            return GW_EINVAL;
        next_unit = (size_t)(u - units);
        if (v > (INT64_MAX - total) / scale[next_unit])
            return GW_EINVAL;
        total += v * scale[next_unit++];
        s++;
    }
    *out = total;
    return 0;
}

/* Stores value into the field of opt. */
static int args_store(const ctl_opt_t *opt, ctl_opts_t *o, const char *value,
                      char *err, size_t errlen)
{
    void *field = (char *)o + opt->offset;
    int64_t v;
    int rc = 0;

    switch (opt->type) {
    case CTL_FLAG: *(int *)field = 1; return 0;
    case CTL_STR: *(const char **)field = value; return 0;
    case CTL_LIST: rc = args_push_split(field, value); break;
    case CTL_REPEAT: rc = args_push(field, value, strlen(value)); break;
    case CTL_INT:
    case CTL_SECONDS:
        if ((opt->type == CTL_INT ? args_int(value, &v)
                                  : ctl_args_duration(value, &v)) != 0)
            return args_fail(
                err, errlen, "--%s: '%s' is not %s", opt->name, value,
                opt->type == CTL_INT ? "an integer"
                                     : "a duration (e.g. 90s, 30m, 1h, 2d)");
        if (v < opt->min || v > opt->max)
            return args_fail(
                err, errlen, "--%s: %s is out of range (%lld to %lld%s)",
                opt->name, value, (long long)opt->min, (long long)opt->max,
                opt->type == CTL_SECONDS ? " seconds" : "");
        *(int64_t *)field = v;
        return 0;
    }
    if (rc != 0)
        return args_fail(err, errlen, "--%s: more than %d values", opt->name,
                         CTL_LIST_MAX);
    return 0;
}

/* One option word at argv[*i], with its value from the word or the next. */
static int args_option(const ctl_cmd_t *cmd, int argc, char *const *argv,
                       int *i, ctl_opts_t *o, char *err, size_t errlen)
{
    const char *word = argv[*i], *value = NULL;
    const ctl_opt_t *opt = args_find(cmd, word, &value);

    if (opt == NULL)
        return args_fail(err, errlen, "unknown option %s", word);
    if (opt->type == CTL_FLAG && value != NULL)
        return args_fail(err, errlen, "--%s takes no value", opt->name);
    if (opt->type != CTL_FLAG && value == NULL) {
        if (*i + 1 >= argc)
            return args_fail(err, errlen, "%s needs a value (%s)", word,
                             opt->metavar);
        value = argv[++*i];
    }
    return args_store(opt, o, value, err, errlen);
}

int ctl_args_parse(const ctl_cmd_t *cmd, int argc, char *const *argv,
                   ctl_opts_t *o, char *err, size_t errlen)
{
    int only_positional = 0, rc = 0;

    *o = (ctl_opts_t){0};
    for (int i = 0; i < argc && rc == 0; i++) {
        const char *word = argv[i];

        if (!only_positional && strcmp(word, "--") == 0)
            only_positional = 1;
        else if (!only_positional && word[0] == '-' && word[1] != '\0')
            rc = args_option(cmd, argc, argv, &i, o, err, errlen);
        else if (cmd->positional == NULL || o->arg != NULL)
            rc = args_fail(err, errlen, "unexpected argument '%s'", word);
        else
            o->arg = word;
    }
    if (rc == 0 && cmd->positional != NULL && o->arg == NULL && !o->help)
        rc = args_fail(err, errlen, "missing %s", cmd->positional);
    return rc;
}

static void args_free_list(ctl_list_t *l)
{
    for (size_t i = 0; i < l->n; i++)
        free(l->v[i]);
    free(l->v);
    *l = (ctl_list_t){0};
}

void ctl_args_free(ctl_opts_t *o)
{
    args_free_list(&o->sets);
    args_free_list(&o->users);
    args_free_list(&o->guilds);
    args_free_list(&o->sessions);
}

/* Writes text wrapped at the 80th column, each line after the first
 * indented to column indent. */
static void args_wrap(FILE *out, const char *text, int indent)
{
    int col = indent;

    while (*text != '\0') {
        const char *close = text[0] == '[' ? strchr(text, ']') : NULL;
        /* "[--count N]" stays on one line. */
        size_t n = close != NULL
                       ? (size_t)(close - text) + 1 + strcspn(close + 1, " ")
                       : strcspn(text, " ");

        if (col > indent && col + 1 + (int)n > 79) {
            fprintf(out, "\n%*s", indent, "");
            col = indent;
        } else if (col > indent) {
            fputc(' ', out);
            col++;
        }
        fwrite(text, 1, n, out);
        col += (int)n;
        text += n + strspn(text + n, " ");
    }
    fputc('\n', out);
}

static void args_help_rows(const ctl_opt_t *opts, size_t n, FILE *out)
{
    for (size_t i = 0; i < n; i++) {
        char left[64], shortname[5] = "    ";

        if (opts[i].short_name != 0)
            snprintf(shortname, sizeof(shortname), "-%c, ", opts[i].short_name);
        snprintf(left, sizeof(left), "%s--%s %s", shortname, opts[i].name,
                 opts[i].metavar ? opts[i].metavar : "");
        fprintf(out, "  %-24s ", left);
        args_wrap(out, opts[i].help, 27);
    }
}

void ctl_args_help(const ctl_cmd_t *cmd, FILE *out)
{
    fprintf(out, "usage: gwctl %s ", cmd->name);
    args_wrap(out, cmd->synopsis, (int)strlen(cmd->name) + 13);
    fprintf(out, "%s\n", cmd->summary);
    if (cmd->nopts > 0) {
        fputs("\noptions:\n", out);
        args_help_rows(cmd->opts, cmd->nopts, out);
    }
    fputs("\ncommon options:\n", out);
    args_help_rows(args_common, ARGS_NCOMMON, out);
    if (cmd->details != NULL)
        fprintf(out, "\n%s", cmd->details);
    fputs("\nExit status: 0 done, 1 refused or failed, 2 usage error.\n", out);
}
