/* SPDX-License-Identifier: LGPL-2.1-or-later OR BSD-2-Clause */
/*
 * The C API's contract, checked as a C program sees it: sz handling (libbpf's
 * OPTS_VALID), error codes and messages, per-thread last error, NULL safety,
 * and (as root) a callback's negative return ending the poll with that value.
 */
#define _GNU_SOURCE
#include <connscope/connscope.h>

#include "support/check.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>


/* A caller built against a newer header: the known struct plus a new field. */
struct newer_opts {
    struct connscope_opts known;
    uint64_t future_field;
};

static void *other_thread(void *arg)
{
    *(const char **)arg = connscope_last_error();
    return NULL;
}

static int stop_with_42(const struct connscope_connect_event *ev, void *ctx)
{
    (void)ev;
    ++*(int *)ctx;
    return -42;
}

static void unprivileged_checks(void)
{
    connscope_session *s = (connscope_session *)&failures; /* must be reset to NULL */
    struct newer_opts newer;
    struct connscope_opts opts;
    const char *seen = NULL;
    pthread_t t;

    CHECK(strcmp(connscope_version(), CONNSCOPE_VERSION_STRING) == 0);
    CHECK(strcmp(connscope_strerror(-EPERM), "Operation not permitted") == 0);
    CHECK(strcmp(connscope_strerror(EPERM), "Operation not permitted") == 0);
    CHECK(strstr(connscope_strerror(-CONNSCOPE_EBACKEND), "backend") != NULL);
    CHECK(strstr(connscope_strerror(-123456), "123456") != NULL);
    CHECK(strcmp(connscope_last_error(), "") == 0);

    /* Unknown non-zero bytes past what the library knows are refused. */
    memset(&newer, 0, sizeof(newer));
    newer.known.sz = sizeof(newer);
    newer.future_field = 1;
    CHECK(connscope_session_new(&newer.known, NULL, &s) == -EINVAL);
    CHECK(s == NULL);
    CHECK(strstr(connscope_last_error(), "newer") != NULL);

    /* A last error belongs to its thread. */
    CHECK(pthread_create(&t, NULL, other_thread, &seen) == 0);
    pthread_join(t, NULL);
    CHECK(seen && strcmp(seen, "") == 0);

    /* sz too small to hold sz. */
    memset(&opts, 0, sizeof(opts));
    opts.sz = 1;
    CHECK(connscope_session_new(&opts, NULL, &s) == -EINVAL);

    /* Bad values name what is valid. */
    memset(&opts, 0, sizeof(opts));
    opts.sz = sizeof(opts);
    opts.dns_mode = 7;
    CHECK(connscope_session_new(&opts, NULL, &s) == -EINVAL);
    CHECK(strstr(connscope_last_error(), "CONNSCOPE_DNS_OFF") != NULL);
    opts.dns_mode = CONNSCOPE_DNS_DEFAULT;
    opts.backends = "bogus";
    CHECK(connscope_session_new(&opts, NULL, &s) == -EINVAL);
    CHECK(strstr(connscope_last_error(), "bogus") != NULL);
    opts.backends = NULL;
    opts.dns_port_count = 2;
    CHECK(connscope_session_new(&opts, NULL, &s) == -EINVAL);
    CHECK(connscope_session_new(NULL, NULL, NULL) == -EINVAL);

    /* Filters: checked before anything is attached. */
    {
        struct connscope_filters f;
        struct { struct connscope_filters known; uint64_t future_field; } newer_f;
        const char *const comms[] = { "curl", NULL };
        uint16_t families[] = { 10 };

        memset(&opts, 0, sizeof(opts));
        opts.sz = sizeof(opts);
        opts.filters = &f;
        memset(&f, 0, sizeof(f));
        f.sz = sizeof(f);
        f.exclude_self = 3;
        CHECK(connscope_session_new(&opts, NULL, &s) == -EINVAL);
        CHECK(strstr(connscope_last_error(), "CONNSCOPE_SELF_INCLUDE") != NULL);
        f.exclude_self = CONNSCOPE_SELF_INCLUDE;
        f.pid_count = 1; /* pids is NULL */
        CHECK(connscope_session_new(&opts, NULL, &s) == -EINVAL);
        CHECK(strstr(connscope_last_error(), "pids is NULL") != NULL);
        f.pid_count = 0;
        f.families = families; /* family_count is 0 */
        CHECK(connscope_session_new(&opts, NULL, &s) == -EINVAL);
        CHECK(strstr(connscope_last_error(), "family_count") != NULL);
        f.families = NULL;
        f.comms = comms;
        f.comm_count = 2; /* comms[1] is NULL */
        CHECK(connscope_session_new(&opts, NULL, &s) == -EINVAL);
        CHECK(strstr(connscope_last_error(), "comms[1]") != NULL);
        f.sz = 4;
        CHECK(connscope_session_new(&opts, NULL, &s) == -EINVAL);
        CHECK(strstr(connscope_last_error(), "connscope_filters") != NULL);

        memset(&newer_f, 0, sizeof(newer_f));
        newer_f.known.sz = sizeof(newer_f);
        newer_f.future_field = 1;
        opts.filters = &newer_f.known;
        CHECK(connscope_session_new(&opts, NULL, &s) == -EINVAL);
        CHECK(strstr(connscope_last_error(), "newer") != NULL);
        CHECK(s == NULL);
        CHECK(connscope_session_set_filters(NULL, NULL) == -EINVAL);
        CHECK(strstr(connscope_last_error(), "connscope_session_set_filters") != NULL);
    }

    /* NULL sessions. */
    connscope_session_free(NULL);
    CHECK(connscope_session_poll(NULL, 0) == -EINVAL);
    CHECK(connscope_session_consume(NULL) == -EINVAL);
    CHECK(connscope_session_fd(NULL) == -EINVAL);
    CHECK(strstr(connscope_last_error(), "connscope_session_fd") != NULL);
}

