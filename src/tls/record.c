/*
 * The record layer of a server connection once its handshake is done
 * (this file: reading, writing, alerts, KeyUpdate; record_crypt.c: keys,
 * cipher contexts, sealing and opening):
 * TLS 1.3 (RFC 8446 section 5) and TLS 1.2 with an AEAD suite (RFC 5246
 * 6.2.3.3, RFC 5288, RFC 7905). OpenSSL runs the handshake; the keys
 * reach conn.c (TLS 1.3: the KDF as OpenSSL derives them, kdftap.c; TLS
 * 1.2: the master secret),
 * and the SSL object (with its buffers, cipher contexts and handshake
 * state, ~20 KB) is freed. What a connection keeps here is its keys and,
 * for TLS 1.3, its secrets; cipher contexts only once it is busy, buffers
 * only while a record is in flight, so an idle connection holds neither.
 *
 * Reading: records are received into rbuf and decrypted in place; the
 * plaintext of one record is served from there. Writing follows OpenSSL's
 * SSL_MODE_ENABLE_PARTIAL_WRITE contract: a call seals up to
 * REC_WRITE_RECORDS records, and reports their plaintext only once they
 * have all left; when the socket blocks the caller retries with the same
 * bytes. The only post-handshake message a client may send is TLS 1.3's
 * KeyUpdate (no post-handshake auth; TLS 1.2 renegotiation is refused);
 * anything else gets the protocol's alert and fails the connection.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "core/xmalloc.h"
#include "tls/record_int.h"

#define REC_RBUF (REC_HDR + REC_MAX_CIPHER12)
/* protocol records (KeyUpdate answers) queued before reading stops */
#define REC_MAX_QUEUED 16384

/* alert descriptions (RFC 8446 section 6) */
#define AL_CLOSE_NOTIFY 0
#define AL_UNEXPECTED_MESSAGE 10
#define AL_BAD_RECORD_MAC 20
#define AL_RECORD_OVERFLOW 22
#define AL_HANDSHAKE_FAILURE 40
#define AL_ILLEGAL_PARAMETER 47
#define AL_DECODE_ERROR 50
#define AL_INTERNAL_ERROR 80
#define AL_USER_CANCELED 90

/* Appends one sealed record of len bytes (<= REC_MAX_PLAIN) to w. */
static bool
queue_record(struct tls_rec *r, const void *in, size_t len, unsigned char type)
{
    size_t need = REC_HDR + len + rec_overhead(r);
    r->held = false; /* no longer only tickets: sent at the next read too */
    size_t k = rec_seal(r, &r->tx, tls_outq_room(&r->w, need), in, len, type);
    r->w.len += k;
    return k > 0;
}

/* Bytes of w not yet sent. */
static size_t
queued(const struct tls_rec *r)
{
    return r->w.len - r->w.off;
}

/* Fails the connection without an alert; err names why. */
static ssize_t
rec_fail(struct tls_rec *r, struct tls_conn *c, const char *err)
{
    snprintf(tls_conn_errbuf(c), TLS_ERR_LEN, "%s", err);
    r->failed = true;
    return CG_EIO;
}

/* The same for a failed system call. */
static ssize_t
rec_fail_errno(struct tls_rec *r, struct tls_conn *c, const char *call)
{
    char err[TLS_ERR_LEN];
    snprintf(err, sizeof(err), "%s failed (%s)", call, strerror(errno));
    return rec_fail(r, c, err);
}

/* Fails the connection with alert desc (sent best-effort, behind what is
 * queued). */
static ssize_t
fail_alert(struct tls_rec *r, int fd, int desc, struct tls_conn *c,
           const char *why)
{
    unsigned char a[2] = {2, (unsigned char)desc};
    snprintf(tls_conn_errbuf(c), TLS_ERR_LEN, "TLS record: %s (alert %d sent)",
             why, desc);
    if (!r->failed && queue_record(r, a, sizeof(a), CT_ALERT))
        (void)tls_outq_send(&r->w, fd);
    r->failed = true;
    return CG_EIO;
}

/* A KeyUpdate byte stream (RFC 8446 section 4.6.3), record by record;
 * at_end: this record ends after p[len-1]. */
