/*
 * TLS for certgate (owner of OpenSSL on the connection path): listener
 * contexts with SNI virtual hosts, client-certificate verification, TLS
 * connections with non-blocking I/O, and upstream client contexts.
 * No OpenSSL type crosses this header.
 */
#ifndef CG_TLS_TLS_H
#define CG_TLS_TLS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "config/config.h"
#include "core/err.h"
#include "ident/ident.h"

/* One-time library setup; safe to call more than once. */
void tls_global_init(void);
/* OpenSSL's allocations through this thread's block cache (core/blkcache.h).
 * Only before OpenSSL's first allocation (first thing in main); false when
 * too late (OpenSSL then keeps its own malloc). */
bool tls_mem_init(void);

/* --- Session cache --------------------------------------------------- */

/* Bound of the session cache (entries) until the config sets one
 * ("session_cache": {"max_entries"}). An entry holds the SSL_SESSION
 * without the client's certificate and what a resumption re-checks of it:
 * about 1.3 KB. */
#define TLS_SESSIONS_MAX 10000

/*
 * The process's server-side session cache (TLS 1.2 session ids, TLS 1.3
 * stateful tickets): shared by every listener of every snapshot, so
 * sessions survive a reload; thread-safe; bounded to max entries (least
 * recently used dropped first). A resumption is accepted only when the
 * listener's settings at that time accept the session's certificate
 * (same client-auth hash, validity, revocation; see sessions.c).
 */
struct tls_sessions;
struct tls_sessions *tls_sessions_new(size_t max);
/* Frees the cache; no listener using it may be left. */
void tls_sessions_free(struct tls_sessions *s);
/* Entries held (for tests, logs and metrics). */
size_t tls_sessions_count(struct tls_sessions *s);
/* Sets the bound (config load and reload): entries beyond it are
 * dropped, least recently used first; 0 keeps no session (every
 * handshake is a full one). */
void tls_sessions_set_max(struct tls_sessions *s, size_t max);

/* certgate's stable reason codes for a refused certificate (logs,
 * X-Client-Verify, metrics labels), as an X-macro. */
#define TLS_REASONS(X)                                                         \
    X(no_cert)                                                                 \
    X(untrusted)                                                               \
    X(expired)                                                                 \
    X(not_yet_valid)                                                           \
    X(bad_eku)                                                                 \
    X(leaf_is_ca)                                                              \
    X(bad_name)                                                                \
    X(multiple_cn) X(bad_signature) X(chain_too_long) X(revoked) X(invalid_ca) \
        X(bad_host) X(weak_key) X(bad_cert) X(invalid) X(stale_crl)

/* --- Trust sets ----------------------------------------------------- */

struct tls_trust;

/*
 * Builds trust set tc (nothing else is trusted, never the system store):
 * the CA certificates of its ca_files (PEM bundles) and, with builtin_ca,
 * of the certgate CA in data_dir's store; then its revocation index from
 * the CA's revocations in the store and from crl_files (each CRL checked
 * once, here). Errors read "trust.<name>.<key>[i]: <file>: <why>" (with
 * tc->name NULL, for a command line: "--ca[i]: <file>: <why>").
 * Returns 0 and an owned trust, or CG_ECONFIG.
 */
int tls_trust_new(const struct cg_trust_cfg *tc, const char *data_dir,
                  struct tls_trust **out, char *err);
void tls_trust_free(struct tls_trust *t);

/* Every trust set of a config, built once per snapshot and shared by its
 * listeners (a large revocation index is loaded once). */
struct tls_trusts;

/* Builds all of cfg's trust sets; problems appended to errors. Returns 0
 * and an owned collection, or CG_ECONFIG. */
int tls_trusts_new(const struct cg_config *cfg, struct tls_trusts **out,
                   struct cg_strlist *errors);
void tls_trusts_free(struct tls_trusts *t);
/* Logs every CRL of ts that is past its nextUpdate: a warning while
 * on_stale_crl's grace runs, an error once its certificates are refused.
 * The gateway calls it each minute. Returns how many CRLs are stale. */
size_t tls_trusts_warn_stale(const struct tls_trusts *ts,
                             const struct cg_config *cfg, int64_t now);

/* One revocation source of a trust set (an issuer's CRL, or the built-in
 * CA's revocations), for metrics. */
