#include "util.h"

#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static void util_vmsg(const char *fmt, va_list ap)
{
    fputs("gwbench: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
}

void util_die(const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    util_vmsg(fmt, ap);
    va_end(ap);
    exit(2);
}

void util_warn(const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    util_vmsg(fmt, ap);
    va_end(ap);
}

uint64_t util_now_us(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

void util_cloexec(int fd)
{
    int flags = fcntl(fd, F_GETFD);

    if (flags >= 0)
        fcntl(fd, F_SETFD, flags | FD_CLOEXEC);
}