static void privileged_checks(void)
{
    /* Only this process's connects, which the default would leave out. */
    uint32_t self = (uint32_t)getpid();
    struct connscope_filters filters = { .sz = sizeof(filters), .exclude_self = CONNSCOPE_SELF_INCLUDE,
                                         .pids = &self, .pid_count = 1 };
    struct newer_opts newer;
    int calls = 0, rc = 0, i, fd;
    struct connscope_callbacks cb = { .sz = sizeof(cb), .ctx = &calls, .on_connect = stop_with_42 };
    struct { struct connscope_stats st; uint64_t canary; } small;
    struct connscope_backend_info info = { .sz = sizeof(info) };
    struct connscope_backend_status status = { .sz = sizeof(status) };
    struct sockaddr_in sin;
    connscope_session *s;

    /* A newer caller whose new fields are zero is accepted. */
    memset(&newer, 0, sizeof(newer));
    newer.known.sz = sizeof(newer);
    newer.known.dns_mode = CONNSCOPE_DNS_OFF;
    newer.known.filters = &filters;
    rc = connscope_session_new(&newer.known, &cb, &s);
    CHECK(rc == 0);
    if (rc < 0)
        return;
    CHECK(connscope_session_fd(s) >= 0);

    fd = socket(AF_INET, SOCK_DGRAM, 0);
    memset(&sin, 0, sizeof(sin));
    sin.sin_family = AF_INET;
    sin.sin_port = htons(9);
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    CHECK(connect(fd, (struct sockaddr *)&sin, sizeof(sin)) == 0);
    close(fd);
    /* The callback returns -42: the poll stops there and returns -42. */
    for (i = 0, rc = 0; i < 50 && rc >= 0; i++)
        rc = connscope_session_poll(s, 100);
    CHECK(rc == -42);
    CHECK(calls == 1);

    /* An older caller's smaller stats struct: nothing past its sz is written. */
    memset(&small, 0xab, sizeof(small));
    small.st.sz = offsetof(struct connscope_stats, tcp_events);
    CHECK(connscope_session_stats(s, &small.st) == 0);
    CHECK(small.st.events >= 1);
    CHECK(small.st.tcp_events == 0xababababababababULL);
    CHECK(small.canary == 0xababababababababULL);

    CHECK(connscope_session_backend(s, &info) == 0);
    CHECK(info.name && info.reason && info.dns && info.gaps && info.tried_count > 0);
    CHECK(info.gaps[info.gap_count] == NULL);
    CHECK(connscope_session_backend_tried(s, info.tried_count - 1, &status) == 0);
    CHECK(status.name && status.reason);
    CHECK(connscope_session_backend_tried(s, info.tried_count, &status) == -ERANGE);
    printf("backend %s (%zu tried); poll stopped with %d after %d callback(s)\n", info.name,
           info.tried_count, rc, calls);
    connscope_session_free(s);
}

int main(void)
{
    unprivileged_checks();
    if (geteuid() == 0)
        privileged_checks();
    printf("%s: %d failure(s)%s\n", failures ? "FAIL" : "ok", failures,
           geteuid() == 0 ? "" : " (root-only checks skipped)");
    return failures ? 1 : 0;
}
