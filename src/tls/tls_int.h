/*
 * Internals of src/tls shared between its files and unit tests. Only
 * src/tls, src/ca and tests include OpenSSL headers.
 */
#ifndef CG_TLS_TLS_INT_H
#define CG_TLS_TLS_INT_H

#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "core/err.h"
#include "ident/ident.h"

/*
 * Extracts the identity of certificate x (subject and issuer attributes in
 * encoding order with short names, SAN email/DNS/URI/IP, serial, validity,
 * fingerprints, base64 DER, PEM) and calls ident_finish(). Values are
 * converted to UTF-8 (BMPString, UniversalString, T61 handled); a NUL byte
 * in any subject or SAN value sets id->name_has_nul. Returns 0 and an
 * owned identity, or CG_ETLS with err filled.
 */
int tls_identity_from_x509(X509 *x, struct cg_identity **out, char *err);

/* The library context of listener SSL_CTXs (libctx.c): the default
 * provider with only the decoders certificate parsing needs. NULL (the
 * default context) when it could not be built. */
OSSL_LIB_CTX *tls_libctx(void);

/* ecspki.c: the listener context's EC SubjectPublicKeyInfo decoder.
 * tls_ecspki_wrap() puts it in place of the default provider's decoder
 * `a` (false: `a` left as it is); tls_ecspki_core() takes the core's BIO
 * functions at provider initialisation. */
bool tls_ecspki_wrap(OSSL_ALGORITHM *a);
void tls_ecspki_core(const OSSL_DISPATCH *in);
/* How many SubjectPublicKeyInfos it decoded itself and how many it
 * handed to the default decoder (tests). */
void tls_ecspki_counts(unsigned long *fast, unsigned long *dflt);

/* Writes OpenSSL's queued errors ("; "-separated) into buf and clears the
 * queue: used to name the failed call in one log line. */
void tls_drain_errors(char *buf, size_t len);

#include "tls/revoke.h"
#include "tls/tls.h"

struct tls_revindex;

struct tls_trust {
    uint64_t gen;                /* unique in the process (chaincache.c) */
    X509_STORE *store;           /* its ex_data points back here */
    STACK_OF(X509_NAME) * names; /* CA subjects, for CertificateRequest */
    STACK_OF(X509) * cas;        /* every CA certificate (CRL issuers) */
    size_t n_cas;
    unsigned char hash[32];   /* SHA-256 over the sorted CA fingerprints */
    struct tls_revindex *rev; /* NULL without crl_files and builtin_ca */
};

/* The trust set that owns store (NULL for another store). Handshakes and
 * tls_verify_files reach the revocation index this way: no lock. */
const struct tls_trust *tls_trust_of_store(X509_STORE *store);

/*
 * Looks certificates up in t's revocation index at time now (unix
 * seconds): every certificate of chain (leaf first, as verified by
 * OpenSSL) but the last, under the next one; with chain NULL only leaf,
 * its issuer found by issuer name and key id (a resumed session keeps no
 * chain). Returns NULL, "revoked" or "stale_crl" (static), and the chain
 * position of the refused certificate in *depth. No lock, no allocation,
 * no store access: usable on any thread, e.g. to re-check an open
 * connection's SSL_get0_verified_chain() after a reload.
 */
const char *tls_trust_check_revoked(const struct tls_trust *t,
                                    STACK_OF(X509) * chain, X509 *leaf,
                                    int64_t now, int *depth);
/* The same for a connection that kept only its leaf's index key (NULL:
 * none; tls_revindex_key_of) and the issuers of its verified chain. */
const char *tls_trust_check_revoked_key(const struct tls_trust *t,
                                        const unsigned char *leaf_key,
                                        STACK_OF(X509) * issuers, int64_t now);

/* --- Parsed-certificate cache (parsecache.c) -------------------------- */

struct tls_parsecache_stats {
    uint64_t hits, misses, inserts, evictions;
};

