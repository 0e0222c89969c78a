/*
 * Leveled logging to stderr. The level is checked before formatting, so a
 * dropped line costs one comparison.
 */
#ifndef GW_LOG_H
#define GW_LOG_H

#include <stdint.h>

typedef enum gw_log_level {
    GW_LOG_DEBUG = 0,
    GW_LOG_INFO,
    GW_LOG_WARN,
    GW_LOG_ERROR,
} gw_log_level_t;

/* The least severe level written. Atomic: SIGHUP changes it on the main
 * thread while every thread reads it. */
extern _Atomic int gw_log_level;

/* Parses "debug", "info", "warn" or "error"; returns the level or -1. */
int gw_log_parse_level(const char *name);

void gw_log_write(gw_log_level_t level, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/*
 * A rate limit for one repeated message: at most one line per second, the
 * next one saying how many were suppressed. One per call site, touched by
 * one thread only.
 */
typedef struct gw_log_limit {
    uint64_t last_ms;    /* when a line was last written */
    uint32_t suppressed; /* lines dropped since */
} gw_log_limit_t;

void gw_log_limited(gw_log_limit_t *rl, gw_log_level_t level, const char *fmt,
                    ...) __attribute__((format(printf, 3, 4)));

/* Whether a line of this level is written: check it before doing work that
 * only the line needs. */
static inline int gw_log_on(gw_log_level_t level)
{
    return (int)level >= gw_log_level;
}

#define gw_log(level, ...)                                                     \
    do {                                                                       \
        if (gw_log_on(level))                                                  \
            gw_log_write((level), __VA_ARGS__);                                \
    } while (0)
#define gw_debug(...) gw_log(GW_LOG_DEBUG, __VA_ARGS__)
#define gw_info(...) gw_log(GW_LOG_INFO, __VA_ARGS__)
#define gw_warn(...) gw_log(GW_LOG_WARN, __VA_ARGS__)
#define gw_error(...) gw_log(GW_LOG_ERROR, __VA_ARGS__)

#endif
