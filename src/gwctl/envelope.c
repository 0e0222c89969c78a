#include "envelope.h"

#include "gw/error.h"
#include "gw/json.h"

#include <cjson/cJSON.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

static int envelope_fail(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int envelope_fail(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    return GW_EINVAL;
}

/* The one target of o into env: guildId, userId or userIds, sessionId, or
 * broadcast. */
static int envelope_target(const ctl_opts_t *o, cJSON *env, char *err,
                           size_t errlen)
{
    int n = (o->guilds.n > 0) + (o->users.n > 0) + (o->sessions.n > 0) +
            (o->broadcast != 0);

    if (n != 1)
        return envelope_fail(err, errlen,
                             "give one target: --guild G, --user U (one or "
                             "more), --session S or --broadcast%s",
                             n > 1 ? ", not several" : "");
    if (o->guilds.n > 1 || o->sessions.n > 1)
        return envelope_fail(err, errlen, "--%s: one at a time",
                             o->guilds.n > 1 ? "guild" : "session");
    if (o->guilds.n == 1)
        cJSON_AddStringToObject(env, "guildId", o->guilds.v[0]);
    else if (o->users.n == 1)
        cJSON_AddStringToObject(env, "userId", o->users.v[0]);
    else if (o->users.n > 1)
        cJSON_AddItemToObject(
            env, "userIds",
            cJSON_CreateStringArray((const char *const *)o->users.v,
                                    (int)o->users.n));
    else if (o->sessions.n == 1)
        cJSON_AddStringToObject(env, "sessionId", o->sessions.v[0]);
    else
        cJSON_AddTrueToObject(env, "broadcast");
    return 0;
}

static void envelope_optional(const ctl_opts_t *o, cJSON *env)
{
    if (o->priority != 0)
        cJSON_AddNumberToObject(env, "priority", (double)o->priority);
    if (o->exclude_session != NULL)
        cJSON_AddStringToObject(env, "excludeSessionId", o->exclude_session);
    if (o->exclude_user != NULL)
        cJSON_AddStringToObject(env, "excludeUserId", o->exclude_user);
    if (o->id != NULL)
        cJSON_AddStringToObject(env, "id", o->id);
}

int ctl_envelope_build(const ctl_opts_t *o, const char *data, size_t len,
                       char **out, char *err, size_t errlen)
{
    cJSON *env = cJSON_CreateObject(), *d = NULL;
    int rc;

    *out = NULL;
    if (o->event == NULL || o->event[0] == '\0') {
        rc = envelope_fail(err, errlen,
                           "--event NAME is needed "
                           "(e.g. --event message.create)");
        goto done;
    }
    cJSON_AddStringToObject(env, "event", o->event);
    if ((rc = envelope_target(o, env, err, errlen)) != 0)
        goto done;
    if (data != NULL && !cJSON_IsObject(d = gw_json_parse(data, len))) {
        rc = envelope_fail(err, errlen, "--data: not a JSON object: %.60s%s",
                           data, len > 60 ? "..." : "");
        cJSON_Delete(d);
        goto done;
    }
    if (d != NULL)
        cJSON_AddItemToObject(env, "data", d);
    envelope_optional(o, env);
    if ((*out = cJSON_PrintUnformatted(env)) == NULL)
        abort(); /* cJSON fails only when out of memory */
done:
    cJSON_Delete(env);
    return rc;
}