/* While on, libssl's d2i_X509 into an object it made (a listener
 * handshake's client certificates) goes through the calling thread's
 * cache. */
void tls_parsecache_arm(bool on);
/* The calling thread's counters (zero before its first cached parse). */
void tls_parsecache_stats(struct tls_parsecache_stats *out);
/* Frees the calling thread's cache now (tests, threads that do not exit). */
void tls_parsecache_thread_free(void);
/* The SHA-256 of the DER x was parsed from, when x is an object the
 * calling thread's cache holds (false: it holds none such). */
bool tls_parsecache_sha256(const X509 *x, unsigned char out[32]);

/* --- Algorithm fetches memoized per worker (fetchmemo.c) -------------- */

struct tls_fetchmemo_stats {
    uint64_t hits, misses, kept;
    uint64_t supports_hits, supports_kept; /* digestsign_supports answers */
};

/* While on, the calling thread's EVP_*_fetch calls (libssl's and
 * libcrypto's) return what the same fetch returned before on it. */
void tls_fetchmemo_arm(bool on);
/* The calling thread's counters (zero before its first armed fetch). */
void tls_fetchmemo_stats(struct tls_fetchmemo_stats *out);
/* Finds libcrypto's two callbacks of key-manager name walks whose results
 * the memo keeps (fetchmemo.c); once, at start, before any worker runs. */
void tls_fetchmemo_discover(void);
typedef void tls_name_cb(const char *name, void *data);
/* The two it found (NULL, NULL: none; the memo then replays names). */
void tls_fetchmemo_walk_callbacks(tls_name_cb **legacy, tls_name_cb **ameth);
/* Frees the calling thread's memo now (tests, threads that do not exit). */
void tls_fetchmemo_thread_free(void);

/* --- Tables for the P-256 keys that verify most often (hotkeys.c) ----- */

struct tls_hotkeys_stats {
    uint64_t fast;    /* multiplications from a key's table */
    uint64_t counted; /* verification-shaped ones counted, no table yet */
    uint64_t builds, replaced, failed;
    uint64_t tables; /* tables this thread holds now (ready or building) */
};

/* While on, the calling thread's ECDSA P-256 verifications (libcrypto's
 * EC_POINT_mul with a generator scalar and a point) count their keys and
 * use a key's table once it has one. */
void tls_hotkeys_arm(bool on);
/* The calling thread's counters. */
void tls_hotkeys_stats(struct tls_hotkeys_stats *out);
/* Waits until no table of the calling thread is being built (tests). */
void tls_hotkeys_wait(void);
/* Frees the calling thread's keys and tables now (tests, threads that do
 * not exit); waits for a table being built. */
void tls_hotkeys_thread_free(void);

/* --- X25519 key shares from Ed25519's fixed-base table (keyshare.c) --- */

#define TLS_KEYSHARE_BATCH 8
#define TLS_KEYSHARE_LEN 32

struct tls_keyshare_stats {
    uint64_t fast;      /* X25519 key pairs served from the pool */
    uint64_t batches;   /* pool fills (TLS_KEYSHARE_BATCH pairs each) */
    uint64_t fallbacks; /* generated by libcrypto after an error */
    uint64_t pooled;    /* unused pairs this thread holds now */
    uint64_t peers;     /* X25519 peer keys set without a second context */
};

/* While on, the calling thread's X25519 key generations (EVP_PKEY_keygen:
 * libssl's key shares) take their pairs from its pool. */
void tls_keyshare_arm(bool on);
/* The calling thread's counters. */
void tls_keyshare_stats(struct tls_keyshare_stats *out);
/* True when the fast path passed its known-answer check at start. */
bool tls_keyshare_ready(void);
/* The X25519 public keys of n (1..TLS_KEYSHARE_BATCH) private keys,
 * which it clamps (RFC 7748); false on error. After tls_keyshare_ready. */
