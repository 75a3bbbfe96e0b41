#pragma once
// System calls as the control plane makes them: retried on EINTR, and their failures turned
// into errors that say what was attempted.

#include <cerrno>
#include <string>
#include <string_view>

#include "exobus/error.hpp"

namespace exobus::control {

// Repeats a call that failed with EINTR. For calls that return -1 and set errno.
template <typename Call>
auto retry_on_eintr(Call call) {
  decltype(call()) result;
  do {
    result = call();
  } while (result == -1 && errno == EINTR);
  return result;
}

std::string errno_text(int error);

// "<what>: <strerror(error)>" with the given code.
Error errno_error(ErrorCode code, std::string_view what, int error);

}  // namespace exobus::control
