#include "gw/channel.h"

#include "gw/alloc.h"
#include "gw/error.h"
#include "gw/hex.h"

#include <stdlib.h>
#include <string.h>

#define CHANNEL_SESSION_HEX (2 * GW_SESSION_ID_LEN)

/* The part between the prefix and the id, with both colons. */
static const struct {
    const char *text;
    size_t len;
} channel_infix[GW_INTEREST_KINDS] = {
    [GW_INTEREST_GUILD] = {":guild:", 7},
    [GW_INTEREST_USER] = {":user:", 6},
    [GW_INTEREST_SESSION] = {":session:", 9},
};

static void channel_list_push(gw_channel_list_t *l, char *name, size_t len)
{
    if (l->n == l->cap) {
        l->cap = l->cap ? 2 * l->cap : 4;
        l->names = gw_realloc(l->names, l->cap * sizeof(*l->names));
        l->lens = gw_realloc(l->lens, l->cap * sizeof(*l->lens));
    }
    l->names[l->n] = name;
    l->lens[l->n++] = len;
}

void gw_channel_list_add(gw_channel_list_t *l, const char *prefix,
                         gw_interest_kind_t kind, const char *id, size_t idlen)
{
    size_t plen = strlen(prefix), ilen = channel_infix[kind].len;
    size_t len = plen + ilen + idlen;
    char *name = gw_malloc(len + 1);

    memcpy(name, prefix, plen);
    memcpy(name + plen, channel_infix[kind].text, ilen);
    memcpy(name + plen + ilen, id, idlen);
    name[len] = '\0';
    channel_list_push(l, name, len);
}

void gw_channel_list_plain(gw_channel_list_t *l, const char *prefix)
{
    channel_list_push(l, gw_strdup(prefix), strlen(prefix));
}

void gw_channel_list_free(gw_channel_list_t *l)
{
    for (size_t i = 0; i < l->n; i++)
        free(l->names[i]);
    free(l->names);
    free(l->lens);
    *l = (gw_channel_list_t){0};
}

/* A session id as its channel names it: exactly 32 lowercase hex. */
static int channel_session_ok(const char *id, size_t len)
{
    if (len != CHANNEL_SESSION_HEX)
        return 0;
    for (size_t i = 0; i < len; i++)
        if (!((id[i] >= '0' && id[i] <= '9') || (id[i] >= 'a' && id[i] <= 'f')))
            return 0;
    return 1;
}

/* The target rest[0..len) names after the prefix, if any. */
static int channel_target(const char *rest, size_t len, gw_channel_t *out)
{
    for (int k = 0; k < GW_INTEREST_KINDS; k++) {
        size_t ilen = channel_infix[k].len;
        if (len <= ilen || memcmp(rest, channel_infix[k].text, ilen) != 0)
            continue;
        out->kind = (gw_channel_kind_t)k;
        out->id = rest + ilen;
        out->len = len - ilen;
        if (out->len > GW_CHANNEL_ID_MAX ||
            memchr(out->id, '\0', out->len) != NULL)
            return GW_EINVAL;
        if (k == GW_INTEREST_SESSION && !channel_session_ok(out->id, out->len))
            return GW_EINVAL;
        return 0;
    }
    return GW_EINVAL;
}

int gw_channel_parse(const char *prefix, const char *name, size_t len,
                     gw_channel_t *out)
{
    size_t plen = strlen(prefix);

    *out = (gw_channel_t){GW_CHANNEL_PLAIN, NULL, 0};
    if (len < plen || memcmp(name, prefix, plen) != 0)
        return GW_EINVAL;
    if (len == plen)
        return 0;
    return channel_target(name + plen, len - plen, out);
}

void gw_channel_for_event(gw_channel_list_t *l, const char *prefix,
                          const gw_event_t *ev, size_t max_users)
{
    char hex[CHANNEL_SESSION_HEX];

    if (ev->target == GW_TARGET_GUILD) {
        gw_channel_list_add(l, prefix, GW_INTEREST_GUILD, ev->ids[0],
                            strlen(ev->ids[0]));
    } else if (ev->target == GW_TARGET_SESSION) {
        gw_hex_encode(ev->session, GW_SESSION_ID_LEN, hex);
        gw_channel_list_add(l, prefix, GW_INTEREST_SESSION, hex, sizeof(hex));
    } else if (ev->target == GW_TARGET_USERS && ev->nids <= max_users) {
        for (size_t i = 0; i < ev->nids; i++)
            gw_channel_list_add(l, prefix, GW_INTEREST_USER, ev->ids[i],
                                strlen(ev->ids[i]));
    } else {
        gw_channel_list_plain(l, prefix);
    }
}

static int channel_id_is(const gw_channel_t *ch, const char *id)
{
    return strlen(id) == ch->len && memcmp(id, ch->id, ch->len) == 0;
}

/* Keeps only the user the channel names: each user of the envelope had its
 * own copy published on its own channel. */
static const char *channel_narrow(gw_event_t *ev, const gw_channel_t *ch)
{
    size_t keep = ev->nids;

    for (size_t i = 0; i < ev->nids; i++)
        if (channel_id_is(ch, ev->ids[i]))
            keep = i;
    if (keep == ev->nids)
        return "the envelope is not for the user its channel names";
    for (size_t i = 0; i < ev->nids; i++)
        if (i != keep)
            free(ev->ids[i]);
    ev->ids[0] = ev->ids[keep];
    ev->nids = 1;
    return NULL;
}

const char *gw_channel_match(gw_event_t *ev, const gw_channel_t *ch)
{
    unsigned char id[GW_SESSION_ID_LEN];

    switch (ch->kind) {
    case GW_CHANNEL_GUILD:
        if (ev->target != GW_TARGET_GUILD || !channel_id_is(ch, ev->ids[0]))
            return "the envelope is not for the guild its channel names";
        return NULL;
    case GW_CHANNEL_USER:
        if (ev->target != GW_TARGET_USERS)
            return "the envelope is not for the user its channel names";
        return channel_narrow(ev, ch);
    case GW_CHANNEL_SESSION:
        gw_hex_decode(ch->id, GW_SESSION_ID_LEN, id);
        if (ev->target != GW_TARGET_SESSION ||
            memcmp(id, ev->session, GW_SESSION_ID_LEN) != 0)
            return "the envelope is not for the session its channel names";
        return NULL;
    case GW_CHANNEL_PLAIN: break;
    }
    return NULL;
}
