// SPDX-License-Identifier: LGPL-2.1-or-later OR BSD-2-Clause
#include "ring.hpp"

#include <connscope/error.hpp>

#include "error_impl.hpp"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <cerrno>
#include <sys/epoll.h>
#include <sys/timerfd.h>
#include <unistd.h>
#include <vector>

namespace connscope::detail {

RingReader::RingReader(int ring_map_fd, Handler handler, void *ctx, std::chrono::milliseconds max_latency)
{
    // The destructor does not run for a constructor that throws.
    try {
        open(ring_map_fd, handler, ctx, max_latency);
    } catch (...) {
        close_all();
        throw;
    }
}

void RingReader::open(int ring_map_fd, Handler handler, void *ctx, std::chrono::milliseconds max_latency)
{
    ring_ = ring_buffer__new(ring_map_fd, handler, ctx, nullptr);
    if (!ring_)
        throw Error(errno, "creating the ring buffer reader: " + errno_text(errno));
    epoll_fd_ = ::epoll_create1(EPOLL_CLOEXEC);
    if (epoll_fd_ < 0)
        throw Error(errno, "creating the session's epoll fd: " + errno_text(errno));
    timer_fd_ = ::timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
    if (timer_fd_ < 0)
        throw Error(errno, "creating the latency timer: " + errno_text(errno));
    // Records are submitted without a wakeup, so this timer bounds their delay.
    const auto ms = max_latency.count();
    itimerspec period{};
    period.it_interval.tv_sec = ms / 1000;
    period.it_interval.tv_nsec = (ms % 1000) * 1000000;
    period.it_value = period.it_interval;
    if (::timerfd_settime(timer_fd_, 0, &period, nullptr) < 0)
        throw Error(errno, "arming the latency timer: " + errno_text(errno));
    for (int fd : {ring_buffer__epoll_fd(ring_), timer_fd_}) {
        epoll_event ev{};
        ev.events = EPOLLIN;
        ev.data.fd = fd;
        if (::epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, fd, &ev) < 0)
            throw Error(errno, "adding to the session's epoll fd: " + errno_text(errno));
    }
}

RingReader::~RingReader() { close_all(); }

void RingReader::close_all() noexcept
{
    ring_buffer__free(ring_);
    ring_ = nullptr;
    if (epoll_fd_ >= 0)
        ::close(epoll_fd_);
    epoll_fd_ = -1;
    if (timer_fd_ >= 0)
        ::close(timer_fd_);
    timer_fd_ = -1;
}

int RingReader::wait(int timeout_ms)
{
    epoll_event evs[2];
    int n = ::epoll_wait(epoll_fd_, evs, 2, timeout_ms);
    if (n < 0 && errno != EINTR)
        throw Error(errno, "waiting for events: " + errno_text(errno));
    return n;
}

void RingReader::clear_timer()
{
    std::uint64_t expirations;
    while (::read(timer_fd_, &expirations, sizeof(expirations)) > 0) {
    }
}

int RingReader::consume() { return ring_buffer__consume(ring_); }

std::uint64_t lost_in_kernel(int lost_counts_map_fd, std::uint32_t record_type)
{
    const int cpus = libbpf_num_possible_cpus();
    if (cpus <= 0)
        return 0;
    std::vector<std::uint64_t> values(static_cast<std::size_t>(cpus));
    std::uint64_t total = 0;
    if (bpf_map_lookup_elem(lost_counts_map_fd, &record_type, values.data()) == 0)
        for (auto v : values)
            total += v;
    return total;
}

} // namespace connscope::detail
