/* gwbench's fanout --instances, its pure parts (bench/scale.h): where
 * guilds live, the events each instance owes in either design, the design
 * a run's --gw-set asks for, the /stats figures, the settle and the
 * check of what an instance received, a field of Redis's INFO; the
 * channel each event is published on (publish.h); and the thread CPU
 * reader (proc.h) on this process's own threads. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "proc.h"
#include "publish.h"
#include "scale.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static void test_placing(void **state)
{
    (void)state;
    assert_int_equal(scale_instance(0, 1), 0);
    assert_int_equal(scale_instance(79, 1), 0);
    assert_int_equal(scale_instance(13, 8), 5);
    assert_int_equal(scale_instance(13, 0), 0);
    /* Each instance's count is the guilds the rule puts there, and they
     * add up to all guilds. */
    for (unsigned k = 1; k <= 8; k++)
        for (uint32_t guilds = 0; guilds <= 83; guilds++) {
            uint32_t sum = 0;

            for (unsigned i = 0; i < k; i++) {
                uint32_t n = 0;

                for (uint32_t g = 0; g < guilds; g++)
                    n += scale_instance(g, k) == i;
                assert_int_equal(scale_guilds_on(guilds, k, i), n);
                sum += n;
            }
            assert_int_equal(sum, guilds);
        }
    assert_int_equal(scale_guilds_on(80, 8, 8), 0);
    assert_int_equal(scale_guilds_on(80, 0, 0), 0);
}

/* What instance i must receive, counted event by event. */
static uint64_t owed_slowly(uint64_t sent, uint32_t guilds, unsigned k,
                            unsigned i)
{
    uint64_t n = 0;

    for (uint64_t e = 0; e < sent; e++)
        n += scale_instance((uint32_t)(e % guilds), k) == i;
    return n;
}

static void test_received(void **state)
{
    static const uint64_t sents[] = {0, 1, 7, 79, 80, 81, 3000, 3007};
    static const uint32_t guilds[] = {1, 3, 8, 80, 81};
    (void)state;

    for (size_t s = 0; s < sizeof(sents) / sizeof(sents[0]); s++)
        for (size_t g = 0; g < sizeof(guilds) / sizeof(guilds[0]); g++)
            for (unsigned k = 1; k <= 8; k++) {
                uint64_t sum = 0;

                for (unsigned i = 0; i < k; i++) {
                    uint64_t n = scale_received(sents[s], guilds[g], k, i, 1);

                    assert_int_equal(n, owed_slowly(sents[s], guilds[g], k, i));
                    sum += n;
                    /* The old design: every instance reads every event. */
                    assert_int_equal(
                        scale_received(sents[s], guilds[g], k, i, 0), sents[s]);
                }
                assert_int_equal(sum, sents[s]);
            }
    /* 3000 events over 80 guilds on 8 instances: 375 each. */
    assert_int_equal(scale_received(3000, 80, 8, 3, 1), 375);
    assert_int_equal(scale_received(3000, 80, 8, 8, 1), 0);
    assert_int_equal(scale_received(3000, 0, 8, 0, 1), 0);
    assert_int_equal(scale_received(3000, 80, 0, 0, 0), 0);
}

static void test_targeted(void **state)
{
    const char *none[] = {"log.level=warn"};
    const char *off[] = {"redis.targeted=false", "log.level=warn"};
    const char *on_again[] = {"redis.targeted=false", "redis.targeted=true"};
    const char *bad[] = {"redis.targeted=no"};
    const char *other[] = {"redis.targeted_x=false", "xredis.targeted=false"};
    (void)state;

    assert_int_equal(scale_targeted(NULL, 0), 1);
    assert_int_equal(scale_targeted(none, 1), 1);
    assert_int_equal(scale_targeted(off, 2), 0);
    assert_int_equal(scale_targeted(on_again, 2), 1);
    assert_int_equal(scale_targeted(on_again, 1), 0);
    assert_int_equal(scale_targeted(bad, 1), -1);
    assert_int_equal(scale_targeted(other, 2), 1);
}

static const char stats_body[] =
    "{\"workers\":[{\"id\":0}],\"broker\":{\"thread\":\"broker\","
    "\"events_redis\":1500,\"events_redis_plain\":3,"
    "\"events_redis_guild\":1497,\"events_redis_user\":0,"
    "\"events_redis_session\":0,\"redis_target_mismatches\":0,"
    "\"redis_subscribe_commands\":17,\"redis_channels\":2042,"
    "\"targets_wanted\":2040,\"targets_lingering\":0},"
    "\"totals\":{\"sessions\":1000,\"connections\":1000}}";