bool tls_keyshare_publics(unsigned char (*priv)[TLS_KEYSHARE_LEN],
                          unsigned char (*pub)[TLS_KEYSHARE_LEN], size_t n);
/* Wipes and frees the calling thread's pool now (tests, threads that do
 * not exit). */
void tls_keyshare_thread_free(void);

/* --- Public random bytes in blocks (randpool.c) ---------------------- */

struct tls_randpool_stats {
    uint64_t served; /* requests served from the thread's block */
    uint64_t fills;  /* blocks drawn from the DRBG */
};

/* While on, the calling thread's small public random requests on the
 * listener context (RAND_bytes_ex: libssl's randoms and session ids) are
 * served from its block. */
void tls_randpool_arm(bool on);
/* The calling thread's counters. */
void tls_randpool_stats(struct tls_randpool_stats *out);
/* Wipes and frees the calling thread's block now (tests). */
void tls_randpool_thread_free(void);

/* --- TLS 1.3's Finished MACs (qmac.c) -------------------------------- */

/* While on, the calling thread's EVP_Q_mac calls for an HMAC with SHA-256
 * or SHA-384 on the listener context (libssl's Finished values) are
 * computed by hkdf.c. */
void tls_qmac_arm(bool on);
/* The calling thread's count of calls computed that way. */
unsigned long tls_qmac_fast(void);

/* --- Verified-chain cache (chaincache.c) ------------------------------ */

struct tls_chaincache;

struct tls_chaincache_stats {
    uint64_t hits, misses, inserts, evictions;
};

/* A cache of its own (tests); owned. */
struct tls_chaincache *tls_chaincache_new(void);
void tls_chaincache_free(struct tls_chaincache *cc);
/* The calling thread's cache: made on first use, freed when the thread
 * exits. Worker threads use it without a lock. */
struct tls_chaincache *tls_chaincache_thread(void);
/* Frees the calling thread's cache now (a thread that does not exit, as
 * the main thread of a test). */
void tls_chaincache_thread_free(void);
void tls_chaincache_stats(const struct tls_chaincache *cc,
                          struct tls_chaincache_stats *out);
/* Computes the key of ctx's chain (trust generation, purpose, params,
 * DER of the leaf and every untrusted certificate). False when the chain
 * cannot be cached (no trust set, a host or email to match). */
bool tls_chaincache_key(struct tls_chaincache *cc, X509_STORE_CTX *ctx,
                        enum tls_purpose purpose, unsigned char *key);
/* On a hit whose whole chain is valid at now: an owned chain, leaf (the
 * caller's object, up-referenced) then the cached issuers. Else NULL. */
STACK_OF(X509) * tls_chaincache_get(struct tls_chaincache *cc,
                                    const unsigned char *key, X509 *leaf,
                                    int64_t now);
/* A new reference to the leaf identity stored under key, or NULL. */
struct cg_identity *tls_chaincache_identity(struct tls_chaincache *cc,
                                            const unsigned char *key);
/* Stores an accepted chain and its leaf's identity (both borrowed:
 * references taken; id may be NULL) under key. */
void tls_chaincache_put(struct tls_chaincache *cc, const unsigned char *key,
                        STACK_OF(X509) * chain, struct cg_identity *id);

/*
 * The one verification function: chain building by OpenSSL on an
 * initialised ctx (store, leaf, untrusted, params already set); then the
 * revocation index of the store's trust set, where each certificate of
 * the verified chain but the anchor is looked up under the next one
 * (reasons revoked, stale_crl); then certgate's own checks (leaf not a
 * CA, EKU present => non-empty and containing the purpose, names without
 * NUL/control bytes, one CN). Always fills *v; *id gets the owned leaf
 * identity when the leaf could be parsed (else NULL). Sets the ctx error so
 * OpenSSL sends a fitting alert. Returns 1 when accepted, 0 when refused.
 * With cc (may be NULL), a chain OpenSSL accepted before under the same
 * trust set skips chain building (see chaincache.c); dates, revocation
 * and certgate's checks still run on every call.
 */
