/*
 * gwctl publish: an event sent as a backend sends it, through the
 * gateway's POST /publish (default), Redis PUBLISH on redis.channel
 * (--redis), or RabbitMQ's amqp.exchange (--amqp), each reached with the
 * gateway's own configuration. The brokers' clients block: one message,
 * then the program ends.
 */
#ifndef CTL_BACKEND_H
#define CTL_BACKEND_H

#include "args.h"

extern const ctl_cmd_t ctl_publish_cmd;

#endif
