#include "gw/link.h"

#include <time.h>

const char *gw_link_state_name(gw_link_state_t s)
{
    switch (s) {
    case GW_LINK_DISABLED: return "disabled";
    case GW_LINK_CONNECTING: return "connecting";
    case GW_LINK_UP: return "up";
    case GW_LINK_DOWN: return "down";
    }
    return "unknown";
}

uint64_t gw_link_clock_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

void gw_link_init(gw_link_status_t *l, gw_link_state_t s)
{
    *l = (gw_link_status_t){.state = s, .since_ms = gw_link_clock_ms()};
}

int gw_link_set(gw_link_status_t *l, gw_link_state_t s)
{
    if (l->state == s)
        return 0;
    gw_link_init(l, s);
    return 1;
}

/* xorshift64*: jitter needs spread, not secrecy. */
static uint64_t link_random(uint64_t *seed)
{
    uint64_t x = *seed ? *seed : 0x9e3779b97f4a7c15ull;

    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *seed = x;
    return x * 0x2545f4914f6cdd1dull;
}

uint64_t gw_link_backoff(unsigned attempt, uint32_t min_ms, uint32_t max_ms,
                         uint64_t *seed)
{
    uint64_t d = min_ms;

    while (attempt-- > 0 && d < max_ms)
        d *= 2;
    if (d > max_ms)
        d = max_ms;
    return d / 2 + link_random(seed) % (d / 2 + 1);
}