int tls_verify_store_ctx(X509_STORE_CTX *ctx, enum tls_purpose purpose,
                         struct tls_chaincache *cc, struct cg_verdict *v,
                         struct cg_identity **id);

#define TLS_CONN_MAGIC 0x544c5343u

struct tls_vhost {
    SSL_CTX *ctx;
    struct cg_strlist names; /* lowercase; "*.example.com" wildcards */
    enum cg_auth_mode mode;
    int depth;
    struct tls_trust *trust; /* borrowed from the snapshot's trusts; NULL
                                when mode is off */
    unsigned char auth_hash[32];
};

struct tls_listener {
    char *name;
    struct tls_vhost *vh;
    size_t n_vh;
    struct tls_sessions *sessions; /* borrowed; NULL: no resumption */
};

/* --- What is kept of a client certificate (facts.c) ------------------ */

struct tls_facts {
    STACK_OF(X509) * issuers; /* verified chain but the leaf (own refs) */
    int64_t not_before;       /* when the leaf and its issuers are all valid: */
    int64_t not_after;        /* [not_before, not_after) in unix seconds */
    unsigned char key[TLS_REVKEY_LEN]; /* revocation-index key */
    bool key_ok;
    bool have_leaf;
    char sigalg[24]; /* "ECDSA-SHA256" */
    char keyalg[16]; /* "EC256" */
};

/* Facts of leaf (NULL: none) with its verified chain (leaf first; NULL
 * or short when not verified). */
void tls_facts_set(struct tls_facts *f, X509 *leaf, STACK_OF(X509) * verified);
void tls_facts_copy(struct tls_facts *dst, const struct tls_facts *src);
void tls_facts_clear(struct tls_facts *f);
/* Leaf and issuers inside their validity at now. */
bool tls_facts_current(const struct tls_facts *f, int64_t now);
/* tls_trust_check_revoked on the facts: NULL, "revoked" or "stale_crl". */
const char *tls_facts_revoked(const struct tls_facts *f,
                              const struct tls_trust *t, int64_t now);
/* Signature and key algorithm names of x ("ECDSA-SHA256", "EC256"). */
void tls_peer_algs(X509 *x, char *sig, size_t sig_len, char *key,
                   size_t key_len);

/* --- The record layer after the handshake (record.c) ------------------ */

struct tls_rec;
struct tls_hs_secrets;
struct tls_outq;

/* Takes a connection over from OpenSSL: suite_id the low 16 bits of
 * SSL_CIPHER_get_id, hs the client's and server's application traffic
 * secrets (the suite's hash length; their keys and IVs are used when hs
 * has them, derived otherwise), tx_seq the records the server already
 * sent under its secret (NewSessionTickets). NULL when the suite is not
 * one of the three TLS 1.3 AEAD suites or on failure. */
struct tls_rec *tls_rec_new(unsigned suite_id, const struct tls_hs_secrets *hs,
                            uint64_t tx_seq);
/* The same for a TLS 1.2 connection with an AEAD suite (cipher_nid
 * NID_aes_128_gcm, NID_aes_256_gcm or NID_chacha20_poly1305, md its PRF
 * hash): keys from the master secret and the hello randoms (32 bytes
 * each), taken from the key block libssl derived when hs (may be NULL)
 * kept it for that master secret and those randoms; both sides' Finished
 * were their record 0. */
struct tls_rec *tls_rec_new12(int cipher_nid, const char *md,
                              const unsigned char *master, size_t mlen,
                              const unsigned char *client_random,
                              const unsigned char *server_random,
                              const struct tls_hs_secrets *hs);
void tls_rec_free(struct tls_rec *r);
/* As tls_conn_read/tls_conn_write on fd (*want set with CG_EAGAIN; c's
 * error filled with CG_EIO). */