struct tls_crl_info {
    char *trust;         /* trust set name (owned) */
    char *issuer;        /* issuer subject, one line (owned) */
    size_t entries;      /* revoked serials */
    bool has_next;       /* fed by a CRL with nextUpdate */
    int64_t next_update; /* unix seconds (has_next) */
    int64_t stale_after; /* nextUpdate + on_stale_crl grace (has_next) */
};
/* Every revocation source of ts (cfg: its config); *out owned, free with
 * tls_crl_info_free. Returns the count. */
size_t tls_trusts_crls(const struct tls_trusts *ts, const struct cg_config *cfg,
                       struct tls_crl_info **out);
void tls_crl_info_free(struct tls_crl_info *v, size_t n);

enum tls_purpose {
    TLS_PURPOSE_CLIENT, /* client certificate: EKU clientAuth */
    TLS_PURPOSE_SERVER, /* server certificate: EKU serverAuth */
};

struct tls_verify_params {
    enum tls_purpose purpose;
    int depth;        /* maximum intermediates; 0 = default 4 */
    int64_t at;       /* verification time (unix); 0 = now */
    const char *host; /* server purpose: name to match, or NULL */
};

/*
 * certgate's one verification function applied to files (for
 * `certgate verify`): loads the leaf from cert_file (plus any further
 * certificates in it) and optional chain_file as untrusted
 * intermediates, then runs exactly what a handshake runs. Fills *v and,
 * when the leaf parsed, *id (owned). Returns 0 when the verification ran
 * (see v->status), CG_EIO/CG_EINVAL when files could not be read.
 */
int tls_verify_files(struct tls_trust *t, const char *cert_file,
                     const char *chain_file, const struct tls_verify_params *p,
                     struct cg_verdict *v, struct cg_identity **id, char *err);

/* --- Listener contexts ---------------------------------------------- */

struct tls_listener;

/*
 * Builds the TLS side of listener cfg->listeners[idx]: one context per
 * certificate entry (virtual host) using the trust sets of trusts
 * (borrowed: they must outlive the listener), the session-id context
 * derived from the entry's client-auth settings, and the session cache
 * sessions (borrowed, must outlive the listener; NULL: no resumption).
 * Problems are appended to errors as "<json path>: <message>".
 * Returns 0 and an owned listener, or CG_ECONFIG.
 */
int tls_listener_new(const struct cg_config *cfg, size_t idx,
                     struct tls_sessions *sessions,
                     const struct tls_trusts *trusts, struct tls_listener **out,
                     struct cg_strlist *errors);
void tls_listener_free(struct tls_listener *l);
/* Index of the virtual host that serves name (SNI or Host; normalised
 * lowercase); the first entry when none matches. */
size_t tls_listener_vhost_find(const struct tls_listener *l, const char *name);
/* True when two virtual hosts of l apply the same client-auth policy. */
bool tls_listener_vhost_same_auth(const struct tls_listener *l, size_t a,
                                  size_t b);
/* Client-auth mode of a virtual host. */
enum cg_auth_mode tls_listener_vhost_mode(const struct tls_listener *l,
                                          size_t vh);

/* --- Connections ---------------------------------------------------- */

struct tls_conn;

enum {
    TLS_WANT_READ = 1,
    TLS_WANT_WRITE = 2,
};

/* Starts a server connection on an accepted, non-blocking fd (not owned:
 * the caller closes it after tls_conn_free). Returns owned. */
struct tls_conn *tls_conn_accept(struct tls_listener *l, int fd,
                                 uint64_t conn_id);
/*
 * Advances the handshake. Returns 0 when complete, CG_EAGAIN when it
 * needs I/O (tls_conn_want tells which), CG_ETLS when refused or broken:
 * tls_conn_error() has a log-ready reason and tls_conn_verdict() the
 * verification reason when a certificate was refused.
 */
int tls_conn_handshake(struct tls_conn *c);
int tls_conn_want(const struct tls_conn *c);
/* Reads up to n bytes: >0 count, 0 on orderly EOF, CG_EAGAIN, CG_EIO. */
ssize_t tls_conn_read(struct tls_conn *c, void *buf, size_t n);
/* Writes up to n bytes: >0 count, CG_EAGAIN, CG_EIO. Partial writes are
 * allowed (SSL_MODE_ENABLE_PARTIAL_WRITE). */
