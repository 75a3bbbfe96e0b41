#include "exobus/control/control_client.hpp"

#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>
#include <vector>

#include "exobus/control/accounts.hpp"
#include "exobus/control/system_error.hpp"

namespace exobus::control {

namespace {

using Code = ErrorCode;

std::string start_hint(const RuntimePaths& paths) {
  return "no exobusd is serving bus '" + paths.bus + "' (nothing listens on " + paths.socket.native() +
         "); start it with 'exobusd --config <application.yml>'";
}

Result<void> set_timeouts(int fd, std::chrono::milliseconds timeout) {
  timeval value{};
  value.tv_sec = static_cast<time_t>(timeout.count() / 1000);
  value.tv_usec = static_cast<suseconds_t>(timeout.count() % 1000) * 1000;
  // SO_SNDTIMEO also bounds connect() on Unix sockets (a full listen backlog).
  if (::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &value, sizeof value) == -1 ||
      ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &value, sizeof value) == -1) {
    return errno_error(Code::io, "cannot set control socket timeouts", errno);
  }
  return {};
}

// The daemon must be the owner of the runtime directory (prepare_runtime_dir enforces that on
// its side), and the per-user default directory must be ours; see control_client.hpp.
Result<void> check_daemon_identity(int fd, const RuntimePaths& paths) {
  struct stat dir {};
  if (::stat(paths.dir.path.c_str(), &dir) == -1) {
    return errno_error(Code::io, "cannot stat runtime directory " + paths.dir.path.native(), errno);
  }
  if (paths.dir.per_user_default && dir.st_uid != ::geteuid()) {
    return Error{Code::permission_denied, "runtime directory " + paths.dir.path.native() + " is owned by " +
                                              describe_user(dir.st_uid) +
                                              ", not by you; refusing to talk to its socket (set " +
                                              kRuntimeDirEnvironmentVariable + " to the bus's directory)"};
  }
  ucred daemon{};
  socklen_t length = sizeof daemon;
  if (::getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &daemon, &length) == -1) {
    return errno_error(Code::io, "cannot read the daemon's credentials (SO_PEERCRED)", errno);
  }
  if (daemon.uid != dir.st_uid) {
    return Error{Code::permission_denied, paths.socket.native() + " is served by " + describe_user(daemon.uid) +
                                              " (pid " + std::to_string(daemon.pid) + ") but " +
                                              paths.dir.path.native() + " belongs to " + describe_user(dir.st_uid) +
                                              "; refusing to talk to a daemon that does not own the bus"};
  }
  return {};
}

}  // namespace

Result<ControlConnection> ControlConnection::connect(const RuntimePaths& paths, std::chrono::milliseconds timeout) {
  UniqueFd fd(::socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0));
  if (!fd) return errno_error(Code::io, "cannot create a control socket", errno);
  if (auto set = set_timeouts(fd.get(), timeout); !set) return set.error();
  sockaddr_un address{};
  address.sun_family = AF_UNIX;
  if (paths.socket.native().size() >= sizeof address.sun_path) {
    return Error{ErrorCode::config_error, "control socket path " + paths.socket.native() + " is too long"};
  }
  std::memcpy(address.sun_path, paths.socket.c_str(), paths.socket.native().size() + 1);
  // A connect() interrupted by a signal may still complete in the background; a retry then
  // reports EISCONN, which means success.
  int result = ::connect(fd.get(), reinterpret_cast<const sockaddr*>(&address), sizeof address);
  while (result == -1 && errno == EINTR) {
    result = ::connect(fd.get(), reinterpret_cast<const sockaddr*>(&address), sizeof address);
    if (result == -1 && errno == EISCONN) result = 0;
  }
  if (result == -1) {
    switch (errno) {
      case ENOENT:
      case ECONNREFUSED:
      case ENOTDIR: return Error{Code::daemon_not_running, start_hint(paths)};
      case EACCES:
      case EPERM:
        return Error{Code::permission_denied,
                     "you may not connect to " + paths.socket.native() +
                         " (permission denied); ask the bus owner to open the runtime directory and socket "
                         "to your group (runtime-dir-mode, socket-mode in application.yml)"};
      case EAGAIN:
        return Error{Code::io, "exobusd of bus '" + paths.bus + "' did not accept a connection within " +
                                   std::to_string(timeout.count()) + " ms"};
      default: return errno_error(Code::io, "cannot connect to " + paths.socket.native(), errno);
    }
  }
  if (auto checked = check_daemon_identity(fd.get(), paths); !checked) return checked.error();
  return ControlConnection(std::move(fd), paths, timeout);
}

Reply ControlConnection::request(const Request& request) {
  Result<Answer> answer = exchange(request);
  if (!answer) return answer.error();
  return std::move(answer.value().body);
}

