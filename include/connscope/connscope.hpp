/**
 * @file connscope.hpp
 * @brief The C++ API in one include.
 */
#pragma once

#include <connscope/address.hpp>
#include <connscope/dns.hpp>
#include <connscope/error.hpp>
#include <connscope/events.hpp>
#include <connscope/format.hpp>
#include <connscope/session.hpp>
#include <connscope/version.h>
