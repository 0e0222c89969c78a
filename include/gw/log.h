/*
 * Leveled logging to stderr, as text or as one JSON object per line. The
 * level is checked before formatting, so a dropped line costs one
 * comparison. Audit lines (who authenticated, who was refused and why) have
 * a switch of their own and are written whatever the level says, so that
 * log.level = error does not hide them.
 */
#ifndef GW_LOG_H
#define GW_LOG_H

#include <stddef.h>
#include <stdint.h>

typedef enum gw_log_level {
    GW_LOG_DEBUG = 0,
    GW_LOG_INFO,
    GW_LOG_WARN,
    GW_LOG_ERROR,
} gw_log_level_t;

typedef enum gw_log_format {
    GW_LOG_TEXT = 0, /* "2026-01-01T00:00:00.000Z info  message" */
    GW_LOG_JSON,     /* {"ts":"...","level":"info","msg":"message"} */
} gw_log_format_t;

/* The least severe level written. Atomic: SIGHUP changes it on the main
 * thread while every thread reads it; so are the two below. */
extern _Atomic int gw_log_level;
/* A gw_log_format_t. */
extern _Atomic int gw_log_format;
/* Whether audit lines are written (log.audit), whatever the level. */
extern _Atomic int gw_log_audit;

/* Parses "debug", "info", "warn" or "error"; returns the level or -1. */
int gw_log_parse_level(const char *name);

/* Parses "text" or "json"; returns the format or -1. */
int gw_log_parse_format(const char *name);

void gw_log_write(gw_log_level_t level, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/*
 * Writes s as the inside of a JSON string (no quotes) into out, which has
 * room for cap bytes, always NUL-terminated; a character that does not fit
 * whole is left out with everything after it. Returns the length written.
 * Control characters are escaped; other bytes pass as they are (a line
 * shipper reads UTF-8, and a client's bytes reach a log only after
 * validation). Pure.
 */
size_t gw_log_json_escape(char *out, size_t cap, const char *s);

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

/* Whether audit lines are written: check before gathering their fields. */
static inline int gw_audit_on(void)
{
    return gw_log_audit != 0;
}

/*
 * An audit line: `event` ("auth failed", "origin refused") then pairs of
 * field name and value, both strings, ended by NULL. As text:
 * "audit: auth failed conn=7 peer=10.0.0.1 reason=...", at `level`; as
 * JSON the same msg plus "audit":event and one member per field. Written
 * when gw_audit_on(), whatever log.level says.
 */
void gw_audit(gw_log_level_t level, const char *event, ...)
    __attribute__((sentinel));

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
