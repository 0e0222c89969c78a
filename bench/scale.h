/*
 * fanout --instances, its pure parts: where each guild lives (so that the
 * clients' placing and the counts owed agree), the events each instance
 * must receive in the targeted design and in the old one, which design a
 * run measures (its --gw-set), the figures of gatewayd's GET /stats read
 * per instance, whether an instance has subscribed what its sessions
 * want, what it received against what it should have, and a field of
 * Redis's INFO answer. No I/O and no clock, so that each is unit-tested
 * (test/unit/test_bench_scale.c).
 *
 * The layout: guild g (of --guilds) lives on instance g % k, all its
 * members there; event n goes to guild n % guilds. In the targeted design
 * (redis.targeted = true, gatewayd's default) the event is published on
 * <channel>:guild:g<g>, which only that guild's instance subscribes; in
 * the old one (redis.targeted = false) on the plain channel, which every
 * instance reads.
 */
#ifndef BENCH_SCALE_H
#define BENCH_SCALE_H

#include <stddef.h>
#include <stdint.h>

/* The instance, of k (at least 1), that guild lives on. */
unsigned scale_instance(uint32_t guild, unsigned k);

/* How many of guilds 0 .. guilds - 1 live on instance i of k. */
uint32_t scale_guilds_on(uint32_t guilds, unsigned k, unsigned i);

/* Of events 0 .. sent - 1 (event n to guild n % guilds), how many
 * instance i of k receives: those of its guilds when targeted, every one
 * otherwise. */
uint64_t scale_received(uint64_t sent, uint32_t guilds, unsigned k, unsigned i,
                        int targeted);

/* Which design n -s settings (key=value) ask of gatewayd: 1 targeted (the
 * default), 0 the old one; the last redis.targeted wins. -1 when one
 * gives redis.targeted a value other than true or false. */
int scale_targeted(const char *const *sets, size_t n);

/* What an instance's GET /stats says of its Redis side: counters since
 * its start, except channels, wanted and sessions (gauges). */
typedef struct scale_stats {
    double events;     /* broker.events_redis: handed to the workers */
    double plain;      /* broker.events_redis_plain: received on the plain
                          channel */
    double guild;      /* events_redis_guild: on guilds' channels */
    double user;       /* events_redis_user */
    double session;    /* events_redis_session */
    double mismatches; /* redis_target_mismatches: dropped, wrong channel */
    double channels;   /* redis_channels: what its subscriber holds */
    double wanted;     /* targets_wanted: targets its sessions hold */
    double subscribes; /* redis_subscribe_commands */
    double sessions;   /* totals.sessions */
} scale_stats_t;

/* Reads s from a /stats answer. Returns 0, or -1 when a figure is missing
 * or not a number (a gatewayd without targeted channels); s is then
 * zeroed. */
int scale_stats_parse(const char *body, size_t len, scale_stats_t *s);

/* Whether an instance has settled after its sessions connected (base:
 * read before any, now: since): it holds sessions, and when targeted its
 * subscriber holds a channel for every target they want beside the
 * channels it had before. */
int scale_settled(const scale_stats_t *base, const scale_stats_t *now,
                  double sessions, int targeted);

/* What is wrong with what an instance received between readings a and b,
 * owing expected events, in the design given: NULL when nothing is, else
 * which figure is off. */
const char *scale_check(const scale_stats_t *a, const scale_stats_t *b,
                        uint64_t expected, int targeted);

/* The number after "name:" on a line of a Redis INFO answer. Returns 0,
 * or -1 when there is no such line or no number on it. */
int scale_info_field(const char *info, const char *name, double *v);

#endif
