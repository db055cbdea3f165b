/* SPDX-License-Identifier: LGPL-2.1-or-later OR BSD-2-Clause */
/*
 * Which system call the current task is in, and its first argument, read
 * from the user registers the kernel saved at the top of the task's kernel
 * stack (task->stack + THREAD_SIZE - sizeof(struct pt_regs) on x86_64 and
 * arm64 alike). The register layout and the system call numbers are the
 * target architecture's: syscall_x86.bpf.h and syscall_arm64.bpf.h each give
 *
 *   in_compat_syscall(task, task_btf)  whether task is in a 32-bit system call
 *   syscall_origin(stack, compat)      fd and CS_VIA_* of the call task is in
 *   NR_CONNECT, NR_SENDTO, NR_SENDMSG, NR_SENDMMSG   native numbers
 *   SYS_ENTER_ARG(regs, n)             argument n (0..5) in tp_btf/sys_enter
 *
 * The build picks one by __TARGET_ARCH_* (bpf/meson.build).
 */
#ifndef CONNSCOPE_SYSCALL_BPF_H
#define CONNSCOPE_SYSCALL_BPF_H

#include "ring.bpf.h"

/* THREAD_SIZE of the running kernel: 16 KiB, 32 KiB with KASAN (arm64 with
 * 64 KiB pages: 64 KiB); set by user space (host::kernel_thread_size()). */
const volatile __u32 thread_size __weak = 16384;

/* io_uring_enter: the same number for every architecture and 32-bit tasks. */
#define NR_IO_URING_ENTER 426

struct connect_origin {
	__s32 fd;  /* the socket's fd when the system call names it, else -1 */
	__u16 via; /* CS_VIA_* */
};

#if defined(__TARGET_ARCH_x86)
#include "syscall_x86.bpf.h"
#elif defined(__TARGET_ARCH_arm64)
#include "syscall_arm64.bpf.h"
#else
#error "connscope's BPF programs know the system call registers of x86_64 and arm64 only (__TARGET_ARCH_x86, __TARGET_ARCH_arm64)"
#endif

#endif
