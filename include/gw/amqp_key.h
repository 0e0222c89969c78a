/*
 * The names of targeted RabbitMQ routing (README "RabbitMQ: keyed
 * bindings"), built and read here with no I/O. Backends publish to the
 * topic exchange with a routing key that names the envelope's target,
 *
 *   guild.<guildId>   user.<userId>   session.<sessionId>   broadcast
 *
 * each optionally followed by '.' and words of their own
 * (guild.42.message.create), and each instance binds its queue with the
 * patterns of the targets it holds, guild.<guildId>.# and so on, plus
 * broadcast.#. A RabbitMQ topic key is words separated by '.', and '*' and
 * '#' are wildcards in a pattern, so an id is written as one word: its '.',
 * '*', '#' and '%' as %2E, %2A, %23 and %25, every other byte as it is (a
 * numeric or UUID id is written unchanged). A session id is its 32
 * lowercase hex digits.
 *
 * The bindings of one connection go through an exchange of the instance's
 * own, a "generation" (<queue>.targets.<0|1|2>), bound to the queue; see
 * gw_amqp_key_generation for how a new connection picks its generation
 * and which older one it deletes once the new one is complete.
 */
#ifndef GW_AMQP_KEY_H
#define GW_AMQP_KEY_H

#include "gw/channel.h"
#include "gw/config.h"
#include "gw/interest.h"

#include <stddef.h>

#define GW_AMQP_KEY_MAX 255 /* an AMQP short string */

/* The pattern every targeted queue is bound with, whatever it holds. */
#define GW_AMQP_KEY_BROADCAST "broadcast.#"

#define GW_AMQP_KEY_GENERATIONS 3

/* Whether RabbitMQ routing is targeted: amqp.routing = "targeted", with
 * the link enabled. */
int gw_amqp_key_targeted(const gw_config_t *cfg);

/*
 * Writes the binding pattern of a target, "<kind>.<id, encoded>.#", into
 * out (NUL-terminated) and returns its length; GW_ETOOBIG when it would be
 * longer than GW_AMQP_KEY_MAX (an id of many '.' or '%'), GW_EINVAL for an
 * empty id. out has room for GW_AMQP_KEY_MAX + 1 bytes.
 */
int gw_amqp_key_pattern(gw_interest_kind_t kind, const char *id, size_t idlen,
                        char *out);

/*
 * Reads the routing key key[0..len) of a delivery: the target it names,
 * its id decoded into idbuf (GW_CHANNEL_ID_MAX bytes, not NUL-terminated)
 * and pointed to by out->id, or GW_CHANNEL_PLAIN for broadcast. 0, or
 * GW_EINVAL for a key that is none of the forms above, an id that is not
 * encoded as they say, or one over GW_CHANNEL_ID_MAX bytes. What out then
 * says is checked against the envelope with gw_channel_match.
 */
int gw_amqp_key_parse(const char *key, size_t len, char *idbuf,
                      gw_channel_t *out);

/*
 * The generation exchange number gen of queue: "<queue>.targets.<gen>",
 * heap, owned by the caller.
 */
char *gw_amqp_key_exchange(const char *queue, int gen);

/*
 * Which generation a new connection builds, from the set that exists
 * (bit g of `exists` for generation g). A connection builds generation
 * old + 1 (mod 3) beside the complete one, `old`, which keeps routing until
 * the new one has every binding and is then deleted. So a lone generation
 * is complete, and of two, the one whose successor exists is the
 * complete one: its successor is a build that a lost connection left
 * half done. *old is -1 when there is none to keep (none exists, or all
 * three, which this scheme never leaves); *drop is the set to delete
 * before building (the half-done build, anything else not kept).
 */
void gw_amqp_key_generation(unsigned exists, int *gen, int *old,
                            unsigned *drop);

#endif
