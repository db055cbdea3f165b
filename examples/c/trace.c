/* SPDX-License-Identifier: LGPL-2.1-or-later OR BSD-2-Clause */
/*
 * trace: print every connect() on the host for a while, through the C API.
 *
 *   trace [-b BACKENDS] [-t SECONDS] [-p PID]... [--self-check]
 *
 * -p PID reports only that process's connects (give it up to 16 times); the
 * filter runs in the kernel. trace's own connects are never reported, except
 * with --self-check, which makes one UDP connect to 127.0.0.1 after the
 * session starts and exits 0 only if that connect is reported with this
 * process's pid, tid and socket fd (the consumer build tests use it).
 * Exits 77 when not root.
 */
#define _GNU_SOURCE
#include <connscope/connscope.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

struct trace {
    int quiet;
    /* --self-check: what our own connect must look like. */
    uint32_t pid, tid;
    int fd;
    uint16_t port;
    int seen;
};

static int on_connect(const struct connscope_connect_event *ev, void *ctx)
{
    struct trace *t = ctx;

    if (!t->quiet || ev->process->pid == t->pid)
        printf("%-16s pid=%u tid=%u fd=%d %s %s%s\n", ev->process->comm, ev->process->pid,
               ev->process->tid, ev->sockfd, ev->type_name, ev->remote_addr->text,
               ev->toctou ? " (toctou)" : "");
    if (t->port && ev->process->pid == t->pid && ev->process->tid == t->tid && ev->sockfd == t->fd &&
        ev->remote_addr->kind == CONNSCOPE_ADDR_INET && ev->remote_addr->family == AF_INET &&
        ev->remote_addr->port == t->port && strcmp(ev->remote_addr->ip_text, "127.0.0.1") == 0 &&
        strcmp(ev->type_name, "SOCK_DGRAM") == 0)
        t->seen = 1;
    return 0;
}

static int on_tcp_connect(const struct connscope_tcp_connect_event *ev, void *ctx)
{
    struct trace *t = ctx;
    size_t i;

    if (t->quiet)
        return 0;
    printf("%-16s pid=%u tcp %s:%u", ev->process->comm, ev->process->pid, ev->dst_ip, ev->dst_port);
    for (i = 0; i < ev->result_count; i++)
        printf("%s%s", i ? " " : " names=", ev->results[i]);
    printf("\n");
    return 0;
}

/* A UDP connect needs no listener: it only sets the socket's peer. */
static int connect_udp(uint16_t port)
{
    struct sockaddr_in sin;
    int fd = socket(AF_INET, SOCK_DGRAM, 0);

    if (fd < 0)
        return -1;
    memset(&sin, 0, sizeof(sin));
    sin.sin_family = AF_INET;
    sin.sin_port = htons(port);
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&sin, sizeof(sin)) < 0) {
        close(fd);
        return -1;
    }
    return fd;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
    struct trace t = { 0 };
    uint32_t pids[16];
    struct connscope_filters filters = { .sz = sizeof(filters) };
    struct connscope_opts opts = { .sz = sizeof(opts), .filters = &filters };
    struct connscope_callbacks cb = { .sz = sizeof(cb), .ctx = &t, .on_connect = on_connect,
                                      .on_tcp_connect = on_tcp_connect };
    struct connscope_backend_info info = { .sz = sizeof(info) };
    struct connscope_stats st = { .sz = sizeof(st) };
    connscope_session *s;
    double seconds = 5, end;
    int self_check = 0, err, i;

    for (i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-t") && i + 1 < argc)
            seconds = atof(argv[++i]);
        else if (!strcmp(argv[i], "-b") && i + 1 < argc)
            opts.backends = argv[++i];
        else if (!strcmp(argv[i], "-p") && i + 1 < argc && filters.pid_count < 16)
            pids[filters.pid_count++] = (uint32_t)strtoul(argv[++i], NULL, 10);
        else if (!strcmp(argv[i], "--self-check"))
            self_check = 1;
        else {
            fprintf(stderr, "usage: %s [-b BACKENDS] [-t SECONDS] [-p PID]... [--self-check]\n", argv[0]);
            return 2;
        }
    }
    if (filters.pid_count)
        filters.pids = pids;
    if (self_check) {
        /* The connect to check is our own, which the default leaves out. */
        filters.exclude_self = CONNSCOPE_SELF_INCLUDE;
        if (filters.pid_count < 16)
            pids[filters.pid_count++] = (uint32_t)getpid();
        filters.pids = pids;
    }
    if (geteuid() != 0) {
        fprintf(stderr, "trace: needs root (CAP_BPF, CAP_PERFMON, CAP_NET_ADMIN); skipping\n");
        return 77;
    }
    if (strcmp(connscope_version(), CONNSCOPE_VERSION_STRING) != 0)
        fprintf(stderr, "trace: headers %s, library %s\n", CONNSCOPE_VERSION_STRING, connscope_version());

    err = connscope_session_new(&opts, &cb, &s);
    if (err < 0) {
        fprintf(stderr, "trace: %s (%s)\n", connscope_last_error(), connscope_strerror(err));
        return 1;
    }
    connscope_session_backend(s, &info);
    fprintf(stderr, "trace: connscope %s, backend %s\n", connscope_version(), info.name);

    if (self_check) {
        t.quiet = 1;
        t.pid = (uint32_t)getpid();
        t.tid = (uint32_t)syscall(SYS_gettid);
        t.port = 9; /* discard */
        t.fd = connect_udp(t.port);
        if (t.fd < 0) {
            perror("trace: connect");
            connscope_session_free(s);
            return 1;
        }
    }

    end = now_s() + seconds;
    while (now_s() < end && !(self_check && t.seen)) {
        err = connscope_session_poll(s, 100);
        if (err < 0) {
            fprintf(stderr, "trace: %s\n", connscope_last_error());
            break;
        }
    }
    connscope_session_stats(s, &st);
    fprintf(stderr, "trace: %llu events, %llu tcp, %llu lost\n", (unsigned long long)st.events,
            (unsigned long long)st.tcp_events, (unsigned long long)st.lost);
    connscope_session_free(s);
    if (self_check) {
        close(t.fd);
        fprintf(stderr, "trace: own connect %s\n", t.seen ? "seen" : "NOT seen");
        return t.seen ? 0 : 1;
    }
    return err < 0 ? 1 : 0;
}
