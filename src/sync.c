#include "gw/sync.h"

#include "gw/alloc.h"
#include "gw/buf.h"
#include "gw/json.h"

#include <stdlib.h>
#include <string.h>

char *gw_sync_key(const char *tmpl, const char *user, const char *scope)
{
    gw_buf_t key = {0};
    size_t len;

    while (*tmpl != '\0') {
        size_t n = strcspn(tmpl, "{");
        gw_buf_append(&key, tmpl, n);
        tmpl += n;
        if (strncmp(tmpl, "{userId}", 8) == 0) {
            gw_buf_append(&key, user, strlen(user));
            tmpl += 8;
        } else if (strncmp(tmpl, "{scope}", 7) == 0) {
            if (scope != NULL)
                gw_buf_append(&key, scope, strlen(scope));
            tmpl += 7;
        } else if (*tmpl == '{') {
            gw_buf_append(&key, "{", 1);
            tmpl++;
        }
    }
    return gw_buf_steal(&key, &len);
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
    gw_buf_t body = {0};
    gw_event_t *ev;

    if (sync_first(value, len) != '{' || !gw_json_valid(value, len))
        return NULL;
    gw_buf_printf(&body, "\"event\":\"sync-data\",");
    if (nonce != NULL) {
        gw_buf_printf(&body, "\"nonce\":");
        gw_buf_json_string(&body, nonce);
        gw_buf_printf(&body, ",");
    }
    gw_buf_printf(&body, "\"data\":");
    gw_buf_append(&body, value, len);
    gw_buf_printf(&body, "}");
    ev = gw_event_private(session, body.data, body.len);
    ev->action = GW_ACTION_DISPATCH;
    free(body.data);
    return ev;
}
