/* SPDX-License-Identifier: LGPL-2.1-or-later OR BSD-2-Clause */
/*
 * Built with connscope as a meson subproject. Makes a UDP connect to ::1 and
 * must see it with its pid, fd, port and network namespace. Exits 77 when not root.
 */
#include <connscope/connscope.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

struct expect {
    uint32_t pid, net_ns;
    int fd;
    uint16_t port;
    int seen;
};

static int on_connect(const struct connscope_connect_event *ev, void *ctx)
{
    struct expect *e = ctx;
    const struct connscope_address *a = ev->remote_addr;

    if (ev->size >= sizeof(*ev) && ev->process->pid == e->pid && ev->sockfd == e->fd &&
        ev->process->net_ns == e->net_ns && a->kind == CONNSCOPE_ADDR_INET && a->family == AF_INET6 &&
        a->port == e->port && strcmp(a->ip_text, "::1") == 0 && !ev->toctou)
        e->seen = 1;
    return 0;
}

int main(void)
{
    struct expect e = { 0 };
    struct connscope_callbacks cb = { .sz = sizeof(cb), .ctx = &e, .on_connect = on_connect };
    /* The connect to watch is our own, which the default leaves out. */
    struct connscope_filters filters = { .sz = sizeof(filters), .exclude_self = CONNSCOPE_SELF_INCLUDE };
    struct connscope_opts opts = { .sz = sizeof(opts), .dns_mode = CONNSCOPE_DNS_OFF,
                                   .filters = &filters };
    struct sockaddr_in6 sin6;
    struct stat st;
    connscope_session *s;
    time_t end;
    int err;

    if (geteuid() != 0) {
        fprintf(stderr, "consumer: needs root; skipping\n");
        return 77;
    }
    if (stat("/proc/self/ns/net", &st) < 0)
        return 1;
    e.pid = (uint32_t)getpid();
    e.net_ns = (uint32_t)st.st_ino;
    e.port = 9;

    err = connscope_session_new(&opts, &cb, &s);
    if (err < 0) {
        fprintf(stderr, "consumer: %s\n", connscope_last_error());
        return 1;
    }
    memset(&sin6, 0, sizeof(sin6));
    sin6.sin6_family = AF_INET6;
    sin6.sin6_port = htons(e.port);
    sin6.sin6_addr = in6addr_loopback;
    e.fd = socket(AF_INET6, SOCK_DGRAM, 0);
    if (e.fd < 0 || connect(e.fd, (struct sockaddr *)&sin6, sizeof(sin6)) < 0) {
        perror("consumer: connect");
        connscope_session_free(s);
        return 1;
    }
    end = time(NULL) + 5;
    while (!e.seen && time(NULL) < end)
        if (connscope_session_poll(s, 100) < 0)
            break;
    connscope_session_free(s);
    close(e.fd);
    printf("consumer (subproject): own connect to [::1]:9 %s\n", e.seen ? "seen" : "NOT seen");
    return e.seen ? 0 : 1;
}
