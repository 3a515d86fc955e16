/* The run folder's lock (see runlock.h). */
#define _DEFAULT_SOURCE /* flock(2), a BSD call outside POSIX */
#include "train/runlock.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <time.h>
#include <unistd.h>

/* How long a refused trainer waits for a holder that has the lock but has
 * not yet written its details (they follow the flock by microseconds). */
#define DETAILS_TRIES 25
#define DETAILS_WAIT_NS 20000000L

/* Copies the value of `key` in the key=value lines of text into out ("" when
 * absent). */
static void value_of(const char *text, const char *key, char *out, size_t size)
{
    size_t klen = strlen(key);
    out[0] = '\0';
    for (const char *line = text; *line;) {
        const char *end = strchr(line, '\n');
        size_t len = end ? (size_t)(end - line) : strlen(line);
        if (len > klen && strncmp(line, key, klen) == 0 && line[klen] == '=') {
            size_t n = len - klen - 1;
            if (n >= size)
                n = size - 1;
            memcpy(out, line + klen + 1, n);
            out[n] = '\0';
            return;
        }
        line += len + (end ? 1 : 0);
    }
}

/* Reads the file's text (at most size - 1 bytes); "" when empty or unreadable. */
static void read_all(int fd, char *text, size_t size)
{
    ssize_t n = pread(fd, text, size - 1, 0);
    text[n > 0 ? n : 0] = '\0';
}

/* "pid N on host H, since T" from the file's text; 0 when it names no pid. */
static int describe(const char *text, char *out, size_t size, char *command, size_t csize)
{
    char pid[32], host[256], since[64];
    value_of(text, "pid", pid, sizeof pid);
    value_of(text, "host", host, sizeof host);
    value_of(text, "since", since, sizeof since);
    value_of(text, "command", command, csize);
    if (!pid[0])
        return 0;
    snprintf(out, size, "pid %s on host %s, since %s", pid, host[0] ? host : "?",
             since[0] ? since : "?");
    if (!command[0])
        snprintf(command, csize, "process");
    return 1;
}

static enco_status write_details(enco_runlock *l, const char *command)
{
    char host[256] = "";
    if (gethostname(host, sizeof host) != 0)
        snprintf(host, sizeof host, "?");
    host[sizeof host - 1] = '\0';
    char since[32];
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(since, sizeof since, "%Y-%m-%dT%H:%M:%SZ", &tm);
    char text[512];
    int len = snprintf(text, sizeof text, "pid=%ld\nhost=%s\nsince=%s\ncommand=%s\n",
                       (long)getpid(), host, since, command);
    if (len < 0 || (size_t)len >= sizeof text)
        len = (int)strlen(text);
    if (ftruncate(l->fd, 0) != 0 || pwrite(l->fd, text, (size_t)len, 0) != len)
        return ENCO_FAIL(ENCO_ERR_IO, "cannot write %s: %s", l->path, strerror(errno));
    return ENCO_OK;
}

enco_status enco_runlock_take(enco_runlock *l, const char *dir, const char *command)
{
    l->fd = -1;
    l->previous[0] = '\0';
    int n = snprintf(l->path, sizeof l->path, "%s/.lock", dir);
    if (n < 0 || (size_t)n >= sizeof l->path)
        return ENCO_FAIL(ENCO_ERR_INVALID_ARG, "run folder path is too long: %s", dir);
    int fd = open(l->path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0)
        return ENCO_FAIL(ENCO_ERR_IO, "cannot open %s: %s", l->path, strerror(errno));
    char text[1024], who[384], holder[128];
    for (int tries = 0;; tries++) {
        if (flock(fd, LOCK_EX | LOCK_NB) == 0)
            break;
        if (errno != EWOULDBLOCK && errno != EINTR) {
            int e = errno;
            close(fd);
            return ENCO_FAIL(ENCO_ERR_IO, "cannot lock %s: %s", l->path, strerror(e));
        }
        read_all(fd, text, sizeof text);
        if (describe(text, who, sizeof who, holder, sizeof holder)) {
            close(fd);
            return ENCO_FAIL(ENCO_ERR_INVALID_ARG,
                             "run folder %s is in use by another %s (%s): wait for it, stop "
                             "it, or choose another run.dir",
                             dir, holder, who);
        }
        if (tries + 1 == DETAILS_TRIES) {
            close(fd);
            return ENCO_FAIL(ENCO_ERR_INVALID_ARG,
                             "run folder %s is in use by another process (it holds %s but "
                             "names no pid in it): wait for it, stop it, or choose another "
                             "run.dir",
                             dir, l->path);
        }
        /* The holder has just taken the lock, or is releasing it. */
        struct timespec ts = {0, DETAILS_WAIT_NS};
        nanosleep(&ts, NULL);
    }
    l->fd = fd;
    /* Ours now: details left in the file belong to a holder that ended
     * without releasing the lock (killed, or its machine went down). */
    read_all(fd, text, sizeof text);
    describe(text, l->previous, sizeof l->previous, holder, sizeof holder);
    enco_status st = write_details(l, command);
    if (st != ENCO_OK)
        enco_runlock_release(l);
    return st;
}

void enco_runlock_release(enco_runlock *l)
{
    if (l->fd < 0)
        return;
    /* Emptied while still held, so a reader never sees our details on a
     * free lock; the file stays (removing it would race with a new holder
     * that has it open). */
    if (ftruncate(l->fd, 0) != 0) {
        /* Harmless: the next run reports a takeover of a finished run. */
    }
    close(l->fd);
    l->fd = -1;
}
