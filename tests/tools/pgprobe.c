/* pgprobe.c -- the client-visible outage, measured with libpq.
 *
 * Every INTERVAL ms it starts a fresh session (non-blocking connect, then `select 1`,
 * then close), without waiting for earlier attempts: a connect whose SYN went to a dead
 * host does not delay the next try, just as new clients keep arriving in real life.
 * Each attempt has DEADLINE ms. One line per finished attempt:
 *     START_MS END_MS ok|fail [reason]
 * (wall clock, ms). scripts/outage.sh turns these and the time of an event into the
 * outage: from the event to the first success among attempts that started after the
 * last attempt that failed.
 *
 * usage: pgprobe [-i INTERVAL_MS] [-t DEADLINE_MS] [-d DURATION_S] CONNINFO
 * Stops after DURATION_S (default 30) or on SIGTERM/SIGINT, printing a summary. */
#include <libpq-fe.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <unistd.h>

#define MAX_INFLIGHT 128

enum step { CONNECTING, QUERYING };

struct attempt {
    PGconn *c;
    enum step step;
    PostgresPollingStatusType poll;
    long long start, deadline;
};

static volatile sig_atomic_t stop;
static long n_ok, n_failed;

static void on_signal(int sig)
{
    stop = 1;
}

static long long now_ms(void)
{
    struct timeval tv;
    gettimeofday(&tv, NULL);
    return (long long)tv.tv_sec * 1000 + tv.tv_usec / 1000;
}

static void finish(struct attempt *a, const char *why)
{
    long long end = now_ms();
    if (why == NULL) {
        n_ok++;
        printf("%lld %lld ok\n", a->start, end);
    } else {
        char buf[256];
        snprintf(buf, sizeof(buf), "%s", why);
        for (char *p = buf; *p; p++)
            if (*p == '\n')
                *p = ' ';
        n_failed++;
        printf("%lld %lld fail %s\n", a->start, end, buf);
    }
    PQfinish(a->c);
    a->c = NULL;
}

/* Advance one attempt after its socket became ready (or to start it). */
static void step(struct attempt *a)
{
    if (a->step == CONNECTING) {
        a->poll = PQconnectPoll(a->c);
        if (a->poll == PGRES_POLLING_FAILED) {
            finish(a, PQerrorMessage(a->c));
            return;
        }
        if (a->poll != PGRES_POLLING_OK)
            return;
        if (!PQsendQuery(a->c, "select 1")) {
            finish(a, PQerrorMessage(a->c));
            return;
        }
        a->step = QUERYING;
        return;
    }
    if (!PQconsumeInput(a->c)) {
        finish(a, PQerrorMessage(a->c));
        return;
    }
    if (PQisBusy(a->c))
        return;
    PGresult *r;
    const char *err = NULL;
    char msg[256];
    while ((r = PQgetResult(a->c)) != NULL) {
        if (PQresultStatus(r) != PGRES_TUPLES_OK && err == NULL) {
            snprintf(msg, sizeof(msg), "%s", PQresultErrorMessage(r));
            err = msg;
        }
        PQclear(r);
    }
    finish(a, err);
}

int main(int argc, char **argv)
{
    int interval = 10, deadline = 1000, duration = 30, opt;
    while ((opt = getopt(argc, argv, "i:t:d:")) != -1) {
        switch (opt) {
        case 'i':
            interval = atoi(optarg);
            break;
        case 't':
            deadline = atoi(optarg);
            break;
        case 'd':
            duration = atoi(optarg);
            break;
        default:
            optind = argc + 1;
        }
    }
    if (optind != argc - 1 || interval < 1 || deadline < 1) {
        fprintf(stderr, "usage: %s [-i INTERVAL_MS] [-t DEADLINE_MS] [-d DURATION_S] CONNINFO\n",
                argv[0]);
        return 2;
    }
    const char *conninfo = argv[optind];
    signal(SIGTERM, on_signal);
    signal(SIGINT, on_signal);
    signal(SIGPIPE, SIG_IGN);
    setvbuf(stdout, NULL, _IOLBF, 0);
    static struct attempt att[MAX_INFLIGHT];
    long long end = now_ms() + (long long)duration * 1000, next = now_ms();
    while (1) {
        long long now = now_ms();
        int inflight = 0;
        for (int i = 0; i < MAX_INFLIGHT; i++)
            if (att[i].c && now >= att[i].deadline) {
                char why[64];
                snprintf(why, sizeof(why), "%s: no answer within %d ms",
                         att[i].step == CONNECTING ? "connect" : "query", deadline);
                finish(&att[i], why);
            }
        if (!stop && now < end && now >= next) {
            next += interval;
            if (next < now)
                next = now + interval;
            for (int i = 0; i < MAX_INFLIGHT; i++) {
                if (att[i].c)
                    continue;
                att[i].c = PQconnectStart(conninfo);
                att[i].start = now;
                att[i].deadline = now + deadline;
                att[i].step = CONNECTING;
                att[i].poll = PGRES_POLLING_WRITING;
                if (att[i].c == NULL) {
                    n_failed++;
                    printf("%lld %lld fail out of memory\n", now, now);
                } else if (PQstatus(att[i].c) == CONNECTION_BAD) {
                    finish(&att[i], PQerrorMessage(att[i].c));
                }
                break;
            }
        }
        struct pollfd pfd[MAX_INFLIGHT];
        int idx[MAX_INFLIGHT], n = 0;
        long long wake = (stop || now >= end) ? now + 50 : next;
        for (int i = 0; i < MAX_INFLIGHT; i++) {
            if (!att[i].c)
                continue;
            inflight++;
            pfd[n].fd = PQsocket(att[i].c);
            pfd[n].events = (att[i].step == CONNECTING && att[i].poll == PGRES_POLLING_WRITING)
                                ? POLLOUT
                                : POLLIN;
            idx[n++] = i;
            if (att[i].deadline < wake)
                wake = att[i].deadline;
        }
        if ((stop || now >= end) && inflight == 0)
            break;
        int timeout = (int)(wake - now_ms());
        if (poll(pfd, (nfds_t)n, timeout > 0 ? timeout : 0) > 0)
            for (int k = 0; k < n; k++)
                if (pfd[k].revents)
                    step(&att[idx[k]]);
    }
    printf("# probe: attempts=%ld ok=%ld failed=%ld\n", n_ok + n_failed, n_ok, n_failed);
    return 0;
}
