/* Small string and time helpers shared by every module (no deps). */
#ifndef CG_CORE_UTIL_H
#define CG_CORE_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"

#define CG_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))
/* The struct of type `type` whose member `member` is at p. */
#define CG_CONTAINER_OF(p, type, member)                                       \
    ((type *)((char *)(p)-offsetof(type, member)))

/* ASCII case-insensitive equality of two counted strings. */
bool cg_str_ieq(const char *a, size_t alen, const char *b, size_t blen);
/* Appends s as the inside of a JSON string (no quotes): control bytes,
 * quotes, backslashes and invalid UTF-8 are escaped. */
void cg_json_escape(struct cg_buf *out, const char *s, size_t len);
/* The value of hex digit c (either case), or -1. */
int cg_hexval(int c);
/* Appends lowercase hex of n bytes, with sep between bytes if non-zero. */
void cg_hex(struct cg_buf *out, const unsigned char *p, size_t n, char sep);
/* Appends s percent-encoded (RFC 3986 unreserved kept). */
void cg_urlencode(struct cg_buf *out, const char *s, size_t len);
/* True when s has any byte < 0x20 or 0x7f. */
bool cg_has_ctl(const char *s, size_t len);
/* True when s is valid UTF-8 (no overlongs, no surrogates). */
bool cg_utf8_valid(const char *s, size_t len);
/* Length of the valid UTF-8 sequence at s (1..4), or 0 if invalid. */
size_t cg_utf8_seq(const unsigned char *s, size_t len);
/* Copies src into dst (n > 0 bytes), cut to n - 1 bytes, terminated. */
void cg_strlcpy(char *dst, const char *src, size_t n);
struct sockaddr_storage;
/* Writes the numeric address of ss (IPv4 or IPv6, no port) into out. */
void cg_addr_text(const struct sockaddr_storage *ss, char *out, size_t n);
/* Monotonic milliseconds. */
int64_t cg_now_ms(void);
/* Wall-clock in milliseconds since the epoch. */
int64_t cg_wall_ms(void);
/* Formats t (unix seconds) as RFC 3339 UTC into out (>= 21 bytes). */
void cg_time_rfc3339(int64_t t, char *out, size_t n);
/* Parses "30s", "500ms", "2m", "1h", or a plain number of seconds into
 * milliseconds. Returns 0 or CG_EINVAL. */
int cg_parse_duration_ms(const char *s, int64_t *out);

#endif
