/*
 * bench/upstream: the one plain-HTTP upstream every server under test
 * proxies to. Single thread, epoll; answers every request head
 * ("\r\n\r\n"-terminated, GET only: request bodies are not read) with the
 * same small 200 response, keep-alive and pipelining included. Binds
 * 127.0.0.1:PORT (0 = any free port) and prints "PORT <n>" on stdout.
 */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#define UP_OUT_MAX 65536

static const char response[] = "HTTP/1.1 200 OK\r\n"
                               "Content-Type: text/plain\r\n"
                               "Content-Length: 3\r\n"
                               "\r\n"
                               "ok\n";

struct up_conn {
    int fd;
    int match;    /* bytes of "\r\n\r\n" matched so far */
    size_t owant; /* bytes queued in out */
    size_t ooff;  /* bytes of out already sent */
    char out[UP_OUT_MAX];
};

/* Sends what is queued; returns -1 if the connection failed. */
static int
flush_out(struct up_conn *c)
{
    while (c->ooff < c->owant) {
        ssize_t k = write(c->fd, c->out + c->ooff, c->owant - c->ooff);
        if (k < 0)
            return errno == EAGAIN || errno == EINTR ? 0 : -1;
        c->ooff += (size_t)k;
    }
    c->ooff = c->owant = 0;
    return 0;
}

/* Counts request ends in p[0..n) and queues one response for each. */
static void
scan(struct up_conn *c, const char *p, size_t n)
{
    static const char pat[] = "\r\n\r\n";

    for (size_t i = 0; i < n; i++) {
        if (p[i] == pat[c->match])
            c->match++;
        else
            c->match = p[i] == '\r' ? 1 : 0;
        if (c->match == 4) {
            c->match = 0;
            if (c->owant + sizeof(response) - 1 <= sizeof(c->out)) {
                memcpy(c->out + c->owant, response, sizeof(response) - 1);
                c->owant += sizeof(response) - 1;
            }
        }
    }
}

/* Handles readiness on c; returns -1 when c is to be closed. */
static int
serve(struct up_conn *c)
{
    char buf[16384];

    for (;;) {
        ssize_t k = read(c->fd, buf, sizeof(buf));
        if (k == 0)
            return -1;
        if (k < 0)
            return errno == EAGAIN || errno == EINTR ? flush_out(c) : -1;
        scan(c, buf, (size_t)k);
        if (flush_out(c) < 0)
            return -1;
    }
}

/* Accepts every pending connection into the epoll set. */
static void
accept_all(int lfd, int ep)
{
    int fd, one = 1;

    while ((fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC)) >= 0) {
        struct up_conn *c = calloc(1, sizeof(*c));
        struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT | EPOLLET};
        if (c == NULL) {
            close(fd);
            continue;
        }
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        c->fd = fd;
        ev.data.ptr = c;
        if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) < 0) {
            close(fd);
            free(c);
        }
    }
}

/* Binds 127.0.0.1:port and prints the port it got. */
static int
listen_on(int port)
{
    struct sockaddr_in sa = {.sin_family = AF_INET,
                             .sin_port = htons((uint16_t)port)};
    socklen_t len = sizeof(sa);
    int one = 1;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd < 0 ||
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
        bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
        listen(fd, 4096) < 0 ||
        getsockname(fd, (struct sockaddr *)&sa, &len) < 0) {
        perror("bench_upstream: listen");
        exit(1);
    }
    printf("PORT %d\n", ntohs(sa.sin_port));
    fflush(stdout);
    return fd;
}

int
main(int argc, char **argv)
{
    static int lmark; /* its address tags the listening socket's events */
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = &lmark}, evs[256];
    int lfd, ep;

    signal(SIGPIPE, SIG_IGN);
    lfd = listen_on(argc > 1 ? atoi(argv[1]) : 0);
    ep = epoll_create1(EPOLL_CLOEXEC);
    if (ep < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev) < 0) {
        perror("bench_upstream: epoll");
        return 1;
    }
    for (;;) {
        int n = epoll_wait(ep, evs, 256, -1);
        for (int i = 0; i < n; i++) {
            struct up_conn *c = evs[i].data.ptr;
            if (evs[i].data.ptr == &lmark) {
                accept_all(lfd, ep);
            } else if (serve(c) < 0) {
                close(c->fd);
                free(c);
            }
        }
    }
}
