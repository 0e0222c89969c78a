#include "gw/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

_Atomic int gw_log_level = GW_LOG_INFO;

static const char *const log_names[] = {"debug", "info", "warn", "error"};

int gw_log_parse_level(const char *name)
{
    for (int i = 0; i < (int)(sizeof(log_names) / sizeof(log_names[0])); i++)
        if (strcmp(name, log_names[i]) == 0)
            return i;
    return -1;
}

static void log_vwrite(gw_log_level_t level, const char *suffix,
                       const char *fmt, va_list ap)
{
    char line[1024];
    struct timespec ts;
    struct tm tm;
    int n;

    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    n = (int)strftime(line, sizeof(line), "%Y-%m-%dT%H:%M:%S", &tm);
    n += snprintf(line + n, sizeof(line) - (size_t)n, ".%03ldZ %-5s ",
                  ts.tv_nsec / 1000000, log_names[level]);
    vsnprintf(line + n, sizeof(line) - (size_t)n, fmt, ap);
    strncat(line, suffix, sizeof(line) - strlen(line) - 1);
    strncat(line, "\n", sizeof(line) - strlen(line) - 1);
    /* One fputs per line keeps lines from different threads whole. */
    fputs(line, stderr);
}

void gw_log_write(gw_log_level_t level, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    log_vwrite(level, "", fmt, ap);
    va_end(ap);
}

void gw_log_limited(gw_log_limit_t *rl, gw_log_level_t level, const char *fmt,
                    ...)
{
    struct timespec ts;
    char suffix[64] = "";
    uint64_t now;
    va_list ap;

    if (!gw_log_on(level))
        return;
    clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
    now = (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
    if (rl->last_ms != 0 && now - rl->last_ms < 1000) {
        rl->suppressed++;
        return;
    }
    if (rl->suppressed > 0)
        snprintf(suffix, sizeof(suffix), " (%u similar lines suppressed)",
                 rl->suppressed);
    rl->last_ms = now;
    rl->suppressed = 0;
    va_start(ap, fmt);
    log_vwrite(level, suffix, fmt, ap);
    va_end(ap);
}
