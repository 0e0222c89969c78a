/* Session ids: drawn from the set's store of the kernel's random bytes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "gw/config.h"
#include "gw/session.h"
#include "gw/stats.h"

#define N 700 /* sessions: more than two stores' worth of ids */

static uint64_t now_ms(void *data)
{
    (void)data;
    return 0;
}

static int id_cmp_ids(const void *a, const void *b)
{
    return memcmp((*(gw_session_t *const *)a)->id,
                  (*(gw_session_t *const *)b)->id, GW_SESSION_ID_LEN);
}

/* Ids across refills of the store are distinct, and their bytes look like
 * the CSPRNG's: each of the 16 positions takes many values. */
static void test_ids_distinct_across_refills(void **state)
{
    static gw_sessions_t set;
    static gw_stats_t stats;
    gw_config_t cfg;
    gw_session_t **s = calloc(N, sizeof(*s));
    unsigned seen[GW_SESSION_ID_LEN][256] = {{0}}, values;
    (void)state;

    gw_config_init(&cfg);
    gw_sessions_init(&set, now_ms, NULL, &cfg, &stats);
    for (int i = 0; i < N; i++) {
        s[i] = gw_session_new(&set, NULL);
        for (int b = 0; b < GW_SESSION_ID_LEN; b++)
            seen[b][s[i]->id[b]]++;
    }
    qsort(s, N, sizeof(*s), id_cmp_ids);
    for (int i = 1; i < N; i++)
        assert_true(memcmp(s[i - 1]->id, s[i]->id, GW_SESSION_ID_LEN) != 0);
    for (int b = 0; b < GW_SESSION_ID_LEN; b++) {
        values = 0;
        for (int v = 0; v < 256; v++)
            values += seen[b][v] > 0;
        /* 700 uniform draws of a byte leave ~241 values seen; a stuck or
         * repeating store would leave a handful. */
        assert_true(values > 200);
    }
    for (int i = 0; i < N; i++)
        gw_session_free(s[i]);
    gw_sessions_free(&set);
    gw_config_free(&cfg);
    free(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ids_distinct_across_refills),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