ssize_t tls_rec_read(struct tls_rec *r, int fd, void *buf, size_t n, int *want,
                     struct tls_conn *c);
/* last: nothing follows these bytes; when all n go in this call,
 * close_notify is sealed behind them and sent with them. */
ssize_t tls_rec_write(struct tls_rec *r, int fd, const void *buf, size_t n,
                      bool last, int *want, struct tls_conn *c);
/* Records the server sent under OpenSSL (session tickets, at most
 * TLS_HELD_MAX bytes; taken from q, which is left empty) wait for the
 * connection's first write or close_notify. */
void tls_rec_hold(struct tls_rec *r, struct tls_outq *q);
/* Bytes received before the hand-over that OpenSSL did not read (n <=
 * TLS_FEED_MAX): the record layer reads them first. */
void tls_rec_feed(struct tls_rec *r, const unsigned char *p, size_t n,
                  bool sock_short);
bool tls_rec_pending(const struct tls_rec *r);
/* Frees the cipher contexts (~1.1 KB each; made again from the keys on
 * the next record). */
void tls_rec_quiet(struct tls_rec *r);
bool tls_rec_sock_drained(const struct tls_rec *r);
/* Sends close_notify, best effort; the connection is finished after. */
void tls_rec_close_notify(struct tls_rec *r, int fd);

/* The facts of c's client certificate once it is verified: a resumed
 * connection's came with its session (sessions.c); a full handshake's are
 * made on first use, once for the connection and its cache entry. */
const struct tls_facts *tls_conn_facts(struct tls_conn *c);

/* c's error text buffer (TLS_ERR_LEN bytes), made on first use. */
char *tls_conn_errbuf(struct tls_conn *c);

/* Installs the callbacks that let a listener connection be handed over
 * to record.c (key log when kdftap.c is not in place, message count) on
 * a server ctx (conn.c). */
void tls_conn_setup_ctx(SSL_CTX *ctx);
/* One function of a provider's dispatch table to replace (fn) or only to
 * know (fn NULL): its original in *orig (NULL when the table has none). */
struct tls_fn_repl {
    int id;
    void (*fn)(void);
    void (**orig)(void);
};
/* Puts a copy of a's dispatch table with the functions of r replaced in
 * table (cap entries) and makes it a's implementation. False (a
 * unchanged) when the table has more than cap - 1 functions or, strict,
 * one not in r (libctx.c). */
bool tls_dispatch_wrap(OSSL_ALGORITHM *a, OSSL_DISPATCH *table, size_t cap,
                       const struct tls_fn_repl *r, size_t nr, bool strict);

struct tls_hs_secrets;

/* hkdf.c: HMAC-based key derivation with SHA-256 or SHA-384, without
 * OpenSSL's provider dispatch. */
enum tls_hash { TLS_SHA256, TLS_SHA384 };
size_t tls_hash_len(enum tls_hash h);
/* The hash an OpenSSL digest name (len bytes, any case) names, if one. */
bool tls_hash_by_name(const char *name, size_t len, enum tls_hash *h);
/* While on, the calling thread keeps the last few HMAC key states (a
 * secret expanded again costs two hash blocks less); off wipes them
 * (kdftap.c: on while a listener handshake step runs). */
void tls_hkdf_cache(bool on);
/* prk (hash length) <- HKDF-Extract(salt, ikm) */
void tls_hkdf_extract(enum tls_hash h, const unsigned char *salt,
                      size_t saltlen, const unsigned char *ikm, size_t ikmlen,
                      unsigned char *prk);
/* mac (hash length) <- HMAC(key, msg), the key not kept (a key used once) */
void tls_hmac(enum tls_hash h, const unsigned char *key, size_t keylen,
              const unsigned char *msg, size_t msglen, unsigned char *mac);
/* out <- HKDF-Expand(prk, info, outlen); false if outlen is 0 or more than
 * 255 hash lengths */
