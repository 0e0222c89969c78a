#include "presview.h"
#include "totals.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

size_t presview_path(char *out, size_t cap, uint32_t first, uint32_t count)
{
    size_t len;
    int n;

    if (count == 0 || count > PRESVIEW_BATCH || cap == 0)
        return 0;
    n = snprintf(out, cap, "/presence?userIds=");
    if (n < 0 || (size_t)n >= cap)
        return 0;
    len = (size_t)n;
    for (uint32_t i = 0; i < count; i++) {
        n = snprintf(out + len, cap - len, "%su%u", i ? "," : "", first + i);
        if (n < 0 || (size_t)n >= cap - len)
            return 0;
        len += (size_t)n;
    }
    return len;
}

/* The index k of a "u<k>" id in first .. first + count - 1, or -1. */
static long presview_index(const char *id, uint32_t first, uint32_t count)
{
    char *end;
    unsigned long k;

    if (id[0] != 'u' || id[1] < '0' || id[1] > '9' ||
        (id[1] == '0' && id[2] != '\0'))
        return -1;
    k = strtoul(id + 1, &end, 10);
    if (*end != '\0' || k < first || k - first >= count)
        return -1;
    return (long)(k - first);
}

/* One entry of the answer into t; seen marks the batch's users counted. */
static void presview_entry(const cJSON *u, uint32_t first, uint32_t count,
                           uint8_t *seen, presview_tally_t *t)
{
    const cJSON *id = cJSON_GetObjectItemCaseSensitive(u, "userId");
    const cJSON *st = cJSON_GetObjectItemCaseSensitive(u, "status");
    const cJSON *n = cJSON_GetObjectItemCaseSensitive(u, "sessions");
    long k =
        cJSON_IsString(id) ? presview_index(id->valuestring, first, count) : -1;

    if (k < 0 || seen[k] || !cJSON_IsString(st) || !cJSON_IsNumber(n)) {
        t->stray++;
        return;
    }
    seen[k] = 1;
    if (strcmp(st->valuestring, "online") != 0)
        t->offline++;
    else if (n->valuedouble == 1)
        t->right++;
    else
        t->other++;
}

int presview_check(const char *body, size_t len, uint32_t first, uint32_t count,
                   presview_tally_t *t)
{
    uint8_t seen[PRESVIEW_BATCH] = {0};
    cJSON *doc;
    const cJSON *users, *u;
    uint32_t counted;

    memset(t, 0, sizeof(*t));
    if (count == 0 || count > PRESVIEW_BATCH)
        return -1;
    doc = cJSON_ParseWithLength(body, len);
    users = cJSON_GetObjectItemCaseSensitive(doc, "users");
    if (!cJSON_IsArray(users)) {
        cJSON_Delete(doc);
        return -1;
    }
    cJSON_ArrayForEach(u, users) presview_entry(u, first, count, seen, t);
    cJSON_Delete(doc);
    counted = t->right + t->other + t->offline;
    t->missing = count - counted;
    return 0;
}

int presview_stats_parse(const char *body, size_t len, presview_stats_t *s)
{
    static const totals_field_t fields[] = {
        {"presence_commands", offsetof(presview_stats_t, commands)},
        {"presence_changes", offsetof(presview_stats_t, changes)},
        {"presence_failures", offsetof(presview_stats_t, failures)},
        {"presence_online", offsetof(presview_stats_t, online)},
        {"presence_offline", offsetof(presview_stats_t, offline)},
        {"presence_reaped", offsetof(presview_stats_t, reaped)},
        {"presence_reports_lost", offsetof(presview_stats_t, lost)},
        {"sessions", offsetof(presview_stats_t, sessions)},
    };
    cJSON *doc = cJSON_ParseWithLength(body, len);
    int rc = totals_read(doc, fields, sizeof(fields) / sizeof(fields[0]), s,
                         sizeof(*s));

    cJSON_Delete(doc);
    return rc;
}

presview_stats_t presview_stats_delta(const presview_stats_t *a,
                                      const presview_stats_t *b)
{
    presview_stats_t d = {
        .commands = b->commands - a->commands,
        .changes = b->changes - a->changes,
        .failures = b->failures - a->failures,
        .online = b->online - a->online,
        .offline = b->offline - a->offline,
        .reaped = b->reaped - a->reaped,
        .lost = b->lost - a->lost,
        .sessions = b->sessions,
    };

    return d;
}
