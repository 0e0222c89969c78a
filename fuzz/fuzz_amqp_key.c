/*
 * Targeted RabbitMQ routing keys and the envelopes under them. The input
 * is a routing key, then optionally '\n' and an envelope. A key read must
 * be the pattern of what it names, written back (with or without words
 * after the id); the key as an id must make a pattern that reads back as
 * that id; an envelope that agrees with its key must be left for that
 * key's target alone.
 */
#include "gw/amqp_key.h"
#include "gw/error.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The key is "<kind>.<id>" or that and ".<more>": the pattern's start. */
static void check_round_trip(const char *key, size_t len,
                             const gw_channel_t *ch)
{
    char pat[GW_AMQP_KEY_MAX + 1];
    int n;

    if (ch->kind == GW_CHANNEL_PLAIN)
        return;
    n = gw_amqp_key_pattern((gw_interest_kind_t)ch->kind, ch->id, ch->len, pat);
    if (n == GW_ETOOBIG) {
        /* Only when "<kind>.<id>" and ".#" pass 255 bytes. */
        const char *dot = memchr(key, '.', len);
        const char *end = memchr(dot + 1, '.', len - (size_t)(dot + 1 - key));
        size_t word = end != NULL ? (size_t)(end - key) : len;
        if (word + 2 <= GW_AMQP_KEY_MAX)
            abort();
        return;
    }
    if (n < 2)
        abort();
    n -= 2; /* without ".#" */
    if (len < (size_t)n || memcmp(key, pat, (size_t)n) != 0 ||
        (len > (size_t)n && key[n] != '.'))
        abort();
}

/* Any bytes but NUL, as a guild's or user's id, read back from its key. */
static void check_pattern(const char *id, size_t len)
{
    char pat[GW_AMQP_KEY_MAX + 1], buf[GW_CHANNEL_ID_MAX];
    gw_channel_t ch;

    if (len == 0 || len > GW_CHANNEL_ID_MAX || memchr(id, '\0', len) != NULL)
        return;
    for (int k = GW_INTEREST_GUILD; k <= GW_INTEREST_USER; k++) {
        int n = gw_amqp_key_pattern((gw_interest_kind_t)k, id, len, pat);
        if (n == GW_ETOOBIG)
            continue;
        if (n < 0 || gw_amqp_key_parse(pat, (size_t)n - 2, buf, &ch) != 0 ||
            ch.kind != (gw_channel_kind_t)k || ch.len != len ||
            memcmp(ch.id, id, len) != 0)
            abort();
    }
}

/* After a match, a user's or guild's envelope names that target alone. */
static void check_received(const gw_channel_t *ch, const char *json, size_t len)
{
    gw_event_t *ev;
    const char *reason;

    if (gw_event_parse(json, len, &ev, &reason) != 0)
        return;
    if (gw_channel_match(ev, ch) == NULL &&
        (ch->kind == GW_CHANNEL_USER || ch->kind == GW_CHANNEL_GUILD) &&
        (ev->nids != 1 || strlen(ev->ids[0]) != ch->len ||
         memcmp(ev->ids[0], ch->id, ch->len) != 0))
        abort();
    gw_event_unref(ev);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const uint8_t *nl = memchr(data, '\n', size);
    size_t klen = nl != NULL ? (size_t)(nl - data) : size;
    size_t jlen = nl != NULL ? size - klen - 1 : 0;
    /* Exact-size copies, so that ASan sees any read past len. */
    char *key = malloc(klen ? klen : 1), *json = malloc(jlen ? jlen : 1);
    char *id = malloc(GW_CHANNEL_ID_MAX);
    gw_channel_t ch;

    memcpy(key, data, klen);
    memcpy(json, nl != NULL ? nl + 1 : data, jlen);
    if (gw_amqp_key_parse(key, klen, id, &ch) == 0) {
        check_round_trip(key, klen, &ch);
        check_received(&ch, json, jlen);
    }
    check_pattern(key, klen);
    free(id);
    free(key);
    free(json);
    return 0;
}
