/* The progress line of long commands: one line on stderr, rewritten in place
 * (carriage return), only when stderr is a terminal; logs stay clean. */
#include "cli/cli.h"

#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#define REDRAW_S 0.1 /* at most ten redraws a second */

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

void cli_progress_init(cli_progress *p, const char *unit, int quiet)
{
    memset(p, 0, sizeof *p);
    p->on = !quiet && isatty(STDERR_FILENO);
    p->unit = unit ? unit : "it";
}

/* "1:02:03" or "2:03". */
static void fmt_duration(char *buf, size_t size, double s)
{
    long t = (long)(s + 0.5);
    if (t >= 3600)
        snprintf(buf, size, "%ld:%02ld:%02ld", t / 3600, (t / 60) % 60, t % 60);
    else
        snprintf(buf, size, "%ld:%02ld", t / 60, t % 60);
}

static void draw(cli_progress *p, double now)
{
    char tail[160];
    int len = 0;
    if (p->total)
        len = snprintf(tail, sizeof tail, " [%zu/%zu]", p->done, p->total);
    else
        tail[0] = 0;
    /* The rate since the first item of the phase was done (the first one
     * carries the setup: program builds, loading), or over the first one. */
    const double elapsed = now - p->t0;
    double rate = 0;
    if (p->done > p->first_done && now > p->first_at)
        rate = (double)(p->done - p->first_done) / (now - p->first_at);
    else if (p->done > p->base && elapsed > 0)
        rate = (double)(p->done - p->base) / elapsed;
    if (rate > 0) {
        const double v = rate >= 1 ? rate : 1 / rate; /* per second, or seconds per item */
        const int digits = v >= 100 ? 0 : 1;
        if (rate >= 1)
            len += snprintf(tail + len, sizeof tail - (size_t)len, " %.*f %s/s", digits, v,
                            p->unit);
        else
            len += snprintf(tail + len, sizeof tail - (size_t)len, " %.*f s/%s", digits, v,
                            p->unit);
        if (p->total && p->done <= p->total) {
            char eta[32];
            fmt_duration(eta, sizeof eta, (double)(p->total - p->done) / rate);
            snprintf(tail + len, sizeof tail - (size_t)len, " ETA %s", eta);
        }
    } else {
        char el[32];
        fmt_duration(el, sizeof el, elapsed);
        snprintf(tail + len, sizeof tail - (size_t)len, " %s elapsed", el);
    }
    /* One terminal row: a wrapped line would not be rewritten in place. */
    struct winsize ws;
    int cols = ioctl(STDERR_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col ? ws.ws_col : 80;
    int room = cols - 1 - (int)strlen(tail);
    if (room < 8)
        room = 8;
    fprintf(stderr, "\r\033[K%.*s%s", room, p->what, tail);
    fflush(stderr);
    p->shown = 1;
    p->drawn_at = now;
}

void cli_progress_update(cli_progress *p, const char *what, size_t done, size_t total)
{
    if (!p->on)
        return;
    const double now = now_s();
    const int restart = !p->started || done < p->done || total != p->total;
    if (restart) {
        p->started = 1;
        p->t0 = now;
        p->base = p->first_done = done;
    } else if (done > p->base && p->first_done == p->base) {
        p->first_done = done; /* the first progress of the phase */
        p->first_at = now;
    }
    p->done = done;
    p->total = total;
    snprintf(p->what, sizeof p->what, "%s", what ? what : "");
    if (restart || !p->shown || (total && done >= total) || now - p->drawn_at >= REDRAW_S)
        draw(p, now);
}

void cli_progress_fn(void *user, const char *what, size_t done, size_t total)
{
    cli_progress_update(user, what, done, total);
}

void cli_progress_clear(cli_progress *p)
{
    if (p->on && p->shown) {
        fputs("\r\033[K", stderr);
        fflush(stderr);
        p->shown = 0;
    }
}

void cli_progress_end(cli_progress *p)
{
    if (p->on && p->shown) {
        fputc('\n', stderr);
        fflush(stderr);
    }
    p->shown = 0;
    p->started = 0;
}
