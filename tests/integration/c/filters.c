/* SPDX-License-Identifier: LGPL-2.1-or-later OR BSD-2-Clause */
/*
 * Filters through the C API, against the real kernel: pid, address family and
 * port range filters given in connscope_opts, and connscope_session_set_filters()
 * on a running session. Needs root; exits 77 otherwise.
 *
 * A connect the filter must drop is followed by one it must report (the
 * sentinel); the ring keeps order, so once the sentinel is delivered the
 * dropped one would have been too.
 */
#define _GNU_SOURCE
#include <connscope/connscope.h>

#include "support/check.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>


#define MAX_SEEN 4096

/* Every connect event delivered: who made it and where it went. */
struct seen {
    int count;
    uint32_t pid[MAX_SEEN];
    int32_t kind[MAX_SEEN];
    uint16_t family[MAX_SEEN];
    uint16_t port[MAX_SEEN];
    int32_t via[MAX_SEEN];
};

static int record(const struct connscope_connect_event *ev, void *ctx)
{
    struct seen *s = ctx;
    static const char *const via_names[] = {"unknown", "connect", "fastopen", "io_uring"};

    CHECK(ev->size >= sizeof(*ev) && ev->via >= CONNSCOPE_VIA_UNKNOWN && ev->via <= CONNSCOPE_VIA_IO_URING &&
          strcmp(ev->via_name, via_names[ev->via]) == 0);

    if (s->count < MAX_SEEN) {
        s->pid[s->count] = ev->process->pid;
        s->kind[s->count] = ev->remote_addr->kind;
        s->family[s->count] = ev->remote_addr->family;
        s->port[s->count] = ev->remote_addr->port;
        s->via[s->count] = ev->via;
        s->count++;
    }
    return 0;
}

/* A UDP connect to loopback needs no listener: it only sets the peer. */
static void udp_connect(int family, uint16_t port)
{
    struct sockaddr_in sin;
    struct sockaddr_in6 sin6;
    int fd = socket(family, SOCK_DGRAM, 0), rc;

    if (family == AF_INET) {
        memset(&sin, 0, sizeof(sin));
        sin.sin_family = AF_INET;
        sin.sin_port = htons(port);
        sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        rc = connect(fd, (struct sockaddr *)&sin, sizeof(sin));
    } else {
        memset(&sin6, 0, sizeof(sin6));
        sin6.sin6_family = AF_INET6;
        sin6.sin6_port = htons(port);
        sin6.sin6_addr = in6addr_loopback;
        rc = connect(fd, (struct sockaddr *)&sin6, sizeof(sin6));
    }
    if (fd < 0 || rc < 0) {
        perror("filters: connect");
        failures++;
    }
    close(fd);
}

/* The same from a short-lived child process; returns the child's pid. */
static pid_t child_connect(int family, uint16_t port)
{
    int status;
    pid_t pid = fork();

    if (pid == 0) {
        udp_connect(family, port);
        _exit(failures ? 1 : 0);
    }
    CHECK(pid > 0 && waitpid(pid, &status, 0) == pid && WIFEXITED(status) && WEXITSTATUS(status) == 0);
    return pid;
}

/* How many delivered events went to port (from pid, or any pid when 0). */
static int count_port(const struct seen *s, uint32_t pid, uint16_t port)
{
    int i, n = 0;

    for (i = 0; i < s->count; i++)
        if (s->kind[i] == CONNSCOPE_ADDR_INET && s->port[i] == port && (!pid || s->pid[i] == pid))
            n++;
    return n;
}

/* Polls until n connects to port from pid are delivered, up to 5 s. */
static int wait_port_n(connscope_session *session, const struct seen *s, uint32_t pid, uint16_t port, int n)
{
    time_t end = time(NULL) + 5;

    while (count_port(s, pid, port) < n && time(NULL) < end)
        if (connscope_session_poll(session, 50) < 0)
            break;
    return count_port(s, pid, port) >= n;
}

static int wait_port(connscope_session *session, const struct seen *s, uint32_t pid, uint16_t port)
{
    return wait_port_n(session, s, pid, port, 1);
}

static connscope_session *start(struct seen *seen, const struct connscope_filters *filters)
{
    struct connscope_opts opts = { .sz = sizeof(opts), .dns_mode = CONNSCOPE_DNS_OFF,
                                   .max_latency_ms = 5, .filters = filters };
    struct connscope_callbacks cb = { .sz = sizeof(cb), .ctx = seen, .on_connect = record };
    connscope_session *s = NULL;

    memset(seen, 0, sizeof(*seen));
    CHECK(connscope_session_new(&opts, &cb, &s) == 0);
    return s;
}

