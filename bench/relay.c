#include "relay.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gw/alloc.h"

/* The nonce and the code come before data in every message of ours and of
 * gatewayd's, so only the head of a message is searched. */
#define RELAY_SCAN 256

size_t relay_request(char *out, size_t cap, uint32_t index, uint64_t seq,
                     uint64_t t_us, size_t payload)
{
    static const char tail[] = "\"}}";
    int head =
        snprintf(out, cap,
                 "{\"event\":\"" RELAY_REQUEST_EVENT "\",\"nonce\":"
                 "\"%u.%llu\",\"data\":{\"cts\":%llu,\"pad\":\"",
                 index, (unsigned long long)seq, (unsigned long long)t_us);
    size_t len, pad = 0;

    if (head < 0)
        return 0;
    len = (size_t)head + sizeof(tail) - 1;
    if (payload > len)
        pad = payload - len;
    if (len + pad + 1 > cap)
        return 0;
    memset(out + head, 'x', pad);
    memcpy(out + (size_t)head + pad, tail, sizeof(tail));
    return len + pad;
}

/* Digits at *p (before end) into *v, at most max_digits of them and no
 * more than max. Returns 0 and moves *p past them, or -1. */
static int relay_digits(const uint8_t **p, const uint8_t *end, int max_digits,
                        uint64_t max, uint64_t *v)
{
    const uint8_t *q = *p;
    uint64_t n = 0;

    while (q < end && *q >= '0' && *q <= '9' && q - *p < max_digits) {
        n = n * 10 + (uint64_t)(*q - '0');
        q++;
    }
    if (q == *p || n > max || (q < end && *q >= '0' && *q <= '9'))
        return -1;
    *p = q;
    *v = n;
    return 0;
}

int relay_nonce_find(const uint8_t *msg, size_t len, uint32_t *index,
                     uint64_t *seq)
{
    static const char key[] = "\"nonce\":\"";
    size_t scan = len < RELAY_SCAN ? len : RELAY_SCAN;
    const uint8_t *p = memmem(msg, scan, key, sizeof(key) - 1);
    const uint8_t *end = msg + len;
    uint64_t i, s;

    if (p == NULL)
        return -1;
    p += sizeof(key) - 1;
    if (relay_digits(&p, end, 10, UINT32_MAX, &i) != 0 || p == end ||
        *p++ != '.' || relay_digits(&p, end, 19, UINT64_MAX / 10, &s) != 0 ||
        p == end || *p != '"')
        return -1;
    *index = (uint32_t)i;
    *seq = s;
    return 0;
}

relay_err_t relay_error_code(const uint8_t *msg, size_t len)
{
    static const char key[] = "\"code\":\"";
    static const struct {
        const char *text;
        relay_err_t code;
    } codes[] = {
        {"unavailable\"", RELAY_ERR_UNAVAILABLE},
        {"overloaded\"", RELAY_ERR_OVERLOADED},
        {"rate_limited\"", RELAY_ERR_RATE_LIMITED},
    };
    const uint8_t *p = memmem(msg, len, key, sizeof(key) - 1);
    size_t rest;

    if (p == NULL)
        return RELAY_ERR_OTHER;
    p += sizeof(key) - 1;
    rest = (size_t)(msg + len - p);
    for (size_t i = 0; i < sizeof(codes) / sizeof(codes[0]); i++) {
        size_t n = strlen(codes[i].text);

        if (rest >= n && memcmp(p, codes[i].text, n) == 0)
            return codes[i].code;
    }
    return RELAY_ERR_OTHER;
}

/* ---- the table of pending requests ------------------------------------ */

void relay_table_init(relay_table_t *t, uint64_t min_slots)
{
    uint64_t size = RELAY_MIN_SLOTS;

    while (size < min_slots && size < RELAY_MAX_SLOTS)
        size <<= 1;
    t->slot = gw_calloc((size_t)size, sizeof(*t->slot));
    t->mask = size - 1;
    t->next = 0;
    t->pending = 0;
}

void relay_table_free(relay_table_t *t)
{
    free(t->slot);
    memset(t, 0, sizeof(*t));
}

uint64_t relay_table_send(relay_table_t *t, uint32_t index, uint64_t t_us,
                          int *expired)
{
    uint64_t seq = t->next++;
    relay_slot_t *s = &t->slot[seq & t->mask];

    *expired = s->pending != 0;
    if (!s->pending)
        t->pending++;
    s->seq = seq;
    s->t_us = t_us;
    s->index = index;
    s->pending = 1;
    return seq;
}

relay_match_t relay_table_answer(relay_table_t *t, uint32_t receiver,
                                 uint32_t index, uint64_t seq, uint64_t *t_sent)
{
    relay_slot_t *s;

    if (t->slot == NULL || seq >= t->next)
        return RELAY_UNKNOWN;
    s = &t->slot[seq & t->mask];
    if (!s->pending || s->seq != seq || s->index != index)
        return RELAY_UNKNOWN;
    if (receiver != index)
        return RELAY_MISROUTED;
    s->pending = 0;
    t->pending--;
    *t_sent = s->t_us;
    return RELAY_MATCH;
}

/* ---- the backend's answer --------------------------------------------- */

/* The request's data with the answer's stamp; its cts into *cts_us. */
static cJSON *relay_answer_data(cJSON *env, uint64_t ets_us, uint64_t *cts_us)
{
    cJSON *data = cJSON_DetachItemFromObjectCaseSensitive(env, "data");
    const cJSON *cts;

    if (!cJSON_IsObject(data)) {
        cJSON_Delete(data);
        data = cJSON_CreateObject();
    }
    cts = cJSON_GetObjectItemCaseSensitive(data, "cts");
    *cts_us = cJSON_IsNumber(cts) && cts->valuedouble > 0
                  ? (uint64_t)cts->valuedouble
                  : 0;
    cJSON_DeleteItemFromObjectCaseSensitive(data, "ets");
    cJSON_AddNumberToObject(data, "ets", (double)ets_us);
    return data;
}

long relay_answer(const char *body, size_t len, uint64_t ets_us, char *out,
                  size_t cap, uint64_t *cts_us)
{
    cJSON *env = cJSON_ParseWithLength(body, len), *ans = NULL;
    const cJSON *sid = cJSON_GetObjectItemCaseSensitive(env, "sessionId");
    const cJSON *nonce = cJSON_GetObjectItemCaseSensitive(env, "nonce");
    long n = -1;

    *cts_us = 0;
    if (!cJSON_IsString(sid) || !cJSON_IsString(nonce))
        goto Out;
    ans = cJSON_CreateObject();
    cJSON_AddStringToObject(ans, "event", RELAY_ANSWER_EVENT);
    cJSON_AddStringToObject(ans, "sessionId", sid->valuestring);
    cJSON_AddStringToObject(ans, "nonce", nonce->valuestring);
    cJSON_AddItemToObject(ans, "data", relay_answer_data(env, ets_us, cts_us));
    /* cJSON wants a few bytes to spare beyond the text and its NUL. */
    if (cap > 5 && cJSON_PrintPreallocated(ans, out, (int)(cap - 5), 0))
        n = (long)strlen(out);
Out:
    cJSON_Delete(ans);
    cJSON_Delete(env);
    return n;
}
