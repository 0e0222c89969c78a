#include "gw/sync.h"

#include "gw/alloc.h"
#include "gw/json.h"

#include <stdlib.h>
#include <string.h>

/* Appends n bytes of s to *out (of *len bytes), growing it. */
static void sync_append(char **out, size_t *len, const char *s, size_t n)
{
    *out = gw_realloc(*out, *len + n + 1);
    memcpy(*out + *len, s, n);
    *len += n;
    (*out)[*len] = '\0';
}

char *gw_sync_key(const char *tmpl, const char *user, const char *scope)
{
    char *out = gw_strdup("");
    size_t len = 0;

    while (*tmpl != '\0') {
        const char *brace = strchr(tmpl, '{');
        size_t n = brace ? (size_t)(brace - tmpl) : strlen(tmpl);
        sync_append(&out, &len, tmpl, n);
        tmpl += n;
        if (brace == NULL)
            break;
        if (strncmp(tmpl, "{userId}", 8) == 0) {
            sync_append(&out, &len, user, strlen(user));
            tmpl += 8;
        } else if (strncmp(tmpl, "{scope}", 7) == 0) {
            if (scope != NULL)
                sync_append(&out, &len, scope, strlen(scope));
            tmpl += 7;
        } else {
            sync_append(&out, &len, "{", 1);
            tmpl++;
        }
    }
    return out;
}

/* The first byte of a JSON text that is not white space. */
static char sync_first(const char *s, size_t len)
{
    size_t i = 0;

    while (i < len &&
           (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r'))
        i++;
    return i < len ? s[i] : '\0';
}

gw_event_t *gw_sync_answer(const uint8_t session[GW_SESSION_ID_LEN],
                           const char *nonce, const char *value, size_t len)
{
    static const char head[] = "\"event\":\"sync-data\",";
    char *quoted = NULL, *body;
    size_t qlen = 0, n = 0;
    gw_event_t *ev;

    if (sync_first(value, len) != '{' || !gw_json_valid(value, len))
        return NULL;
    if (nonce != NULL) {
        cJSON *s = cJSON_CreateString(nonce);
        quoted = cJSON_PrintUnformatted(s);
        cJSON_Delete(s);
        if (quoted == NULL)
            abort(); /* cJSON fails here only for want of memory */
        qlen = strlen(quoted);
    }
    body = gw_malloc(sizeof(head) + 9 + qlen + 8 + len + 1);
    memcpy(body, head, sizeof(head) - 1);
    n = sizeof(head) - 1;
    if (quoted != NULL) {
        memcpy(body + n, "\"nonce\":", 8);
        memcpy(body + n + 8, quoted, qlen);
        body[n + 8 + qlen] = ',';
        n += 9 + qlen;
        cJSON_free(quoted);
    }
    memcpy(body + n, "\"data\":", 7);
    memcpy(body + n + 7, value, len);
    n += 7 + len;
    body[n++] = '}';
    ev = gw_event_private(session, body, n);
    ev->action = GW_ACTION_DISPATCH;
    free(body);
    return ev;
}
