#include "gw/event.h"

#include "gw/alloc.h"
#include "gw/buf.h"
#include "gw/error.h"
#include "gw/hex.h"

#include "gw/json.h"
#include "gw/transport.h"
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define EVENT_NAME_MAX 128
#define EVENT_ID_MAX 128
#define EVENT_USERS_MAX 10000
#define EVENT_REASON_MAX 120 /* a close reason's bytes (RFC 6455: 123) */

static int event_id_ok(const cJSON *v)
{
    return cJSON_IsString(v) && v->valuestring[0] != '\0' &&
           strlen(v->valuestring) <= EVENT_ID_MAX;
}

static int event_session_id(const cJSON *v, uint8_t out[GW_SESSION_ID_LEN])
{
    if (!cJSON_IsString(v) || strlen(v->valuestring) != 2 * GW_SESSION_ID_LEN ||
        gw_hex_decode(v->valuestring, GW_SESSION_ID_LEN, out) != 0)
        return GW_EINVAL;
    return 0;
}

static int event_id_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* A user named twice must still get the event once. */
static void event_unique_ids(gw_event_t *ev)
{
    size_t n = 0;

    qsort(ev->ids, ev->nids, sizeof(*ev->ids), event_id_cmp);
    for (size_t i = 0; i < ev->nids; i++) {
        if (n > 0 && strcmp(ev->ids[n - 1], ev->ids[i]) == 0)
            free(ev->ids[i]);
        else
            ev->ids[n++] = ev->ids[i];
    }
    ev->nids = n;
}

static void event_add_id(gw_event_t *ev, const char *id)
{
    ev->ids = gw_realloc(ev->ids, (ev->nids + 1) * sizeof(*ev->ids));
    ev->ids[ev->nids++] = gw_strdup(id);
}

/* The users of userId or userIds; returns a reason or NULL. */
static const char *event_users(gw_event_t *ev, const cJSON *user,
                               const cJSON *users)
{
    const cJSON *u;
    int n;

    ev->target = GW_TARGET_USERS;
    if (user != NULL) {
        if (!event_id_ok(user))
            return "userId must be a non-empty string";
        event_add_id(ev, user->valuestring);
        return NULL;
    }
    n = cJSON_GetArraySize(users);
    if (!cJSON_IsArray(users) || n == 0 || n > EVENT_USERS_MAX)
        return "userIds must be a non-empty array of strings";
    cJSON_ArrayForEach(u, users)
    {
        if (!event_id_ok(u))
            return "userIds must be a non-empty array of strings";
        event_add_id(ev, u->valuestring);
    }
    event_unique_ids(ev);
    return NULL;
}

/*
 * Reads exactly one target kind; returns a reason or NULL. An action's
 * guildId is its argument, not a target, and it has no broadcast.
 */
static const char *event_target(gw_event_t *ev, const cJSON *doc, int action)
{
    const cJSON *guild =
        action ? NULL : cJSON_GetObjectItemCaseSensitive(doc, "guildId");
    const cJSON *all =
        action ? NULL : cJSON_GetObjectItemCaseSensitive(doc, "broadcast");
    const cJSON *user = cJSON_GetObjectItemCaseSensitive(doc, "userId");
    const cJSON *users = cJSON_GetObjectItemCaseSensitive(doc, "userIds");
    const cJSON *session = cJSON_GetObjectItemCaseSensitive(doc, "sessionId");

    if ((guild != NULL) + (user != NULL) + (users != NULL) + (session != NULL) +
            (all != NULL && !cJSON_IsFalse(all)) !=
        1)
        return action ? "an action needs exactly one of userId, userIds, "
                        "sessionId"
                      : "exactly one of guildId, userId, userIds, sessionId, "
                        "broadcast is required";
    if (guild != NULL) {
        if (!event_id_ok(guild))
            return "guildId must be a non-empty string";
        ev->target = GW_TARGET_GUILD;
        event_add_id(ev, guild->valuestring);
    } else if (user != NULL || users != NULL) {
        return event_users(ev, user, users);
    } else if (session != NULL) {
        if (event_session_id(session, ev->session) != 0)
            return "sessionId must be 32 hex characters";
        ev->target = GW_TARGET_SESSION;
    } else {
        if (!cJSON_IsTrue(all))
            return "broadcast must be true";
        ev->target = GW_TARGET_ALL;
    }
    return NULL;
}

/* An optional string field of bounded length, copied; NULL and no reason
 * when absent. */
static const char *event_opt_id(const cJSON *doc, const char *key, char **out)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(doc, key);

    if (v == NULL)
        return NULL;
    if (!event_id_ok(v))
        return "excludeUserId and origin must be non-empty strings";
    *out = gw_strdup(v->valuestring);
    return NULL;
}

