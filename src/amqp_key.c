#include "gw/amqp_key.h"

#include "gw/alloc.h"
#include "gw/error.h"

#include <stdio.h>
#include <string.h>

#define AMQP_KEY_SESSION_HEX 32

/* The first word of a target's key, with its dot. */
static const struct {
    const char *text;
    size_t len;
} amqp_key_kind[GW_INTEREST_KINDS] = {
    [GW_INTEREST_GUILD] = {"guild.", 6},
    [GW_INTEREST_USER] = {"user.", 5},
    [GW_INTEREST_SESSION] = {"session.", 8},
};

/* The bytes an id word writes as %XX, and their codes. */
static const char amqp_key_special[] = ".*#%";
static const char *const amqp_key_code[] = {"2E", "2A", "23", "25"};

static int amqp_key_put(char *out, size_t *at, const char *s, size_t n)
{
    if (*at + n > GW_AMQP_KEY_MAX)
        return GW_ETOOBIG;
    memcpy(out + *at, s, n);
    *at += n;
    return 0;
}

/* Appends id as one word of a key: a special byte as %XX. */
static int amqp_key_put_id(char *out, size_t *at, const char *id, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        const char *sp = id[i] != '\0' ? strchr(amqp_key_special, id[i]) : NULL;
        char esc[3] = {'%', 0, 0};
        int rc;

        if (sp != NULL) {
            memcpy(esc + 1, amqp_key_code[sp - amqp_key_special], 2);
            rc = amqp_key_put(out, at, esc, 3);
        } else {
            rc = amqp_key_put(out, at, id + i, 1);
        }
        if (rc != 0)
            return rc;
    }
    return 0;
}

int gw_amqp_key_targeted(const gw_config_t *cfg)
{
    return cfg->amqp_enabled && strcmp(cfg->amqp_routing, "targeted") == 0;
}

int gw_amqp_key_pattern(gw_interest_kind_t kind, const char *id, size_t idlen,
                        char *out)
{
    size_t at = 0;
    int rc;

    if (idlen == 0)
        return GW_EINVAL;
    rc = amqp_key_put(out, &at, amqp_key_kind[kind].text,
                      amqp_key_kind[kind].len);
    if (rc == 0)
        rc = amqp_key_put_id(out, &at, id, idlen);
    if (rc == 0)
        rc = amqp_key_put(out, &at, ".#", 2);
    if (rc != 0)
        return rc;
    out[at] = '\0';
    return (int)at;
}

/* The byte a %XX of an id word stands for, or -1 when it stands for none. */
static int amqp_key_unescape(const char *hex)
{
    for (size_t i = 0; i < sizeof(amqp_key_code) / sizeof(*amqp_key_code); i++)
        if (memcmp(hex, amqp_key_code[i], 2) == 0)
            return amqp_key_special[i];
    return -1;
}

/* Decodes the id word w[0..len) into buf: its length, or GW_EINVAL. */
static int amqp_key_decode(const char *w, size_t len, char *buf)
{
    size_t n = 0, i = 0;

    while (i < len) {
        int c = (unsigned char)w[i++];
        if (c == '%') {
            c = i + 2 <= len ? amqp_key_unescape(w + i) : -1;
            i += 2;
        } else if (c == '*' || c == '#' || c == '\0') {
            c = -1; /* never in a word that gw_amqp_key_pattern wrote */
        }
        if (c < 0 || n == GW_CHANNEL_ID_MAX)
            return GW_EINVAL;
        buf[n++] = (char)c;
    }
    return n > 0 ? (int)n : GW_EINVAL;
}

static int amqp_key_session_ok(const char *id, size_t len)
{
    if (len != AMQP_KEY_SESSION_HEX)
        return 0;
    for (size_t i = 0; i < len; i++)
        if (!((id[i] >= '0' && id[i] <= '9') || (id[i] >= 'a' && id[i] <= 'f')))
            return 0;
    return 1;
}

/* A target's key: its id word ends at the next '.', if any. */
static int amqp_key_target(gw_interest_kind_t kind, const char *w, size_t len,
                           char *idbuf, gw_channel_t *out)
{
    const char *dot = memchr(w, '.', len);
    int n = amqp_key_decode(w, dot != NULL ? (size_t)(dot - w) : len, idbuf);

    if (n < 0)
        return GW_EINVAL;
    if (kind == GW_INTEREST_SESSION && !amqp_key_session_ok(idbuf, (size_t)n))
        return GW_EINVAL;
    *out = (gw_channel_t){(gw_channel_kind_t)kind, idbuf, (size_t)n};
    return 0;
}

int gw_amqp_key_parse(const char *key, size_t len, char *idbuf,
                      gw_channel_t *out)
{
    *out = (gw_channel_t){GW_CHANNEL_PLAIN, NULL, 0};
    if ((len == 9 || (len > 9 && key[9] == '.')) &&
        memcmp(key, "broadcast", 9) == 0)
        return 0;
    for (int k = 0; k < GW_INTEREST_KINDS; k++) {
        size_t klen = amqp_key_kind[k].len;
        if (len > klen && memcmp(key, amqp_key_kind[k].text, klen) == 0)
            return amqp_key_target((gw_interest_kind_t)k, key + klen,
                                   len - klen, idbuf, out);
    }
    return GW_EINVAL;
}

char *gw_amqp_key_exchange(const char *queue, int gen)
{
    size_t len = strlen(queue) + sizeof(".targets.0");
    char *name = gw_malloc(len);

    snprintf(name, len, "%s.targets.%d", queue, gen);
    return name;
}

void gw_amqp_key_generation(unsigned exists, int *gen, int *old, unsigned *drop)
{
    exists &= (1u << GW_AMQP_KEY_GENERATIONS) - 1;
    *old = -1;
    for (int g = 0; g < GW_AMQP_KEY_GENERATIONS; g++) {
        int before =
            (g + GW_AMQP_KEY_GENERATIONS - 1) % GW_AMQP_KEY_GENERATIONS;
        if ((exists & 1u << g) && !(exists & 1u << before))
            *old = g;
    }
    *gen = *old < 0 ? 0 : (*old + 1) % GW_AMQP_KEY_GENERATIONS;
    *drop = *old < 0 ? exists : exists & ~(1u << *old);
}
