#include "exobus/daemon/control_server.hpp"

#include <poll.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/timerfd.h>
#include <sys/un.h>
#include <unistd.h>

#include <array>
#include <cstring>
#include <optional>
#include <set>
#include <unordered_map>
#include <utility>
#include <vector>

#include "connection_quota.hpp"
#include "exobus/daemon/daemon_lock.hpp"
#include "exobus/daemon/runtime_dir.hpp"
#include "exobus/control/unique_fd.hpp"
#include "exobus/control/accounts.hpp"
#include "exobus/control/system_error.hpp"

namespace exobus::daemon {

using control::CommandRequest;
using control::describe_user;
using control::decode_request;
using control::encode_reply;
using control::errno_error;
using control::JsonText;
using control::kMaxDatagramSize;
using control::RegisterRequest;
using control::Reply;
using control::Request;
using control::retry_on_eintr;
using control::runtime_dir_from_environment;
using control::runtime_paths;
using control::RuntimeDir;
using control::RuntimePaths;
using control::StatusRequest;
using control::UniqueFd;

namespace {

using Code = ErrorCode;

// What an epoll event is about. The event's data is (id << 3) | kind; ids of connections are
// never reused, so an event for a connection closed earlier in the same epoll_wait batch finds
// no connection and is dropped instead of reaching a newer one.
enum class Source : std::uint64_t { listener = 0, stop = 1, timer = 2, signals = 3, connection = 4, pidfd = 5 };

std::uint64_t tag(Source source, std::uint64_t id = 0) { return (id << 3) | static_cast<std::uint64_t>(source); }

Result<void> watch(int epoll_fd, int fd, std::uint32_t events, std::uint64_t data) {
  epoll_event event{};
  event.events = events;
  event.data.u64 = data;
  if (::epoll_ctl(epoll_fd, EPOLL_CTL_ADD, fd, &event) == -1) {
    return errno_error(Code::io, "epoll_ctl(ADD)", errno);
  }
  return {};
}

// Explicit removal rather than relying on close(): epoll registrations belong to the open file
// description, which a forked child of the daemon could keep alive.
void unwatch(int epoll_fd, int fd) { ::epoll_ctl(epoll_fd, EPOLL_CTL_DEL, fd, nullptr); }

// The peer closed its end (or the process died): SEQPACKET reports it as POLLHUP/POLLRDHUP.
bool peer_hung_up(int socket_fd) {
  pollfd probe{socket_fd, POLLRDHUP, 0};
  const int n = retry_on_eintr([&] { return ::poll(&probe, 1, 0); });
  return n == 1 && (probe.revents & (POLLRDHUP | POLLHUP | POLLERR)) != 0;
}

// A pidfd becomes readable when its process exits.
bool process_exited(int pidfd) {
  pollfd probe{pidfd, POLLIN, 0};
  const int n = retry_on_eintr([&] { return ::poll(&probe, 1, 0); });
  return n == 1 && (probe.revents & (POLLIN | POLLHUP | POLLERR)) != 0;
}

// A socket file left by a killed daemon makes bind() fail with EADDRINUSE. The caller holds the
// bus lock, so no live daemon can own the file: remove it. Anything but a socket is left alone.
Result<void> remove_stale_socket(const RuntimePaths& paths) {
  struct stat info {};
  if (::lstat(paths.socket.c_str(), &info) == -1) {
    if (errno == ENOENT) return {};
    return errno_error(Code::io, "cannot stat " + paths.socket.native(), errno);
  }
  if (!S_ISSOCK(info.st_mode)) {
    return Error{Code::refused,
                 paths.socket.native() + " exists and is not a socket; refusing to replace it (remove it by hand)"};
  }
  if (::unlink(paths.socket.c_str()) == -1 && errno != ENOENT) {
    return errno_error(Code::io, "cannot remove the stale control socket " + paths.socket.native(), errno);
  }
  return {};
}

Result<UniqueFd> bind_listening_socket(const RuntimePaths& paths, mode_t mode, std::optional<gid_t> group) {
  UniqueFd fd(::socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  if (!fd) return errno_error(Code::io, "cannot create the control socket", errno);
  sockaddr_un address{};
  address.sun_family = AF_UNIX;
  // runtime_paths() checked that the path fits with its NUL.
  std::memcpy(address.sun_path, paths.socket.c_str(), paths.socket.native().size() + 1);
  if (::bind(fd.get(), reinterpret_cast<const sockaddr*>(&address), sizeof address) == -1) {
    return errno_error(Code::io, "cannot bind the control socket " + paths.socket.native(), errno);
  }
  // The file exists from bind() with the umask's mode, but nobody can connect before listen(),
  // so the final mode is in place before the first client can use it.
  if ((group && ::chown(paths.socket.c_str(), static_cast<uid_t>(-1), *group) == -1) ||
      ::chmod(paths.socket.c_str(), mode) == -1 || ::listen(fd.get(), SOMAXCONN) == -1) {
    const int error = errno;
    ::unlink(paths.socket.c_str());
    return errno_error(Code::io, "cannot set up the control socket " + paths.socket.native(), error);
  }
  return fd;
}

Result<UniqueFd> make_timer(std::chrono::milliseconds period) {
  UniqueFd fd(::timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK));
  if (!fd) return errno_error(Code::io, "timerfd_create", errno);
  itimerspec spec{};
  spec.it_interval.tv_sec = static_cast<time_t>(period.count() / 1000);
  spec.it_interval.tv_nsec = static_cast<long>(period.count() % 1000) * 1'000'000;
  spec.it_value = spec.it_interval;
  if (::timerfd_settime(fd.get(), 0, &spec, nullptr) == -1) {
    return errno_error(Code::io, "timerfd_settime", errno);
  }
  return fd;
}

Result<UniqueFd> make_signalfd() {
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGHUP);
  // Blocked signals stay pending and are read from the signalfd instead of being delivered.
  if (const int error = ::pthread_sigmask(SIG_BLOCK, &signals, nullptr); error != 0) {
    return errno_error(Code::io, "pthread_sigmask", error);
  }
  UniqueFd fd(::signalfd(-1, &signals, SFD_CLOEXEC | SFD_NONBLOCK));
  if (!fd) return errno_error(Code::io, "signalfd", errno);
  return fd;
}

}  // namespace

