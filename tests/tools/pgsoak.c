/* pgsoak.c -- hold N sessions through the pair for a long time, as an application does.
 *
 * Each session connects (libpq, non-blocking), then runs `select 1` every INTERVAL ms
 * (spread evenly). A session that fails (connect refused, reset, timeout, an error)
 * is logged and reconnects after 100 ms. Sessions alternate between the given
 * connection strings (both VIPs). Output, one line each:
 *     fail T_MS SESSION port=P up_ms=U reason   a failure (P: the session's local port,
 *                                    U: how long it had been connected; -1 if never)
 *     stat T_MS connected=N ok=N fail=N   every second (queries and failures in it)
 * and a summary at the end. Used by scripts/soak.sh.
 *
 * usage: pgsoak [-n SESSIONS] [-i INTERVAL_MS] [-t DEADLINE_MS] [-d DURATION_S] CONNINFO...
 * Stops after DURATION_S or on SIGTERM/SIGINT. */
#include <arpa/inet.h>
#include <libpq-fe.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

enum phase { IDLE_DOWN, CONNECTING, READY, QUERYING };

struct sess {
    PGconn *c;
    enum phase phase;
    PostgresPollingStatusType poll;
    long long due;      /* next action: reconnect or query */
    long long deadline; /* of the connect or query under way */
    const char *conninfo;
    int port;           /* local port of the connection once up (for the proxies' logs) */
    long long up_since; /* when the connection came up, 0 while down */
};

static volatile sig_atomic_t stop;
static long sec_ok, sec_fail, tot_ok, tot_fail, tot_connects;
static int interval = 1000, deadline = 3000;

static void on_signal(int sig)
{
    (void)sig;
    stop = 1;
}

static long long now_ms(void)
{
    struct timeval tv;
    gettimeofday(&tv, NULL);
    return (long long)tv.tv_sec * 1000 + tv.tv_usec / 1000;
}

static void fail(struct sess *s, int id, const char *why)
{
    char buf[200];
    snprintf(buf, sizeof(buf), "%s", why);
    for (char *p = buf; *p; p++)
        if (*p == '\n')
            *p = ' ';
    long long now = now_ms();
    printf("fail %lld %d port=%d up_ms=%lld %s\n", now, id, s->port,
           s->up_since ? now - s->up_since : -1, buf);
    s->port = -1;
    s->up_since = 0;
    sec_fail++;
    tot_fail++;
    if (s->c)
        PQfinish(s->c);
    s->c = NULL;
    s->phase = IDLE_DOWN;
    s->due = now_ms() + 100;
}

static void start_connect(struct sess *s, int id)
{
    long long now = now_ms();
    s->c = PQconnectStart(s->conninfo);
    tot_connects++;
    s->phase = CONNECTING;
    s->poll = PGRES_POLLING_WRITING;
    s->deadline = now + deadline;
    if (s->c == NULL || PQstatus(s->c) == CONNECTION_BAD)
        fail(s, id, s->c ? PQerrorMessage(s->c) : "out of memory");
}

static void start_query(struct sess *s, int id)
{
    if (!PQsendQuery(s->c, "select 1")) {
        fail(s, id, PQerrorMessage(s->c));
        return;
    }
    s->phase = QUERYING;
    s->deadline = now_ms() + deadline;
}

static void step(struct sess *s, int id)
{
    if (s->phase == CONNECTING) {
        s->poll = PQconnectPoll(s->c);
        if (s->poll == PGRES_POLLING_FAILED)
            fail(s, id, PQerrorMessage(s->c));
        else if (s->poll == PGRES_POLLING_OK) {
            struct sockaddr_storage ss;
            socklen_t sl = sizeof(ss);
            if (getsockname(PQsocket(s->c), (struct sockaddr *)&ss, &sl) == 0)
                s->port = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
                                                         : ((struct sockaddr_in *)&ss)->sin_port);
            s->up_since = now_ms();
            s->phase = READY;
            s->due = now_ms() + interval;
        }
        return;
    }
    if (!PQconsumeInput(s->c)) {
        fail(s, id, PQerrorMessage(s->c));
        return;
    }
    if (s->phase == READY) /* unsolicited input while idle: a notice, or the close */
        return;
    if (PQisBusy(s->c))
        return;
    PGresult *r;
    char err[200] = "";
    while ((r = PQgetResult(s->c)) != NULL) {
        if (PQresultStatus(r) != PGRES_TUPLES_OK && err[0] == '\0')
            snprintf(err, sizeof(err), "%s", PQresultErrorMessage(r));
        PQclear(r);
    }
    if (err[0]) {
        fail(s, id, err);
        return;
    }
    sec_ok++;
    tot_ok++;
    s->phase = READY;
    s->due += interval;
    if (s->due < now_ms())
        s->due = now_ms() + interval;
}