Result<Answer> ControlConnection::exchange(const Request& request) {
  Result<std::string> datagram = encode_request(request);
  if (!datagram) return datagram.error();
  const ssize_t sent =
      retry_on_eintr([&] { return ::send(fd_.get(), datagram.value().data(), datagram.value().size(), MSG_NOSIGNAL); });
  const int send_error = sent == -1 ? errno : 0;
  const bool closed = send_error == EPIPE || send_error == ECONNRESET || send_error == ENOTCONN;
  // The daemon refuses a connection beyond its user's quota with one error reply before any
  // request, and closes it: that reply waits here, and answers the request.
  const auto reply_waiting = [&] {
    char probe = 0;
    return ::recv(fd_.get(), &probe, sizeof probe, MSG_PEEK | MSG_DONTWAIT) > 0;
  };
  if (closed && !reply_waiting()) {
    return Error{Code::daemon_not_running,
                 "exobusd of bus '" + paths_.bus + "' closed the control connection; is it still running?"};
  }
  if (sent == -1 && !closed) {
    if (send_error == EAGAIN) {
      return Error{Code::io, "exobusd of bus '" + paths_.bus + "' did not take a request within " +
                                 std::to_string(timeout_.count()) + " ms"};
    }
    return errno_error(Code::io, "cannot send to " + paths_.socket.native(), send_error);
  }
  std::vector<char> buffer(kMaxDatagramSize);
  iovec iov{buffer.data(), buffer.size()};
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int) * kMaxDescriptors)];
  msghdr message{};
  message.msg_iov = &iov;
  message.msg_iovlen = 1;
  message.msg_control = control;
  message.msg_controllen = sizeof control;
  // MSG_CMSG_CLOEXEC: descriptors received must not leak into programs this one runs.
  const ssize_t n = retry_on_eintr([&] { return ::recvmsg(fd_.get(), &message, MSG_CMSG_CLOEXEC); });
  if (n == -1) {
    if (errno == EAGAIN || errno == EWOULDBLOCK) {
      return Error{Code::io, "exobusd of bus '" + paths_.bus + "' did not answer a " +
                                 std::string(request_name(request)) + " request within " +
                                 std::to_string(timeout_.count()) + " ms"};
    }
    return errno_error(Code::io, "cannot receive from " + paths_.socket.native(), errno);
  }
  Answer answer;
  for (cmsghdr* header = CMSG_FIRSTHDR(&message); header != nullptr; header = CMSG_NXTHDR(&message, header)) {
    if (header->cmsg_level != SOL_SOCKET || header->cmsg_type != SCM_RIGHTS) continue;
    const std::size_t count = (header->cmsg_len - CMSG_LEN(0)) / sizeof(int);
    for (std::size_t k = 0; k < count; ++k) {
      int received = -1;
      std::memcpy(&received, CMSG_DATA(header) + k * sizeof(int), sizeof(int));
      answer.fds.emplace_back(received);
    }
  }
  // The daemon never sends an empty reply, so 0 is the end of the connection.
  if (n == 0) {
    return Error{Code::daemon_not_running,
                 "exobusd of bus '" + paths_.bus + "' closed the control connection without answering"};
  }
  if ((message.msg_flags & (MSG_TRUNC | MSG_CTRUNC)) != 0) {
    return Error{Code::protocol, "exobusd sent a reply over the control protocol's limits (" +
                                     std::to_string(kMaxDatagramSize) + " bytes, " +
                                     std::to_string(kMaxDescriptors) + " descriptors)"};
  }
  Reply body = decode_reply(std::string_view(buffer.data(), static_cast<std::size_t>(n)));
  if (!body) return body.error();
  answer.body = std::move(body).value();
  return answer;
}

Result<InstanceRegistration> register_instance(const RuntimePaths& paths, const RegisterRequest& request,
                                               std::chrono::milliseconds timeout) {
  Result<ControlConnection> connection = ControlConnection::connect(paths, timeout);
  if (!connection) return connection.error();
  Result<Answer> answer = connection.value().exchange(request);
  if (!answer) return answer.error();
  return InstanceRegistration{std::move(connection).value(), std::move(answer.value().body),
                              std::move(answer.value().fds)};
}

Result<JsonText> request_status(const RuntimePaths& paths, std::chrono::milliseconds timeout) {
  Result<ControlConnection> connection = ControlConnection::connect(paths, timeout);
  if (!connection) return connection.error();
  return connection.value().request(StatusRequest{});
}

Result<JsonText> run_command(const RuntimePaths& paths, std::string name, JsonText args,
                             std::chrono::milliseconds timeout) {
  Result<Answer> answer = exchange_command(paths, std::move(name), std::move(args), timeout);
  if (!answer) return answer.error();
  return std::move(answer.value().body);  // descriptors nobody asked for close here
}

Result<Answer> exchange_command(const RuntimePaths& paths, std::string name, JsonText args,
                                std::chrono::milliseconds timeout) {
  Result<ControlConnection> connection = ControlConnection::connect(paths, timeout);
  if (!connection) return connection.error();
  return connection.value().exchange(CommandRequest{std::move(name), std::move(args)});
}

}  // namespace exobus::control