class ControlServer::Loop {
 public:
  Loop(const ServerOptions& options, ServerCallbacks callbacks, RuntimePaths paths, DaemonLock lock, UniqueFd epoll,
       UniqueFd stop, UniqueFd timer, UniqueFd signals, UniqueFd listener)
      : registration_timeout_(options.registration_timeout),
        quota_(options.max_connections_per_user),
        callbacks_(std::move(callbacks)),
        paths_(std::move(paths)),
        lock_(std::move(lock)),
        epoll_(std::move(epoll)),
        stop_(std::move(stop)),
        timer_(std::move(timer)),
        signals_(std::move(signals)),
        listener_(std::move(listener)),
        datagram_(kMaxDatagramSize) {}

  Loop(const Loop&) = delete;
  Loop& operator=(const Loop&) = delete;

  ~Loop() {
    // Instances still connected are alive: no on_instance_gone (see the header).
    connections_.clear();
    // The lock is still held here (lock_ is destroyed last), so the file is ours to remove.
    ::unlink(paths_.socket.c_str());
  }

  const RuntimePaths& paths() const noexcept { return paths_; }

  void stop() noexcept {
    const std::uint64_t one = 1;
    // Async-signal-safe; the only possible failure is a saturated counter, which still wakes.
    [[maybe_unused]] const ssize_t n = ::write(stop_.get(), &one, sizeof one);
  }

