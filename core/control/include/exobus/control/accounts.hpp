#pragma once
// Users and groups of the account databases (passwd, group), for naming who is refused and
// for the daemon's policy.

#include <sys/types.h>

#include <optional>
#include <string>
#include <vector>

namespace exobus::control {

std::optional<std::string> user_name(uid_t uid);
std::optional<std::string> group_name(gid_t gid);
std::optional<uid_t> uid_of(const std::string& name);
std::optional<gid_t> gid_of(const std::string& name);
// getgrouplist() of the account with `uid`, or just {gid} when the uid has no passwd entry.
std::vector<gid_t> account_groups(uid_t uid, gid_t gid);

// "alice (uid 1001)" or "uid 1001" when the uid has no name.
std::string describe_user(uid_t uid);

}  // namespace exobus::control
