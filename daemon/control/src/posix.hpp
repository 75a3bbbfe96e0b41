#pragma once
// Small helpers around system calls and the account databases, private to the library.

#include <sys/types.h>

#include <cerrno>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "exobus/control/control_error.hpp"

namespace exobus::control::detail {

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
ControlError system_error(ControlError::Code code, std::string_view what, int error);

std::optional<std::string> user_name(uid_t uid);
std::optional<std::string> group_name(gid_t gid);
std::optional<uid_t> uid_of(const std::string& name);
std::optional<gid_t> gid_of(const std::string& name);
// getgrouplist() of the account with `uid`, or just {gid} when the uid has no passwd entry.
std::vector<gid_t> account_groups(uid_t uid, gid_t gid);

// "alice (uid 1001)" or "uid 1001" when the uid has no name.
std::string describe_user(uid_t uid);

}  // namespace exobus::control::detail