static ssize_t
handshake_bytes(struct tls_rec *r, int fd, const unsigned char *p, size_t len,
                struct tls_conn *c)
{
    if (len == 0)
        return fail_alert(r, fd, AL_UNEXPECTED_MESSAGE, c,
                          "empty handshake record");
    for (size_t i = 0; i < len; i++) {
        r->hs[r->hs_len++] = p[i];
        if (r->hs[0] != HS_KEY_UPDATE)
            return fail_alert(r, fd, AL_UNEXPECTED_MESSAGE, c,
                              "post-handshake message other than KeyUpdate");
        if (r->hs_len == 4 && (r->hs[1] != 0 || r->hs[2] != 0 || r->hs[3] != 1))
            return fail_alert(r, fd, AL_DECODE_ERROR, c,
                              "KeyUpdate of a wrong length");
        if (r->hs_len < 5)
            continue;
        /* a message that changes keys must end its record */
        if (i + 1 != len)
            return fail_alert(r, fd, AL_UNEXPECTED_MESSAGE, c,
                              "data after KeyUpdate in its record");
        unsigned char req = r->hs[4];
        r->hs_len = 0;
        if (req > 1)
            return fail_alert(r, fd, AL_ILLEGAL_PARAMETER, c,
                              "KeyUpdate request_update not 0 or 1");
        if (!rec_dir_update(r, &r->rx, 0))
            return fail_alert(r, fd, AL_INTERNAL_ERROR, c,
                              "KeyUpdate key derivation failed");
        if (req == 1) {
            /* answered with update_not_requested, sealed with the old
             * key; what follows uses the new one */
            static const unsigned char ku[5] = {HS_KEY_UPDATE, 0, 0, 1, 0};
            if (!queue_record(r, ku, sizeof(ku), CT_HANDSHAKE) ||
                !rec_dir_update(r, &r->tx, 1))
                return fail_alert(r, fd, AL_INTERNAL_ERROR, c,
                                  "KeyUpdate key derivation failed");
        }
    }
    return 1;
}

/* An alert from the client: 2 close_notify, 1 a warning passed over
 * (user_canceled; any TLS 1.2 warning), else the connection fails. */
static ssize_t
alert_received(struct tls_rec *r, int fd, const unsigned char *p, size_t n,
               struct tls_conn *c)
{
    if (n != 2)
        return fail_alert(r, fd, AL_DECODE_ERROR, c, "alert of a wrong length");
    if (p[1] == AL_CLOSE_NOTIFY) {
        r->eof = true;
        return 2;
    }
    if (p[1] == AL_USER_CANCELED || (r->v12 && p[0] == 1))
        return 1;
    char err[64];
    snprintf(err, sizeof(err), "TLS record: the client sent alert %d", p[1]);
    return rec_fail(r, c, err);
}

/* Processes the first whole record of rbuf: 1 done (plaintext, if any,
 * at poff/plen), 0 more bytes needed, 2 close_notify, CG_EIO failed. */
static ssize_t
process_record(struct tls_rec *r, int fd, struct tls_conn *c)
{
    size_t avail = r->rlen - r->roff;
    if (avail < REC_HDR)
        return 0;
    unsigned char *h = r->rbuf + r->roff;
    size_t clen = (size_t)h[3] << 8 | h[4];
    if (r->v12 ? h[0] < CT_ALERT || h[0] > CT_APPDATA : h[0] != CT_APPDATA)
        return fail_alert(r, fd, AL_UNEXPECTED_MESSAGE, c,
                          !r->v12 ? "unprotected record after the handshake"
                          : h[0] == CT_CCS
                              ? "change_cipher_spec after the handshake"
                              : "record of an unknown content type");
    if (clen > (r->v12 ? REC_MAX_CIPHER12 : REC_MAX_CIPHER13))
        return fail_alert(r, fd, AL_RECORD_OVERFLOW, c,
                          r->v12 ? "record longer than 2^14 + 2048 bytes"
                                 : "record longer than 2^14 + 256 bytes");
    if (avail < REC_HDR + clen)
        return 0;
    unsigned char *p;
    size_t n;
    if (!rec_open(r, &r->rx, h, clen, &p, &n))
        return fail_alert(r, fd, AL_BAD_RECORD_MAC, c,
                          "record authentication failed");
    r->roff += REC_HDR + clen;
    unsigned char type = h[0];
    if (!r->v12) {
        while (n > 0 && p[n - 1] == 0)
            n--; /* padding */
        if (n == 0)
            return fail_alert(r, fd, AL_UNEXPECTED_MESSAGE, c,
                              "record without a content type");
        type = p[--n];
    }
    if (n > REC_MAX_PLAIN)
        return fail_alert(r, fd, AL_RECORD_OVERFLOW, c,
                          "plaintext longer than 2^14 bytes");
    if (type != CT_HANDSHAKE && r->hs_len > 0)
        return fail_alert(r, fd, AL_UNEXPECTED_MESSAGE, c,
                          "record inside a fragmented handshake message");
    switch (type) {
    case CT_APPDATA:
        r->poff = (size_t)(p - r->rbuf);
        r->plen = n;
        return 1;
    case CT_ALERT:
        return alert_received(r, fd, p, n, c);
    case CT_HANDSHAKE:
        if (r->v12) /* SSL_OP_NO_RENEGOTIATION */
            return fail_alert(r, fd, AL_HANDSHAKE_FAILURE, c,
                              "renegotiation refused");
        return handshake_bytes(r, fd, p, n, c);
    default:
        return fail_alert(r, fd, AL_UNEXPECTED_MESSAGE, c,
                          "record of an unknown content type");
    }
}