int main(int argc, char **argv)
{
    int n = 1000, duration = 600, opt;
    while ((opt = getopt(argc, argv, "n:i:t:d:")) != -1) {
        switch (opt) {
        case 'n':
            n = atoi(optarg);
            break;
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
    if (optind >= argc || n < 1 || interval < 1 || deadline < 1) {
        fprintf(stderr,
                "usage: %s [-n SESSIONS] [-i INTERVAL_MS] [-t DEADLINE_MS] "
                "[-d DURATION_S] CONNINFO...\n",
                argv[0]);
        return 2;
    }
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < (rlim_t)n + 64) {
        rl.rlim_cur = rl.rlim_max < (rlim_t)n + 64 ? rl.rlim_max : (rlim_t)n + 64;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    signal(SIGTERM, on_signal);
    signal(SIGINT, on_signal);
    signal(SIGPIPE, SIG_IGN);
    setvbuf(stdout, NULL, _IOLBF, 0);
    struct sess *ss = calloc((size_t)n, sizeof(*ss));
    struct pollfd *pfd = calloc((size_t)n, sizeof(*pfd));
    int *idx = calloc((size_t)n, sizeof(*idx));
    if (!ss || !pfd || !idx)
        return 1;
    long long t0 = now_ms(), end = t0 + (long long)duration * 1000, next_stat = t0 + 1000;
    int nconn = argc - optind;
    for (int i = 0; i < n; i++) {
        ss[i].conninfo = argv[optind + i % nconn];
        ss[i].phase = IDLE_DOWN;
        ss[i].port = -1;
        ss[i].due = t0 + (long long)i * interval / n; /* spread the start and the queries */
    }
    while (!stop && now_ms() < end) {
        long long now = now_ms();
        long long wake = now + 100;
        int k = 0, connected = 0;
        for (int i = 0; i < n; i++) {
            struct sess *s = &ss[i];
            if (s->phase == IDLE_DOWN && now >= s->due)
                start_connect(s, i);
            else if (s->phase == READY && now >= s->due)
                start_query(s, i);
            else if ((s->phase == CONNECTING || s->phase == QUERYING) && now >= s->deadline)
                fail(s, i,
                     s->phase == CONNECTING ? "connect: no answer in time"
                                            : "query: no answer in time");
            if (s->phase == READY || s->phase == QUERYING)
                connected++;
            if (s->c == NULL) {
                if (s->due < wake)
                    wake = s->due;
                continue;
            }
            long long w = s->phase == READY ? s->due : s->deadline;
            if (w < wake)
                wake = w;
            pfd[k].fd = PQsocket(s->c);
            pfd[k].events =
                (s->phase == CONNECTING && s->poll == PGRES_POLLING_WRITING) ? POLLOUT : POLLIN;
            idx[k++] = i;
        }
        if (now >= next_stat) {
            printf("stat %lld connected=%d ok=%ld fail=%ld\n", now, connected, sec_ok, sec_fail);
            sec_ok = sec_fail = 0;
            next_stat += 1000;
        }
        if (next_stat < wake)
            wake = next_stat;
        int timeout = (int)(wake - now_ms());
        if (poll(pfd, (nfds_t)k, timeout > 0 ? timeout : 0) > 0)
            for (int j = 0; j < k; j++)
                if (pfd[j].revents)
                    step(&ss[idx[j]], idx[j]);
    }
    for (int i = 0; i < n; i++)
        if (ss[i].c)
            PQfinish(ss[i].c);
    printf("# soak: sessions=%d queries_ok=%ld failures=%ld connects=%ld\n", n, tot_ok, tot_fail,
           tot_connects);
    free(ss);
    free(pfd);
    free(idx);
    return 0;
}
