#pragma once
// Which local users may register instances on a bus.
//
// A peer is allowed when it is root, the bus owner (the daemon's user), a listed user, or a
// member (primary or supplementary group) of a listed group. With both lists empty only root
// and the owner are allowed. List entries are names or numeric ids; names are resolved once,
// when the policy is built, so a typo in the configuration fails at start or reload rather
// than at the first registration.

#include <sys/types.h>

#include <string>
#include <string_view>
#include <vector>

#include "exobus/error.hpp"
#include "exobus/daemon/peer_credentials.hpp"

namespace exobus::daemon {

class PeerPolicy {
 public:
  // Refuses an unknown user or group name (ErrorCode::refused).
  static Result<PeerPolicy> create(const std::vector<std::string>& allowed_users,
                                   const std::vector<std::string>& allowed_groups, uid_t owner_uid);

  bool allows(const PeerCredentials& peer) const noexcept;

  // permission_denied naming the user, the service type and who is allowed, e.g.
  // "user 'nobody' (uid 65534) may not run service type 'users'; allowed: ...; set
  // allowed-users or allowed-groups in application.yml".
  Result<void> check(const PeerCredentials& peer, std::string_view service_type) const;

 private:
  struct Entry {
    unsigned id;        // uid or gid
    std::string label;  // "alice (uid 1001)" or "1001"
  };
  PeerPolicy(uid_t owner_uid, std::vector<Entry> users, std::vector<Entry> groups)
      : owner_uid_(owner_uid), users_(std::move(users)), groups_(std::move(groups)) {}

  std::string describe_allowed() const;

  uid_t owner_uid_;
  std::vector<Entry> users_;
  std::vector<Entry> groups_;
};

}  // namespace exobus::daemon
