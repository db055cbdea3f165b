// SPDX-License-Identifier: LGPL-2.1-or-later OR BSD-2-Clause
// The consumer side of the Session's one ring buffer: the libbpf reader, the
// latency timer that bounds the delay of records submitted without a wakeup,
// the epoll fd that is readable under either condition, and the kernel's
// per-CPU loss counters.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>

struct ring_buffer;

namespace connscope::detail {

class RingReader {
public:
    // Called for each record, in ring order; a negative return stops consume().
    using Handler = int (*)(void *ctx, void *data, std::size_t size);

    RingReader(int ring_map_fd, Handler handler, void *ctx, std::chrono::milliseconds max_latency);
    ~RingReader();
    RingReader(const RingReader &) = delete;
    RingReader &operator=(const RingReader &) = delete;

    int epoll_fd() const { return epoll_fd_; }
    // Waits on the epoll fd; -1 forever. The number of ready fds, 0 on
    // timeout, -1 when a signal interrupted the wait.
    int wait(int timeout_ms);
    // Reads the timer's expirations so the epoll fd is not readable for them again.
    void clear_timer();
    // Hands every record in the ring to the handler; its count, or a negative errno.
    int consume();

private:
    void open(int ring_map_fd, Handler handler, void *ctx, std::chrono::milliseconds max_latency);
    void close_all() noexcept;

    ring_buffer *ring_ = nullptr;
    int epoll_fd_ = -1;
    int timer_fd_ = -1;
};

// The kernel's count of failed reservations of one record type, summed over CPUs.
std::uint64_t lost_in_kernel(int lost_counts_map_fd, std::uint32_t record_type);

} // namespace connscope::detail
