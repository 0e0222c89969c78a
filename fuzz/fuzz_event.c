/*
 * The backend envelope parser on arbitrary bytes. An accepted envelope's
 * body, behind the "{" of each recipient's head, must read as the object
 * {"event", "guildId" for a guild, "nonce" when there is one, "data"} that
 * cJSON reads from the envelope: the body is spliced from the envelope's
 * own text, and this is the check that the splice takes the members cJSON
 * took. An action has no body.
 */
#include "gw/event.h"
#include "gw/json.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void fuzz_add(cJSON *obj, const cJSON *doc, const char *key)
{
    cJSON *item = cJSON_GetObjectItemCaseSensitive(doc, key);

    if (item != NULL)
        cJSON_AddItemReferenceToObject(obj, key, item);
    else
        cJSON_AddItemToObject(obj, key, cJSON_CreateObject());
}

static void fuzz_check_body(const uint8_t *data, size_t size,
                            const gw_event_t *ev)
{
    cJSON *doc = gw_json_parse((const char *)data, size);
    cJSON *want = cJSON_CreateObject(), *got;
    char *text = malloc(ev->body->len + 1), *a, *b;

    text[0] = '{';
    memcpy(text + 1, ev->body->data, ev->body->len);
    got = gw_json_parse(text, ev->body->len + 1);
    fuzz_add(want, doc, "event");
    if (ev->target == GW_TARGET_GUILD)
        fuzz_add(want, doc, "guildId");
    if (cJSON_GetObjectItemCaseSensitive(doc, "nonce") != NULL)
        fuzz_add(want, doc, "nonce");
    fuzz_add(want, doc, "data");
    if (doc == NULL || got == NULL)
        abort();
    /* Printed, not cJSON_Compare'd: that looks members up by key, so it
     * calls two equal objects with a repeated key different. */
    a = cJSON_PrintUnformatted(want);
    b = cJSON_PrintUnformatted(got);
    if (strcmp(a, b) != 0)
        abort();
    cJSON_free(a);
    cJSON_free(b);
    cJSON_Delete(got);
    cJSON_Delete(want);
    cJSON_Delete(doc);
    free(text);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    gw_event_t *ev;
    const char *reason = NULL;

    if (gw_event_parse((const char *)data, size, &ev, &reason) == 0) {
        if ((ev->action == GW_ACTION_DISPATCH) != (ev->body != NULL))
            abort();
        if (ev->body != NULL)
            fuzz_check_body(data, size, ev);
        gw_event_unref(ev);
    } else if (reason == NULL) {
        abort();
    }
    return 0;
}
