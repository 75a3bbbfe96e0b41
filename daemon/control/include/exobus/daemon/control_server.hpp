#pragma once
// The daemon's side of the control socket: a single-threaded epoll loop.
//
// The server is policy-free. It accepts connections, reads each peer's identity (SO_PEERCRED),
// decodes requests and hands them to the daemon's callbacks; it watches every registered
// instance for death and calls on_instance_gone. One loop iteration waits on:
//
//   listening socket   new connections (one per client); one beyond its user's quota
//                      (max_connections_per_user) is refused at once
//   each connection    requests; hang-up = the instance died or closed its connection
//   each pidfd         backup death signal for a registered instance (covers a connection
//                      inherited by a child that outlives the instance)
//   signalfd           SIGTERM/SIGINT: clean stop; SIGHUP: on_reload
//   timerfd            on_tick every tick_period (missed ticks are coalesced into one);
//                      closes connections idle past registration_timeout
//   eventfd            stop() from another thread
//
// All callbacks run on the thread that calls run(), one at a time; they may not call run().
// A callback that throws propagates out of run().
//
// Not promised: instances still registered when the server stops get no on_instance_gone
// (they are alive; a restarted daemon rebuilds its view from shared memory). A slow callback
// delays everything else, including death detection.

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "exobus/error.hpp"
#include "exobus/control/control_protocol.hpp"
#include "exobus/control/json_text.hpp"
#include "exobus/daemon/peer_credentials.hpp"
#include "exobus/control/runtime_paths.hpp"

namespace exobus::daemon {

// One registered instance, as the server knows it.
struct InstanceHandle {
  std::uint64_t id = 0;          // unique for the server's life, never reused
  pid_t pid = 0;                 // SO_PEERCRED pid, equal to the request's pid
  std::uint64_t start_time = 0;  // /proc/<pid>/stat field 22: (pid, start_time) survives pid reuse
  friend bool operator==(const InstanceHandle&, const InstanceHandle&) = default;
};

// A registration's answer: the reply body and the descriptors sent with it (SCM_RIGHTS). The
// descriptors stay the daemon's; the instance receives its own copies.
struct Granted {
  control::JsonText body;
  std::vector<int> fds;
};

struct ServerCallbacks {
  // Decides a registration: allowed users, instance slot, ... The body of an ok result is
  // sent back as the reply, with its descriptors; an error is sent as an error reply (use
  // permission_denied or refused). Only after an ok result does the instance count as
  // registered.
  std::function<Result<Granted>(const control::RegisterRequest&, const PeerCredentials&, const InstanceHandle&)>
      on_register;
  // Exactly once per registered instance, promptly after its process exits or its
  // connection hangs up, whichever comes first; but see on_instance_disconnected.
  std::function<void(const InstanceHandle&)> on_instance_gone;
  // Optional. The connection of a registered instance hung up while its process still runs
  // (it left, or gave up waiting for a reply, or is dying and not yet reaped by the kernel's
  // exit path). Return true to keep watching the process: on_instance_gone follows when it
  // exits. Return false when the instance is done with: no on_instance_gone follows. Unset:
  // on_instance_gone is called at once, as for any hang-up.
  std::function<bool(const InstanceHandle&)> on_instance_disconnected;
  std::function<Result<control::JsonText>(const PeerCredentials&)> on_status;
  // A command's reply may carry descriptors too (the routing command's new memory).
  std::function<Result<Granted>(const std::string& name, const control::JsonText& args, const PeerCredentials&)>
      on_command;
  std::function<void()> on_reload;
  std::function<void()> on_tick;
  // Optional, for the log. A connection of `peer` was refused: the user holds `held`
  // connections, its quota. Called for the first refusal of a burst only (again once the
  // user held fewer than its quota), so a flood of connects makes one line.
  std::function<void(const PeerCredentials& peer, std::uint32_t held)> on_connection_refused;
  // Optional, for the log: `closed` connections were closed at one tick for staying idle
  // (no registration, no request) for registration_timeout.
  std::function<void(std::uint32_t closed)> on_idle_closed;
};

struct ServerOptions {
  std::string bus;
  // Empty: runtime_dir_from_environment().
  std::filesystem::path runtime_dir;
  mode_t runtime_dir_mode = 0700;
  // Applied with chmod() after bind() and before listen(), so no client connects while the
  // socket still has its umask mode.
  mode_t socket_mode = 0600;
  // The group of the runtime directory and the socket; none: the daemon's own group.
  std::optional<gid_t> group;
  std::chrono::milliseconds tick_period{10};
  // Quotas, so that one user cannot take the daemon from the others (docs/security.md).
  // Connections one peer uid (SO_PEERCRED) may hold open that are not a registered
  // instance's (status and commands, registrations under way; a registered instance's
  // counts against its instance slot instead). A connection beyond it gets one
  // quota_exceeded reply before any request and is closed.
  std::uint32_t max_connections_per_user = 256;
  // A connection that is not a registered instance's and sends no request for this long
  // is closed (checked every tick). A registered instance's stays open for its life.
  std::chrono::milliseconds registration_timeout{5000};
  // Block SIGTERM, SIGINT and SIGHUP in the calling thread and take them through a signalfd.
  // The daemon opens the server before starting other threads so that they inherit the mask
  // (a thread that does not block them would take the default action). Off for servers
  // embedded in a larger process, e.g. tests.
  bool handle_signals = true;
};

class ControlServer {
 public:
  // Prepares the runtime directory, takes the bus lock, removes a stale socket file left by a
  // killed daemon (only while holding the lock), binds and listens. Refuses when another
  // daemon serves the bus, naming its pid.
  static Result<ControlServer> open(ServerOptions options, ServerCallbacks callbacks);

  ControlServer(ControlServer&&) noexcept;
  ControlServer& operator=(ControlServer&&) noexcept;
  // Closes every connection, removes the socket file, then releases the lock.
  ~ControlServer();

  // Serves until SIGTERM/SIGINT or stop(). An error only for a failure of the loop itself
  // (epoll); a bad peer never stops the server.
  Result<void> run();

  // Makes run() return soon. Thread-safe and async-signal-safe.
  void stop() noexcept;

  const control::RuntimePaths& paths() const noexcept;

 private:
  class Loop;
  explicit ControlServer(std::unique_ptr<Loop> loop);
  std::unique_ptr<Loop> loop_;
};

}  // namespace exobus::daemon
