/*
 * Internals of the record layer (src/tls/record.c: reading, writing,
 * alerts; src/tls/record_crypt.c: suites, keys, sealing and opening).
 */
#ifndef CG_TLS_RECORD_INT_H
#define CG_TLS_RECORD_INT_H

#include "tls/tls_int.h"

#define REC_HDR 5
#define REC_TAG 16
#define REC_MAX_PLAIN 16384
#define REC_MAX_CIPHER13 (REC_MAX_PLAIN + 256)
#define REC_MAX_CIPHER12 (REC_MAX_PLAIN + 2048)
#define REC_MAX_OVERHEAD (8 + REC_TAG) /* TLS 1.2 GCM: explicit nonce */
#define REC_WRITE_RECORDS 4
/* a sealed alert record, at most */
#define REC_ALERT_MAX (REC_HDR + 2 + 1 + REC_MAX_OVERHEAD)
/* the per-worker buffer records are received into and sealed in (behind
 * up to TLS_HELD_MAX bytes of queued protocol records) */
#define REC_SCRATCH                                                            \
    (TLS_HELD_MAX + REC_ALERT_MAX +                                            \
     (size_t)REC_WRITE_RECORDS * (REC_HDR + REC_MAX_PLAIN + REC_MAX_OVERHEAD))

#define CT_CCS 20
#define CT_ALERT 21
#define CT_HANDSHAKE 22
#define CT_APPDATA 23
#define HS_KEY_UPDATE 24

struct rec_dir {
    EVP_CIPHER_CTX *ctx; /* its own, keyed; NULL: none (dir_ctx) */
    size_t suite;
    int enc;
    uint32_t uses;   /* records since the key or since it was quiet */
    uint64_t key_id; /* unique in the process */
    unsigned char secret[48];
    unsigned char key[32];
    unsigned char iv[12];
    uint64_t seq;
};

struct tls_rec {
    size_t suite; /* the AEAD (and, for TLS 1.3, the hash) */
    bool v12;     /* TLS 1.2 records (RFC 5246, 5288, 7905) */
    struct rec_dir rx, tx;
    unsigned char *rbuf; /* received bytes; NULL when none are held */
    size_t rlen;         /* bytes in rbuf */
    size_t roff;         /* start of the first unprocessed record */
    size_t poff, plen;   /* undelivered plaintext inside rbuf */
    struct tls_outq w; /* sealed records not yet sent */
    size_t wplain; /* caller's bytes in w, reported once they are sent */
    size_t wacked; /* ... already sent (by a read), not yet reported */
    bool held;     /* w is session tickets only: they wait for a write */
    bool closed;   /* close_notify is queued or sent */
    unsigned char hs[5]; /* a KeyUpdate message being reassembled */
    size_t hs_len;
    bool eof;
    bool failed;
    bool sock_short;
};

/* This worker thread's scratch buffer (REC_SCRATCH bytes). */
unsigned char *rec_scratch(void);
/* Bytes a record of r adds to its plaintext (header excluded). */
size_t rec_overhead(const struct tls_rec *r);
/* Seals len bytes of in as a record of type into out (room for REC_HDR +
 * len + rec_overhead); returns its size, 0 on failure. */
size_t rec_seal(struct tls_rec *r, struct rec_dir *d, unsigned char *out,
                const void *in, size_t len, unsigned char type);
/* Opens the record at h (header, then clen bytes) in place: its
 * plaintext at *p, *n (TLS 1.3: inner type and padding included). */
bool rec_open(const struct tls_rec *r, struct rec_dir *d, unsigned char *h,
              size_t clen, unsigned char **p, size_t *n);
/* TLS 1.3 KeyUpdate: d's next traffic secret and keys. */
bool rec_dir_update(struct tls_rec *r, struct rec_dir *d, int enc);

#endif
