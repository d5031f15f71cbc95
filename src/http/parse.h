/*
 * HTTP/1.x message parsing on llhttp (the only user of llhttp). Pure: fed
 * bytes, it produces a parsed head, body bytes through a sink, and
 * end-of-message events. Used for client requests and upstream responses.
 * Strict: request smuggling shapes are errors (CL+TE, duplicate or invalid
 * Content-Length, Transfer-Encoding other than a final "chunked", bad chunk
 * sizes, obs-fold, bare LF, NUL/CTL in header values, several Host headers).
 */
#ifndef CG_HTTP_PARSE_H
#define CG_HTTP_PARSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"

enum http_framing {
    HTTP_BODY_NONE,    /* no body */
    HTTP_BODY_LENGTH,  /* Content-Length: content_length bytes */
    HTTP_BODY_CHUNKED, /* chunked */
    HTTP_BODY_EOF,     /* response delimited by connection close */
};

struct http_hdr {
    size_t name_off, name_len, value_off, value_len; /* into store */
};

/* A parsed message head. Strings live in store. */
struct http_msg {
    bool is_request;
    char method[24];               /* request: "GET", ... */
    bool is_head;                  /* request method HEAD */
    bool is_connect;               /* request method CONNECT */
    size_t target_off, target_len; /* request target, into store */
    int status;                    /* response status */
    size_t reason_off, reason_len; /* response reason phrase */
    int version_major, version_minor;
    struct cg_buf store;
    struct http_hdr *hdrs;
    size_t n_hdrs, cap_hdrs;
    enum http_framing framing;
    uint64_t content_length;
    bool keep_alive;      /* llhttp_should_keep_alive at head time */
    bool upgrade;         /* request: Upgrade + Connection: upgrade;
                             response: 101 */
    bool expect_continue; /* request: Expect: 100-continue */
    size_t head_bytes;    /* bytes of the head on the wire */
};

struct cg_str http_msg_target(const struct http_msg *m);
struct cg_str http_msg_reason(const struct http_msg *m);
struct cg_str http_msg_name(const struct http_msg *m, size_t i);
struct cg_str http_msg_value(const struct http_msg *m, size_t i);
/* Index of the first header named name (ASCII case-insensitive), from
 * index start; -1 when none. */
long http_msg_find(const struct http_msg *m, const char *name, size_t start);

enum http_pev {
    HTTP_PEV_NEED_MORE, /* all input consumed; feed more */
    HTTP_PEV_HEAD,      /* a head is complete: http_parser_msg() */
    HTTP_PEV_DONE,      /* the message is complete (body fully sunk) */
    HTTP_PEV_ERROR,     /* http_parser_error(); the parser is dead */
};

/* Receives body bytes (de-chunked) as they are parsed. */
typedef void http_body_fn(void *arg, const char *p, size_t n);

struct http_parser;

/*
 * Returns a new parser (owned). request: parse requests (else responses).
 * max_head_bytes / max_headers: limits on one head (431 when exceeded for
 * requests, 502-style error for responses).
 */
struct http_parser *http_parser_new(bool request, size_t max_head_bytes,
                                    size_t max_headers, http_body_fn *body,
                                    void *arg);
void http_parser_free(struct http_parser *p);
/* Between messages: gives back the storage of the last one (an idle
 * connection's); no-op inside a message. */
void http_parser_quiet(struct http_parser *p);

/*
 * Parses from data[0..len). Stops after a head (HTTP_PEV_HEAD) or the end
 * of a message (HTTP_PEV_DONE); *consumed tells how much was used, the
 * rest must be fed again. When a message has no body, the call after
 * HTTP_PEV_HEAD returns HTTP_PEV_DONE consuming nothing. After
 * HTTP_PEV_DONE the parser is ready for the next message (pipelining);
 * after a DONE of an upgrade (request with upgrade, or a 101 response),
 * the remaining bytes are not HTTP and must not be fed.
 * The head stays valid until the next call after HTTP_PEV_DONE.
 */
enum http_pev http_parser_execute(struct http_parser *p, const char *data,
                                  size_t len, size_t *consumed);
/* Signals end of input: completes an EOF-delimited response body
 * (HTTP_PEV_DONE) or reports a truncated message (HTTP_PEV_ERROR). When
 * nothing was in progress returns HTTP_PEV_NEED_MORE. */
enum http_pev http_parser_finish(struct http_parser *p);
/* Response parser: the next response answers a HEAD request (no body). */
void http_parser_set_head_response(struct http_parser *p, bool head);
/* Valid after HTTP_PEV_HEAD until the next message starts. */
const struct http_msg *http_parser_msg(const struct http_parser *p);
/* After HTTP_PEV_ERROR: status to answer with (400, 413, 431, 501) and a
 * short static reason for the log ("duplicate content-length", ...). */
int http_parser_error(const struct http_parser *p, const char **reason);
/* True while a message is partly parsed (head started, body pending). */
bool http_parser_in_message(const struct http_parser *p);

#endif
