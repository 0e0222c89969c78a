/*
 * The scenarios, one file each. Every one takes the parsed options, runs
 * bounded in count and time, fills the run's results and returns the exit
 * status (0, or 1 when a step failed).
 */
#ifndef BENCH_SCENARIO_H
#define BENCH_SCENARIO_H

#include "opts.h"

/* N clients connect, upgrade and identify at a target rate. */
int scenario_connect(const opts_t *o);

/* N identified sessions held for a while: server RSS and CPU. */
int scenario_idle(const opts_t *o);

/* Events published to G guilds of M members: delivery and cost. */
int scenario_fanout(const opts_t *o);

/* fanout --instances K: K instances on one Redis, each guild on one;
 * what an event costs the cluster in the targeted design and the old. */
int scenario_fanout_instances(const opts_t *o);

/* Clients send typing.start, relayed to their guilds. */
int scenario_typing(const opts_t *o);

/* A share of the sessions dropped and reconnected every second. */
int scenario_reconnect(const opts_t *o);

/* N sessions send requests up through RabbitMQ; an echo backend answers
 * each; round trips timed. */
int scenario_relay(const opts_t *o);

/* N users over one or more instances: how long the cluster's presence
 * view takes to settle after the connects and after a reconnect storm,
 * what the storm announced, and the Redis calls per session change. */
int scenario_presence(const opts_t *o);

/* N sessions receive events while a share of them a second is cut with a
 * reset and resumed: nothing lost, nothing twice, resume latency. */
int scenario_resume(const opts_t *o);

/* What a parked session costs the server in memory, with an empty or a
 * filled replay buffer. */
int scenario_park(const opts_t *o);

/* Two instances behind HAProxy on one Redis; one is drained with SIGTERM
 * while events flow, and its sessions resume on the other: nothing lost,
 * nothing twice, how long the move takes. */
int scenario_drain(const opts_t *o);

#endif
