#include "gw/reply.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void gw_reply_static(gw_session_t *s, const char *json)
{
    gw_session_send(s, json, strlen(json));
}

void gw_reply_ready(gw_session_t *s)
{
    char sid[2 * GW_SESSION_ID_LEN + 1], buf[160];
    int n;

    gw_session_id_hex(s, sid);
    n = snprintf(buf, sizeof(buf),
                 "{\"event\":\"ready\",\"data\":{\"sessionId\":\"%s\","
                 "\"heartbeatInterval\":%u}}",
                 sid, s->set->cfg->heartbeat_interval_ms);
    gw_session_send(s, buf, (size_t)n);
}

void gw_reply_json(gw_session_t *s, cJSON *doc)
{
    char *text = cJSON_PrintUnformatted(doc);

    if (text == NULL) {
        gw_error("conn %" PRIu64 ": out of memory encoding a reply",
                 gw_session_conn_id(s));
        abort();
    }
    gw_session_send(s, text, strlen(text));
    cJSON_free(text);
    cJSON_Delete(doc);
}

cJSON *gw_reply_event(const char *name, cJSON **data)
{
    cJSON *doc = cJSON_CreateObject();

    cJSON_AddStringToObject(doc, "event", name);
    *data = cJSON_AddObjectToObject(doc, "data");
    return doc;
}

void gw_reply_error(gw_session_t *s, const char *code, const char *message)
{
    char buf[256];
    int n = snprintf(buf, sizeof(buf),
                     "{\"event\":\"error\",\"data\":{\"code\":\"%s\","
                     "\"message\":\"%s\"}}",
                     code, message);
    gw_session_send(s, buf, (size_t)n);
}

void gw_reply_error_to(gw_session_t *s, const gw_reply_nonce_t *nonce,
                       const char *code, const char *message)
{
    char buf[384];
    int n;

    if (nonce->raw == NULL) {
        gw_reply_error(s, code, message);
        return;
    }
    n = snprintf(buf, sizeof(buf),
                 "{\"event\":\"error\",\"nonce\":%.*s,\"data\":{\"code\":"
                 "\"%s\",\"message\":\"%s\"}}",
                 (int)nonce->len, nonce->raw, code, message);
    gw_session_send(s, buf, (size_t)n);
}

void gw_reply_guild(gw_session_t *s, const char *event, const char *guild)
{
    cJSON *data, *doc = gw_reply_event(event, &data);

    cJSON_AddStringToObject(data, "guildId", guild);
    gw_reply_json(s, doc);
}

void gw_reply_invalid_session(gw_session_t *s)
{
    gw_stat_add(s->set->stats, GW_STAT_RESUME_INVALID, 1);
    gw_reply_static(
        s, "{\"event\":\"invalid_session\",\"data\":{\"resumable\":false}}");
    gw_reply_ready(s);
}
