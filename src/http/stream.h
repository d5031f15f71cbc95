/*
 * A byte stream over a non-blocking socket, plain or TLS, remembering
 * which readiness each direction waits for (TLS may need to write in order
 * to read and the reverse).
 */
#ifndef CG_HTTP_STREAM_H
#define CG_HTTP_STREAM_H

#include <ev.h>
#include <stdbool.h>
#include <sys/types.h>

#include "admin/metrics.h"
#include "core/buf.h"
#include "core/quiet.h"
#include "tls/tls.h"

/* Most bytes one stream_fill reads. */
#define STREAM_READ_CHUNK 16384

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
/* Makes io watch for ev (EV_READ | EV_WRITE; 0: nothing) on the fd it was
 * set to with ev_io_init / ev_io_set when that fd was opened. Nothing when
 * it already does. The watcher keeps libev's knowledge that the kernel has
 * the fd, so stopping and restarting it with the same events within one
 * loop iteration costs no epoll_ctl (ev_io_set would make libev add the
 * fd again, which fails with EEXIST: a wasted system call). */
void stream_watch(struct ev_loop *loop, ev_io *io, int ev);
/* A readiness event for s (revents from libev) arrived. */
void stream_event(struct stream *s, int revents);
/* True when a read now would only block: the socket was found empty
 * since its last readiness event and TLS holds no bytes to decrypt. The
 * watcher is level-triggered, so waiting for the event loses nothing. */
bool stream_read_would_block(const struct stream *s);
/* True when decrypted bytes are waiting inside TLS. */
bool stream_pending(const struct stream *s);
/* Writes the pending bytes of b to s (count, when not NULL, adds what
 * went out): 1 progress, 0 blocked, -1 error. */
int stream_flush(struct stream *s, struct cg_buf *b, uint64_t *count);
/* The same for a stream's last bytes: a TLS stream's close_notify leaves
 * with them (tls_conn_write_last); stream_close sends nothing more. */
int stream_flush_last(struct stream *s, struct cg_buf *b, uint64_t *count);
/* Reads what s has (up to STREAM_READ_CHUNK) onto b: 1 progress, 0
 * blocked, -1 error, -2 EOF. An empty b is read through the stack, so a
 * connection whose read would block holds no read buffer. */
int stream_fill(struct stream *s, struct cg_buf *b);
/* One step of the server handshake of a listener's TLS stream: 1 done
 * (counted in mblk), 0 not yet (rwant set), -1 refused or broken (logged
 * once for listener and peer, counted by reason). */
int stream_handshake(struct stream *s, const char *listener, const char *peer,
                     metrics_ctr_t *mblk);
/* Frees TLS (after close_notify when orderly) and closes the fd. */
void stream_close(struct stream *s, bool orderly);
/* The stream has been quiet for a while (tls_conn_quiet). */
void stream_quiet(struct stream *s);

/* A connection quiet this long gives back what its next bytes can make
 * again (cipher contexts, parser storage); a worker's sweeper checks its
 * active list every STREAM_QUIET_S, so that happens within twice that. */
#define STREAM_QUIET_S 1.0

struct stream_sweeper {
    struct quiet_list active; /* connections active lately */
    ev_timer timer;
    bool (*release)(struct quiet_node *n); /* see quiet_sweep */
};

/* Starts the sweep on loop (it does not keep the loop running). */
void stream_sweeper_start(struct stream_sweeper *sw, struct ev_loop *loop,
                          bool (*release)(struct quiet_node *n));
void stream_sweeper_stop(struct stream_sweeper *sw, struct ev_loop *loop);

#endif