  Result<void> run() {
    std::array<epoll_event, 64> events{};
    stopping_ = false;
    while (!stopping_) {
      const int n = ::epoll_wait(epoll_.get(), events.data(), static_cast<int>(events.size()), -1);
      if (n == -1) {
        if (errno == EINTR) continue;
        return errno_error(Code::io, "epoll_wait on the control loop", errno);
      }
      for (int i = 0; i < n; ++i) dispatch(events[static_cast<std::size_t>(i)]);
    }
    return {};
  }

 private:
  using Clock = std::chrono::steady_clock;

  struct Connection {
    UniqueFd socket;  // closed (and the record kept) while the daemon waits for the process to exit
    PeerCredentials peer;
    // Set together once on_register accepted: from then on on_instance_gone is owed once.
    std::optional<InstanceHandle> instance;
    UniqueFd pidfd;
    // Until it registers: its place in its user's quota, and when it is closed unless it
    // sends a request first (its entry in deadlines_).
    ConnectionQuota::Ticket ticket;
    Clock::time_point deadline;
  };

  void dispatch(const epoll_event& event) {
    const auto source = static_cast<Source>(event.data.u64 & 7);
    const std::uint64_t id = event.data.u64 >> 3;
    switch (source) {
      case Source::listener: accept_connections(); break;
      case Source::stop: drain_stop(); break;
      case Source::timer: tick(); break;
      case Source::signals: drain_signals(); break;
      case Source::connection: on_connection_event(id, event.events); break;
      case Source::pidfd: close_connection(id); break;  // the instance's process exited
    }
  }

  void drain_stop() {
    std::uint64_t count = 0;
    [[maybe_unused]] const ssize_t n = retry_on_eintr([&] { return ::read(stop_.get(), &count, sizeof count); });
    stopping_ = true;
  }

  void tick() {
    std::uint64_t expirations = 0;
    // EAGAIN (a spurious wake-up) is harmless; the tick runs either way.
    [[maybe_unused]] const ssize_t n =
        retry_on_eintr([&] { return ::read(timer_.get(), &expirations, sizeof expirations); });
    if (listener_paused_) resume_listening();
    close_idle_connections();
    if (callbacks_.on_tick) callbacks_.on_tick();
  }

  // Connections that neither registered nor sent a request within the timeout: a process
  // holding connections it never uses holds descriptors and its user's quota for nothing.
  void close_idle_connections() {
    const Clock::time_point now = Clock::now();
    std::uint32_t closed = 0;
    while (!deadlines_.empty() && deadlines_.begin()->first <= now) {
      const std::uint64_t id = deadlines_.begin()->second;
      deadlines_.erase(deadlines_.begin());
      close_connection(id);
      ++closed;
    }
    if (closed > 0 && callbacks_.on_idle_closed) callbacks_.on_idle_closed(closed);
  }

  // (Re)starts the idle timeout of a connection that is not a registered instance's.
  void arm_deadline(std::uint64_t id, Connection& connection) {
    deadlines_.erase({connection.deadline, id});
    connection.deadline = Clock::now() + registration_timeout_;
    deadlines_.insert({connection.deadline, id});
  }

  void drain_signals() {
    while (true) {
      signalfd_siginfo info{};
      const ssize_t n = retry_on_eintr([&] { return ::read(signals_.get(), &info, sizeof info); });
      if (n != static_cast<ssize_t>(sizeof info)) return;  // EAGAIN: all read
      if (info.ssi_signo == SIGHUP) {
        if (callbacks_.on_reload) callbacks_.on_reload();
      } else {
        stopping_ = true;
      }
    }
  }

