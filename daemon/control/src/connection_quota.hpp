#pragma once
// The control server's quota of connections per user (bus.max-connections-per-user): how
// many connections one peer uid (SO_PEERCRED, which a process cannot forge) may hold open
// that are not a registered instance's. A registered instance's connection is bounded by
// the instance quotas instead (its slot), so it gives its ticket back when it registers.
//
// Not promised: a user's quota bounds its own connections only; the descriptors of the
// daemon (RLIMIT_NOFILE) are shared, so the sum over users must fit under that limit.
#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <unordered_map>
#include <utility>

namespace exobus::daemon {

class ConnectionQuota {
 public:
  // One counted connection of a user, given back when destroyed or reset (RAII: every
  // path that closes a connection, or registers it, drops its ticket).
  class Ticket {
   public:
    Ticket() = default;
    Ticket(Ticket&& other) noexcept : quota_(std::exchange(other.quota_, nullptr)), uid_(other.uid_) {}
    Ticket& operator=(Ticket&& other) noexcept {
      if (this != &other) {
        reset();
        quota_ = std::exchange(other.quota_, nullptr);
        uid_ = other.uid_;
      }
      return *this;
    }
    Ticket(const Ticket&) = delete;
    Ticket& operator=(const Ticket&) = delete;
    ~Ticket() { reset(); }

    void reset() noexcept {
      if (quota_ != nullptr) std::exchange(quota_, nullptr)->give_back(uid_);
    }
    explicit operator bool() const noexcept { return quota_ != nullptr; }

   private:
    friend class ConnectionQuota;
    Ticket(ConnectionQuota* quota, uid_t uid) : quota_(quota), uid_(uid) {}
    ConnectionQuota* quota_ = nullptr;
    uid_t uid_ = 0;
  };

  // What admit() decided: a ticket, or a refusal (first_of_burst: the first since the user
  // last held fewer than its quota, which is worth a log line; the rest of a burst is not).
  struct Admission {
    Ticket ticket;
    std::uint32_t held = 0;  // the user's counted connections, this one included if admitted
    bool first_of_burst = false;
  };

  explicit ConnectionQuota(std::uint32_t per_user) : per_user_(per_user) {}
  // Tickets point at the quota: it must outlive them and never move.
  ConnectionQuota(const ConnectionQuota&) = delete;
  ConnectionQuota& operator=(const ConnectionQuota&) = delete;

  std::uint32_t per_user() const noexcept { return per_user_; }

  Admission admit(uid_t uid) {
    User& user = users_[uid];
    if (user.held >= per_user_) {
      return Admission{Ticket(), user.held, !std::exchange(user.refusing, true)};
    }
    ++user.held;
    return Admission{Ticket(this, uid), user.held, false};
  }

  std::uint32_t held(uid_t uid) const {
    const auto found = users_.find(uid);
    return found == users_.end() ? 0 : found->second.held;
  }

 private:
  struct User {
    std::uint32_t held = 0;
    bool refusing = false;  // a refusal was reported and the user has not dropped below since
  };

  void give_back(uid_t uid) noexcept {
    const auto found = users_.find(uid);
    if (found == users_.end()) return;
    if (--found->second.held == 0) {
      users_.erase(found);  // the table holds only users with connections
    } else {
      found->second.refusing = false;
    }
  }

  std::uint32_t per_user_;
  std::unordered_map<uid_t, User> users_;
};

}  // namespace exobus::daemon
