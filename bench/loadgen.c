/*
 * bench/loadgen: mTLS HTTP/1.1 load generator for certgate and its peers.
 *
 * One thread drives every connection through one edge-triggered epoll
 * set (see lg_conn.c). The run has a warm-up, a measured window and a
 * drain: only requests that complete inside the window count, and the
 * client's CPU time (getrusage) and, with --server-pid, the server's CPU
 * time (/proc/PID/stat) are sampled exactly at the window's edges.
 * Prints one JSON line on stdout; idle mode prints "READY <n>" first.
 */
#include <assert.h>
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stddef.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <sys/epoll.h>
#include <sys/resource.h>

#include <openssl/err.h>
#include <openssl/x509.h>

#include "core/util.h"
#include "core/xmalloc.h"
#include "lg.h"
#include "tls/tls.h"
#include "tls/tls_int.h"

#define LG_GRACE_S 2.0 /* drain: how long in-flight requests may finish */
#define LG_RETRY_S 0.005

static const char *const err_names[] = {
#define LG_ERR_NAME(e, s) s,
    LG_ERR_KINDS(LG_ERR_NAME)
#undef LG_ERR_NAME
};

static const char *const mode_names[] = {"full", "resume", "keepalive", "idle"};

double
lg_now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* CPU seconds (user + system) this process used so far. */
static double
self_cpu(void)
{
    struct rusage ru;

    getrusage(RUSAGE_SELF, &ru);
    return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
           (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

/* utime + stime of one process (all its threads), or -1 if unreadable. */
static double
proc_cpu(pid_t pid)
{
    char path[64], buf[1024];
    unsigned long ut = 0, st = 0;
    FILE *f;
    size_t n;

    snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
    if ((f = fopen(path, "r")) == NULL)
        return -1;
    n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    /* Fields after the command name, which may hold spaces and ')'. */
    const char *p = strrchr(buf, ')');
    if (p == NULL || sscanf(p + 2,
                            "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u "
                            "%lu %lu",
                            &ut, &st) != 2)
        return -1;
    return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

/* Sum of the server processes' CPU seconds; -1 without --server-pid. */
static double
server_cpu(const struct lg *g)
{
    double sum = 0;

    if (g->o.npids == 0)
        return -1;
    for (int i = 0; i < g->o.npids; i++) {
        double v = proc_cpu(g->o.pids[i]);
        if (v < 0) {
            fprintf(stderr, "loadgen: cannot read /proc/%d/stat\n",
                    (int)g->o.pids[i]);
            return -1;
        }
        sum += v;
    }
    return sum;
}

/* Reads busy and total jiffies of every CPU from /proc/stat into
 * g->busy[k] and g->total[k] (k = 0 at the window's start, 1 at its end),
 * so the report can tell which core was saturated. */
static void
cpu_stat(struct lg *g, int k)
{
    char line[512];
    FILE *f = fopen("/proc/stat", "r");
    int n = 0;

    while (f != NULL && fgets(line, sizeof(line), f) != NULL &&
           n < LG_MAX_CPUS) {
        unsigned long long v[8] = {0};
        int cpu;
        if (strncmp(line, "cpu", 3) != 0 || line[3] < '0' || line[3] > '9')
            continue;
        if (sscanf(line, "cpu%d %llu %llu %llu %llu %llu %llu %llu %llu", &cpu,
                   &v[0], &v[1], &v[2], &v[3], &v[4], &v[5], &v[6], &v[7]) != 9)
            continue;
        /* user nice system idle iowait irq softirq steal */
        g->busy[k][n] = v[0] + v[1] + v[2] + v[5] + v[6] + v[7];
        g->total[k][n] = g->busy[k][n] + v[3] + v[4];
        n++;
    }
    if (f != NULL)
        fclose(f);
    g->ncpu = n;
}

void
lg_error(struct lg *g, enum lg_err k, const char *detail)
{
    g->s.err_total++;
    g->s.err_kind[k]++;
    if (g->phase == LG_PH_MEASURE)
        g->s.errors++;
    if (!g->err_seen[k]) {
        g->err_seen[k] = true;
        fprintf(stderr, "loadgen: first %s error: %s\n", err_names[k], detail);
    }
}

bool
lg_may_start(const struct lg *g)
{
    return g->phase == LG_PH_WARMUP || g->phase == LG_PH_MEASURE;
}

void
lg_handshake_done(struct lg *g, struct lg_conn *c)
{
    const char *name = SSL_get_cipher_name(c->ssl);
    if (g->phase == LG_PH_MEASURE)
        g->s.handshakes++;
    if (g->cipher == NULL)
        g->cipher = name;
    else if (name == NULL || strcmp(name, g->cipher) != 0)
        g->ciphers_differ = true;
}

/* Counts one measured request of c that completed at now. */
static void
record(struct lg *g, const struct lg_conn *c, double now)
{
    struct lg_stats *s = &g->s;
    double us = (now - c->t_req) * 1e6;

    s->requests++;
    if (s->nlat == s->cap) {
        s->cap = s->cap ? s->cap * 2 : 65536;
        s->lat_us = xrealloc(s->lat_us, s->cap * sizeof(*s->lat_us));
    }
    s->lat_us[s->nlat++] = us > 4e9 ? UINT32_MAX : (uint32_t)us;
    if (c->ssl != NULL && (g->o.mode == LG_FULL || g->o.mode == LG_RESUME)) {
        if (c->reused)
            s->resumed++;
        else if (g->o.mode == LG_RESUME && c->nconn > 1)
            s->not_resumed++;
    }
}

void
lg_request_done(struct lg *g, struct lg_conn *c)
{
    char err[64];

    if (c->resp.status != 200) {
        if (g->o.mqtt)
            snprintf(err, sizeof(err), "CONNACK return code %d",
                     c->resp.status - 1000);
        else
            snprintf(err, sizeof(err), "HTTP status %d", c->resp.status);
        lg_error(g, LG_ERR_STATUS, err);
        if (g->o.mode == LG_IDLE) { /* refused: not held */
            g->opening--;
            lg_conn_close(c);
            return;
        }
    } else if (g->phase == LG_PH_MEASURE && g->o.mode != LG_IDLE) {
        record(g, c, lg_now());
    }
    switch (g->o.mode) {
    case LG_FULL:
    case LG_RESUME:
        c->st = LG_CS_DRAIN;
        break;
    case LG_KEEPALIVE:
        if (!c->resp.close && lg_may_start(g)) {
            lg_conn_next(c);
            break;
        }
        lg_conn_close(c);
        lg_conn_ended(g, c, false);
        break;
    case LG_IDLE:
        c->st = LG_CS_HOLD;
        g->opening--;
        g->held++;
        break;
    }
}

void
lg_conn_ended(struct lg *g, struct lg_conn *c, bool failed)
{
    if (g->o.mode == LG_IDLE) {
        /* A held connection that ends is counted by step_hold's error;
         * an idle slot is never reopened. */
        if (c->resp.st == LG_RS_DONE)
            g->held--;
        else
            g->opening--;
        return;
    }
    if (!lg_may_start(g))
        return;
    if (failed)
        c->retry_at = lg_now() + LG_RETRY_S;
    else
        lg_conn_start(c);
}

/* Samples the client and server CPU at the start of the window. */
static void
measure_begin(struct lg *g, double now)
{
    g->phase = LG_PH_MEASURE;
    g->t_measure = now;
    g->cpu0 = self_cpu();
    g->srv0 = server_cpu(g);
    cpu_stat(g, 0);
}

/* Samples them again at its end; no new requests start after this. */
static void
measure_end(struct lg *g, double now)
{
    g->phase = LG_PH_DRAIN;
    g->t_stop = now;
    g->cpu1 = self_cpu();
    g->srv1 = server_cpu(g);
    cpu_stat(g, 1);
}

/* True while some slot is in the middle of a request. */
static bool
busy(const struct lg *g)
{
    for (int i = 0; i < g->o.conns; i++) {
        enum lg_state st = g->conns[i].st;
        if (st != LG_CS_FREE && st != LG_CS_HOLD)
            return true;
    }
    return false;
}

/* Idle mode: opens connections, then announces READY and holds. */
static void
tick_idle(struct lg *g, double now)
{
    while (g->phase == LG_PH_WARMUP && g->launched < g->o.conns &&
           g->opening < g->o.parallel) {
        struct lg_conn *c = &g->conns[g->launched++];
        g->opening++;
        lg_conn_start(c);
        lg_conn_drive(c);
    }
    if (g->phase == LG_PH_WARMUP && g->launched == g->o.conns &&
        g->opening == 0) {
        measure_begin(g, now);
        g->s.requests = (uint64_t)g->held;
        printf("READY %ld\n", g->held);
        fflush(stdout);
    }
    if (g->phase == LG_PH_MEASURE && now >= g->t_measure + g->o.duration) {
        measure_end(g, now);
        g->phase = LG_PH_DONE;
    }
}

/* Moves through warm-up, measurement and drain. */
static void
tick_phase(struct lg *g, double now)
{
    if (g->phase == LG_PH_WARMUP && now >= g->t_start + g->o.warmup)
        measure_begin(g, now);
    if (g->phase == LG_PH_MEASURE &&
        ((g->o.count > 0 && g->s.requests >= (uint64_t)g->o.count) ||
         (g->o.count == 0 && now >= g->t_measure + g->o.duration)))
        measure_end(g, now);
    if (g->phase == LG_PH_DRAIN && (!busy(g) || now >= g->t_stop + LG_GRACE_S))
        g->phase = LG_PH_DONE;
}

/* Restarts slots whose back-off expired and fails overdue requests. */
static void
tick_slots(struct lg *g, double now)
{
    for (int i = 0; i < g->o.conns; i++) {
        struct lg_conn *c = &g->conns[i];
        if (c->st == LG_CS_FREE && c->retry_at > 0 && now >= c->retry_at &&
            lg_may_start(g)) {
            lg_conn_start(c);
            lg_conn_drive(c);
        } else if (c->st != LG_CS_FREE && c->st != LG_CS_HOLD &&
                   now > c->deadline) {
            lg_error(g, LG_ERR_TIMEOUT,
                     c->st == LG_CS_DRAIN ? "server kept the connection after "
                                            "Connection: close"
                                          : "no response within --timeout");
            lg_conn_close(c);
            lg_conn_ended(g, c, true);
        }
    }
}

/* The event loop: epoll batches, then timers every few milliseconds. */
static void
loop_run(struct lg *g)
{
    struct epoll_event ev[512];
    double last_scan = 0;

    g->t_start = lg_now();
    if (g->o.mode != LG_IDLE)
        for (int i = 0; i < g->o.conns; i++) {
            lg_conn_start(&g->conns[i]);
            lg_conn_drive(&g->conns[i]);
        }
    while (g->phase != LG_PH_DONE) {
        int n = epoll_wait(g->ep, ev, 512, 2);
        for (int i = 0; i < n; i++)
            lg_conn_drive(ev[i].data.ptr);
        double now = lg_now();
        if (g->o.mode == LG_IDLE) {
            tick_idle(g, now);
        } else {
            tick_phase(g, now);
        }
        if (now - last_scan >= 0.01) {
            last_scan = now;
            tick_slots(g, now);
        }
    }
}

static int
cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

    return x < y ? -1 : x > y;
}

/* Nearest-rank percentile q (0..1) of the sorted latencies, in ms. */
static double
pct_ms(const struct lg_stats *s, double q)
{
    if (s->nlat == 0)
        return 0;
    size_t i = (size_t)ceil(q * (double)s->nlat);
    i = i == 0 ? 0 : i - 1;
    return s->lat_us[i < s->nlat ? i : s->nlat - 1] / 1000.0;
}

/* Prints the one-line JSON report. */
static void
report(struct lg *g)
{
    struct lg_stats *s = &g->s;
    double el = g->t_stop - g->t_measure;
    double rate = el > 0 && g->o.mode != LG_IDLE ? (double)s->requests / el : 0;

    qsort(s->lat_us, s->nlat, sizeof(*s->lat_us), cmp_u32);
    printf("{\"mode\":\"%s\",\"tls\":\"%s\",\"conns\":%d,\"requests\":%llu,"
           "\"errors\":%llu,\"rate\":%.1f,\"p50_ms\":%.3f,\"p99_ms\":%.3f,"
           "\"p999_ms\":%.3f,\"resumed\":%llu,\"not_resumed\":%llu,"
           "\"handshakes\":%llu,\"elapsed_s\":%.3f,\"client_cpu_s\":%.3f,",
           mode_names[g->o.mode],
           g->o.plain                   ? "none"
           : g->o.tls == TLS1_2_VERSION ? "1.2"
                                        : "1.3",
           g->o.conns, (unsigned long long)s->requests,
           (unsigned long long)s->errors, rate, pct_ms(s, 0.50),
           pct_ms(s, 0.99), pct_ms(s, 0.999), (unsigned long long)s->resumed,
           (unsigned long long)s->not_resumed,
           (unsigned long long)s->handshakes, el, g->cpu1 - g->cpu0);
    if (g->cipher != NULL)
        printf("\"cipher\":\"%s\",\"ciphers_differ\":%s,", g->cipher,
               g->ciphers_differ ? "true" : "false");
    else
        printf("\"cipher\":null,\"ciphers_differ\":false,");
    if (g->srv0 >= 0 && g->srv1 >= 0)
        printf("\"server_cpu_s\":%.3f,", g->srv1 - g->srv0);
    else
        printf("\"server_cpu_s\":null,");
    printf("\"cpu_busy\":[");
    for (int i = 0; i < g->ncpu; i++) {
        unsigned long long t = g->total[1][i] - g->total[0][i];
        printf("%s%.3f", i ? "," : "",
               t ? (double)(g->busy[1][i] - g->busy[0][i]) / (double)t : 0);
    }
    printf("],\"held_at_end\":%ld,\"errors_total\":%llu,"
           "\"error_kinds\":{",
           g->held, (unsigned long long)s->err_total);
    for (int k = 0; k < LG_ERR_COUNT; k++)
        printf("%s\"%s\":%llu", k ? "," : "", err_names[k],
               (unsigned long long)s->err_kind[k]);
    printf("}}\n");
    fflush(stdout);
}

static void
usage(FILE *f)
{
    fprintf(f, "usage: loadgen --port N [--host 127.0.0.1] [--sni NAME]\n"
               "  [--ca FILE] [--cert FILE --key FILE] [--plain]\n"
               "  [--mode full|resume|keepalive|idle] [--tls 1.2|1.3]\n"
               "  [--conns N] [--duration S | --count N] [--warmup S]\n"
               "  [--path /] [--verify first|all|none] [--timeout S]\n"
               "  [--parallel N] [--server-pid PID[,PID...]]\n"
               "  [--mqtt [--mqtt-id-base N]] (idle mode: MQTT CONNECT with\n"
               "  client id bench-<N + slot>, CONNACK 0, hold)\n");
}

/* Parses "1234,5678" into o->pids. */
static int
parse_pids(struct lg_opts *o, const char *s)
{
    char *end;

    while (*s != '\0' && o->npids < LG_MAX_PIDS) {
        long v = strtol(s, &end, 10);
        if (end == s || v <= 0)
            return -1;
        o->pids[o->npids++] = (pid_t)v;
        s = *end == ',' ? end + 1 : end;
        if (*end != ',' && *end != '\0')
            return -1;
    }
    return *s == '\0' ? 0 : -1;
}

/* Maps a --mode / --tls / --verify word; returns -1 if unknown. */
static int
pick(const char *s, const char *const *words, int n)
{
    for (int i = 0; i < n; i++)
        if (strcmp(s, words[i]) == 0)
            return i;
    return -1;
}

/* Command-line options as a table of descriptors: name, kind, field. */
enum opt_kind {
    OPT_STR,
    OPT_INT,
    OPT_LONG,
    OPT_DBL,
    OPT_FLAG,
    OPT_MODE,
    OPT_TLS,
    OPT_VERIFY,
    OPT_PIDS,
    OPT_HELP,
};

struct opt_desc {
    const char *name;
    enum opt_kind kind;
    size_t off;
};

#define OFF(f) offsetof(struct lg_opts, f)
static const struct opt_desc opt_table[] = {
    {"host", OPT_STR, OFF(host)},
    {"port", OPT_INT, OFF(port)},
    {"sni", OPT_STR, OFF(sni)},
    {"ca", OPT_STR, OFF(ca)},
    {"cert", OPT_STR, OFF(cert)},
    {"key", OPT_STR, OFF(key)},
    {"mode", OPT_MODE, OFF(mode)},
    {"tls", OPT_TLS, OFF(tls)},
    {"conns", OPT_INT, OFF(conns)},
    {"duration", OPT_DBL, OFF(duration)},
    {"count", OPT_LONG, OFF(count)},
    {"warmup", OPT_DBL, OFF(warmup)},
    {"path", OPT_STR, OFF(path)},
    {"verify", OPT_VERIFY, OFF(verify)},
    {"timeout", OPT_DBL, OFF(timeout)},
    {"parallel", OPT_INT, OFF(parallel)},
    {"plain", OPT_FLAG, OFF(plain)},
    {"mqtt", OPT_FLAG, OFF(mqtt)},
    {"mqtt-id-base", OPT_LONG, OFF(id_base)},
    {"server-pid", OPT_PIDS, 0},
    {"help", OPT_HELP, 0},
};
#undef OFF

/* Applies option d with value v; returns -1 on a bad value. */
static int
opt_set(struct lg_opts *o, const struct opt_desc *d, const char *v)
{
    static const char *const verify[] = {"first", "all", "none"};
    static const char *const tls[] = {"1.2", "1.3"};
    char *field = (char *)o + d->off, *end = NULL;
    int i = 0;

    switch (d->kind) {
    case OPT_STR:
        *(const char **)field = v;
        return 0;
    case OPT_INT:
    case OPT_LONG: {
        long n = strtol(v, &end, 10);
        if (d->kind == OPT_INT)
            *(int *)field = (int)n;
        else
            *(long *)field = n;
        break;
    }
    case OPT_DBL:
        *(double *)field = strtod(v, &end);
        break;
    case OPT_FLAG:
        *(bool *)field = true;
        return 0;
    case OPT_MODE:
        *(enum lg_mode *)field = (enum lg_mode)(i = pick(v, mode_names, 4));
        return i;
    case OPT_TLS:
        i = pick(v, tls, 2);
        *(int *)field = i == 0 ? TLS1_2_VERSION : TLS1_3_VERSION;
        return i;
    case OPT_VERIFY:
        *(enum lg_verify *)field = (enum lg_verify)(i = pick(v, verify, 3));
        return i;
    case OPT_PIDS:
        return parse_pids(o, v);
    case OPT_HELP:
        usage(stdout);
        exit(0);
    }
    return end == v || *end != '\0' ? -1 : 0;
}

/* Parses argv into o; exits on --help or bad usage. */
static void
opts_parse(struct lg_opts *o, int argc, char **argv)
{
    struct option lo[CG_ARRAY_LEN(opt_table) + 1] = {{0}};
    int ch;

    for (size_t i = 0; i < CG_ARRAY_LEN(opt_table); i++) {
        lo[i].name = opt_table[i].name;
        lo[i].has_arg =
            opt_table[i].kind == OPT_FLAG || opt_table[i].kind == OPT_HELP
                ? no_argument
                : required_argument;
        lo[i].val = (int)i;
    }
    *o = (struct lg_opts){.host = "127.0.0.1",
                          .sni = "localhost",
                          .mode = LG_FULL,
                          .tls = TLS1_3_VERSION,
                          .verify = LG_VERIFY_FIRST,
                          .conns = 16,
                          .parallel = 64,
                          .timeout = 10,
                          .path = "/"};
    while ((ch = getopt_long(argc, argv, "", lo, NULL)) != -1) {
        if (ch == '?' || opt_set(o, &opt_table[ch], optarg) < 0) {
            usage(stderr);
            exit(2);
        }
    }
    if (o->duration <= 0 && o->count <= 0)
        o->duration = 10;
    if (optind != argc || o->port <= 0 || o->port > 65535 || o->conns < 1 ||
        o->parallel < 1 || o->timeout <= 0 || o->warmup < 0 ||
        (o->plain && o->mode != LG_KEEPALIVE && o->mode != LG_FULL) ||
        (o->mqtt && o->mode != LG_IDLE) || o->id_base < 0 ||
        (o->mode == LG_IDLE && o->duration <= 0)) {
        usage(stderr);
        exit(2);
    }
}

/* Prints the failed call with the OpenSSL error queue and exits. */
static void
die_ssl(const char *what)
{
    char buf[256] = "";

    ERR_error_string_n(ERR_get_error(), buf, sizeof(buf));
    fprintf(stderr, "loadgen: %s failed (SSL: %s)\n", what, buf);
    exit(1);
}

/* libssl verifies the server chain even with SSL_VERIFY_NONE (and then
 * ignores the result); skip that work on connections that do not verify,
 * so the load generator spends its CPU on the handshake itself. */
static int
verify_chain(X509_STORE_CTX *xs, void *arg)
{
    SSL *ssl =
        X509_STORE_CTX_get_ex_data(xs, SSL_get_ex_data_X509_STORE_CTX_idx());

    (void)arg;
    if (ssl != NULL && SSL_get_verify_mode(ssl) == SSL_VERIFY_NONE)
        return 1;
    return X509_verify_cert(xs);
}

/* Builds the client SSL_CTX: one TLS version, client cert, CA. */
static SSL_CTX *
ctx_new(const struct lg_opts *o)
{
    SSL_CTX *ctx = SSL_CTX_new_ex(tls_libctx(), NULL, TLS_client_method());

    if (ctx == NULL)
        die_ssl("SSL_CTX_new()");
    SSL_CTX_set_min_proto_version(ctx, o->tls);
    SSL_CTX_set_max_proto_version(ctx, o->tls);
    /* A server that closes without close_notify ends the response like a
     * clean close; the HTTP framing still tells a truncated one. */
    SSL_CTX_set_options(ctx, SSL_OP_IGNORE_UNEXPECTED_EOF);
    if (o->cert != NULL &&
        SSL_CTX_use_certificate_chain_file(ctx, o->cert) != 1)
        die_ssl("SSL_CTX_use_certificate_chain_file()");
    if (o->key != NULL &&
        SSL_CTX_use_PrivateKey_file(ctx, o->key, SSL_FILETYPE_PEM) != 1)
        die_ssl("SSL_CTX_use_PrivateKey_file()");
    if (o->cert != NULL && SSL_CTX_check_private_key(ctx) != 1)
        die_ssl("SSL_CTX_check_private_key()");
    if (o->ca != NULL && SSL_CTX_load_verify_locations(ctx, o->ca, NULL) != 1)
        die_ssl("SSL_CTX_load_verify_locations()");
    /* The chain the client certificate goes out with, built once. Given
     * none, libssl builds it on every handshake (X509_verify_cert against
     * the CA file: ~15% of loadgen's CPU on full handshakes); the
     * certificates sent are the same (leaf, then up to the root). */
    if (o->cert != NULL && o->ca != NULL)
        (void)SSL_CTX_build_cert_chain(ctx, SSL_BUILD_CHAIN_FLAG_IGNORE_ERROR);
    ERR_clear_error();
    /* Fewer syscalls: whole records (and what follows) in one read. */
    SSL_CTX_set_read_ahead(ctx, 1);
    SSL_CTX_set_cert_verify_callback(ctx, verify_chain, NULL);
    return ctx;
}

/* Raises the open-file limit to what --conns needs. */
static void
raise_nofile(long need)
{
    struct rlimit rl;

    if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
        return;
    if (rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    if ((long)rl.rlim_cur < need) { /* above the hard limit: root only */
        struct rlimit up = {(rlim_t)need, (rlim_t)need};
        if (setrlimit(RLIMIT_NOFILE, &up) == 0)
            rl = up;
    }
    if ((long)rl.rlim_cur < need)
        fprintf(stderr, "loadgen: open-file limit %ld < %ld needed\n",
                (long)rl.rlim_cur, need);
}

/* Sets up addresses, the request, the epoll set and the slots. */
static void
lg_init(struct lg *g)
{
    const struct lg_opts *o = &g->o;
    const char *conn = o->mode == LG_FULL || o->mode == LG_RESUME
                           ? "Connection: close\r\n"
                           : "";
    int n;

    g->addr.sin_family = AF_INET;
    g->addr.sin_port = htons((uint16_t)o->port);
    if (inet_pton(AF_INET, o->host, &g->addr.sin_addr) != 1) {
        fprintf(stderr, "loadgen: --host must be an IPv4 address\n");
        exit(2);
    }
    n = snprintf(g->req, sizeof(g->req),
                 "GET %s HTTP/1.1\r\nHost: %s\r\n"
                 "User-Agent: certgate-bench-loadgen\r\n%s\r\n",
                 o->path, o->sni, conn);
    if (n < 0 || (size_t)n >= sizeof(g->req)) {
        fprintf(stderr, "loadgen: --path too long\n");
        exit(2);
    }
    g->req_len = (size_t)n;
    if (!o->plain)
        g->ctx = ctx_new(o);
    g->ep = epoll_create1(EPOLL_CLOEXEC);
    assert(g->ep >= 0);
    raise_nofile(o->conns + 64L);
    g->conns = xcalloc((size_t)o->conns, sizeof(*g->conns));
    for (int i = 0; i < o->conns; i++)
        g->conns[i] = (struct lg_conn){
            .magic = LG_CONN_MAGIC, .g = g, .fd = -1, .st = LG_CS_FREE};
}

/* Closes every connection and frees what lg_init made. */
static void
lg_cleanup(struct lg *g)
{
    for (int i = 0; i < g->o.conns; i++) {
        lg_conn_close(&g->conns[i]);
        SSL_SESSION_free(g->conns[i].sess);
    }
    free(g->conns);
    free(g->s.lat_us);
    close(g->ep);
    SSL_CTX_free(g->ctx);
    lg_keyshare_free();
}

int
main(int argc, char **argv)
{
    static struct lg g;

    /* certgate's own heap cache for OpenSSL (src/tls/mem.c): a client
     * handshake allocates as much as a server's, and loadgen must not be
     * the bottleneck. Before anything allocates through OpenSSL. */
    (void)tls_mem_init();
    signal(SIGPIPE, SIG_IGN);
    opts_parse(&g.o, argc, argv);
    lg_init(&g);
    loop_run(&g);
    report(&g);
    lg_cleanup(&g);
    return 0;
}
