/*
 * What gwctl says and how it exits. Results go to stdout, everything else
 * (progress, warnings, errors) to stderr, each line "gwctl CMD: ...", so
 * that `$(gwctl token ...)` and pipes get the result alone.
 */
#ifndef CTL_MSG_H
#define CTL_MSG_H

/* The exit status of every command. */
enum {
    CTL_EXIT_OK = 0,    /* done */
    CTL_EXIT_FAIL = 1,  /* refused, unreachable, or failed */
    CTL_EXIT_USAGE = 2, /* the command line is wrong */
};

/* The command the messages name ("tail"); NULL before one is known. */
void ctl_msg_command(const char *name);

/* "gwctl CMD: ..." on stderr; returns CTL_EXIT_FAIL for `return
 * ctl_msg_fail(...)`. */
int ctl_msg_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* A usage error, followed by where the options are described; returns
 * CTL_EXIT_USAGE. */
int ctl_msg_usage(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Progress and warnings, "gwctl CMD: ..." on stderr. */
void ctl_msg_note(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