  void accept_connections() {
    // Bounded so that a flood of connects cannot starve the other sources of one iteration.
    for (int accepted = 0; accepted < 64; ++accepted) {
      const int fd = ::accept4(listener_.get(), nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
      if (fd == -1) {
        if (errno == EINTR || errno == ECONNABORTED) continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK) return;
        // Out of descriptors or memory: the level-triggered listener would report readiness
        // again at once and spin. Stop watching it until the next tick.
        pause_listening();
        return;
      }
      UniqueFd socket(fd);
      Result<PeerCredentials> peer = read_peer_credentials(fd);
      if (!peer) continue;  // the peer is already gone
      ConnectionQuota::Admission admission = quota_.admit(peer.value().uid);
      if (!admission.ticket) {
        refuse_connection(socket, peer.value(), admission);
        continue;
      }
      const std::uint64_t id = next_id_++;
      if (!watch(epoll_.get(), fd, EPOLLIN | EPOLLRDHUP, tag(Source::connection, id))) continue;
      auto [placed, inserted] = connections_.emplace(
          id, Connection{std::move(socket), std::move(peer).value(), std::nullopt, UniqueFd(),
                         std::move(admission.ticket), Clock::time_point{}});
      arm_deadline(id, placed->second);
    }
  }

  // A connection beyond its user's quota gets one error reply before any request (the
  // client reads it in place of the reply to its first request), then is closed. Shut down
  // first, then drain what the client sent meanwhile: a socket closed with unread data
  // resets its peer (ECONNRESET), which would hide the reply; after the shutdown the
  // client's sends fail (EPIPE) instead of queueing more.
  void refuse_connection(const UniqueFd& socket, const PeerCredentials& peer,
                         const ConnectionQuota::Admission& admission) {
    const std::string reply = encode_reply(Reply(Error{
        Code::quota_exceeded, "user " + describe_user(peer.uid) + " holds " + std::to_string(admission.held) +
                                  " connections to this exobusd already (max-connections-per-user " +
                                  std::to_string(quota_.per_user()) +
                                  "; a registered instance's does not count); close some, or raise "
                                  "bus.max-connections-per-user in application.yml"}));
    [[maybe_unused]] const ssize_t sent =
        retry_on_eintr([&] { return ::send(socket.get(), reply.data(), reply.size(), MSG_DONTWAIT | MSG_NOSIGNAL); });
    ::shutdown(socket.get(), SHUT_RDWR);
    // A client sends one request before it reads; a few datagrams at most are waiting.
    for (int k = 0; k < 16; ++k) {
      if (retry_on_eintr([&] { return ::recv(socket.get(), datagram_.data(), datagram_.size(), MSG_DONTWAIT); }) <= 0) {
        break;
      }
    }
    if (admission.first_of_burst && callbacks_.on_connection_refused) {
      callbacks_.on_connection_refused(peer, admission.held);
    }
  }

  void pause_listening() {
    unwatch(epoll_.get(), listener_.get());
    listener_paused_ = true;
  }

  void resume_listening() {
    if (watch(epoll_.get(), listener_.get(), EPOLLIN, tag(Source::listener))) listener_paused_ = false;
  }

  void on_connection_event(std::uint64_t id, std::uint32_t events) {
    const auto found = connections_.find(id);
    // Closed earlier in this batch, or its socket already closed while its process is watched.
    if (found == connections_.end() || !found->second.socket) return;
    // A hang-up wins over pending requests: a process that died right after sending a request
    // is not served (and not registered) posthumously.
    if ((events & (EPOLLHUP | EPOLLRDHUP | EPOLLERR)) != 0) {
      connection_closed(id);
      return;
    }
    // One datagram per readiness report keeps the loop fair between busy connections; the
    // level-triggered registration reports the rest on the next epoll_wait.
    if ((events & EPOLLIN) != 0) serve_one_request(id, found->second);
  }

