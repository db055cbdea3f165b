/* SPDX-License-Identifier: LGPL-2.1-or-later OR BSD-2-Clause */
/*
 * The in-kernel scope filters every connect backend applies before it
 * reserves a record: the filter maps, which user space changes while the
 * programs run (maps, not reloads), and the checks against them.
 */
#ifndef CONNSCOPE_FILTERS_BPF_H
#define CONNSCOPE_FILTERS_BPF_H

#include "ring.bpf.h"

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct cs_filter_config);
} filter_config SEC(".maps") __weak;

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, CS_FILTER_SET_MAX);
	__type(key, __u32);
	__type(value, __u8);
} filter_pids SEC(".maps") __weak;

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, CS_FILTER_SET_MAX);
	__type(key, __u32);
	__type(value, __u8);
} filter_uids SEC(".maps") __weak;

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, CS_FILTER_SET_MAX);
	__type(key, char[CS_COMM_LEN]);
	__type(value, __u8);
} filter_comms SEC(".maps") __weak;

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, CS_FILTER_SET_MAX);
	__type(key, __u64);
	__type(value, __u8);
} filter_cgroups SEC(".maps") __weak;

/*
 * Whether the current task is in one of the filter's cgroups or below one.
 * Every read goes through the helper anyway, so the task pointer need not be
 * the BTF-typed one (which 5.10 lacks).
 */
static __always_inline bool in_filtered_cgroup(void)
{
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	struct cgroup *cg = BPF_CORE_READ(task, cgroups, dfl_cgrp);

	for (int depth = 0; depth < CS_FILTER_CGROUP_DEPTH && cg; depth++) {
		__u64 id = BPF_CORE_READ(cg, kn, id);
		struct cgroup_subsys_state *parent;

		if (bpf_map_lookup_elem(&filter_cgroups, &id))
			return true;
		parent = BPF_CORE_READ(cg, self.parent);
		if (!parent)
			break;
		cg = (void *)parent - bpf_core_field_offset(struct cgroup, self);
	}
	return false;
}

/*
 * The scope filters, evaluated before anything is reserved so that a
 * filtered-out connect costs about what an empty hook costs. port is in host
 * order; a connect without a port (UNIX) never matches a port filter.
 */
static __always_inline bool connect_wanted(__u16 family, __u16 port, bool has_port)
{
	struct cs_filter_config *cfg;
	__u32 zero = 0, flags;

	cfg = bpf_map_lookup_elem(&filter_config, &zero);
	if (!cfg || !(flags = cfg->flags))
		return true;
	if (has_port && cfg->canary_port && port == cfg->canary_port &&
	    (bpf_get_current_pid_tgid() >> 32) == cfg->self_tgid)
		return true;
	if (flags & CS_FILTER_FAMILY) {
		if (family >= 32 || !(cfg->families & (1u << family)))
			return false;
	}
	if (flags & CS_FILTER_PORT) {
		bool hit = false;

		if (!has_port)
			return false;
		for (int i = 0; i < CS_FILTER_PORT_RANGES_MAX; i++) {
			if (i >= cfg->port_range_count)
				break;
			if (port >= cfg->port_ranges[i].first && port <= cfg->port_ranges[i].last) {
				hit = true;
				break;
			}
		}
		if (!hit)
			return false;
	}
	if (flags & (CS_FILTER_PID | CS_FILTER_EXCLUDE_SELF)) {
		__u32 tgid = bpf_get_current_pid_tgid() >> 32;

		if ((flags & CS_FILTER_EXCLUDE_SELF) && tgid == cfg->self_tgid)
			return false;
		if ((flags & CS_FILTER_PID) && !bpf_map_lookup_elem(&filter_pids, &tgid))
			return false;
	}
	if (flags & CS_FILTER_UID) {
		__u32 uid = (__u32)bpf_get_current_uid_gid();

		if (!bpf_map_lookup_elem(&filter_uids, &uid))
			return false;
	}
	if (flags & CS_FILTER_COMM) {
		char comm[CS_COMM_LEN] = {};

		bpf_get_current_comm(comm, sizeof(comm));
		if (!bpf_map_lookup_elem(&filter_comms, comm))
			return false;
	}
	if ((flags & CS_FILTER_CGROUP) && !in_filtered_cgroup())
		return false;
	return true;
}

/* Reads family and port of a sockaddr for the filters; false if unreadable. */
static __always_inline bool peek_sockaddr(const void *addr, int addrlen, bool user, __u16 *family,
					  __u16 *port)
{
	__u16 head[2] = {};

	if (addrlen < 2)
		return false;
	if (user ? bpf_probe_read_user(head, addrlen >= 4 ? 4 : 2, addr)
		 : bpf_probe_read_kernel(head, addrlen >= 4 ? 4 : 2, addr))
		return false;
	*family = head[0];
	*port = bpf_ntohs(head[1]);
	return true;
}

/* Whether a connect to this sockaddr passes the filters. */
static __always_inline bool sockaddr_wanted(const void *addr, int addrlen, bool user)
{
	__u16 family = 0, port = 0;
	bool readable = peek_sockaddr(addr, addrlen, user, &family, &port);

	return connect_wanted(family, port,
			      readable && addrlen >= 4 && (family == AF_INET || family == AF_INET6));
}

#endif
