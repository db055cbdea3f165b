/* SPDX-License-Identifier: LGPL-2.1-or-later OR BSD-2-Clause */
/*
 * What every BPF object needs: the includes, the one ring buffer all programs
 * of a Session write to, the per-CPU loss counters, the wakeup policy and the
 * license. Maps and settings are __weak so that every .bpf.c can include this
 * header and `bpftool gen object` links them into one object with one copy of
 * each; user space points the other objects of a Session at the first one's
 * ring and counters (bpf_map__reuse_fd).
 */
#ifndef CONNSCOPE_RING_BPF_H
#define CONNSCOPE_RING_BPF_H

#include "vmlinux.h"
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#include "wire.h"

/* Kernel macros, which vmlinux.h cannot carry (BTF has no macros). */
#define AF_UNIX 1
#define AF_INET 2
#define AF_INET6 10

/* Sized by user space before load (Options::ring_size). */
struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 1 << 22);
} events_rb SEC(".maps") __weak;

/* Reservation failures by record type, per CPU so counting never contends. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, CS_REC_TYPES);
	__type(key, __u32);
	__type(value, __u64);
} lost_counts SEC(".maps") __weak;

/* Ring fill, in bytes, past which a submit wakes the consumer. */
const volatile __u64 wakeup_watermark __weak = 1 << 20;

static __always_inline void count_lost(__u32 type)
{
	__u64 *n = bpf_map_lookup_elem(&lost_counts, &type);
	if (n)
		*n += 1;
}

/* Submit without a wakeup unless the ring is filling up (ARCHITECTURE.md). */
static __always_inline __u64 submit_flags(void)
{
	return bpf_ringbuf_query(&events_rb, BPF_RB_AVAIL_DATA) >= wakeup_watermark
		       ? BPF_RB_FORCE_WAKEUP
		       : BPF_RB_NO_WAKEUP;
}

/* GPL-compatible: the programs use GPL-only helpers (bpf_probe_read_kernel). */
char LICENSE[] SEC("license") __weak = "Dual BSD/GPL";

#endif
