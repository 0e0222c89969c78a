#include "msg.h"

#include <stdarg.h>
#include <stdio.h>

/* Borrowed: a command table's name, static. */
static const char *msg_cmd;

void ctl_msg_command(const char *name)
{
    msg_cmd = name;
}

static void msg_line(const char *fmt, va_list ap)
{
    if (msg_cmd != NULL)
        fprintf(stderr, "gwctl %s: ", msg_cmd);
    else
        fputs("gwctl: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
}

int ctl_msg_fail(const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    msg_line(fmt, ap);
    va_end(ap);
    return CTL_EXIT_FAIL;
}

int ctl_msg_usage(const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    msg_line(fmt, ap);
    va_end(ap);
    if (msg_cmd != NULL)
        fprintf(stderr, "Run 'gwctl %s --help' for its options.\n", msg_cmd);
    else
        fputs("Run 'gwctl --help' for the commands.\n", stderr);
    return CTL_EXIT_USAGE;
}

void ctl_msg_note(const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    msg_line(fmt, ap);
    va_end(ap);
}
