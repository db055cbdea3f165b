// SPDX-License-Identifier: LGPL-2.1-or-later OR BSD-2-Clause
// The log channel: the library's own diagnostics and libbpf's messages about
// the library's own BPF objects, to the caller's LogCallback.
//
// libbpf has one print hook per process. The library installs its hook once
// and keeps the one that was there before: a message printed while a
// LogScope is active on this thread (the library's own libbpf calls) goes to
// that scope's callback; any other message (the host program's own libbpf
// use, on any thread) goes on to the previous hook unchanged. Nothing is
// swapped around the library's calls, so other threads are never affected.
#pragma once

#include <connscope/session.hpp>

#include <string>

namespace connscope::detail {

class LogScope {
public:
    // Routes this thread's libbpf messages to on_log (empty: dropped) until
    // the scope ends. Scopes nest; the innermost wins.
    LogScope(const LogCallback &on_log, LogLevel level);
    // A nested scope in which libbpf's warnings are told as `libbpf_warning`:
    // while probing, a refusal is expected and the library reports its own verdict.
    LogScope(const LogScope &outer, LogLevel libbpf_warning);
    ~LogScope();
    LogScope(const LogScope &) = delete;
    LogScope &operator=(const LogScope &) = delete;

    // The library's own diagnostics, to the innermost scope of this thread.
    static void emit(LogLevel level, const std::string &message);
    // libbpf's messages, with its warnings told at this scope's level for them.
    static void emit_libbpf(LogLevel level, const std::string &message);

private:
    const LogCallback *on_log_;
    LogLevel level_;
    LogLevel libbpf_warning_ = LogLevel::warning;
    LogScope *outer_;
};

} // namespace connscope::detail
