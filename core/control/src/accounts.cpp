#include "exobus/control/accounts.hpp"

#include <grp.h>
#include <pwd.h>
#include <unistd.h>

#include <cerrno>

namespace exobus::control {

namespace {

// The *_r lookups need a caller buffer whose required size is only known after ERANGE. The
// field we need is copied out while that buffer is alive.
template <typename Result, typename Entry, typename Lookup, typename Field>
std::optional<Result> lookup_field(Lookup lookup, Field field) {
  std::vector<char> buffer(1024);
  Entry entry{};
  Entry* found = nullptr;
  while (true) {
    const int error = lookup(&entry, buffer.data(), buffer.size(), &found);
    if (error == ERANGE && buffer.size() < (1u << 20)) {
      buffer.resize(buffer.size() * 4);
      continue;
    }
    if (error == EINTR) continue;
    if (error != 0 || found == nullptr) return std::nullopt;
    return field(entry);
  }
}

}  // namespace

std::optional<std::string> user_name(uid_t uid) {
  return lookup_field<std::string, passwd>(
      [uid](passwd* e, char* b, size_t n, passwd** r) { return getpwuid_r(uid, e, b, n, r); },
      [](const passwd& e) { return std::string(e.pw_name); });
}

std::optional<std::string> group_name(gid_t gid) {
  return lookup_field<std::string, group>(
      [gid](group* e, char* b, size_t n, group** r) { return getgrgid_r(gid, e, b, n, r); },
      [](const group& e) { return std::string(e.gr_name); });
}

std::optional<uid_t> uid_of(const std::string& name) {
  return lookup_field<uid_t, passwd>(
      [&name](passwd* e, char* b, size_t n, passwd** r) { return getpwnam_r(name.c_str(), e, b, n, r); },
      [](const passwd& e) { return e.pw_uid; });
}

std::optional<gid_t> gid_of(const std::string& name) {
  return lookup_field<gid_t, group>(
      [&name](group* e, char* b, size_t n, group** r) { return getgrnam_r(name.c_str(), e, b, n, r); },
      [](const group& e) { return e.gr_gid; });
}

std::vector<gid_t> account_groups(uid_t uid, gid_t gid) {
  const std::optional<std::string> name = user_name(uid);
  if (!name) return {gid};
  int count = 32;
  std::vector<gid_t> groups;
  // getgrouplist returns -1 and the needed count when the array is too small; the count can
  // grow between calls if the group file changes, hence the loop.
  for (int attempt = 0; attempt < 8; ++attempt) {
    groups.resize(static_cast<std::size_t>(count));
    int n = count;
    if (getgrouplist(name->c_str(), gid, groups.data(), &n) != -1) {
      groups.resize(static_cast<std::size_t>(n));
      return groups;
    }
    count = n > count ? n : count * 2;
  }
  return {gid};
}

std::string describe_user(uid_t uid) {
  const std::optional<std::string> name = user_name(uid);
  if (!name) return "uid " + std::to_string(uid);
  return *name + " (uid " + std::to_string(uid) + ")";
}

}  // namespace exobus::control
