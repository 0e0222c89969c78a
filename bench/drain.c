#include "drain.h"
#include "totals.h"

#include <cjson/cJSON.h>
#include <string.h>

uint64_t drain_backoff_us(unsigned attempt, uint64_t rnd)
{
    uint64_t base = DRAIN_BACKOFF_MIN_US;

    for (unsigned i = 1; i < attempt && base < DRAIN_BACKOFF_MAX_US; i++)
        base *= 2;
    if (base > DRAIN_BACKOFF_MAX_US)
        base = DRAIN_BACKOFF_MAX_US;
    return base + rnd % (base / 2 + 1);
}

int drain_pick(double a, double b)
{
    if (a <= 0 && b <= 0)
        return -1;
    return a >= b ? 0 : 1;
}

uint64_t drain_expected(uint64_t sent, uint32_t sessions, uint32_t guilds,
                        uint32_t members)
{
    uint64_t total = 0;

    for (uint32_t g = 0; g < guilds; g++) {
        uint64_t lo = (uint64_t)g * members, hi = lo + members;
        uint64_t in = lo >= sessions ? 0 : (hi > sessions ? sessions : hi) - lo;
        uint64_t events = sent / guilds + (g < sent % guilds ? 1 : 0);

        total += in * events;
    }
    return total;
}

/* ---- gatewayd's side -------------------------------------------------- */

int drain_stats_parse(const char *body, size_t len, drain_stats_t *s)
{
    static const totals_field_t fields[] = {
        {"handoffs_restored", offsetof(drain_stats_t, restored)},
        {"handoffs_failed", offsetof(drain_stats_t, failed)},
        {"handoff_overlap", offsetof(drain_stats_t, overlap)},
        {"handoffs_served", offsetof(drain_stats_t, served)},
        {"handoffs_waiting", offsetof(drain_stats_t, waiting)},
        {"resumed", offsetof(drain_stats_t, resumed)},
        {"resume_invalid", offsetof(drain_stats_t, invalid)},
        {"replayed", offsetof(drain_stats_t, replayed)},
        {"resume_overflows", offsetof(drain_stats_t, overflows)},
        {"connections", offsetof(drain_stats_t, connections)},
        {"sessions", offsetof(drain_stats_t, sessions)},
    };
    cJSON *doc = cJSON_ParseWithLength(body, len);
    int rc = totals_read(doc, fields, sizeof(fields) / sizeof(fields[0]), s,
                         sizeof(*s));

    cJSON_Delete(doc);
    return rc;
}

/* ---- the verdict ------------------------------------------------------ */

typedef enum {
    DRAIN_ZERO,    /* must be 0 */
    DRAIN_EQUAL,   /* must equal another figure */
    DRAIN_ONE,     /* must be 1 */
    DRAIN_NONZERO, /* must not be 0 */
} drain_rule_t;

typedef struct drain_check {
    const char *what;
    size_t off; /* of the figure in drain_tally_t */
    drain_rule_t rule;
    size_t want_off; /* DRAIN_EQUAL: of the figure it must equal */
} drain_check_t;

#define DRAIN_AT(f) offsetof(drain_tally_t, f)

static const drain_check_t drain_checks[DRAIN_CHECKS] = {
    {"sessions on the drained instance", DRAIN_AT(on_drained), DRAIN_NONZERO,
     0},
    {"sessions moved (closed 4011), of those", DRAIN_AT(moved), DRAIN_EQUAL,
     DRAIN_AT(on_drained)},
    {"moved sessions resumed", DRAIN_AT(resumed), DRAIN_EQUAL, DRAIN_AT(moved)},
    {"moving sessions out of retries", DRAIN_AT(gave_up), DRAIN_ZERO, 0},
    {"invalid_session", DRAIN_AT(invalid), DRAIN_ZERO, 0},
    {"lost", DRAIN_AT(lost), DRAIN_ZERO, 0},
    {"lost, not back", DRAIN_AT(lost_not_back), DRAIN_ZERO, 0},
    {"lost at invalid_session", DRAIN_AT(lost_at_invalid), DRAIN_ZERO, 0},
    {"duplicated", DRAIN_AT(duplicated), DRAIN_ZERO, 0},
    {"out of order", DRAIN_AT(out_of_order), DRAIN_ZERO, 0},
    {"seq gaps", DRAIN_AT(seq_gaps), DRAIN_ZERO, 0},
    {"seq repeats", DRAIN_AT(seq_repeats), DRAIN_ZERO, 0},
    {"foreign events", DRAIN_AT(foreign), DRAIN_ZERO, 0},
    {"replays not as resumed said", DRAIN_AT(replay_mismatch), DRAIN_ZERO, 0},
    {"survivor's handoffs_restored, of the moved", DRAIN_AT(restored),
     DRAIN_EQUAL, DRAIN_AT(moved)},
    {"survivor's handoffs_failed", DRAIN_AT(handoffs_failed), DRAIN_ZERO, 0},
    {"drained instance exited with status 0", DRAIN_AT(exited), DRAIN_ONE, 0},
};

static uint64_t drain_figure(const drain_tally_t *t, size_t off)
{
    uint64_t v;

    memcpy(&v, (const char *)t + off, sizeof(v));
    return v;
}

size_t drain_verdict(const drain_tally_t *t, drain_fault_t *out, size_t cap)
{
    size_t n = 0;

    for (size_t i = 0; i < DRAIN_CHECKS; i++) {
        const drain_check_t *c = &drain_checks[i];
        uint64_t v = drain_figure(t, c->off), want = 0;
        int ok;

        switch (c->rule) {
        case DRAIN_ZERO: ok = v == 0; break;
        case DRAIN_EQUAL:
            want = drain_figure(t, c->want_off);
            ok = v == want;
            break;
        case DRAIN_ONE:
            want = 1;
            ok = v == 1;
            break;
        default:
            want = 1; /* at least */
            ok = v != 0;
            break;
        }
        if (ok)
            continue;
        if (n < cap)
            out[n] =
                (drain_fault_t){c->what, v, want, c->rule == DRAIN_NONZERO};
        n++;
    }
    return n;
}