/* After a read: what is left of the received bytes (undelivered
 * plaintext, a partial record) moves from the scratch buffer to the
 * connection's own; an empty buffer is dropped (idle: no buffer). */
static void
rbuf_settle(struct tls_rec *r, bool scratch)
{
    bool empty = r->plen == 0 && r->roff == r->rlen;
    if (empty) {
        if (!scratch)
            free(r->rbuf);
        r->rbuf = NULL;
        r->rlen = r->roff = r->poff = 0;
        return;
    }
    if (!scratch)
        return;
    size_t start = r->plen > 0 ? r->poff : r->roff;
    unsigned char *own = xmalloc(REC_RBUF);
    memcpy(own, r->rbuf + start, r->rlen - start);
    r->rbuf = own;
    r->rlen -= start;
    r->roff -= start;
    if (r->plen > 0)
        r->poff -= start;
}

/* Sends w: the caller's bytes it held once all is sent (0 when it held
 * none), CG_EAGAIN, or CG_EIO. */
static ssize_t
write_flush(struct tls_rec *r, int fd, int *want, struct tls_conn *c)
{
    int f = tls_outq_send(&r->w, fd);
    if (f < 0) {
        return rec_fail_errno(r, c, "send()");
    }
    if (f == 0) {
        *want = TLS_WANT_WRITE;
        return CG_EAGAIN;
    }
    size_t k = r->wplain;
    r->wplain = 0;
    return (ssize_t)k;
}

/* The read loop of tls_rec_read, on rbuf (never NULL here). */
static ssize_t
read_records(struct tls_rec *r, int fd, void *buf, size_t n, int *want,
             struct tls_conn *c)
{
    for (;;) {
        if (r->plen > 0) {
            size_t k = r->plen < n ? r->plen : n;
            memcpy(buf, r->rbuf + r->poff, k);
            r->poff += k;
            r->plen -= k;
            return (ssize_t)k;
        }
        if (r->eof)
            return 0;
        if (queued(r) > REC_MAX_QUEUED) {
            /* KeyUpdate answers pile up behind a peer that does not read:
             * read nothing more of it until they are sent */
            ssize_t k = write_flush(r, fd, want, c);
            if (k < 0)
                return k;
            r->wacked += (size_t)k;
        }
        ssize_t st = process_record(r, fd, c);
        if (st == 2)
            return 0;
        if (st < 0)
            return st;
        if (st == 1)
            continue;
        if (r->roff > 0) {
            memmove(r->rbuf, r->rbuf + r->roff, r->rlen - r->roff);
            r->rlen -= r->roff;
            r->roff = 0;
        }
        size_t room = REC_RBUF - r->rlen;
        ssize_t got = recv(fd, r->rbuf + r->rlen, room, MSG_DONTWAIT);
        if (got > 0) {
            r->sock_short = (size_t)got < room;
            r->rlen += (size_t)got;
            continue;
        }
        if (got < 0 && errno == EINTR)
            continue;
        if (got < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            *want = TLS_WANT_READ;
            return CG_EAGAIN;
        }
        if (got == 0) {
            /* no close_notify: an end like any other unless it cuts a
             * record (SSL_OP_IGNORE_UNEXPECTED_EOF) */
            r->eof = true;
            if (r->rlen > r->roff) {
                return rec_fail(r, c, "connection closed inside a record");
            }
            return 0;
        }
        return rec_fail_errno(r, c, "recv()");
    }
}

ssize_t
tls_rec_read(struct tls_rec *r, int fd, void *buf, size_t n, int *want,
             struct tls_conn *c)
{
    if (r->failed)
        return CG_EIO;
    if (queued(r) > 0 && !r->held) { /* a KeyUpdate answer, an unsent write */
        ssize_t k = write_flush(r, fd, want, c);
        if (k < 0)
            return k;
        r->wacked += (size_t)k; /* reported by the next write */
    }
    bool scratch = r->rbuf == NULL;
    if (scratch) {
        r->rbuf = rec_scratch();
        r->rlen = r->roff = r->poff = r->plen = 0;
    }
    ssize_t got = read_records(r, fd, buf, n, want, c);
    rbuf_settle(r, scratch);
    return got;
}