static void test_stats(void **state)
{
    char copy[sizeof(stats_body)], *p;
    scale_stats_t s;
    (void)state;

    assert_int_equal(scale_stats_parse(stats_body, strlen(stats_body), &s), 0);
    assert_true(s.events == 1500 && s.plain == 3 && s.guild == 1497);
    assert_true(s.user == 0 && s.session == 0 && s.mismatches == 0);
    assert_true(s.subscribes == 17 && s.channels == 2042);
    assert_true(s.wanted == 2040 && s.sessions == 1000);
    /* A gatewayd before targeted channels: -1, nothing half read. */
    memcpy(copy, stats_body, sizeof(copy));
    p = strstr(copy, "\"targets_wanted\"");
    memcpy(p, "\"targets_wantee\"", 16);
    assert_int_equal(scale_stats_parse(copy, strlen(copy), &s), -1);
    assert_true(s.events == 0 && s.channels == 0);
    /* The sessions missing from totals. */
    memcpy(copy, stats_body, sizeof(copy));
    p = strstr(copy, "\"sessions\"");
    memcpy(p, "\"sessionz\"", 10);
    assert_int_equal(scale_stats_parse(copy, strlen(copy), &s), -1);
    assert_true(s.events == 0 && s.sessions == 0);
    /* A figure that is not a number. */
    memcpy(copy, stats_body, sizeof(copy));
    p = strstr(copy, "2042");
    memcpy(p, "\"42\"", 4);
    assert_int_equal(scale_stats_parse(copy, strlen(copy), &s), -1);
    assert_int_equal(scale_stats_parse("{}", 2, &s), -1);
    assert_int_equal(scale_stats_parse("nope", 4, &s), -1);
    assert_int_equal(scale_stats_parse(stats_body, 40, &s), -1);
}

static scale_stats_t stats(double events, double plain, double guild,
                           double channels, double wanted, double sessions)
{
    scale_stats_t s;

    memset(&s, 0, sizeof(s));
    s.events = events;
    s.plain = plain;
    s.guild = guild;
    s.channels = channels;
    s.wanted = wanted;
    s.sessions = sessions;
    return s;
}

static void test_settled(void **state)
{
    scale_stats_t base = stats(0, 0, 0, 2, 0, 0);
    scale_stats_t now = stats(0, 0, 0, 2042, 2040, 1000);
    (void)state;

    assert_true(scale_settled(&base, &now, 1000, 1));
    assert_false(scale_settled(&base, &now, 999, 1));
    /* One channel not confirmed yet. */
    now.channels = 2041;
    assert_false(scale_settled(&base, &now, 1000, 1));
    /* The old design holds no target channel: the sessions suffice. */
    assert_true(scale_settled(&base, &now, 1000, 0));
    now = stats(0, 0, 0, 2, 0, 1000);
    assert_true(scale_settled(&base, &now, 1000, 0));
    /* Targeted, sessions there but nothing wanted yet. */
    assert_false(scale_settled(&base, &now, 1000, 1));
}

static void test_check(void **state)
{
    scale_stats_t a = stats(100, 10, 90, 2042, 2040, 1000), b;
    (void)state;

    /* Targeted: all on the guilds' channels. */
    b = stats(475, 10, 465, 2042, 2040, 1000);
    assert_null(scale_check(&a, &b, 375, 1));
    assert_string_equal(scale_check(&a, &b, 374, 1), "events_redis");
    b.plain = 11;
    b.guild = 464;
    assert_string_equal(scale_check(&a, &b, 375, 1), "events_redis_plain");
    /* The old design: all on the plain channel. */
    b = stats(3100, 3010, 90, 2, 0, 1000);
    assert_null(scale_check(&a, &b, 3000, 0));
    assert_string_equal(scale_check(&a, &b, 3000, 1), "events_redis_plain");
    b.guild = 91; /* one more on a guild's channel besides */
    assert_string_equal(scale_check(&a, &b, 3000, 0), "events_redis_guild");
    b = stats(3100, 3010, 90, 2, 0, 1000);
    b.user = 1;
    assert_string_equal(scale_check(&a, &b, 3000, 0),
                        "events_redis_user or _session");
    b.user = 0;
    b.session = 2;
    assert_string_equal(scale_check(&a, &b, 3000, 0),
                        "events_redis_user or _session");
    b.session = 0;
    b.mismatches = 1;
    assert_string_equal(scale_check(&a, &b, 3000, 0),
                        "redis_target_mismatches");
}