  void serve_one_request(std::uint64_t id, Connection& connection) {
    iovec buffer{datagram_.data(), datagram_.size()};
    msghdr message{};
    message.msg_iov = &buffer;
    message.msg_iovlen = 1;
    const ssize_t n = retry_on_eintr([&] { return ::recvmsg(connection.socket.get(), &message, MSG_DONTWAIT); });
    if (n == -1) {
      if (errno != EAGAIN && errno != EWOULDBLOCK) connection_closed(id);
      return;
    }
    // recvmsg returns 0 both at end of stream and for an empty datagram; only a hang-up
    // tells them apart.
    if (n == 0 && peer_hung_up(connection.socket.get())) {
      connection_closed(id);
      return;
    }
    std::optional<Reply> reply;
    if ((message.msg_flags & MSG_TRUNC) != 0) {
      reply = Error{Code::protocol, "request datagram is over the control protocol's limit of " +
                                        std::to_string(kMaxDatagramSize) + " bytes"};
    } else {
      reply = answer(id, connection, std::string_view(datagram_.data(), static_cast<std::size_t>(n)));
    }
    if (reply) send_reply(id, connection, *reply, granted_fds_);
    granted_fds_.clear();
    // A request restarts the idle timeout of a connection still unregistered (answering
    // may have closed it: look it up again).
    const auto still = connections_.find(id);
    if (still != connections_.end() && still->second.socket && !still->second.instance) {
      arm_deadline(id, still->second);
    }
  }

  // nullopt: the connection was closed while answering and `connection` is gone.
  std::optional<Reply> answer(std::uint64_t id, Connection& connection, std::string_view datagram) {
    Result<Request> request = decode_request(datagram);
    if (!request) return Reply(request.error());
    if (auto* reg = std::get_if<RegisterRequest>(&request.value())) return register_instance(id, connection, *reg);
    if (std::holds_alternative<StatusRequest>(request.value())) {
      if (!callbacks_.on_status) return Reply(Error{Code::refused, "this exobusd serves no status"});
      return callbacks_.on_status(connection.peer);
    }
    const auto& command = std::get<CommandRequest>(request.value());
    if (!callbacks_.on_command) {
      return Reply(Error{Code::refused, "this exobusd knows no command '" + command.name + "'"});
    }
    Result<Granted> decision = callbacks_.on_command(command.name, command.args, connection.peer);
    if (!decision) return Reply(decision.error());
    granted_fds_ = std::move(decision.value().fds);
    return Reply(std::move(decision.value().body));
  }

  std::optional<Reply> register_instance(std::uint64_t id, Connection& connection, const RegisterRequest& request) {
    if (connection.instance) {
      return Reply(Error{Code::refused, "this connection already registered instance " +
                                            std::to_string(connection.instance->id) +
                                            "; open a new connection for another instance"});
    }
    if (request.pid != connection.peer.pid) {
      return Reply(Error{Code::refused, "register names pid " + std::to_string(request.pid) +
                                            " but the connected process is pid " + std::to_string(connection.peer.pid) +
                                            " (SO_PEERCRED); register from the process that connected "
                                            "(pid namespaces are not supported)"});
    }
    UniqueFd pidfd(static_cast<int>(::syscall(SYS_pidfd_open, request.pid, 0)));
    if (!pidfd) {
      if (errno == ESRCH) {  // already exited: nothing to register, nobody to answer
        close_connection(id);
        return std::nullopt;
      }
      return Reply(errno_error(Code::io, "pidfd_open of pid " + std::to_string(request.pid), errno));
    }
    Result<std::uint64_t> start_time = process_start_time(request.pid);
    // Invariant for pid reuse: the pidfd names the process that held this pid when the request
    // was read. If that process has not exited after /proc was read, the pid could not have
    // been reused in between, so start_time belongs to it. And if the connection is still up,
    // the process that sent this request (with its own pid) still holds it.
    if (process_exited(pidfd.get()) || peer_hung_up(connection.socket.get())) {
      close_connection(id);
      return std::nullopt;
    }
    if (!start_time) return Reply(start_time.error());
    const InstanceHandle handle{id, request.pid, start_time.value()};
    if (!callbacks_.on_register) return Reply(Error{Code::refused, "this exobusd accepts no registrations"});
    Result<Granted> decision = callbacks_.on_register(request, connection.peer, handle);
    if (!decision) return Reply(decision.error());
    connection.instance = handle;
    connection.pidfd = std::move(pidfd);
    // From now on the instance's slot bounds it, and it stays open for the instance's life.
    connection.ticket.reset();
    deadlines_.erase({connection.deadline, id});
    if (!watch(epoll_.get(), connection.pidfd.get(), EPOLLIN, tag(Source::pidfd, id))) {
      // Without the backup death signal the instance could outlive a crash unnoticed (if a child
      // kept its connection): undo the registration the only safe way, as a death.
      close_connection(id);
      return std::nullopt;
    }
    granted_fds_ = std::move(decision.value().fds);
    return Reply(std::move(decision.value().body));
  }

