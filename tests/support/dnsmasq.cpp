// SPDX-License-Identifier: LGPL-2.1-or-later OR BSD-2-Clause
#include "support/dnsmasq.hpp"

#include "support/files.hpp"
#include "support/loopback.hpp"
#include "support/process.hpp"

#include <cerrno>
#include <chrono>
#include <cstring>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdexcept>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

namespace testing {

bool have_dnsmasq()
{
    return ::access(kDnsmasq, X_OK) == 0;
}

std::string run_ip(int last)
{
    static const unsigned pid = static_cast<unsigned>(::getpid());
    return "127." + std::to_string(64 + (pid >> 8) % 128) + "." + std::to_string(pid & 0xff) + "." +
           std::to_string(last);
}

std::vector<std::uint8_t> dns_query(std::uint16_t id, const std::string &name, std::uint16_t qtype)
{
    std::vector<std::uint8_t> q{static_cast<std::uint8_t>(id >> 8), static_cast<std::uint8_t>(id), 0x01, 0x00, 0, 1,
                                0, 0, 0, 0, 0, 0};
    std::size_t start = 0;
    while (start <= name.size()) {
        auto dot = name.find('.', start);
        if (dot == std::string::npos)
            dot = name.size();
        q.push_back(static_cast<std::uint8_t>(dot - start));
        q.insert(q.end(), name.begin() + static_cast<long>(start), name.begin() + static_cast<long>(dot));
        start = dot + 1;
    }
    q.push_back(0);
    q.push_back(static_cast<std::uint8_t>(qtype >> 8));
    q.push_back(static_cast<std::uint8_t>(qtype));
    q.push_back(0);
    q.push_back(1);
    return q;
}

ssize_t udp_exchange(int fd, const sockaddr_in &server, const std::vector<std::uint8_t> &q, std::uint8_t *buf,
                     std::size_t cap, int timeout_ms, int tries)
{
    for (int t = 0; t < tries; ++t) {
        if (::sendto(fd, q.data(), q.size(), 0, reinterpret_cast<const sockaddr *>(&server), sizeof(server)) < 0) {
            if (errno != ENOBUFS && errno != EAGAIN && errno != EINTR)
                return -1;
            ::usleep(1000);
            continue;
        }
        auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
        for (;;) {
            auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
            if (left.count() <= 0)
                break;
            pollfd p{fd, POLLIN, 0};
            if (::poll(&p, 1, static_cast<int>(left.count())) <= 0)
                continue;
            ssize_t n = ::recv(fd, buf, cap, 0);
            if (n >= 2 && buf[0] == q[0] && buf[1] == q[1])
                return n;
        }
    }
    return -1;
}

Dnsmasq::Dnsmasq(const std::vector<std::string> &config, int cpu, std::uint16_t port)
    : dir_(make_temp_dir()), port_(port)
{
    try {
        start(config, cpu);
    } catch (...) {
        stop();
        throw;
    }
}

Dnsmasq::~Dnsmasq() { stop(); }

// A fresh address per instance: no TIME_WAIT or late packet of one case
// reaches the next. Skips addresses someone already serves on.
std::string Dnsmasq::next_address(std::uint16_t port)
{
    static int counter = 0;
    for (int tries = 0; tries < 40; ++tries) {
        std::string ip = run_ip(10 + (counter++ % 40));
        int fd = ::socket(AF_INET, SOCK_DGRAM, 0);
        auto sin = inet4(ip, port);
        bool free = ::bind(fd, reinterpret_cast<sockaddr *>(&sin), sizeof(sin)) == 0;
        ::close(fd);
        if (free)
            return ip;
    }
    throw std::runtime_error("no free loopback address for dnsmasq in " + run_ip(0) + "/24");
}

void Dnsmasq::start(const std::vector<std::string> &config, int cpu)
{
    address_ = next_address(port_);
    std::string conf = dir_ + "/dnsmasq.conf", log = dir_ + "/dnsmasq.log";
    std::string text;
    for (const auto &line : config)
        text += line + "\n";
    text += "host-record=ready.connscope.test,127.0.0.1\n";
    write_file(conf, text);
    std::vector<std::string> args{kDnsmasq,
                                  "--keep-in-foreground",
                                  "--conf-file=" + conf,
                                  "--listen-address=" + address_,
                                  "--bind-interfaces",
                                  "--no-resolv",
                                  "--no-hosts",
                                  "--port=" + std::to_string(port_),
                                  "--pid-file=",
                                  "--user=root",
                                  "--log-facility=-"};
    // dnsmasq runs under a small watcher that stops it when the write end
    // of this pipe closes: in stop(), or when the test dies however it
    // dies (a PR_SET_PDEATHSIG given to dnsmasq was seen not to fire).
    int pipefd[2];
    if (::pipe2(pipefd, O_CLOEXEC) != 0)
        throw std::runtime_error(std::string("pipe: ") + std::strerror(errno));
    pid_ = ::fork();
    if (pid_ < 0) {
        ::close(pipefd[0]);
        ::close(pipefd[1]);
        throw std::runtime_error(std::string("fork: ") + std::strerror(errno));
    }
    if (pid_ == 0) {
        ::close(pipefd[1]);
        pid_t server = ::fork();
        if (server == 0) {
            pin_to_cpu(cpu);
            int devnull = ::open("/dev/null", O_RDWR);
            int logfd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
            ::dup2(devnull, 0);
            ::dup2(logfd, 1);
            ::dup2(logfd, 2);
            std::vector<char *> argv;
            for (auto &a : args)
                argv.push_back(a.data());
            argv.push_back(nullptr);
            ::execv(kDnsmasq, argv.data());
            ::_exit(127);
        }
        for (;;) {
            int status = 0;
            if (server < 0 || ::waitpid(server, &status, WNOHANG) == server)
                ::_exit(100); // dnsmasq ended by itself: a failed start
            pollfd p{pipefd[0], POLLIN, 0};
            if (::poll(&p, 1, 100) > 0)
                break; // EOF: stop it
        }
        ::kill(server, SIGTERM);
        bool gone = false;
        for (int i = 0; i < 200 && !gone; ++i) {
            gone = ::waitpid(server, nullptr, WNOHANG) == server;
            if (!gone)
                ::usleep(10'000);
        }
        if (!gone) {
            ::kill(server, SIGKILL);
            ::waitpid(server, nullptr, 0);
        }
        remove_files(); // also when the test died
        ::_exit(0);
    }
    ::close(pipefd[0]);
    stop_fd_ = pipefd[1];
    // Ready when it answers.
    int fd = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    auto server = inet4(address_, port_);
    auto q = dns_query(0x5eed, "ready.connscope.test", 1);
    std::uint8_t buf[512];
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    bool ready = false;
    while (!ready && std::chrono::steady_clock::now() < deadline) {
        int status = 0;
        if (::waitpid(pid_, &status, WNOHANG) == pid_) {
            pid_ = -1;
            ::close(fd);
            throw std::runtime_error("dnsmasq exited at start (watcher status " + std::to_string(status) +
                                     "): " + read_file(log));
        }
        ready = udp_exchange(fd, server, q, buf, sizeof(buf), 50, 1) > 0;
    }
    ::close(fd);
    if (!ready)
        throw std::runtime_error("dnsmasq on " + address_ + " did not answer within 10 s: " + read_file(log));
}

void Dnsmasq::stop()
{
    if (stop_fd_ >= 0)
        ::close(stop_fd_);
    stop_fd_ = -1;
    if (pid_ > 0)
        ::waitpid(pid_, nullptr, 0); // the watcher returns once dnsmasq is gone
    pid_ = -1;
    remove_files();
    dir_.clear();
}

void Dnsmasq::remove_files() const
{
    if (dir_.empty())
        return;
    ::unlink((dir_ + "/dnsmasq.conf").c_str());
    ::unlink((dir_ + "/dnsmasq.log").c_str());
    ::rmdir(dir_.c_str());
}

std::vector<std::string> example_config(const char *ttl)
{
    return {"cname=www.example.test,edge.cdn.test", "host-record=edge.cdn.test," + run_ip(88),
            std::string("local-ttl=") + ttl};
}

} // namespace testing