/* Moves the queued protocol records (tickets, a KeyUpdate answer) to
 * out, in front of what is sealed next; returns their length. */
static size_t
take_queued(struct tls_rec *r, unsigned char *out)
{
    size_t q = queued(r);
    memcpy(out, r->w.p + r->w.off, q);
    tls_outq_free(&r->w);
    r->held = false;
    return q;
}

/* Seals buf[0..take) (and close_notify when last) into out + olen;
 * returns the new length, 0 on failure. */
static size_t
seal_all(struct tls_rec *r, unsigned char *out, size_t olen, const void *buf,
         size_t take, bool last)
{
    static const unsigned char cn[2] = {1, AL_CLOSE_NOTIFY};
    const unsigned char *p = buf;
    for (size_t off = 0; off < take; off += REC_MAX_PLAIN) {
        size_t k = take - off < REC_MAX_PLAIN ? take - off : REC_MAX_PLAIN;
        size_t sealed = rec_seal(r, &r->tx, out + olen, p + off, k, CT_APPDATA);
        if (sealed == 0)
            return 0;
        olen += sealed;
    }
    if (last) {
        size_t sealed =
            rec_seal(r, &r->tx, out + olen, cn, sizeof(cn), CT_ALERT);
        if (sealed == 0)
            return 0;
        olen += sealed;
        r->closed = true;
    }
    return olen;
}

ssize_t
tls_rec_write(struct tls_rec *r, int fd, const void *buf, size_t n, bool last,
              int *want, struct tls_conn *c)
{
    if (r->failed)
        return CG_EIO;
    if (r->wacked > 0) {
        size_t k = r->wacked;
        r->wacked = 0;
        return (ssize_t)k;
    }
    size_t q = queued(r);
    /* an earlier call's records first; protocol records go out with these */
    if (q > 0 && (r->wplain > 0 || q > TLS_HELD_MAX || n == 0)) {
        ssize_t k = write_flush(r, fd, want, c);
        if (k != 0)
            return k;
        q = 0;
    }
    if (n == 0)
        return 0;
    if (r->closed)
        return rec_fail(r, c, "TLS record: write after close_notify");
    size_t take = n;
    if (take > (size_t)REC_WRITE_RECORDS * REC_MAX_PLAIN)
        take = (size_t)REC_WRITE_RECORDS * REC_MAX_PLAIN;
    unsigned char *out = rec_scratch();
    size_t olen = q > 0 ? take_queued(r, out) : 0, sent = 0;
    olen = seal_all(r, out, olen, buf, take, last && take == n);
    if (olen == 0)
        return rec_fail(r, c, "TLS record: sealing failed");
    int f = tls_send_all(fd, out, olen, &sent);
    if (f < 0) {
        return rec_fail_errno(r, c, "send()");
    }
    if (f == 1)
        return (ssize_t)take;
    /* the socket is full: the rest waits here, reported once sent */
    memcpy(tls_outq_room(&r->w, olen - sent), out + sent, olen - sent);
    r->w.len += olen - sent;
    r->wplain = take;
    *want = TLS_WANT_WRITE;
    return CG_EAGAIN;
}

void
tls_rec_hold(struct tls_rec *r, struct tls_outq *q)
{
    r->w = *q;
    *q = (struct tls_outq){0};
    r->held = r->w.p != NULL;
}

void
tls_rec_feed(struct tls_rec *r, const unsigned char *p, size_t n,
             bool sock_short)
{
    r->sock_short = sock_short;
    if (n == 0)
        return;
    r->rbuf = xmalloc(REC_RBUF);
    memcpy(r->rbuf, p, n);
    r->rlen = n;
    r->roff = r->poff = r->plen = 0;
}

bool
tls_rec_pending(const struct tls_rec *r)
{
    if (r->plen > 0)
        return true;
    size_t avail = r->rlen - r->roff;
    if (avail < REC_HDR)
        return false;
    const unsigned char *h = r->rbuf + r->roff;
    return avail >= REC_HDR + ((size_t)h[3] << 8 | h[4]);
}

bool
tls_rec_sock_drained(const struct tls_rec *r)
{
    return r->sock_short;
}

void
tls_rec_close_notify(struct tls_rec *r, int fd)
{
    static const unsigned char a[2] = {1, AL_CLOSE_NOTIFY};
    if (r->failed)
        return;
    /* behind what is queued (held tickets, the last write's rest) */
    if (r->closed || queue_record(r, a, sizeof(a), CT_ALERT))
        (void)tls_outq_send(&r->w, fd);
    r->closed = true;
    r->failed = true;
}
