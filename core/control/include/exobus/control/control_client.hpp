#pragma once
// The client's side of the control socket.
//
// An instance registers once with register_instance() and keeps the returned connection open
// for its whole life: the daemon takes the connection's hang-up (and the process's exit) as
// the instance's death. Closing it early is how an instance leaves the bus. Status and
// commands go over separate short connections (request_status(), run_command()).
//
// Before talking, a client checks that the daemon is who the runtime directory says it
// should be: the daemon's uid (SO_PEERCRED) must own the runtime directory, and the per-user
// default directory must be the client's own. Otherwise anyone able to create
// /tmp/exobus-<uid> first could pose as the daemon.

#include <chrono>
#include <string>
#include <vector>

#include "exobus/error.hpp"
#include "exobus/control/control_protocol.hpp"
#include "exobus/control/json_text.hpp"
#include "exobus/control/runtime_paths.hpp"
#include "exobus/control/unique_fd.hpp"

namespace exobus::control {

inline constexpr std::chrono::milliseconds kDefaultRequestTimeout{5000};

// A reply and the descriptors that came with it, now the receiver's.
struct Answer {
  JsonText body;
  std::vector<UniqueFd> fds;
};

class ControlConnection {
 public:
  // daemon_not_running when no daemon listens (naming the socket and how to start one),
  // permission_denied when the socket or directory is closed to this user.
  static Result<ControlConnection> connect(const RuntimePaths& paths,
                                           std::chrono::milliseconds timeout = kDefaultRequestTimeout);

  // Sends one request and waits up to the timeout for its reply.
  Reply request(const Request& request);
  // The same, with the descriptors the daemon passed along with the reply (SCM_RIGHTS):
  // the memory a registration grants.
  Result<Answer> exchange(const Request& request);

  // The connected socket (CLOEXEC). POLLHUP on it means the daemon went away.
  int fd() const noexcept { return fd_.get(); }

 private:
  ControlConnection(UniqueFd fd, RuntimePaths paths, std::chrono::milliseconds timeout)
      : fd_(std::move(fd)), paths_(std::move(paths)), timeout_(timeout) {}

  UniqueFd fd_;
  RuntimePaths paths_;
  std::chrono::milliseconds timeout_;
};

struct InstanceRegistration {
  ControlConnection connection;  // keep open for the life of the instance
  JsonText reply;                // the daemon's registration body (registration.hpp)
  std::vector<UniqueFd> fds;     // the memory it grants, in the order the reply lists
};

Result<InstanceRegistration> register_instance(const RuntimePaths& paths, const RegisterRequest& request,
                                               std::chrono::milliseconds timeout = kDefaultRequestTimeout);

Result<JsonText> request_status(const RuntimePaths& paths, std::chrono::milliseconds timeout = kDefaultRequestTimeout);

Result<JsonText> run_command(const RuntimePaths& paths, std::string name, JsonText args,
                             std::chrono::milliseconds timeout = kDefaultRequestTimeout);
// The same, with the descriptors the daemon passed along (the routing command grants a
// registered instance the memory a reload added).
Result<Answer> exchange_command(const RuntimePaths& paths, std::string name, JsonText args,
                                std::chrono::milliseconds timeout = kDefaultRequestTimeout);

}  // namespace exobus::control
