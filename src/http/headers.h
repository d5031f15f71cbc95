/*
 * Header policy shared by the proxy: which inbound headers are removed,
 * how values derived from certificates are made safe for a header line.
 */
#ifndef CG_HTTP_HEADERS_H
#define CG_HTTP_HEADERS_H

#include <stdbool.h>
#include <stddef.h>

#include "core/buf.h"

/* A set of header names compared ASCII case-insensitively with '_' and
 * '-' treated as the same byte (so X_Client_Verify matches
 * X-Client-Verify). */
struct http_strip_set;

struct http_strip_set *http_strip_set_new(void);
void http_strip_set_free(struct http_strip_set *s);
void http_strip_set_add(struct http_strip_set *s, const char *name);
bool http_strip_set_has(const struct http_strip_set *s, const char *name,
                        size_t len);

/* True for hop-by-hop headers a proxy never forwards: Connection,
 * Keep-Alive, Proxy-Connection, Proxy-Authenticate, Proxy-Authorization,
 * TE, Trailer, Transfer-Encoding, Upgrade. */
bool http_is_hop_by_hop(const char *name, size_t len);

/* True when the comma-separated header value holds token (case-insens.),
 * e.g. http_value_has_token("keep-alive, Upgrade", "upgrade"). */
bool http_value_has_token(const char *v, size_t len, const char *token);

/* Appends v as a header value that can never split a header: bytes
 * < 0x20, 0x7f and '%' are percent-encoded (%0A), leading and trailing
 * spaces too. */
void http_value_append_safe(struct cg_buf *out, const char *v, size_t len);

/* Normalises a Host header or authority into out: lowercase, port and
 * trailing dot removed, IPv6 brackets kept. Returns false when it is not
 * a valid host. */
bool http_host_normalize(const char *in, size_t len, struct cg_buf *out);

/*
 * Normalises the path of an origin-form request target for routing and
 * forwarding: "%2E"/"%2e" decoded to '.', runs of '/' merged, "." and ".."
 * segments removed (RFC 3986 5.2.4); the query is appended unchanged.
 * Returns false (refuse with 400) for a path that is not absolute, that
 * climbs above the root, or that holds '\\', "%2F", "%5C" or "%00" (which
 * upstreams decode into separators or terminators).
 */
bool http_path_normalize(const char *in, size_t len, struct cg_buf *out);

/* Splits an absolute-form request target ("http://host/p", any case)
 * into its authority and origin-form path ("/" when none); false when t
 * is not absolute-form. */
bool http_target_split_absolute(struct cg_str t, struct cg_str *authority,
                                struct cg_str *path);
/* True when an Accept value prefers application/json to text/html (by q,
 * the most specific range deciding): error pages are then JSON. */
bool http_accept_prefers_json(const char *v, size_t len);

#endif
