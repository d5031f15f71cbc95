/*
 * Internals of the HTTP parser shared by src/http/parse.c (llhttp
 * callbacks and the driver) and src/http/parse_check.c (the line scanner
 * and the header and head checks added on top of llhttp). Only those two
 * files include it, so llhttp's types stay out of every other header.
 */
#ifndef CG_HTTP_PARSE_INT_H
#define CG_HTTP_PARSE_INT_H

#include <stdbool.h>
#include <stddef.h>

#include <llhttp.h>

#include "http/parse.h"

enum http_phase {
    PH_HEAD,     /* reading a head (or between messages) */
    PH_BODY,     /* head reported; body or DONE pending */
    PH_UPGRADED, /* DONE of an upgrade: no more HTTP */
    PH_EOF,      /* http_parser_finish() ended the input */
    PH_DEAD,     /* error reported */
};

/* What stopped llhttp_execute with HPE_PAUSED. */
enum http_stop {
    STOP_NONE,
    STOP_HEAD,       /* on_headers_complete */
    STOP_LAST_CHUNK, /* on_chunk_header for the zero-size chunk */
    STOP_DONE,       /* on_message_complete */
};

/* Line-ending checker for head and trailer bytes. */
struct http_scan {
    bool cr;         /* previous byte was CR */
    bool bol;        /* at the beginning of a line */
    bool line1_done; /* start line seen (or trailer section) */
    size_t n1;       /* bytes of the start line so far */
    unsigned sp;     /* spaces in the start line */
    char pre[9];     /* first bytes of the start line */
    char tail[9];    /* last bytes of the start line (rolling) */
};

struct http_parser {
    unsigned magic;
    llhttp_t ll; /* its settings: parser_cb, shared */
    bool request;
    size_t max_head, max_hdrs;
    http_body_fn *body;
    void *arg;
    struct http_msg msg;

    enum http_phase phase;
    enum http_stop stop;
    bool paused;        /* llhttp paused: resume before executing */
    bool in_msg;        /* on_message_begin seen, DONE not yet */
    bool head_seen;     /* HEAD reported for the current message */
    bool done_pending;  /* HEAD reported at the message end: DONE next */
    bool head_response; /* next final response answers HEAD */
    bool scanning;      /* consumed bytes go through sc */
    struct http_scan sc;
    const char *cur;    /* data given to the running llhttp_execute */
    size_t head_before; /* head bytes consumed before cur */
    size_t trailer_bytes;

    struct {           /* framing headers of the current head */
        bool in_field; /* a header name is being received */
        unsigned n_host, n_cl, n_te;
        bool expect_100, expect_bad;
        int te_status; /* 400/501 for a refused request coding */
        const char *te_reason;
    } h;

    int err_status;
    const char *err_reason;
};

/* parse.c */

/*
 * Records the first error of p: status (any status becomes 502 for a
 * response parser) and a static reason. Later calls keep the first one.
 * Returns -1, the value llhttp callbacks return to stop with HPE_USER.
 */
int http_parser_fail(struct http_parser *p, int status, const char *reason);

/* parse_check.c */

/* Starts a new head (trailer false) or a trailer section (true). */
void http_scan_reset(struct http_scan *s, bool trailer);
/*
 * Runs the scanner over n bytes llhttp consumed from a head or a trailer
 * section: every line ends in CRLF, no obs-fold, and the start line has
 * the shape "METHOD SP target SP HTTP/1.x" (request) or "HTTP/1.x SP"
 * (response). Returns NULL, or a static refusal reason.
 */
const char *http_scan_bytes(struct http_scan *s, bool request, const char *d,
                            size_t n);
/*
 * Checks the last header of p->msg once its value is complete (no empty
 * name, no control byte), trims the value's OWS in place and notes the
 * framing headers (Host, Content-Length, Transfer-Encoding, Expect) in
 * p->h. Returns 0, or -1 with the error recorded.
 */
int http_check_header(struct http_parser *p);
/*
 * Checks a complete head against the headers noted by http_check_header
 * and llhttp's request line (version, CONNECT, target form, Host,
 * Content-Length/Transfer-Encoding, Expect); responses get the subset that
 * matters for framing. Returns 0, or -1 with the error recorded.
 */
int http_check_head(struct http_parser *p);

#endif