/*
 * Validates priority, excludeSessionId, excludeUserId and origin; returns a
 * reason or NULL.
 */
static const char *event_options(gw_event_t *ev, const cJSON *doc)
{
    const cJSON *prio = cJSON_GetObjectItemCaseSensitive(doc, "priority");
    const cJSON *excl =
        cJSON_GetObjectItemCaseSensitive(doc, "excludeSessionId");
    const char *why;

    if ((why = event_opt_id(doc, "excludeUserId", &ev->exclude_user)) ||
        (why = event_opt_id(doc, "origin", &ev->origin)))
        return why;
    ev->priority = 3;
    if (prio != NULL) {
        if (!cJSON_IsNumber(prio) ||
            prio->valuedouble != (double)prio->valueint || prio->valueint < 1 ||
            prio->valueint > 4)
            return "priority must be an integer from 1 to 4";
        ev->priority = prio->valueint;
    }
    if (excl != NULL) {
        if (event_session_id(excl, ev->exclude) != 0)
            return "excludeSessionId must be 32 hex characters";
        ev->has_exclude = 1;
    }
    return NULL;
}

/* One part of the body: a literal or a value's text from the envelope. */
typedef struct event_span {
    const char *p;
    size_t len;
} event_span_t;

/*
 * The part of the dispatch every recipient shares, "event":..,"guildId":..,
 * "data":..} (the recipient's {"seq":N, goes first), made of the values'
 * own text in the envelope, which gw_json_parse has checked: copying them
 * costs a scan, where printing them back from cJSON's tree cost half of
 * the broker's work per event.
 */
static int event_body(gw_event_t *ev, const char *json, size_t len, int nonce)
{
    event_span_t part[9] = {{"\"event\":", 8}, {"", 0},   {"", 0},
                            {"", 0},           {"", 0},   {"", 0},
                            {",\"data\":", 8}, {"{}", 2}, {"}", 1}};
    size_t total = 0;
    char *w;

    /* Found, since cJSON found them; checked all the same, as a lost
     * member would make the body invalid JSON for every recipient. */
    if (gw_json_member_raw(json, len, "event", &part[1].p, &part[1].len) != 0)
        return GW_EPARSE;
    if (ev->target == GW_TARGET_GUILD) {
        part[2] = (event_span_t){",\"guildId\":", 11};
        if (gw_json_member_raw(json, len, "guildId", &part[3].p,
                               &part[3].len) != 0)
            return GW_EPARSE;
    }
    if (nonce) {
        part[4] = (event_span_t){",\"nonce\":", 9};
        if (gw_json_member_raw(json, len, "nonce", &part[5].p, &part[5].len) !=
            0)
            return GW_EPARSE;
    }
    gw_json_member_raw(json, len, "data", &part[7].p, &part[7].len);
    for (int i = 0; i < 9; i++)
        total += part[i].len;
    ev->body = gw_frame_new(total);
    w = ev->body->data;
    for (int i = 0; i < 9; i++) {
        memcpy(w, part[i].p, part[i].len);
        w += part[i].len;
    }
    return 0;
}

static const struct {
    const char *name;
    gw_action_t action;
} event_actions[] = {
    {"subscribe", GW_ACTION_SUBSCRIBE},
    {"unsubscribe", GW_ACTION_UNSUBSCRIBE},
    {"disconnect", GW_ACTION_DISCONNECT},
};

/* A disconnect's optional code (4000-4999, default 4000) and reason. */
static const char *event_disconnect(gw_event_t *ev, const cJSON *doc)
{
    const cJSON *code = cJSON_GetObjectItemCaseSensitive(doc, "code");
    const cJSON *reason = cJSON_GetObjectItemCaseSensitive(doc, "reason");

    ev->code = 4000;
    if (code != NULL) {
        if (!cJSON_IsNumber(code) ||
            code->valuedouble != (double)code->valueint ||
            code->valueint < 4000 || code->valueint > 4999)
            return "code must be an integer from 4000 to 4999";
        ev->code = (uint16_t)code->valueint;
    }
    if (reason != NULL && (!cJSON_IsString(reason) ||
                           strlen(reason->valuestring) > EVENT_REASON_MAX))
        return "reason must be a string of at most 120 bytes";
    ev->arg =
        gw_strdup(reason ? reason->valuestring : "disconnected by the server");
    return NULL;
}