  // Sends the reply, with `fds` attached (SCM_RIGHTS) when there are any.
  void send_reply(std::uint64_t id, Connection& connection, const Reply& reply, const std::vector<int>& fds) {
    std::string datagram = encode_reply(reply);
    iovec iov{datagram.data(), datagram.size()};
    msghdr message{};
    message.msg_iov = &iov;
    message.msg_iovlen = 1;
    std::vector<char> control(CMSG_SPACE(sizeof(int) * fds.size()));
    if (!fds.empty() && reply.ok()) {
      message.msg_control = control.data();
      message.msg_controllen = control.size();
      cmsghdr* header = CMSG_FIRSTHDR(&message);
      header->cmsg_level = SOL_SOCKET;
      header->cmsg_type = SCM_RIGHTS;
      header->cmsg_len = CMSG_LEN(sizeof(int) * fds.size());
      std::memcpy(CMSG_DATA(header), fds.data(), sizeof(int) * fds.size());
    }
    // Never block the loop on one client: a client reads each reply before its next request,
    // so a full socket buffer means a misbehaving client, which is dropped.
    const ssize_t n =
        retry_on_eintr([&] { return ::sendmsg(connection.socket.get(), &message, MSG_DONTWAIT | MSG_NOSIGNAL); });
    if (n != static_cast<ssize_t>(datagram.size())) connection_closed(id);
  }

  // The connection of `id` hung up (or failed). A registered instance whose process still
  // runs may only have closed this connection (a registration it gave up waiting for, say)
  // and may still use what it registered: the daemon decides (on_instance_disconnected),
  // and if it waits for the process, its pidfd stays watched so that on_instance_gone
  // follows its exit.
  void connection_closed(std::uint64_t id) {
    const auto found = connections_.find(id);
    if (found == connections_.end()) return;
    Connection& connection = found->second;
    if (!connection.instance || process_exited(connection.pidfd.get()) || !callbacks_.on_instance_disconnected) {
      close_connection(id);
      return;
    }
    unwatch(epoll_.get(), connection.socket.get());
    connection.socket.reset();
    if (!callbacks_.on_instance_disconnected(*connection.instance)) {
      unwatch(epoll_.get(), connection.pidfd.get());
      connections_.erase(id);  // the daemon is done with it: no on_instance_gone owed
    }
  }

  // Removes the connection; owes on_instance_gone if it was registered. The record is gone
  // before the callback runs, so a second hang-up or pidfd event for it finds nothing: the
  // callback runs exactly once.
  void close_connection(std::uint64_t id) {
    auto node = connections_.extract(id);
    if (node.empty()) return;
    Connection& connection = node.mapped();
    deadlines_.erase({connection.deadline, id});
    if (connection.socket) unwatch(epoll_.get(), connection.socket.get());
    if (connection.pidfd) unwatch(epoll_.get(), connection.pidfd.get());
    const std::optional<InstanceHandle> instance = connection.instance;
    connection.socket.reset();
    connection.pidfd.reset();
    if (instance && callbacks_.on_instance_gone) callbacks_.on_instance_gone(*instance);
  }

  std::chrono::milliseconds registration_timeout_;
  // Before connections_: their tickets point at it, so it is destroyed after them.
  ConnectionQuota quota_;
  ServerCallbacks callbacks_;
  RuntimePaths paths_;
  DaemonLock lock_;  // declared before the descriptors: released after them and after the unlink
  UniqueFd epoll_;
  UniqueFd stop_;
  UniqueFd timer_;
  UniqueFd signals_;
  UniqueFd listener_;
  std::vector<char> datagram_;  // receive buffer, one datagram at a time
  std::vector<int> granted_fds_;  // the descriptors of the reply being answered
  std::unordered_map<std::uint64_t, Connection> connections_;
  // The unregistered connections by the time they are closed unless they send a request.
  std::set<std::pair<Clock::time_point, std::uint64_t>> deadlines_;
  std::uint64_t next_id_ = 1;
  bool listener_paused_ = false;
  bool stopping_ = false;
};

