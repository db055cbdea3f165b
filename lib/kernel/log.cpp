// SPDX-License-Identifier: LGPL-2.1-or-later OR BSD-2-Clause
#include "log.hpp"

#include <bpf/libbpf.h>
#include <cstdarg>
#include <cstdio>
#include <mutex>

namespace connscope::detail {
namespace {

thread_local LogScope *current_scope = nullptr;
// Set once, before the hook can run; read-only afterwards.
libbpf_print_fn_t previous_hook = nullptr;

LogLevel from_libbpf(libbpf_print_level level)
{
    switch (level) {
    case LIBBPF_WARN: return LogLevel::warning;
    case LIBBPF_INFO: return LogLevel::info;
    case LIBBPF_DEBUG: break;
    }
    return LogLevel::debug;
}

int route(libbpf_print_level level, const char *format, va_list args)
{
    if (!current_scope)
        return previous_hook ? previous_hook(level, format, args) : 0;
    char text[1024];
    int n = std::vsnprintf(text, sizeof(text), format, args);
    if (n < 0)
        return n;
    std::string message(text, static_cast<std::size_t>(n) < sizeof(text) ? static_cast<std::size_t>(n)
                                                                         : sizeof(text) - 1);
    while (!message.empty() && (message.back() == '\n' || message.back() == ' '))
        message.pop_back();
    // libbpf's messages name themselves ("libbpf: ...").
    LogScope::emit_libbpf(from_libbpf(level), message);
    return n;
}

void install_hook_once()
{
    static std::once_flag once;
    std::call_once(once, [] {
        // libbpf_set_print returns the hook it replaces (libbpf's stderr
        // printer unless the program set its own): messages not ours go there.
        previous_hook = libbpf_set_print(route);
    });
}

} // namespace

LogScope::LogScope(const LogCallback &on_log, LogLevel level)
    : on_log_(&on_log), level_(level), outer_(current_scope)
{
    install_hook_once();
    current_scope = this;
}

LogScope::LogScope(const LogScope &outer, LogLevel libbpf_warning)
    : on_log_(outer.on_log_), level_(outer.level_), libbpf_warning_(libbpf_warning), outer_(current_scope)
{
    current_scope = this;
}

LogScope::~LogScope() { current_scope = outer_; }

void LogScope::emit_libbpf(LogLevel level, const std::string &message)
{
    const LogScope *scope = current_scope;
    emit(scope && level == LogLevel::warning ? scope->libbpf_warning_ : level, message);
}

void LogScope::emit(LogLevel level, const std::string &message)
{
    const LogScope *scope = current_scope;
    if (!scope || !*scope->on_log_ || static_cast<int>(level) > static_cast<int>(scope->level_))
        return;
    // A failing log callback must not change what the library does.
    try {
        (*scope->on_log_)(level, message);
    } catch (...) {
    }
}

} // namespace connscope::detail
