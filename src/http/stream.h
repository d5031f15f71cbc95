/*
 * A byte stream over a non-blocking socket, plain or TLS, remembering
 * which readiness each direction waits for (TLS may need to write in order
 * to read and the reverse).
 */
#ifndef CG_HTTP_STREAM_H
#define CG_HTTP_STREAM_H

#include <stdbool.h>
#include <sys/types.h>

#include "tls/tls.h"

struct stream {
    int fd;
    struct tls_conn *tls; /* NULL for plain TCP / unix */
    int rwant;            /* EV_READ or EV_WRITE the last read waits for */
    int wwant;
    /* The socket was found empty (a read would block) and no readiness
     * event came since: reading can wait for the next event. */
    bool rdrained;
};

void stream_init(struct stream *s, int fd, struct tls_conn *tls);
/* >0 bytes, 0 EOF, CG_EAGAIN, CG_EIO. */
ssize_t stream_read(struct stream *s, void *buf, size_t n);
/* >0 bytes, CG_EAGAIN, CG_EIO. */
ssize_t stream_write(struct stream *s, const void *buf, size_t n);
/* libev event mask for what the stream waits on. */
int stream_events(const struct stream *s, bool reading, bool writing);
/* A readiness event for s (revents from libev) arrived. */
void stream_event(struct stream *s, int revents);
/* True when a read now would only block: the socket was found empty
 * since its last readiness event and TLS holds no bytes to decrypt. The
 * watcher is level-triggered, so waiting for the event loses nothing. */
bool stream_read_would_block(const struct stream *s);
/* True when decrypted bytes are waiting inside TLS. */
bool stream_pending(const struct stream *s);
/* Frees TLS (after close_notify when orderly) and closes the fd. */
void stream_close(struct stream *s, bool orderly);

#endif
