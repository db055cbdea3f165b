/* SPDX-License-Identifier: LGPL-2.1-or-later OR BSD-2-Clause */
/*
 * arm64's part of syscall.bpf.h: syscallno and orig_x0 of struct pt_regs,
 * and the AArch32 (compat) system calls. There is no socketcall (AArch32
 * tasks are EABI, which has the socket calls as system calls of their own)
 * and no padding above the registers.
 */
#ifndef CONNSCOPE_SYSCALL_ARM64_BPF_H
#define CONNSCOPE_SYSCALL_ARM64_BPF_H

/* System call numbers (syscallno) a connect can come from on arm64
 * (asm-generic's table)... */
#define NR_CONNECT 203
#define NR_SENDTO 206
#define NR_SENDMSG 211
#define NR_SENDMMSG 269
/* ...and for an AArch32 task (arch/arm's EABI table). */
#define NR_CONNECT_ARM 283
#define NR_SENDTO_ARM 290
#define NR_SENDMSG_ARM 296
#define NR_SENDMMSG_ARM 374
/* thread_info.flags bit of an AArch32 task (arm64's TIF_32BIT, 22 since
 * Linux 3.7). Such a task makes only 32-bit system calls. */
#define TIF_32BIT 22

/* The system call's arguments in tp_btf/sys_enter's registers (the kernel's
 * syscall_get_arguments(): the first from orig_x0, as x0 becomes the return
 * value). */
#define SYS_ENTER_ARG0(r) BPF_CORE_READ(r, orig_x0)
#define SYS_ENTER_ARG1(r) BPF_CORE_READ(r, regs[1])
#define SYS_ENTER_ARG2(r) BPF_CORE_READ(r, regs[2])
#define SYS_ENTER_ARG3(r) BPF_CORE_READ(r, regs[3])
#define SYS_ENTER_ARG4(r) BPF_CORE_READ(r, regs[4])
#define SYS_ENTER_ARG5(r) BPF_CORE_READ(r, regs[5])
#define SYS_ENTER_ARG(r, n) SYS_ENTER_ARG##n(r)

/* Whether task is an AArch32 one (arm64's is_compat_thread()). */
static __always_inline bool in_compat_syscall(struct task_struct *task, bool task_btf)
{
	unsigned long flags = task_btf ? task->thread_info.flags : BPF_CORE_READ(task, thread_info.flags);

	return (flags >> TIF_32BIT) & 1;
}

/*
 * sockfd: the first argument of the system call, which arm64 keeps in
 * orig_x0 (x0 is overwritten by the return value), for the calls that name
 * a socket; syscallno says which call it is, and is NO_SYSCALL (-1) when the
 * registers are not a system call's. An AArch32 task's r0 is x0, its numbers
 * are arch/arm's.
 */
static __always_inline struct connect_origin syscall_origin(void *stack, bool compat)
{
	struct connect_origin out = {.fd = -1, .via = CS_VIA_UNKNOWN};
	struct pt_regs *regs = stack + thread_size - bpf_core_type_size(struct pt_regs);
	/* orig_x0 and syscallno are neighbours in arm64's pt_regs: one read for both. */
	struct {
		__u64 orig_x0;
		__s32 syscallno;
	} tail;

	if (bpf_core_field_offset(struct pt_regs, syscallno) !=
	    bpf_core_field_offset(struct pt_regs, orig_x0) + sizeof(tail.orig_x0))
		return out;
	if (bpf_probe_read_kernel(&tail, sizeof(tail.orig_x0) + sizeof(tail.syscallno), &regs->orig_x0))
		return out;
	if (tail.syscallno == NR_IO_URING_ENTER) {
		out.via = CS_VIA_IO_URING;
		return out;
	}
	if (!compat) {
		switch (tail.syscallno) {
		case NR_CONNECT:
			out.via = CS_VIA_CONNECT;
			break;
		case NR_SENDTO:
		case NR_SENDMSG:
		case NR_SENDMMSG:
			out.via = CS_VIA_FASTOPEN;
			break;
		default:
			return out;
		}
	} else {
		switch (tail.syscallno) {
		case NR_CONNECT_ARM:
			out.via = CS_VIA_CONNECT;
			break;
		case NR_SENDTO_ARM:
		case NR_SENDMSG_ARM:
		case NR_SENDMMSG_ARM:
			out.via = CS_VIA_FASTOPEN;
			break;
		default:
			return out;
		}
	}
	out.fd = (__s32)tail.orig_x0;
	return out;
}

/* The system call number in registers the kernel saved. */
#define SYSCALL_NR(r) BPF_CORE_READ(r, syscallno)

/*
 * The user registers the current system call saved, when it is the native
 * call nr, else NULL: for reading a call's arguments (SYS_ENTER_ARG: the
 * first is in orig_x0, which the return value does not overwrite) where a
 * hook is not given them, at the call's exit too.
 */
static __always_inline struct pt_regs *current_syscall_regs(unsigned long nr)
{
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	void *stack = BPF_CORE_READ(task, stack);
	struct pt_regs *regs;
	int syscallno = -1;

	if (!stack || in_compat_syscall(task, false))
		return 0;
	regs = stack + thread_size - bpf_core_type_size(struct pt_regs);
	if (bpf_probe_read_kernel(&syscallno, sizeof(syscallno), &regs->syscallno) || syscallno != (int)nr)
		return 0;
	return regs;
}

#endif
