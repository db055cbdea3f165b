// SPDX-License-Identifier: LGPL-2.1-or-later OR BSD-2-Clause
// connscope-trace's --json output: the bytes of connscope::to_json(event) + "\n",
// written straight into one reused buffer that goes out with write(2) when
// it fills and whenever the caller flushes (each poll() return, and at exit).
#pragma once

#include <connscope/events.hpp>
#include <connscope/format.hpp>

#include <cstddef>
#include <string>

namespace trace {

// Appends the JSON line of an event (with its "\n") to out. The bytes are
// those of connscope::to_json(event) + "\n"; tests/cli/json_equivalence.cpp
// holds the two to the same output.
void append_json_line(std::string &out, const connscope::SecuritySocketConnect &event);
void append_json_line(std::string &out, const connscope::NetTcpConnect &event);
void append_json_line(std::string &out, const connscope::ConnectOutcome &event);

class JsonOut {
public:
    explicit JsonOut(int fd, std::size_t capacity = 256 * 1024);
    ~JsonOut() { flush(); }
    JsonOut(const JsonOut &) = delete;
    JsonOut &operator=(const JsonOut &) = delete;

    template <typename Event>
    void event(const Event &ev)
    {
        append_json_line(buf_, ev);
        if (buf_.size() >= capacity_)
            flush();
    }
    // A whole line made elsewhere (the stats record), without its "\n".
    void line(const std::string &text);
    // Writes out what is buffered. A write error other than EINTR drops the
    // buffer and is remembered; failed() tells.
    void flush();
    bool failed() const { return error_ != 0; }
    int error() const { return error_; }

private:
    int fd_;
    std::size_t capacity_;
    std::string buf_;
    int error_ = 0; // errno of the write that failed
};

} // namespace trace