bool tls_hkdf_expand(enum tls_hash h, const unsigned char *prk, size_t prklen,
                     const unsigned char *info, size_t infolen,
                     unsigned char *out, size_t outlen);
/* out <- P_hash(secret, seed) (TLS 1.2's PRF, RFC 5246 5, the label being
 * the seed's start); false if outlen or secretlen is 0 */
bool tls_prf(enum tls_hash h, const unsigned char *secret, size_t secretlen,
             const unsigned char *seed, size_t seedlen, unsigned char *out,
             size_t outlen);
/* out <- HKDF-Expand-Label(secret, prefix || label, ctx, outlen) (RFC 8446
 * 7.1; prefix "tls13 "); false if a length does not fit HkdfLabel */
bool tls_hkdf_expand_label(enum tls_hash h, const unsigned char *secret,
                           size_t secretlen, const unsigned char *prefix,
                           size_t prefixlen, const unsigned char *label,
                           size_t labellen, const unsigned char *ctx,
                           size_t ctxlen, unsigned char *out, size_t outlen);
/* out (hash length) <- HKDF-Extract(Derive-Secret(prev, label, ""), in):
 * the next secret of TLS 1.3's key schedule as OpenSSL's TLS13-KDF makes
 * it in EXTRACT_ONLY mode: prev NULL: a zero-length salt; in NULL: hash
 * length zeros. */
bool tls_hkdf_tls13_secret(enum tls_hash h, const unsigned char *prev,
                           size_t prevlen, const unsigned char *in,
                           size_t inlen, const unsigned char *prefix,
                           size_t prefixlen, const unsigned char *label,
                           size_t labellen, unsigned char *out);

/* kdftap.c: the listener context's TLS13-KDF and TLS1-PRF compute what
 * the default's do (by hkdf.c when they can); TLS13-KDF keeps the
 * application traffic secrets in the slot armed on the calling thread (a
 * connection's hs). tls_kdftap_wrap() puts ours in place of the default's
 * `a` (TLS1-PRF's when prf; false: left as it is); tls_kdftap_ready()
 * tells whether TLS13-KDF's is in place; arm NULL to disarm.
 * tls_secret_keep() keeps one secret until the hand-over (which: 0 client's, 1
 * server's; 32 or 48 bytes). */
bool tls_kdftap_wrap(OSSL_ALGORITHM *a, bool prf);
bool tls_kdftap_ready(void);
/* Derives on this thread computed by hkdf.c (fast) and by the default. */
void tls_kdftap_counts(unsigned long *fast, unsigned long *dflt);
void tls_kdftap_arm(struct tls_hs_secrets **slot);
void tls_secret_keep(struct tls_hs_secrets **slot, int which,
                     const unsigned char *secret, size_t len);
/* Keeps a TLS 1.2 key block (len bytes) derived from master (mlen bytes)
 * and the hello randoms (server's then client's, 64 bytes); ignored when
 * too long. */
void tls_keyblock_keep(struct tls_hs_secrets **slot,
                       const unsigned char *master, size_t mlen,
                       const unsigned char *randoms, const unsigned char *kb,
                       size_t len);
/* Keeps the key (or IV) of secret `which` of hs. */
void tls_secret_key_keep(struct tls_hs_secrets *hs, int which, bool key,
                         const unsigned char *v, size_t len);

#define TLS_ERR_LEN 256
/* TLS 1.2's longest AEAD key block: two 32-byte keys, two 12-byte IVs */
#define TLS_KEYBLOCK_MAX (2 * 32 + 2 * 12)

struct tls_hs_secrets {
    unsigned char v[2][48]; /* client's, server's */
    unsigned char len;
    unsigned char seen; /* bit 0 client, bit 1 server */
    /* their keys and IVs, as libssl derived them (kdftap.c) */
    unsigned char key[2][32];
    unsigned char keylen[2]; /* 0: none */
    unsigned char iv[2][12];
    unsigned char ivset; /* bit 0 client, bit 1 server */
    /* TLS 1.2: the key block libssl derived (kdftap.c), with the master
     * secret and the hello randoms (server's, client's) it came from */
    unsigned char kb[TLS_KEYBLOCK_MAX];
    unsigned char kblen; /* 0: none */
    unsigned char kb_master[48];
    unsigned char kb_mlen;
    unsigned char kb_randoms[64];
};

