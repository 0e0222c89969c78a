/*
 * websocket.allowed_origins: which web pages may open a WebSocket here
 * (cross-site WebSocket hijacking: a browser sends the page's cookies with
 * any upgrade, so a page of another site must not be let in on them).
 * Pure: a list and an origin in, a verdict out.
 *
 * The list is comma-separated; each entry is an origin as browsers send it,
 * scheme://host[:port], compared without regard to case, where the host
 * may begin with "*." to stand for one or more labels: https + "://" +
 * "*.example.com" takes https://a.example.com and https://a.b.example.com,
 * not https://example.com. An entry without a scheme matches that host
 * under any scheme. "null" (sandboxed frames, file: pages) matches only an
 * entry "null".
 */
#ifndef GW_ORIGIN_H
#define GW_ORIGIN_H

/*
 * Whether an upgrade with this Origin header may proceed: always when the
 * list is empty (no check) or origin is NULL (no header: not a browser,
 * which cannot be made to omit it); otherwise when some entry matches.
 */
int gw_origin_allowed(const char *list, const char *origin);

/* NULL when every entry of list is well formed, else what is wrong. */
const char *gw_origin_check_list(const char *list);

#endif