static void test_info(void **state)
{
    static const char info[] = "# Memory\r\nused_memory:1983088\r\n"
                               "used_memory_human:1.89M\r\n"
                               "used_memory_rss:9000000\r\n"
                               "maxmemory:0\r\nmem_fragmentation_ratio:4.5";
    double v = -1;
    (void)state;

    assert_int_equal(scale_info_field(info, "used_memory", &v), 0);
    assert_true(v == 1983088);
    assert_int_equal(scale_info_field(info, "used_memory_rss", &v), 0);
    assert_true(v == 9000000);
    /* The last line, without its line end. */
    assert_int_equal(scale_info_field(info, "mem_fragmentation_ratio", &v), 0);
    assert_true(v == 4.5);
    /* No number after the colon; a name that is only a prefix; none. */
    assert_int_equal(scale_info_field("used_memory:\r\n", "used_memory", &v),
                     -1);
    assert_int_equal(scale_info_field(info, "used_mem", &v), -1);
    assert_int_equal(scale_info_field(info, "memory", &v), -1);
    assert_int_equal(scale_info_field("", "used_memory", &v), -1);
}

static void test_channel(void **state)
{
    publish_conf_t pc;
    char ch[64], body[512];
    (void)state;

    memset(&pc, 0, sizeof(pc));
    pc.channel = "gateway_events";
    pc.guilds = 80;
    pc.payload = 200;
    assert_int_equal(publish_channel(&pc, 93, ch, sizeof(ch)), 14);
    assert_string_equal(ch, "gateway_events");
    pc.targeted = 1;
    assert_int_equal(publish_channel(&pc, 93, ch, sizeof(ch)), 24);
    assert_string_equal(ch, "gateway_events:guild:g13");
    /* The channel names the guild the envelope names. */
    publish_envelope(&pc, 93, 1, body, sizeof(body));
    assert_non_null(strstr(body, "\"guildId\":\"g13\""));
    pc.guild0 = 1000;
    assert_int_equal(publish_channel(&pc, 93, ch, sizeof(ch)), 26);
    assert_string_equal(ch, "gateway_events:guild:g1013");
    /* No room: nothing, rather than a cut name. */
    assert_int_equal(publish_channel(&pc, 93, ch, 26), 0);
    assert_int_equal(publish_channel(&pc, 93, ch, 27), 26);
}

static void test_schedstat(void **state)
{
    uint64_t ns = 0;
    (void)state;

    assert_int_equal(proc_schedstat_ns("499542065 62614717 83\n", &ns), 0);
    assert_true(ns == 499542065ull);
    assert_int_equal(proc_schedstat_ns("0 180415 1", &ns), 0);
    assert_true(ns == 0);
    assert_int_equal(proc_schedstat_ns("18446744073709551615\n", &ns), 0);
    assert_true(ns == UINT64_MAX);
    assert_int_equal(proc_schedstat_ns("", &ns), -1);
    assert_int_equal(proc_schedstat_ns("x 1 2", &ns), -1);
    assert_int_equal(proc_schedstat_ns("12x 1 2", &ns), -1);
    assert_int_equal(proc_schedstat_ns("-5 1 2", &ns), -1);
}

/* A thread that spins until it has run 30 ms, then waits to be read. */
static atomic_int spun, release_spinner;

static void *spinner(void *arg)
{
    struct timespec t = {0, 0}, nap = {0, 1000000};

    (void)arg;
    pthread_setname_np(pthread_self(), "scale-spinner");
    while (t.tv_nsec < 30000000 && t.tv_sec == 0)
        clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
    atomic_store(&spun, 1);
    while (!atomic_load(&release_spinner))
        nanosleep(&nap, NULL);
    return NULL;
}

static void test_threads_cpu(void **state)
{
    struct timespec nap = {0, 1000000};
    double named = 0, all = 0, none = 1;
    pthread_t th;
    (void)state;

    assert_int_equal(pthread_create(&th, NULL, spinner, NULL), 0);
    while (!atomic_load(&spun))
        nanosleep(&nap, NULL);
    /* The thread by its name: its 30 ms at least, and not much more than
     * its spin and naps. */
    assert_int_equal(proc_threads_cpu(getpid(), "scale-spinner", &named), 1);
    assert_true(named >= 0.029 && named < 5);
    /* All threads: this one too. */
    assert_true(proc_threads_cpu(getpid(), NULL, &all) >= 2);
    assert_true(all >= named);
    /* A name matches whole, not as a prefix. */
    assert_int_equal(proc_threads_cpu(getpid(), "scale-spinne", &none), 0);
    assert_true(none == 0);
    atomic_store(&release_spinner, 1);
    pthread_join(th, NULL);
    assert_int_equal(proc_threads_cpu(0, NULL, &all), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_placing),   cmocka_unit_test(test_received),
        cmocka_unit_test(test_targeted),  cmocka_unit_test(test_stats),
        cmocka_unit_test(test_settled),   cmocka_unit_test(test_check),
        cmocka_unit_test(test_info),      cmocka_unit_test(test_channel),
        cmocka_unit_test(test_schedstat), cmocka_unit_test(test_threads_cpu),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
