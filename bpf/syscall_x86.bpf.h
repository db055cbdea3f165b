/* SPDX-License-Identifier: LGPL-2.1-or-later OR BSD-2-Clause */
/* x86_64's part of syscall.bpf.h: orig_ax and di, and the ia32 system calls. */
#ifndef CONNSCOPE_SYSCALL_X86_BPF_H
#define CONNSCOPE_SYSCALL_X86_BPF_H

/* System call numbers (orig_ax) a connect can come from on x86_64... */
#define NR_CONNECT 42
#define NR_SENDTO 44
#define NR_SENDMSG 46
#define NR_SENDMMSG 307
/* ...and for a 32-bit task (ia32 emulation). */
#define NR_SOCKETCALL_I386 102
#define NR_SENDMMSG_I386 345
#define NR_CONNECT_I386 362
#define NR_SENDTO_I386 369
#define NR_SENDMSG_I386 370
/* socketcall's call number for connect (the others that reach a hook are sends). */
#define SYS_CONNECT 3
/* thread_info.status while a 32-bit system call runs (x86's TS_COMPAT). */
#define TS_COMPAT 0x0002
/* TOP_OF_KERNEL_STACK_PADDING on x86 FRED kernels; 0 without FRED. */
#define FRED_STACK_PADDING 16

/* The system call's arguments in tp_btf/sys_enter's registers (the kernel's
 * syscall_get_arguments(): the fourth is in r10, not cx). */
#define SYS_ENTER_ARG0(r) BPF_CORE_READ(r, di)
#define SYS_ENTER_ARG1(r) BPF_CORE_READ(r, si)
#define SYS_ENTER_ARG2(r) BPF_CORE_READ(r, dx)
#define SYS_ENTER_ARG3(r) BPF_CORE_READ(r, r10)
#define SYS_ENTER_ARG4(r) BPF_CORE_READ(r, r8)
#define SYS_ENTER_ARG5(r) BPF_CORE_READ(r, r9)
#define SYS_ENTER_ARG(r, n) SYS_ENTER_ARG##n(r)

/* Whether task is in a 32-bit system call (x86's in_ia32_syscall()). */
static __always_inline bool in_compat_syscall(struct task_struct *task, bool task_btf)
{
	if (!bpf_core_field_exists(task->thread_info.status))
		return false;
	return (task_btf ? task->thread_info.status : BPF_CORE_READ(task, thread_info.status)) & TS_COMPAT;
}

/*
 * sockfd is not an argument of the hooks: it is the first argument of the
 * system call, read from the saved user registers, but only for the calls
 * that name a socket (io_uring and socketcall have no fd register to give).
 * x86 FRED kernels pad the stack top, so both layouts are tried; orig_ax
 * must be one of these calls for either to count. A 32-bit task's calls
 * (int 0x80 or a 32-bit program) have their own numbers, and the fd in bx.
 */
static __always_inline struct connect_origin syscall_origin(void *stack, bool compat)
{
	struct connect_origin out = {.fd = -1, .via = CS_VIA_UNKNOWN};
	__u32 pad;

	for (pad = 0; pad <= FRED_STACK_PADDING; pad += FRED_STACK_PADDING) {
		struct pt_regs *regs = stack + thread_size - pad - bpf_core_type_size(struct pt_regs);
		/* di and orig_ax are neighbours in x86_64's pt_regs: one read for both. */
		struct {
			unsigned long di;
			unsigned long orig_ax;
		} tail;
		unsigned long bx = 0;

		if (bpf_core_field_offset(struct pt_regs, orig_ax) !=
		    bpf_core_field_offset(struct pt_regs, di) + sizeof(tail.di))
			return out;
		if (bpf_probe_read_kernel(&tail, sizeof(tail), &regs->di))
			continue;
		if (!compat) {
			switch (tail.orig_ax) {
			case NR_CONNECT:
				out.via = CS_VIA_CONNECT;
				break;
			case NR_SENDTO:
			case NR_SENDMSG:
			case NR_SENDMMSG:
				out.via = CS_VIA_FASTOPEN;
				break;
			case NR_IO_URING_ENTER:
				out.via = CS_VIA_IO_URING;
				return out;
			default:
				continue;
			}
			out.fd = (__s32)tail.di;
			return out;
		}
		/* bx holds the fd, or socketcall's call number. */
		if (bpf_probe_read_kernel(&bx, sizeof(bx), &regs->bx))
			continue;
		switch (tail.orig_ax) {
		case NR_IO_URING_ENTER:
			out.via = CS_VIA_IO_URING;
			return out;
		case NR_SOCKETCALL_I386: /* the fd is in the caller's argument array */
			out.via = bx == SYS_CONNECT ? CS_VIA_CONNECT : CS_VIA_FASTOPEN;
			return out;
		case NR_CONNECT_I386:
			out.via = CS_VIA_CONNECT;
			break;
		case NR_SENDTO_I386:
		case NR_SENDMSG_I386:
		case NR_SENDMMSG_I386:
			out.via = CS_VIA_FASTOPEN;
			break;
		default:
			continue;
		}
		out.fd = (__s32)bx;
		return out;
	}
	return out;
}

/* The system call number in registers the kernel saved. */
#define SYSCALL_NR(r) BPF_CORE_READ(r, orig_ax)

/*
 * The user registers the current system call saved, when it is the native
 * call nr (the top of the kernel stack, FRED padding or not), else NULL: for
 * reading a call's arguments (SYS_ENTER_ARG) where a hook is not given them,
 * at the call's exit too.
 */
static __always_inline struct pt_regs *current_syscall_regs(unsigned long nr)
{
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	void *stack = BPF_CORE_READ(task, stack);
	__u32 pad;

	if (!stack || in_compat_syscall(task, false))
		return 0;
	for (pad = 0; pad <= FRED_STACK_PADDING; pad += FRED_STACK_PADDING) {
		struct pt_regs *regs = stack + thread_size - pad - bpf_core_type_size(struct pt_regs);
		unsigned long orig_ax = 0;

		if (!bpf_probe_read_kernel(&orig_ax, sizeof(orig_ax), &regs->orig_ax) && orig_ax == nr)
			return regs;
	}
	return 0;
}

#endif