/* An envelope with "action": what it asks of its target sessions. */
static const char *event_action(gw_event_t *ev, const cJSON *doc,
                                const cJSON *action)
{
    const cJSON *guild = cJSON_GetObjectItemCaseSensitive(doc, "guildId");
    const char *why;
    size_t i, n = sizeof(event_actions) / sizeof(event_actions[0]);

    for (i = 0; i < n && cJSON_IsString(action); i++)
        if (strcmp(action->valuestring, event_actions[i].name) == 0)
            break;
    if (!cJSON_IsString(action) || i == n)
        return "action must be subscribe, unsubscribe or disconnect";
    ev->action = event_actions[i].action;
    if ((why = event_target(ev, doc, 1)) != NULL ||
        (why = event_opt_id(doc, "origin", &ev->origin)) != NULL)
        return why;
    if (ev->action == GW_ACTION_DISCONNECT)
        return event_disconnect(ev, doc);
    if (!event_id_ok(guild))
        return "subscribe and unsubscribe need a guildId";
    ev->arg = gw_strdup(guild->valuestring);
    return NULL;
}

/* The optional nonce a reply echoes: a string of at most GW_NONCE_MAX. */
static const char *event_nonce(const cJSON *doc, int *has)
{
    const cJSON *nonce = cJSON_GetObjectItemCaseSensitive(doc, "nonce");

    *has = nonce != NULL;
    if (nonce != NULL &&
        (!cJSON_IsString(nonce) || strlen(nonce->valuestring) > GW_NONCE_MAX))
        return "nonce must be a string of at most 64 bytes";
    return NULL;
}

/* An envelope to deliver: its name, data, target, options and body. */
/* 64-bit FNV-1a with a fixed seed: every instance must compute the same
 * identity for the same event. */
static uint64_t event_hash(uint64_t h, const char *p, size_t len)
{
    for (size_t i = 0; i < len; i++)
        h = (h ^ (unsigned char)p[i]) * UINT64_C(1099511628211);
    return h;
}

/*
 * The dispatch's identity across instances (docs/continuity.md section
 * 3): the backend's "id" when it set one, else the envelope's bytes, so
 * that a drained session's old and new instance agree on which events
 * both saw. Never 0, which means none.
 */
static const char *event_identity(gw_event_t *ev, const cJSON *doc,
                                  const char *json, size_t len)
{
    const cJSON *id = cJSON_GetObjectItemCaseSensitive(doc, "id");
    uint64_t h = UINT64_C(14695981039346656037);

    if (id != NULL && (!cJSON_IsString(id) || id->valuestring[0] == '\0' ||
                       strlen(id->valuestring) > EVENT_ID_MAX))
        return "id must be a non-empty string of at most 128 bytes";
    if (id != NULL)
        h = event_hash(event_hash(h, "id:", 3), id->valuestring,
                       strlen(id->valuestring));
    else
        h = event_hash(h, json, len);
    ev->body->id = h != 0 ? h : 1;
    return NULL;
}

static int event_dispatch(gw_event_t *ev, const cJSON *doc, const char *json,
                          size_t len, const char **reason)
{
    const cJSON *name = cJSON_GetObjectItemCaseSensitive(doc, "event");
    const cJSON *data = cJSON_GetObjectItemCaseSensitive(doc, "data");
    int nonce;

    if (!cJSON_IsString(name) || name->valuestring[0] == '\0' ||
        strlen(name->valuestring) > EVENT_NAME_MAX) {
        *reason = "event must be a non-empty string";
        return GW_EINVAL;
    }
    if (data != NULL && !cJSON_IsObject(data)) {
        *reason = "data must be an object";
        return GW_EINVAL;
    }
    if ((*reason = event_target(ev, doc, 0)) != NULL ||
        (*reason = event_options(ev, doc)) != NULL ||
        (*reason = event_nonce(doc, &nonce)) != NULL)
        return GW_EINVAL;
    if (event_body(ev, json, len, nonce) != 0) {
        *reason = "body is not a JSON object";
        return GW_EPARSE;
    }
    if ((*reason = event_identity(ev, doc, json, len)) != NULL)
        return GW_EINVAL;
    return 0;
}

int gw_event_parse(const char *json, size_t len, gw_event_t **out,
                   const char **reason)
{
    cJSON *doc = gw_json_parse(json, len);
    const cJSON *action;
    gw_event_t *ev = NULL;
    int rc = GW_EINVAL;

    *out = NULL;
    if (doc == NULL || !cJSON_IsObject(doc)) {
        *reason = "body is not a JSON object";
        rc = GW_EPARSE;
        goto Error;
    }
    ev = gw_calloc(1, sizeof(*ev));
    atomic_init(&ev->refs, 1);
    action = cJSON_GetObjectItemCaseSensitive(doc, "action");
    if (action != NULL)
        rc = (*reason = event_action(ev, doc, action)) ? GW_EINVAL : 0;
    else
        rc = event_dispatch(ev, doc, json, len, reason);
    if (rc != 0)
        goto Error;
    cJSON_Delete(doc);
    *out = ev;
    return 0;
Error:
    if (ev != NULL)
        gw_event_unref(ev);
    cJSON_Delete(doc);
    return rc;
}

