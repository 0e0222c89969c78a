/*
 * URL query strings (RFC 3986): the first value of a named parameter,
 * percent-decoded. Pure: shared by the WebSocket upgrade (?token=) and the
 * HTTP API (?userIds=).
 */
#ifndef GW_QUERY_H
#define GW_QUERY_H

#include <stddef.h>

/*
 * Finds the first `name=value` among the '&'-separated parameters of
 * q[0..len) (no leading '?'). Returns 0 with *out the decoded value (heap,
 * the caller's; possibly empty), GW_EINVAL when the parameter is absent
 * (*out NULL), or GW_EPARSE for a broken escape or an encoded NUL. '+'
 * stays '+': this is RFC 3986, not form encoding.
 */
int gw_query_get(const char *q, size_t len, const char *name, char **out);

#endif