static void test_pid_filter(void)
{
    static struct seen seen;
    uint32_t self = (uint32_t)getpid();
    struct connscope_filters f = { .sz = sizeof(f), .exclude_self = CONNSCOPE_SELF_INCLUDE,
                                   .pids = &self, .pid_count = 1 };
    connscope_session *s = start(&seen, &f);
    pid_t child;
    int i;

    if (!s)
        return;
    child = child_connect(AF_INET, 40001); /* another pid: dropped */
    udp_connect(AF_INET, 40002);            /* ours: the sentinel */
    CHECK(wait_port(s, &seen, self, 40002));
    CHECK(count_port(&seen, 0, 40001) == 0);
    for (i = 0; i < seen.count; i++) {
        CHECK(seen.pid[i] == self);
        CHECK(seen.via[i] == CONNSCOPE_VIA_CONNECT); /* udp_connect() is connect(2) */
    }
    printf("pid filter: %d event(s), all from pid %u; child %d's connect dropped\n", seen.count, self,
           (int)child);
    connscope_session_free(s);
}

static void test_family_filter(void)
{
    static struct seen seen;
    uint32_t self = (uint32_t)getpid();
    const uint16_t inet6 = AF_INET6;
    struct connscope_filters f = { .sz = sizeof(f), .exclude_self = CONNSCOPE_SELF_INCLUDE,
                                   .families = &inet6, .family_count = 1 };
    connscope_session *s = start(&seen, &f);
    int i;

    if (!s)
        return;
    udp_connect(AF_INET, 40011);  /* dropped */
    udp_connect(AF_INET6, 40012); /* the sentinel */
    CHECK(wait_port(s, &seen, self, 40012));
    CHECK(count_port(&seen, 0, 40011) == 0);
    for (i = 0; i < seen.count; i++)
        CHECK(seen.family[i] == AF_INET6);
    printf("family filter: %d event(s), all AF_INET6\n", seen.count);
    connscope_session_free(s);
}

static void test_port_filter(void)
{
    static struct seen seen;
    uint32_t self = (uint32_t)getpid();
    const struct connscope_port_range range = { 40020, 40029 };
    struct connscope_filters f = { .sz = sizeof(f), .exclude_self = CONNSCOPE_SELF_INCLUDE,
                                   .ports = &range, .port_count = 1 };
    connscope_session *s = start(&seen, &f);
    int i;

    if (!s)
        return;
    udp_connect(AF_INET, 40019);  /* below: dropped */
    udp_connect(AF_INET6, 40030); /* above: dropped */
    udp_connect(AF_INET, 40020);  /* both ends are inside */
    udp_connect(AF_INET6, 40029);
    CHECK(wait_port(s, &seen, self, 40029));
    CHECK(count_port(&seen, self, 40020) == 1);
    CHECK(count_port(&seen, 0, 40019) == 0);
    CHECK(count_port(&seen, 0, 40030) == 0);
    for (i = 0; i < seen.count; i++)
        CHECK(seen.kind[i] == CONNSCOPE_ADDR_INET && seen.port[i] >= 40020 && seen.port[i] <= 40029);
    printf("port filter: %d event(s), all to ports 40020-40029\n", seen.count);
    connscope_session_free(s);
}

static void test_set_filters(void)
{
    static struct seen seen;
    uint32_t self = (uint32_t)getpid();
    const struct connscope_port_range only_40050 = { 40050, 40050 };
    const uint16_t bogus_family = 99;
    struct connscope_filters f = { .sz = sizeof(f), .exclude_self = CONNSCOPE_SELF_INCLUDE };
    connscope_session *s = start(&seen, &f);
    pid_t child;

    if (!s)
        return;
    /* Before the change: every connect, ours included. */
    udp_connect(AF_INET, 40041);
    CHECK(wait_port(s, &seen, self, 40041));

    /* After it: only port 40050. */
    f.ports = &only_40050;
    f.port_count = 1;
    CHECK(connscope_session_set_filters(s, &f) == 0);
    udp_connect(AF_INET, 40042);
    udp_connect(AF_INET, 40050);
    CHECK(wait_port(s, &seen, self, 40050));
    CHECK(count_port(&seen, 0, 40042) == 0);

    /* A bad set is refused whole and leaves the old one in force. */
    f.families = &bogus_family;
    f.family_count = 1;
    CHECK(connscope_session_set_filters(s, &f) == -EINVAL);
    CHECK(strstr(connscope_last_error(), "99") != NULL);
    udp_connect(AF_INET, 40043);
    udp_connect(AF_INET, 40050);
    CHECK(wait_port_n(s, &seen, self, 40050, 2));
    CHECK(count_port(&seen, 0, 40043) == 0);

    /* NULL restores the defaults: any connect but our own. */
    CHECK(connscope_session_set_filters(s, NULL) == 0);
    udp_connect(AF_INET, 40044);                 /* ours: dropped */
    child = child_connect(AF_INET, 40045);       /* the sentinel */
    CHECK(wait_port(s, &seen, (uint32_t)child, 40045));
    CHECK(count_port(&seen, 0, 40044) == 0);
    printf("set_filters: reported before the change, dropped after it; NULL restored the defaults\n");
    connscope_session_free(s);
}

int main(void)
{
    if (geteuid() != 0) {
        fprintf(stderr, "filters: needs root (CAP_BPF, CAP_PERFMON, CAP_NET_ADMIN); skipping\n");
        return 77;
    }
    test_pid_filter();
    test_family_filter();
    test_port_filter();
    test_set_filters();
    printf("%s: %d failure(s)\n", failures ? "FAIL" : "ok", failures);
    return failures ? 1 : 0;
}
