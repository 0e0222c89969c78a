#include "scale.h"

#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>

#include "totals.h"

#define SCALE_KEY "redis.targeted="

unsigned scale_instance(uint32_t guild, unsigned k)
{
    return k > 0 ? guild % k : 0;
}

uint32_t scale_guilds_on(uint32_t guilds, unsigned k, unsigned i)
{
    if (k == 0 || i >= k)
        return 0;
    return guilds / k + (i < guilds % k);
}

/* Guild g of guilds gets events g, g + guilds, ... below sent. */
static uint64_t scale_events_of(uint64_t sent, uint32_t guilds, uint32_t g)
{
    return sent / guilds + (g < sent % guilds);
}

uint64_t scale_received(uint64_t sent, uint32_t guilds, unsigned k, unsigned i,
                        int targeted)
{
    uint64_t n = 0;

    if (guilds == 0 || k == 0 || i >= k)
        return 0;
    if (!targeted)
        return sent;
    for (uint32_t g = (uint32_t)i; g < guilds; g += k)
        n += scale_events_of(sent, guilds, g);
    return n;
}

int scale_targeted(const char *const *sets, size_t n)
{
    int targeted = 1;

    for (size_t i = 0; i < n; i++) {
        const char *v = sets[i];

        if (strncmp(v, SCALE_KEY, strlen(SCALE_KEY)) != 0)
            continue;
        v += strlen(SCALE_KEY);
        if (strcmp(v, "true") == 0)
            targeted = 1;
        else if (strcmp(v, "false") == 0)
            targeted = 0;
        else
            return -1;
    }
    return targeted;
}

int scale_stats_parse(const char *body, size_t len, scale_stats_t *s)
{
    static const totals_field_t broker[] = {
        {"events_redis", offsetof(scale_stats_t, events)},
        {"events_redis_plain", offsetof(scale_stats_t, plain)},
        {"events_redis_guild", offsetof(scale_stats_t, guild)},
        {"events_redis_user", offsetof(scale_stats_t, user)},
        {"events_redis_session", offsetof(scale_stats_t, session)},
        {"redis_target_mismatches", offsetof(scale_stats_t, mismatches)},
        {"redis_channels", offsetof(scale_stats_t, channels)},
        {"targets_wanted", offsetof(scale_stats_t, wanted)},
        {"redis_subscribe_commands", offsetof(scale_stats_t, subscribes)},
    };
    static const totals_field_t totals[] = {{"sessions", 0}};
    cJSON *doc = cJSON_ParseWithLength(body, len);
    double sessions;
    int rc = -1;

    if (totals_read_in(doc, "broker", broker,
                       sizeof(broker) / sizeof(broker[0]), s, sizeof(*s)) != 0)
        goto done;
    if (totals_read(doc, totals, 1, &sessions, sizeof(sessions)) != 0) {
        memset(s, 0, sizeof(*s));
        goto done;
    }
    s->sessions = sessions;
    rc = 0;
done:
    cJSON_Delete(doc);
    return rc;
}

int scale_settled(const scale_stats_t *base, const scale_stats_t *now,
                  double sessions, int targeted)
{
    if (now->sessions != sessions)
        return 0;
    return !targeted ||
           (now->wanted > 0 && now->channels - base->channels == now->wanted);
}

const char *scale_check(const scale_stats_t *a, const scale_stats_t *b,
                        uint64_t expected, int targeted)
{
    double want = (double)expected;

    if (b->events - a->events != want)
        return "events_redis";
    if (b->plain - a->plain != (targeted ? 0 : want))
        return "events_redis_plain";
    if (b->guild - a->guild != (targeted ? want : 0))
        return "events_redis_guild";
    if (b->user != a->user || b->session != a->session)
        return "events_redis_user or _session";
    if (b->mismatches != a->mismatches)
        return "redis_target_mismatches";
    return NULL;
}

int scale_info_field(const char *info, const char *name, double *v)
{
    size_t len = strlen(name);

    for (const char *p = info; p != NULL && *p != '\0';) {
        const char *eol = strchr(p, '\n');
        char *end;

        if (strncmp(p, name, len) == 0 && p[len] == ':') {
            *v = strtod(p + len + 1, &end);
            return end > p + len + 1 ? 0 : -1;
        }
        p = eol != NULL ? eol + 1 : NULL;
    }
    return -1;
}