static size_t event_skip_space(const char *json, size_t len, size_t i)
{
    while (i < len && (json[i] == ' ' || json[i] == '\t' || json[i] == '\n' ||
                       json[i] == '\r'))
        i++;
    return i;
}

char *gw_event_stamp_origin(const char *json, size_t len, const char *origin,
                            size_t *out_len)
{
    size_t open = event_skip_space(json, len, 0), rest;
    gw_buf_t o = {0};

    if (open == len || json[open] != '{')
        return NULL;
    rest = event_skip_space(json, len, open + 1);
    gw_buf_printf(&o, "{\"origin\":");
    gw_buf_json_string(&o, origin);
    /* An empty object takes no comma: {"origin":..} alone. */
    if (rest < len && json[rest] != '}')
        gw_buf_append(&o, ",", 1);
    gw_buf_append(&o, json + open + 1, len - open - 1);
    return gw_buf_steal(&o, out_len);
}

/* A gateway-made event for one session: one reference, priority 1. */
static gw_event_t *event_for(const uint8_t session[GW_SESSION_ID_LEN],
                             gw_action_t action)
{
    gw_event_t *ev = gw_calloc(1, sizeof(*ev));

    atomic_init(&ev->refs, 1);
    ev->target = GW_TARGET_SESSION;
    ev->action = action;
    ev->priority = 1;
    ev->fd = -1;
    memcpy(ev->session, session, GW_SESSION_ID_LEN);
    return ev;
}

gw_event_t *gw_event_private(const uint8_t session[GW_SESSION_ID_LEN],
                             const char *json, size_t len)
{
    gw_event_t *ev = event_for(session, GW_ACTION_SEND);

    ev->body = gw_frame_new(len);
    memcpy(ev->body->data, json, len);
    return ev;
}

gw_event_t *gw_event_census(uint32_t census)
{
    gw_event_t *ev = gw_calloc(1, sizeof(*ev));

    atomic_init(&ev->refs, 1);
    ev->target = GW_TARGET_ALL;
    ev->action = GW_ACTION_CENSUS;
    ev->priority = 1;
    ev->census = census;
    return ev;
}

gw_event_t *gw_event_subscribed(unsigned kind, const char *id)
{
    gw_event_t *ev = gw_calloc(1, sizeof(*ev));

    atomic_init(&ev->refs, 1);
    ev->target = GW_TARGET_ALL;
    ev->action = GW_ACTION_SUBSCRIBED;
    ev->priority = 1;
    ev->code = (uint16_t)kind;
    ev->arg = gw_strdup(id);
    return ev;
}

gw_event_t *gw_event_adopt(const uint8_t session[GW_SESSION_ID_LEN], int fd,
                           gw_transport_state_t *state, const uint8_t *rest,
                           size_t len, uint64_t seq, const char *user,
                           gw_grant_t *grant)
{
    gw_event_t *ev = event_for(session, GW_ACTION_ADOPT);

    ev->fd = fd;
    ev->state = state;
    ev->seq = seq;
    ev->exp = grant->exp;
    ev->ids = grant->allowed;
    ev->nids = grant->nallowed;
    *grant = (gw_grant_t){NULL, 0, 0};
    ev->arg = gw_strdup(user);
    ev->body = gw_frame_new(len);
    memcpy(ev->body->data, rest, len);
    return ev;
}

gw_event_t *gw_event_handoff(gw_action_t action,
                             const uint8_t session[GW_SESSION_ID_LEN],
                             const char *blob, size_t len, const char *arg)
{
    gw_event_t *ev = event_for(session, action);

    ev->arg = arg != NULL ? gw_strdup(arg) : NULL;
    if (blob != NULL) {
        ev->body = gw_frame_new(len);
        memcpy(ev->body->data, blob, len);
    }
    return ev;
}

void gw_event_set_refs(gw_event_t *ev, unsigned refs)
{
    atomic_store_explicit(&ev->refs, refs, memory_order_relaxed);
}

void gw_event_ref(gw_event_t *ev)
{
    atomic_fetch_add_explicit(&ev->refs, 1, memory_order_relaxed);
}

void gw_event_unref(gw_event_t *ev)
{
    /* As gw_frame_unref: one acquire-release RMW. */
    if (atomic_fetch_sub_explicit(&ev->refs, 1, memory_order_acq_rel) != 1)
        return;
    for (size_t i = 0; i < ev->nids; i++)
        free(ev->ids[i]);
    free(ev->ids);
    free(ev->exclude_user);
    free(ev->origin);
    free(ev->arg);
    if (ev->body != NULL)
        gw_frame_unref(ev->body);
    if (ev->action == GW_ACTION_ADOPT && ev->fd >= 0)
        close(ev->fd); /* no worker took the connection */
    gw_transport_state_free(ev->state);
    free(ev);
}
