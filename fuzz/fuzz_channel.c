/*
 * Channel names and the envelopes on them. The input is a channel name,
 * then optionally '\n' and an envelope. A name read must build back to
 * itself; an envelope that agrees with its channel must be left for that
 * channel's target alone. And the publishing side: the envelope stamped
 * with an origin still parses, with that origin, and agrees with every
 * channel it would be published to.
 */
#include "gw/channel.h"
#include "gw/error.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define PREFIX "ev"
#define ORIGIN "gw-\"a\\"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The name of ch, built again, is the name it was read from. */
static void check_round_trip(const char *name, size_t len,
                             const gw_channel_t *ch)
{
    gw_channel_list_t l = {0};

    if (ch->kind == GW_CHANNEL_PLAIN)
        gw_channel_list_plain(&l, PREFIX);
    else
        gw_channel_list_add(&l, PREFIX, (gw_interest_kind_t)ch->kind, ch->id,
                            ch->len);
    if (l.lens[0] != len || memcmp(l.names[0], name, len) != 0)
        abort();
    gw_channel_list_free(&l);
}

/* After a match, a user's or guild's envelope names that target alone. */
static void check_narrowed(const gw_event_t *ev, const gw_channel_t *ch)
{
    if (ch->kind != GW_CHANNEL_USER && ch->kind != GW_CHANNEL_GUILD)
        return;
    if (ev->nids != 1 || strlen(ev->ids[0]) != ch->len ||
        memcmp(ev->ids[0], ch->id, ch->len) != 0)
        abort();
}

static void check_received(const gw_channel_t *ch, const char *json, size_t len)
{
    gw_event_t *ev;
    const char *reason;

    if (gw_event_parse(json, len, &ev, &reason) != 0)
        return;
    if (gw_channel_match(ev, ch) == NULL)
        check_narrowed(ev, ch);
    gw_event_unref(ev);
}

/* Every channel an envelope is published to takes it back. */
static void check_published(const char *json, size_t len)
{
    gw_channel_list_t l = {0};
    gw_event_t *ev, *copy;
    gw_channel_t ch;
    const char *reason;
    size_t n;
    char *stamped = gw_event_stamp_origin(json, len, ORIGIN, &n);

    if (stamped == NULL || gw_event_parse(stamped, n, &ev, &reason) != 0)
        goto done;
    if (ev->origin == NULL || strcmp(ev->origin, ORIGIN) != 0)
        abort();
    gw_channel_for_event(&l, PREFIX, ev, 4);
    for (size_t i = 0; i < l.n; i++) {
        if (gw_channel_parse(PREFIX, l.names[i], l.lens[i], &ch) != 0 ||
            gw_event_parse(stamped, n, &copy, &reason) != 0 ||
            gw_channel_match(copy, &ch) != NULL)
            abort();
        check_narrowed(copy, &ch);
        gw_event_unref(copy);
    }
    gw_channel_list_free(&l);
    gw_event_unref(ev);
done:
    free(stamped);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const uint8_t *nl = memchr(data, '\n', size);
    size_t nlen = nl != NULL ? (size_t)(nl - data) : size;
    size_t jlen = nl != NULL ? size - nlen - 1 : 0;
    /* Exact-size copies, so that ASan sees any read past len. */
    char *name = malloc(nlen ? nlen : 1), *json = malloc(jlen ? jlen : 1);
    gw_channel_t ch;

    memcpy(name, data, nlen);
    memcpy(json, nl != NULL ? nl + 1 : data, jlen);
    if (gw_channel_parse(PREFIX, name, nlen, &ch) == 0) {
        check_round_trip(name, nlen, &ch);
        check_received(&ch, json, jlen);
    }
    check_published(json, jlen);
    free(name);
    free(json);
    return 0;
}
