#include "gw/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

/* A message longer than this is cut; a line (the message escaped for JSON,
 * with the audit fields again) fits LOG_LINE_MAX. */
#define LOG_MSG_MAX 1024
#define LOG_LINE_MAX 4096

_Atomic int gw_log_level = GW_LOG_INFO;
_Atomic int gw_log_format = GW_LOG_TEXT;
_Atomic int gw_log_audit = 1;

static const char *const log_names[] = {"debug", "info", "warn", "error"};
static const char *const log_formats[] = {"text", "json"};

static int log_find(const char *const *names, int n, const char *name)
{
    for (int i = 0; i < n; i++)
        if (strcmp(name, names[i]) == 0)
            return i;
    return -1;
}

int gw_log_parse_level(const char *name)
{
    return log_find(log_names, 4, name);
}

int gw_log_parse_format(const char *name)
{
    return log_find(log_formats, 2, name);
}

size_t gw_log_json_escape(char *out, size_t cap, const char *s)
{
    size_t n = 0;

    for (; *s != '\0'; s++) {
        unsigned char c = (unsigned char)*s;
        char esc[8];
        size_t len;

        if (c == '"' || c == '\\')
            len = (size_t)snprintf(esc, sizeof(esc), "\\%c", c);
        else if (c == '\n')
            len = (size_t)snprintf(esc, sizeof(esc), "\\n");
        else if (c < 0x20 || c == 0x7f)
            len = (size_t)snprintf(esc, sizeof(esc), "\\u%04x", c);
        else {
            esc[0] = (char)c;
            len = 1;
        }
        if (n + len >= cap)
            break;
        memcpy(out + n, esc, len);
        n += len;
    }
    if (cap > 0)
        out[n] = '\0';
    return n;
}

/* Writes one line: msg, and for JSON the members in `extra` (each led by
 * a comma, already escaped) after ts, level and msg. */
static void log_emit(gw_log_level_t level, const char *msg, const char *extra)
{
    char line[LOG_LINE_MAX], ts[40];
    struct timespec now;
    struct tm tm;
    size_t n;

    clock_gettime(CLOCK_REALTIME, &now);
    gmtime_r(&now.tv_sec, &tm);
    n = strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(ts + n, sizeof(ts) - n, ".%03ldZ", now.tv_nsec / 1000000);
    if (gw_log_format == GW_LOG_JSON) {
        n = (size_t)snprintf(line, sizeof(line),
                             "{\"ts\":\"%s\",\"level\":\"%s\",\"msg\":\"", ts,
                             log_names[level]);
        /* Room is kept for the closing quote, the extra members, "}\n":
         * extra is at most half the line and the head under 100 bytes. */
        n += gw_log_json_escape(line + n, sizeof(line) - n - strlen(extra) - 4,
                                msg);
        snprintf(line + n, sizeof(line) - n, "\"%s}\n", extra);
    } else {
        snprintf(line, sizeof(line), "%s %-5s %s\n", ts, log_names[level], msg);
    }
    /* One fputs per line keeps lines from different threads whole. */
    fputs(line, stderr);
}

static void log_vwrite(gw_log_level_t level, const char *suffix,
                       const char *fmt, va_list ap)
{
    char msg[LOG_MSG_MAX];

    vsnprintf(msg, sizeof(msg), fmt, ap);
    strncat(msg, suffix, sizeof(msg) - strlen(msg) - 1);
    log_emit(level, msg, "");
}

void gw_log_write(gw_log_level_t level, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    log_vwrite(level, "", fmt, ap);
    va_end(ap);
}

/* Appends `,"name":"value"` to a JSON member list of at most cap bytes. */
static size_t log_member(char *out, size_t n, size_t cap, const char *name,
                         const char *value)
{
    if (n + 4 >= cap)
        return n;
    out[n++] = ',';
    out[n++] = '"';
    n += gw_log_json_escape(out + n, cap - n - 2, name);
    n += (size_t)snprintf(out + n, cap - n, "\":\"");
    if (n + 2 >= cap)
        return cap - 1;
    n += gw_log_json_escape(out + n, cap - n - 1, value);
    n += (size_t)snprintf(out + n, cap - n, "\"");
    return n < cap ? n : cap - 1;
}

void gw_audit(gw_log_level_t level, const char *event, ...)
{
    char msg[LOG_MSG_MAX], extra[LOG_LINE_MAX / 2] = "";
    size_t m, e;
    const char *name;
    va_list ap;

    if (!gw_audit_on())
        return;
    m = (size_t)snprintf(msg, sizeof(msg), "audit: %s", event);
    e = log_member(extra, 0, sizeof(extra), "audit", event);
    va_start(ap, event);
    while ((name = va_arg(ap, const char *)) != NULL) {
        const char *value = va_arg(ap, const char *);
        if (m < sizeof(msg))
            m += (size_t)snprintf(msg + m, sizeof(msg) - m, " %s=%s", name,
                                  value);
        e = log_member(extra, e, sizeof(extra), name, value);
    }
    va_end(ap);
    log_emit(level, msg, extra);
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
