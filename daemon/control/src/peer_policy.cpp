#include "exobus/daemon/peer_policy.hpp"

#include <algorithm>
#include <charconv>
#include <optional>

#include "exobus/control/accounts.hpp"
#include "exobus/control/system_error.hpp"

namespace exobus::daemon {

using control::describe_user;
using control::gid_of;
using control::uid_of;
using control::user_name;

namespace {

using Code = ErrorCode;

std::optional<unsigned> parse_id(const std::string& text) {
  unsigned id = 0;
  const auto [ptr, error] = std::from_chars(text.data(), text.data() + text.size(), id);
  if (text.empty() || error != std::errc{} || ptr != text.data() + text.size()) return std::nullopt;
  return id;
}

std::string join(const std::vector<std::string>& parts) {
  std::string joined;
  for (const std::string& part : parts) {
    if (!joined.empty()) joined += ", ";
    joined += part;
  }
  return joined;
}

}  // namespace

Result<PeerPolicy> PeerPolicy::create(const std::vector<std::string>& allowed_users,
                                      const std::vector<std::string>& allowed_groups, uid_t owner_uid) {
  std::vector<Entry> users;
  for (const std::string& user : allowed_users) {
    if (const std::optional<unsigned> id = parse_id(user)) {
      users.push_back(Entry{*id, user});
    } else if (const std::optional<uid_t> uid = uid_of(user)) {
      users.push_back(Entry{*uid, user + " (uid " + std::to_string(*uid) + ")"});
    } else {
      return Error{Code::refused, "allowed-users names user '" + user + "', which does not exist on this host"};
    }
  }
  std::vector<Entry> groups;
  for (const std::string& group : allowed_groups) {
    if (const std::optional<unsigned> id = parse_id(group)) {
      groups.push_back(Entry{*id, group});
    } else if (const std::optional<gid_t> gid = gid_of(group)) {
      groups.push_back(Entry{*gid, group + " (gid " + std::to_string(*gid) + ")"});
    } else {
      return Error{Code::refused, "allowed-groups names group '" + group + "', which does not exist on this host"};
    }
  }
  return PeerPolicy(owner_uid, std::move(users), std::move(groups));
}

bool PeerPolicy::allows(const PeerCredentials& peer) const noexcept {
  if (peer.uid == 0 || peer.uid == owner_uid_) return true;
  const auto is_peer_uid = [&](const Entry& entry) { return entry.id == peer.uid; };
  if (std::any_of(users_.begin(), users_.end(), is_peer_uid)) return true;
  const auto peer_in_group = [&](const Entry& entry) {
    return entry.id == peer.gid || std::find(peer.groups.begin(), peer.groups.end(), entry.id) != peer.groups.end();
  };
  return std::any_of(groups_.begin(), groups_.end(), peer_in_group);
}

Result<void> PeerPolicy::check(const PeerCredentials& peer, std::string_view service_type) const {
  if (allows(peer)) return {};
  const std::optional<std::string> name = user_name(peer.uid);
  const std::string who =
      name ? "user '" + *name + "' (uid " + std::to_string(peer.uid) + ")" : "uid " + std::to_string(peer.uid);
  return Error{Code::permission_denied, who + " may not run service type '" + std::string(service_type) +
                                            "'; allowed: " + describe_allowed() +
                                            "; set allowed-users or allowed-groups in application.yml"};
}

std::string PeerPolicy::describe_allowed() const {
  std::string allowed = "the bus owner " + describe_user(owner_uid_);
  if (owner_uid_ != 0) allowed += ", root";
  if (!users_.empty()) {
    std::vector<std::string> labels;
    for (const Entry& entry : users_) labels.push_back(entry.label);
    allowed += ", users " + join(labels);
  }
  if (!groups_.empty()) {
    std::vector<std::string> labels;
    for (const Entry& entry : groups_) labels.push_back(entry.label);
    allowed += ", members of groups " + join(labels);
  }
  return allowed;
}

}  // namespace exobus::daemon