Result<ControlServer> ControlServer::open(ServerOptions options, ServerCallbacks callbacks) {
  if (options.tick_period.count() <= 0) return Error{Code::refused, "tick period must be positive"};
  if (options.max_connections_per_user == 0 || options.registration_timeout.count() <= 0) {
    return Error{Code::refused, "the connection quota and the registration timeout must be positive"};
  }
  if ((options.socket_mode & ~mode_t{0777}) != 0 ||
      (options.socket_mode & (S_IRUSR | S_IWUSR)) != (S_IRUSR | S_IWUSR)) {
    return Error{Code::refused, "control socket mode must be within 0777 and give the owner rw"};
  }
  Result<RuntimeDir> dir = options.runtime_dir.empty() ? runtime_dir_from_environment()
                                                       : Result<RuntimeDir>(RuntimeDir{options.runtime_dir, false});
  if (!dir) return dir.error();
  Result<RuntimePaths> paths = runtime_paths(options.bus, dir.value());
  if (!paths) return paths.error();
  if (auto prepared = prepare_runtime_dir(dir.value().path, options.runtime_dir_mode, options.group); !prepared) {
    return prepared.error();
  }
  Result<DaemonLock> lock = DaemonLock::acquire(paths.value());
  if (!lock) return lock.error();

  UniqueFd epoll(::epoll_create1(EPOLL_CLOEXEC));
  if (!epoll) return errno_error(Code::io, "epoll_create1", errno);
  UniqueFd stop(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  if (!stop) return errno_error(Code::io, "eventfd", errno);
  Result<UniqueFd> timer = make_timer(options.tick_period);
  if (!timer) return timer.error();
  UniqueFd signals;
  if (options.handle_signals) {
    Result<UniqueFd> made = make_signalfd();
    if (!made) return made.error();
    signals = std::move(made).value();
  }
  for (const auto& [fd, source] : {std::pair{stop.get(), Source::stop}, std::pair{timer.value().get(), Source::timer},
                                   std::pair{signals.get(), Source::signals}}) {
    if (fd < 0) continue;
    if (auto watched = watch(epoll.get(), fd, EPOLLIN, tag(source)); !watched) return watched.error();
  }

  // Everything with a visible effect on the file system comes last, under the lock.
  if (auto removed = remove_stale_socket(paths.value()); !removed) return removed.error();
  Result<UniqueFd> listener = bind_listening_socket(paths.value(), options.socket_mode, options.group);
  if (!listener) return listener.error();
  if (auto watched = watch(epoll.get(), listener.value().get(), EPOLLIN, tag(Source::listener)); !watched) {
    ::unlink(paths.value().socket.c_str());
    return watched.error();
  }
  return ControlServer(std::make_unique<Loop>(options, std::move(callbacks), std::move(paths).value(),
                                              std::move(lock).value(), std::move(epoll), std::move(stop),
                                              std::move(timer).value(), std::move(signals),
                                              std::move(listener).value()));
}

ControlServer::ControlServer(std::unique_ptr<Loop> loop) : loop_(std::move(loop)) {}
ControlServer::ControlServer(ControlServer&&) noexcept = default;
ControlServer& ControlServer::operator=(ControlServer&&) noexcept = default;
ControlServer::~ControlServer() = default;

Result<void> ControlServer::run() { return loop_->run(); }
void ControlServer::stop() noexcept { loop_->stop(); }
const RuntimePaths& ControlServer::paths() const noexcept { return loop_->paths(); }

}  // namespace exobus::daemon