ssize_t tls_conn_write(struct tls_conn *c, const void *buf, size_t n);
/* The same for the connection's last bytes: once the TLS 1.3 / TLS 1.2
 * AEAD record layer has them all in one call, its close_notify is sealed
 * behind them and leaves in the same send (tls_conn_shutdown then sends
 * nothing more). */
ssize_t tls_conn_write_last(struct tls_conn *c, const void *buf, size_t n);
/* Bytes already decrypted and waiting inside the TLS layer. */
bool tls_conn_pending(const struct tls_conn *c);
/* The event loop reports c's socket readable. Until then, a handshake
 * whose last recv() emptied the socket does not try another: after the
 * server's flight the client's answer cannot be there yet, and the recv()
 * would only fail with EAGAIN (the caller watches for reading whenever
 * the handshake wants to read, so nothing is missed). */
void tls_conn_readable(struct tls_conn *c);
/* True when the socket read the last tls_conn_read() made (if any) came
 * back shorter than asked: the socket had nothing more at that moment. */
bool tls_conn_sock_drained(const struct tls_conn *c);
/* The connection has been quiet for a while: frees what its next record
 * can make again (the cipher contexts; nothing before the hand-over to
 * the record layer). */
void tls_conn_quiet(struct tls_conn *c);
/* Sends close_notify (best effort, non-blocking). */
void tls_conn_shutdown(struct tls_conn *c);
void tls_conn_free(struct tls_conn *c);
/* Logs a refused or broken handshake ("event":"handshake_failed") with
 * the reason code and what the peer presented (subject, serial, SHA-256).
 * Client faults log at info. */
void tls_conn_log_failure(const struct tls_conn *c, const char *listener,
                          const char *peer);
/* The reason code of a refused or broken handshake: the verification
 * reason, "no_cert" when a required certificate was not sent, else
 * "tls" (static). */
const char *tls_conn_failure_reason(const struct tls_conn *c);
/* Last error for logs (static or owned by c). */
const char *tls_conn_error(const struct tls_conn *c);

/* After the handshake (all borrowed from c). */
const struct cg_verdict *tls_conn_verdict(const struct tls_conn *c);
const struct cg_identity *tls_conn_identity(const struct tls_conn *c);
/* The presented leaf's identity whatever the verdict (for logs only:
 * never map an unverified identity to headers or policy). */
const struct cg_identity *tls_conn_identity_raw(const struct tls_conn *c);
/* Report mode: true when the verdict would have been refused. */
bool tls_conn_would_refuse(const struct tls_conn *c);
const char *tls_conn_sni(const struct tls_conn *c); /* NULL when none */
size_t tls_conn_vhost(const struct tls_conn *c);
const char *tls_conn_version(const struct tls_conn *c);
const char *tls_conn_cipher(const struct tls_conn *c);
bool tls_conn_resumed(const struct tls_conn *c);
/* The client certificate's signature algorithm ("ECDSA-SHA256",
 * "RSA-SHA256", "ED25519") and key ("EC256", "RSA2048", "ED25519"), as
 * for PROXY v2; empty strings when there is no certificate. */
void tls_conn_peer_algs(const struct tls_conn *c, char *sig, size_t sig_len,
                        char *key, size_t key_len);

/*
 * Re-judges an established connection against now, the current settings
 * of its listener (after a reload or a revocation): false with a static
 * reason when the certificate it authenticated with would be refused now
 * (revoked, stale CRL, or no longer trusted after a client-CA switch).
 * Connections accepted without a verified certificate are not judged
 * again (a switch from off to required keeps them). Cheap when only revocations
 * changed (an index lookup); re-runs chain building when the CA set
 * changed. Runs on the connection's worker thread.
 */
bool tls_conn_recheck(const struct tls_conn *c, const struct tls_listener *now,
                      const char **reason);
/* Name of the listener a server connection was accepted on. */
const char *tls_conn_listener(const struct tls_conn *c);

/* --- Upstream (client) contexts -------------------------------------- */

struct tls_client_ctx;

/* Builds a client context for an https upstream (CA, optional client
 * certificate, name check). jpath prefixes errors. */
int tls_client_ctx_new(const struct cg_upstream_cfg *up, const char *jpath,
                       struct tls_client_ctx **out, char *err);
void tls_client_ctx_free(struct tls_client_ctx *c);
/* Starts a client connection on a connected (or connecting) fd. */
struct tls_conn *tls_conn_connect(struct tls_client_ctx *cc, int fd,
                                  uint64_t conn_id);

#endif
