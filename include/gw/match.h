/*
 * Which client events may go up to the backends: a name that can be an
 * AMQP routing key, matched against the operator's glob patterns
 * (relay.events). Pure.
 */
#ifndef GW_MATCH_H
#define GW_MATCH_H

#define GW_MATCH_NAME_MAX 64 /* bytes in a name that may go up */

/*
 * Whether name is [a-z][a-z0-9_.-]{0,63} and matches one of `patterns`,
 * comma-separated fnmatch(3) globs with spaces around them ignored (an
 * empty list matches every such name).
 */
int gw_match_event(const char *patterns, const char *name);

#endif
