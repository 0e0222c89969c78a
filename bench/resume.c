#include "resume.h"
#include "totals.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gw/alloc.h"

/* ---- messages --------------------------------------------------------- */

size_t resume_request(char *out, size_t cap, const char sid[RESUME_SID_LEN],
                      const char *token, size_t token_len, uint64_t seq)
{
    int n = snprintf(out, cap,
                     "{\"event\":\"resume\",\"data\":{\"sessionId\":\"%.*s\","
                     "\"token\":\"%.*s\",\"seq\":%llu}}",
                     RESUME_SID_LEN, sid, (int)token_len, token,
                     (unsigned long long)seq);

    return n > 0 && (size_t)n < cap ? (size_t)n : 0;
}

/* The decimal number at p, ended by a character other than a digit
 * before end: 0 with it in *v, or -1 when no digit is there, it has more
 * than 19, or the buffer ends inside it (a cut message). */
static int resume_number(const uint8_t *p, const uint8_t *end, uint64_t *v)
{
    const uint8_t *start = p;

    *v = 0;
    for (; p < end && *p >= '0' && *p <= '9' && p - start < 19; p++)
        *v = *v * 10 + (uint64_t)(*p - '0');
    return p > start && p < end && (*p < '0' || *p > '9') ? 0 : -1;
}

/* What follows key in data[from..len), or NULL. */
static const uint8_t *resume_after(const uint8_t *data, size_t len, size_t from,
                                   const char *key)
{
    size_t klen = strlen(key);
    const uint8_t *p;

    if (from >= len)
        return NULL;
    p = memmem(data + from, len - from, key, klen);
    return p != NULL ? p + klen : NULL;
}

int resume_session_id(const uint8_t *data, size_t len, char sid[RESUME_SID_LEN])
{
    const uint8_t *p = resume_after(data, len, 0, "\"sessionId\":\"");

    if (p == NULL || (size_t)(data + len - p) < RESUME_SID_LEN + 1 ||
        p[RESUME_SID_LEN] != '"' || memchr(p, '"', RESUME_SID_LEN) != NULL)
        return -1;
    memcpy(sid, p, RESUME_SID_LEN);
    return 0;
}

int resume_replayed(const uint8_t *data, size_t len, uint64_t *count)
{
    const uint8_t *p = resume_after(data, len, 0, "\"replayed\":");

    return p != NULL ? resume_number(p, data + len, count) : -1;
}

int resume_dispatch_parse(const uint8_t *data, size_t len, resume_dispatch_t *d)
{
    static const char head[] = "{\"seq\":";
    const uint8_t *end = data + len, *p;

    memset(d, 0, sizeof(*d));
    if (len < sizeof(head) - 1 || memcmp(data, head, sizeof(head) - 1) != 0 ||
        resume_number(data + sizeof(head) - 1, end, &d->seq) != 0)
        return -1;
    p = resume_after(data, len, sizeof(head) - 1, "\"bts\":");
    if (p == NULL || resume_number(p, end, &d->bts) != 0)
        return -1;
    p = resume_after(data, len, (size_t)(p - data), "\"n\":");
    return p != NULL ? resume_number(p, end, &d->n) : -1;
}

int resume_token_span(const char *identify, size_t *off, size_t *len)
{
    static const char key[] = "\"token\":\"";
    const char *p = strstr(identify, key), *q;

    if (p == NULL)
        return -1;
    p += sizeof(key) - 1;
    if ((q = strchr(p, '"')) == NULL)
        return -1;
    *off = (size_t)(p - identify);
    *len = (size_t)(q - p);
    return 0;
}

/* ---- one session's accounting ----------------------------------------- */

void resume_track_init(resume_track_t *t, uint32_t nbits)
{
    memset(t, 0, sizeof(*t));
    t->nbits = nbits;
    if (nbits > 0)
        t->seen = gw_calloc((nbits + 7) / 8, 1);
}