/* Bytes waiting to be sent on a socket: p[off..len); p NULL when none. */
struct tls_outq {
    unsigned char *p;
    size_t len, off;
};

struct tls_conn {
    unsigned magic;
    SSL *ssl; /* NULL once the record layer took over (rec) */
    struct tls_rec *rec;
    int fd;
    struct tls_listener *l; /* NULL for upstream connections */
    size_t vhost;
    uint64_t id;
    int want;
    bool verify_ran;
    bool would_refuse;
    bool handshake_done;
    bool read_blocked; /* the last SSL_read wanted the socket */
    bool sock_short;   /* the last read() from the socket came back short */
    bool in_eof;       /* the socket gave end of file (sockbio.c) */
    /* in the handshake: the socket had nothing more at the last recv()
     * and has not been reported readable since (sockbio.c) */
    bool hs_drained;
    /* bytes received but not yet read by OpenSSL (sockbio.c) */
    unsigned char *in;
    size_t in_len, in_off;
    /* TLS 1.3 session tickets not yet sent (sockbio.c) */
    struct tls_outq held;
    struct cg_verdict verdict;
    struct cg_identity *ident;
    char *sni;
    /* the client certificate, once the handshake is done (resumed: from
     * the session-cache entry); its DER is in ident */
    struct tls_facts facts;
    bool facts_own; /* facts made from this handshake (tls_conn_facts) */
    /* kept from the SSL after the hand-over (rec) */
    bool resumed;
    const char *version;
    const char *cipher;
    /* handshake only (freed at its end): the application traffic secrets
     * (kdftap.c, or the key log) */
    struct tls_hs_secrets *hs;
    unsigned char tickets_sent;
    char *err; /* the last failure (TLS_ERR_LEN bytes), made on the first */
};

/* --- The socket under a connection's SSL (sockbio.c) ------------------ */

/* session tickets held back for the connection's first write, at most */
#define TLS_HELD_MAX 1024
/* received bytes the record layer can take over at the hand-over */
#define TLS_FEED_MAX 16384

/* A BIO on c->fd for c's SSL: reads served from one recv() (c->in),
 * TLS 1.3 listener session tickets held (c->held). */
BIO *tls_sockbio_new(struct tls_conn *c);
/* Sends p[*off..len) on a non-blocking socket (no SIGPIPE): 1 all sent,
 * 0 the socket is full, -1 error (errno). */
int tls_send_all(int fd, const unsigned char *p, size_t len, size_t *off);
/* Room for n more bytes at the end of q (what was sent is dropped
 * first); the caller adds what it wrote there to q->len. */
unsigned char *tls_outq_room(struct tls_outq *q, size_t n);
/* Sends what q holds: 1 all sent (q emptied), 0 the socket is full, -1
 * error (errno). */
int tls_outq_send(struct tls_outq *q, int fd);
void tls_outq_free(struct tls_outq *q);
void tls_sockbio_free_bufs(struct tls_conn *c);

/* The trust set named name of ts (borrowed), or NULL. */
struct tls_trust *tls_trusts_find(const struct tls_trusts *ts,
                                  const char *name);

/* Returns the tls_conn attached to ssl (checked magic). */
struct tls_conn *tls_conn_of(const SSL *ssl);
/* Maps a reason text back to its static code ("invalid" if unknown). */
const char *tls_reason_intern(const char *s, size_t len);
/* Installs the session cache callbacks on a vhost ctx (sessions.c), or
 * turns resumption off when !enabled. */
void tls_sessions_setup(SSL_CTX *ctx, bool enabled);

#endif
