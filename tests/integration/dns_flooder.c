// SPDX-License-Identifier: LGPL-2.1-or-later OR BSD-2-Clause
/*
 * The attacker of issue 19, for tests/integration/test_dns_flood.cpp: run in
 * a user and network namespace of its own (`unshare -U -r -n`, as an
 * unprivileged uid), it sets lo up, binds a DNS server on 127.0.0.1:53, and
 * sends its own client socket distinct answers (n<i>.flood.test A 10.x.y.z,
 * TTL 300) as fast as it can for the given seconds. The client socket
 * connects to port 53 first, as a resolver would, so the capture marks it.
 *
 * usage: dns-flooder SECONDS
 * Prints "sent N answers in S s" on stdout; exit 0, or 1 with what failed.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <net/if.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define BATCH 64
#define MSG_MAX 128

static int fail(const char *what)
{
	fprintf(stderr, "dns-flooder: %s: %s\n", what, strerror(errno));
	return 1;
}

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int loopback_up(void)
{
	struct ifreq ifr;
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	int rc;

	if (fd < 0)
		return -1;
	memset(&ifr, 0, sizeof(ifr));
	strcpy(ifr.ifr_name, "lo");
	rc = ioctl(fd, SIOCGIFFLAGS, &ifr);
	if (rc == 0) {
		ifr.ifr_flags |= IFF_UP;
		rc = ioctl(fd, SIOCSIFFLAGS, &ifr);
	}
	close(fd);
	return rc;
}

/* One answer: header, question n<i>.flood.test A IN, answer by pointer. */
static size_t build_answer(uint8_t *m, uint32_t i)
{
	char label[16];
	size_t n = 0, len;

	memset(m, 0, 12);
	m[0] = (uint8_t)(i >> 8);
	m[1] = (uint8_t)i;
	m[2] = 0x81; /* QR, RD */
	m[3] = 0x80; /* RA, NOERROR */
	m[5] = 1;    /* QDCOUNT */
	m[7] = 1;    /* ANCOUNT */
	n = 12;
	len = (size_t)snprintf(label, sizeof(label), "n%u", i);
	m[n++] = (uint8_t)len;
	memcpy(m + n, label, len);
	n += len;
	m[n++] = 5;
	memcpy(m + n, "flood", 5);
	n += 5;
	m[n++] = 4;
	memcpy(m + n, "test", 4);
	n += 4;
	m[n++] = 0;
	m[n++] = 0, m[n++] = 1; /* A */
	m[n++] = 0, m[n++] = 1; /* IN */
	m[n++] = 0xc0, m[n++] = 12; /* the question's name */
	m[n++] = 0, m[n++] = 1;
	m[n++] = 0, m[n++] = 1;
	m[n++] = 0, m[n++] = 0, m[n++] = 0x01, m[n++] = 0x2c; /* TTL 300 */
	m[n++] = 0, m[n++] = 4;
	m[n++] = 10;
	m[n++] = (uint8_t)(i >> 16);
	m[n++] = (uint8_t)(i >> 8);
	m[n++] = (uint8_t)i;
	return n;
}

int main(int argc, char **argv)
{
	struct sockaddr_in server = {.sin_family = AF_INET, .sin_port = htons(53)};
	struct sockaddr_in client = {.sin_family = AF_INET};
	socklen_t client_len = sizeof(client);
	static uint8_t bufs[BATCH][MSG_MAX];
	struct mmsghdr msgs[BATCH];
	struct iovec iov[BATCH];
	uint64_t sent = 0;
	uint32_t next = 0;
	double seconds, start, end;
	int srv, cli;

	if (argc != 2 || (seconds = atof(argv[1])) <= 0) {
		fprintf(stderr, "usage: dns-flooder SECONDS\n");
		return 2;
	}
	if (loopback_up())
		return fail("setting lo up (run me in a network namespace of my own, e.g. unshare -U -r -n)");
	server.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	client.sin_addr.s_addr = htonl(INADDR_LOOPBACK);

	srv = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (srv < 0 || bind(srv, (struct sockaddr *)&server, sizeof(server)))
		return fail("binding 127.0.0.1:53");
	cli = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (cli < 0 || bind(cli, (struct sockaddr *)&client, sizeof(client)) ||
	    getsockname(cli, (struct sockaddr *)&client, &client_len))
		return fail("binding the client socket");
	/* As a resolver does: the capture marks the socket here. */
	if (connect(cli, (struct sockaddr *)&server, sizeof(server)))
		return fail("connecting the client socket to 127.0.0.1:53");
	if (send(cli, "q", 1, 0) != 1)
		return fail("sending a query");

	memset(msgs, 0, sizeof(msgs));
	for (int k = 0; k < BATCH; k++) {
		iov[k].iov_base = bufs[k];
		msgs[k].msg_hdr.msg_iov = &iov[k];
		msgs[k].msg_hdr.msg_iovlen = 1;
		msgs[k].msg_hdr.msg_name = &client;
		msgs[k].msg_hdr.msg_namelen = sizeof(client);
	}
	start = now_s();
	end = start + seconds;
	/* The client never reads: the capture (cgroup_skb/ingress, in
	 * sk_filter) runs before the receive queue's limit drops a datagram,
	 * so every answer sent is one the tracer must handle. */
	for (;;) {
		int n;

		for (int k = 0; k < BATCH; k++)
			iov[k].iov_len = build_answer(bufs[k], next++);
		n = sendmmsg(srv, msgs, BATCH, 0);
		if (n < 0 && errno != ENOBUFS && errno != EAGAIN && errno != EINTR)
			return fail("sending answers");
		if (n > 0)
			sent += (uint64_t)n;
		if ((next & 4095) == 0 && now_s() >= end)
			break;
	}
	printf("sent %llu answers in %.2f s\n", (unsigned long long)sent, now_s() - start);
	return 0;
}