void resume_track_free(resume_track_t *t)
{
    free(t->seen);
    memset(t, 0, sizeof(*t));
}

void resume_track_begin(resume_track_t *t, uint64_t from_us)
{
    t->last_seq = 0;
    t->life_from = from_us;
}

/* The bit of event n in the session's bitmap: 0 with its index in *k, or
 * -1 when n is not one of the guild's or lies past the bitmap. */
static int resume_bit(const resume_track_t *t, uint64_t n, uint32_t guild,
                      uint32_t guild0, uint32_t guilds, uint64_t *k)
{
    if (guilds == 0 || guild < guild0 || guild - guild0 >= guilds ||
        n % guilds != guild - guild0 || n / guilds >= t->nbits)
        return -1;
    *k = n / guilds;
    return 0;
}

unsigned resume_track_dispatch(resume_track_t *t, uint64_t seq, uint64_t n,
                               uint32_t guild, uint32_t guild0, uint32_t guilds)
{
    unsigned v = 0;
    uint64_t k;

    if (seq <= t->last_seq) {
        v |= RESUME_REPEAT;
    } else {
        if (seq != t->last_seq + 1)
            v |= RESUME_GAP;
        t->last_seq = seq;
    }
    if (t->nbits == 0)
        return v;
    if (resume_bit(t, n, guild, guild0, guilds, &k) != 0)
        return v | RESUME_FOREIGN;
    if (t->seen[k / 8] & (1u << (k % 8)))
        return v | RESUME_DUP;
    t->seen[k / 8] |= (uint8_t)(1u << (k % 8));
    if (n + 1 < t->next_n)
        v |= RESUME_DISORDER;
    else
        t->next_n = n + 1;
    return v;
}

uint64_t resume_track_missing(const resume_track_t *t, const uint64_t *record,
                              uint64_t sent, uint32_t guild, uint32_t guild0,
                              uint32_t guilds, uint64_t from_us, uint64_t to_us)
{
    uint64_t missing = 0;

    if (t->nbits == 0 || guilds == 0 || guild < guild0 ||
        guild - guild0 >= guilds)
        return 0;
    for (uint64_t k = 0; k < t->nbits; k++) {
        uint64_t n = k * guilds + (guild - guild0), ts;

        if (n >= sent)
            break;
        /* The publisher writes the record from another process. */
        ts = __atomic_load_n(&record[n], __ATOMIC_RELAXED);
        if (ts == 0 || ts <= from_us || ts >= to_us)
            continue;
        if (!(t->seen[k / 8] & (1u << (k % 8))))
            missing++;
    }
    return missing;
}

/* ---- gatewayd's side -------------------------------------------------- */

int resume_stats_parse(const char *body, size_t len, resume_stats_t *s)
{
    static const totals_field_t fields[] = {
        {"parked", offsetof(resume_stats_t, parked)},
        {"resumed", offsetof(resume_stats_t, resumed)},
        {"resume_invalid", offsetof(resume_stats_t, invalid)},
        {"replayed", offsetof(resume_stats_t, replayed)},
        {"resume_overflows", offsetof(resume_stats_t, overflows)},
        {"resume_expired", offsetof(resume_stats_t, expired)},
        {"resume_handed_over", offsetof(resume_stats_t, handed)},
        {"sessions", offsetof(resume_stats_t, sessions)},
        {"connections", offsetof(resume_stats_t, connections)},
    };
    cJSON *doc = cJSON_ParseWithLength(body, len);
    const cJSON *workers = cJSON_GetObjectItemCaseSensitive(doc, "workers");
    int rc = totals_read(doc, fields, sizeof(fields) / sizeof(fields[0]), s,
                         sizeof(*s));

    if (rc == 0 && cJSON_IsArray(workers))
        s->workers = cJSON_GetArraySize(workers);
    else if (rc == 0) {
        memset(s, 0, sizeof(*s));
        rc = -1;
    }
    cJSON_Delete(doc);
    return rc;
}
