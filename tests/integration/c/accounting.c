/* SPDX-License-Identifier: LGPL-2.1-or-later OR BSD-2-Clause */
/*
 * Exact loss accounting through the C API: produced = delivered + lost.
 *
 * A child process makes up to N UDP socket+connect+close to 127.0.0.1 as fast
 * as it can (for at most a few seconds), traced with a pid filter on that
 * child, the smallest ring (one page) and DNS off, so the ring overflows. The
 * child waits on a pipe until the session is running and reports how many
 * connects it made. After it exits and a final drain, the connects delivered
 * plus stats.lost must equal that count exactly (DNS is off, so lost holds
 * connect records only), lost must be lost_ring_connect + lost_ring_dns +
 * decode_errors, and above zero (the ring really overflowed). Needs root; exits 77 otherwise.
 */
#define _GNU_SOURCE
#include <connscope/connscope.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define N 200000
#define CHILD_SECONDS 4.0

struct tally {
    uint32_t child;
    uint64_t delivered; /* connect events from the child */
    uint64_t others;    /* from anyone else: the pid filter let them through */
};

static int on_connect(const struct connscope_connect_event *ev, void *ctx)
{
    struct tally *t = ctx;

    if (ev->process->pid == t->child)
        t->delivered++;
    else
        t->others++;
    return 0;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* The child: waits for the go byte, connects up to N times, writes the count. */
static void child_main(int go_fd, int count_fd)
{
    struct sockaddr_in sin;
    uint64_t made = 0;
    double end;
    char go;

    if (read(go_fd, &go, 1) != 1)
        _exit(3); /* the parent gave up */
    memset(&sin, 0, sizeof(sin));
    sin.sin_family = AF_INET;
    sin.sin_port = htons(9);
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    end = now_s() + CHILD_SECONDS;
    while (made < N && ((made & 1023) || now_s() < end)) {
        int fd = socket(AF_INET, SOCK_DGRAM, 0);
        if (fd < 0 || connect(fd, (struct sockaddr *)&sin, sizeof(sin)) < 0)
            _exit(2);
        close(fd);
        made++;
    }
    if (write(count_fd, &made, sizeof(made)) != (ssize_t)sizeof(made))
        _exit(4);
    _exit(0);
}

int main(void)
{
    struct tally t = { 0 };
    struct connscope_filters filters = { .sz = sizeof(filters) };
    struct connscope_opts opts = { .sz = sizeof(opts), .dns_mode = CONNSCOPE_DNS_OFF,
                                   .max_latency_ms = 1, .filters = &filters };
    struct connscope_callbacks cb = { .sz = sizeof(cb), .ctx = &t, .on_connect = on_connect };
    struct connscope_stats st = { .sz = sizeof(st) };
    connscope_session *s;
    int go[2], count[2], status = 0, err, rc, ok;
    uint64_t made = 0;
    pid_t child;
    double started;

    if (geteuid() != 0) {
        fprintf(stderr, "accounting: needs root (CAP_BPF, CAP_PERFMON, CAP_NET_ADMIN); skipping\n");
        return 77;
    }
    if (pipe(go) < 0 || pipe(count) < 0) {
        perror("accounting: pipe");
        return 1;
    }
    child = fork();
    if (child < 0) {
        perror("accounting: fork");
        return 1;
    }
    if (child == 0) {
        close(go[1]);
        close(count[0]);
        child_main(go[0], count[1]);
    }
    close(go[0]);
    close(count[1]);

    t.child = (uint32_t)child;
    filters.pids = &t.child;
    filters.pid_count = 1;
    opts.ring_size = (size_t)sysconf(_SC_PAGESIZE);
    err = connscope_session_new(&opts, &cb, &s);
    if (err < 0) {
        fprintf(stderr, "accounting: %s\n", connscope_last_error());
        kill(child, SIGKILL);
        waitpid(child, NULL, 0);
        return 1;
    }

    /* The session runs with the child's pid in its filter: let the child go. */
    started = now_s();
    if (write(go[1], "g", 1) != 1) {
        perror("accounting: write");
        return 1;
    }
    close(go[1]);
    while ((rc = (int)waitpid(child, &status, WNOHANG)) == 0) {
        err = connscope_session_poll(s, 10);
        if (err < 0) {
            fprintf(stderr, "accounting: poll: %s\n", connscope_last_error());
            break;
        }
    }
    if (rc != child || !WIFEXITED(status) || WEXITSTATUS(status) != 0 ||
        read(count[0], &made, sizeof(made)) != (ssize_t)sizeof(made)) {
        fprintf(stderr, "accounting: the child failed (status %d)\n", status);
        connscope_session_free(s);
        return 1;
    }
    /* The final drain: every record the child produced is in the ring now. */
    while ((err = connscope_session_consume(s)) > 0)
        ;
    connscope_session_stats(s, &st);
    connscope_session_free(s);

    ok = err >= 0 && t.delivered + st.lost == made && st.lost > 0 && t.others == 0 && st.events == t.delivered &&
         st.lost == st.lost_ring_connect + st.lost_ring_dns + st.decode_errors &&
         st.canaries_sent >= 1 && st.canaries_missed == 0; /* the start-up proof ran, through the C ABI */
    printf("accounting: child %d made %llu connects in %.2f s; delivered %llu + lost %llu = %llu"
           " (%s); lost_ring_connect %llu, events %llu, from other pids %llu, decode_errors %llu, callback_errors %llu\n",
           (int)child, (unsigned long long)made, now_s() - started, (unsigned long long)t.delivered,
           (unsigned long long)st.lost, (unsigned long long)(t.delivered + st.lost),
           t.delivered + st.lost == made ? "exact" : "MISMATCH", (unsigned long long)st.lost_ring_connect,
           (unsigned long long)st.events, (unsigned long long)t.others,
           (unsigned long long)st.decode_errors, (unsigned long long)st.callback_errors);
    if (st.lost == 0)
        printf("accounting: nothing was lost, so the identity was not put to the test\n");
    printf("%s\n", ok ? "ok" : "FAIL");
    return ok ? 0 : 1;
}
