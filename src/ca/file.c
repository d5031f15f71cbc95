/*
 * Files of the CA: staged writes (temporary file, fsync, then rename or
 * link into place once the store has committed), whole-file reads and
 * secrets read from files.
 */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ca/ca_int.h"
#include "core/xmalloc.h"

void
ca_secret_free(char *s)
{
    if (s == NULL)
        return;
    explicit_bzero(s, strlen(s));
    free(s);
}

int
ca_file_read(const char *path, size_t max, char **data, size_t *len, char *err)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return cg_seterr(err, CG_EIO, "cannot open %s: %s", path,
                         strerror(errno));
    char *buf = xmalloc(max + 1);
    size_t n = 0;
    int rc = 0;
    for (;;) {
        ssize_t r = read(fd, buf + n, max + 1 - n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            rc = cg_seterr(err, CG_EIO, "cannot read %s: %s", path,
                           strerror(errno));
            break;
        }
        if (r == 0)
            break;
        n += (size_t)r;
        if (n > max) {
            rc = cg_seterr(err, CG_ELIMIT, "%s is larger than %zu bytes", path,
                           max);
            break;
        }
    }
    close(fd);
    if (rc != 0) {
        explicit_bzero(buf, n < max ? n : max);
        free(buf);
        return rc;
    }
    buf[n] = '\0';
    *data = buf;
    *len = n;
    return 0;
}

int
ca_secret_read(const char *path, char **out, char *err)
{
    char *data;
    size_t len;
    int rc = ca_file_read(path, 4096, &data, &len, err);
    if (rc != 0)
        return rc;
    /* Only the first line counts; a NUL anywhere is refused. */
    size_t n = strcspn(data, "\r\n");
    if (n == 0 || memchr(data, '\0', len) != NULL) {
        explicit_bzero(data, len);
        free(data);
        return cg_seterr(err, CG_EINVAL,
                         "%s: the first line is empty or holds a NUL", path);
    }
    char *s = xstrndup(data, n);
    explicit_bzero(data, len);
    free(data);
    *out = s;
    return 0;
}

/* Opens a fresh temporary file beside final; returns the fd or -1. */
static int
tmp_open(const char *final, unsigned mode, char **tmp)
{
    for (int tries = 0; tries < 16; tries++) {
        unsigned r = 0;
        if (getrandom(&r, sizeof(r), 0) != (ssize_t)sizeof(r))
            r ^= (unsigned)tries * 2654435761u;
        char *path = xasprintf("%s.tmp.%ld.%08x", final, (long)getpid(), r);
        int fd =
            open(path, O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, (mode_t)mode);
        if (fd >= 0) {
            *tmp = path;
            return fd;
        }
        free(path);
        if (errno != EEXIST)
            return -1;
    }
    errno = EEXIST;
    return -1;
}

/* Writes all of data to fd and syncs it; returns 0 or -1 (errno). */
static int
write_all(int fd, const void *data, size_t len)
{
    const char *p = data;
    while (len > 0) {
        ssize_t w = write(fd, p, len);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0)
            return -1;
        p += w;
        len -= (size_t)w;
    }
    return fsync(fd);
}

int
ca_stage_add(struct ca_stage *st, const char *final, const void *data,
             size_t len, unsigned mode, char *err)
{
    char *tmp = NULL;
    int fd = tmp_open(final, mode, &tmp);
    if (fd < 0)
        return cg_seterr(err, CG_EIO, "cannot create a file beside %s: %s",
                         final, strerror(errno));
    /* O_CREAT honours the umask; the mode asked for is the upper bound. */
    int rc = write_all(fd, data, len);
    int saved = errno;
    if (close(fd) != 0 && rc == 0) {
        rc = -1;
        saved = errno;
    }
    if (rc != 0) {
        unlink(tmp);
        free(tmp);
        return cg_seterr(err, CG_EIO, "cannot write %s: %s", final,
                         strerror(saved));
    }
    st->tmp = xrealloc(st->tmp, (st->n + 1) * sizeof(*st->tmp));
    st->final = xrealloc(st->final, (st->n + 1) * sizeof(*st->final));
    st->tmp[st->n] = tmp;
    st->final[st->n] = xstrdup(final);
    st->n++;
    return 0;
}

/* fsync(2) on the directory holding path, so a rename is durable. */
static void
sync_dir(const char *path)
{
    char *copy = xstrdup(path);
    int fd = open(dirname(copy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) {
        fsync(fd);
        close(fd);
    }
    free(copy);
}

int
ca_stage_commit(struct ca_stage *st, bool replace, char *err)
{
    for (size_t i = 0; i < st->n; i++) {
        int r = replace ? rename(st->tmp[i], st->final[i])
                        : link(st->tmp[i], st->final[i]);
        if (r != 0) {
            int code = errno == EEXIST ? CG_EEXIST : CG_EIO;
            return cg_seterr(err, code, "cannot create %s: %s", st->final[i],
                             strerror(errno));
        }
        if (!replace)
            unlink(st->tmp[i]);
        XFREE(&st->tmp[i]); /* committed: cleanup leaves it alone */
    }
    for (size_t i = 0; i < st->n; i++)
        sync_dir(st->final[i]);
    return 0;
}

void
ca_stage_cleanup(struct ca_stage *st)
{
    for (size_t i = 0; i < st->n; i++) {
        if (st->tmp[i] != NULL)
            unlink(st->tmp[i]);
        free(st->tmp[i]);
        free(st->final[i]);
    }
    free(st->tmp);
    free(st->final);
    memset(st, 0, sizeof(*st));
}

int
ca_file_replace(const char *path, const void *data, size_t len, unsigned mode,
                char *err)
{
    struct ca_stage st = {0};
    int rc = ca_stage_add(&st, path, data, len, mode, err);
    if (rc == 0)
        rc = ca_stage_commit(&st, true, err);
    ca_stage_cleanup(&st);
    return rc;
}
