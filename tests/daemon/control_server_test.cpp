// The control server and client with real sockets and real processes: registration, death
// detection (kill -9, exit, pidfd), policy refusals across uids, one daemon per bus, stale
// sockets, signals and malformed datagrams.

#include "exobus/daemon/control_server.hpp"

#include <grp.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <fstream>

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>

#include <gtest/gtest.h>

#include "control_test_support.hpp"
#include "exobus/control/control_client.hpp"
#include "exobus/daemon/daemon_lock.hpp"
#include "exobus/daemon/peer_policy.hpp"

namespace exobus::daemon {
namespace {

using namespace std::chrono_literals;
using Code = ErrorCode;
using exobus::testing::TempRuntimeDir;
using testing::ChildProcess;
using testing::Pipe;
using testing::Recorder;
using testing::ServerThread;
using namespace exobus::control;

constexpr uid_t kNobody = 65534;
constexpr gid_t kNogroup = 65534;

// Callbacks that record into `recorder`; registrations are checked against `policy` when set.
ServerCallbacks recording_callbacks(const std::shared_ptr<Recorder>& recorder,
                                    std::optional<PeerPolicy> policy = std::nullopt) {
  ServerCallbacks callbacks;
  callbacks.on_register = [recorder, policy](const RegisterRequest& request, const PeerCredentials& peer,
                                             const InstanceHandle& handle) -> Result<Granted> {
    if (policy) {
      if (auto allowed = policy->check(peer, request.service_type); !allowed) return allowed.error();
    }
    recorder->registered(handle);
    return Granted{JsonText::parse(R"({"instance":)" + std::to_string(handle.id) + "}").value(), {}};
  };
  callbacks.on_instance_gone = [recorder](const InstanceHandle& handle) { recorder->gone(handle); };
  callbacks.on_status = [](const PeerCredentials& peer) -> Result<JsonText> {
    return JsonText::parse(R"({"state":"serving","asked_by":)" + std::to_string(peer.uid) + "}").value();
  };
  callbacks.on_command = [](const std::string& name, const JsonText& args, const PeerCredentials&) -> Result<Granted> {
    if (name == "echo") return Granted{args, {}};
    return Error{Code::refused, "unknown command '" + name + "'"};
  };
  callbacks.on_tick = [recorder] { recorder->ticked(); };
  return callbacks;
}

ServerOptions options_for(const TempRuntimeDir& dir, const std::string& bus) {
  ServerOptions options;
  options.bus = bus;
  options.runtime_dir = dir.path();
  options.handle_signals = false;
  return options;
}

ControlServer open_server(const ServerOptions& options, ServerCallbacks callbacks) {
  Result<ControlServer> server = ControlServer::open(options, std::move(callbacks));
  if (!server) throw std::runtime_error("server did not open: " + server.error().message);
  return std::move(server).value();
}

RegisterRequest register_request(const std::string& service_type = "users") {
  return RegisterRequest{service_type, ::getpid(), "nonce-" + std::to_string(::getpid())};
}

// Child body: registers, reports "ok <reply>" or "error <code> <message>" on `pipe`, then
// runs `after` with the registration (which keeps the connection open while it runs).
int register_and_report(const RuntimePaths& paths, Pipe& pipe, const std::function<int(InstanceRegistration&)>& after,
                        const std::string& service_type = "users") {
  pipe.close_read_end();
  Result<InstanceRegistration> registration = register_instance(paths, register_request(service_type));
  if (!registration) {
    pipe.write_line("error " + std::string(to_string(registration.error().code)) + " " + registration.error().message);
    return 1;
  }
  pipe.write_line("ok " + registration.value().reply.str());
  return after(registration.value());
}

int stay_alive(InstanceRegistration&) {
  while (true) ::pause();
}

int exit_now(InstanceRegistration&) { return 0; }

// A raw client socket, for datagrams the client library would never send.
UniqueFd connect_raw(const RuntimePaths& paths) {
  UniqueFd fd(::socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0));
  sockaddr_un address{};
  address.sun_family = AF_UNIX;
  std::strcpy(address.sun_path, paths.socket.c_str());
  if (::connect(fd.get(), reinterpret_cast<const sockaddr*>(&address), sizeof address) == -1) {
    throw std::runtime_error("connect failed");
  }
  const timeval timeout{5, 0};
  ::setsockopt(fd.get(), SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
  return fd;
}

Reply exchange_raw(int fd, const std::string& datagram) {
  if (::send(fd, datagram.data(), datagram.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(datagram.size())) {
    return Error{Code::io, std::string("send: ") + std::strerror(errno)};
  }
  std::vector<char> buffer(kMaxDatagramSize);
  const ssize_t n = ::recv(fd, buffer.data(), buffer.size(), 0);
  if (n <= 0) return Error{Code::io, "no reply"};
  return decode_reply(std::string_view(buffer.data(), static_cast<std::size_t>(n)));
}

// exobusd stand-in in its own process: reports "ready" or "error ..." and "reload" on SIGHUP.
ChildProcess spawn_server_process(const TempRuntimeDir& dir, const std::string& bus, Pipe& pipe) {
  return ChildProcess::spawn([&dir, &bus, &pipe] {
    pipe.close_read_end();
    ServerCallbacks callbacks;
    callbacks.on_register = [](const RegisterRequest&, const PeerCredentials&, const InstanceHandle&) {
      return Result<Granted>(Granted{JsonText(), {}});
    };
    callbacks.on_reload = [&pipe] { pipe.write_line("reload"); };
    ServerOptions options = options_for(dir, bus);
    options.handle_signals = true;
    Result<ControlServer> server = ControlServer::open(options, callbacks);
    if (!server) {
      pipe.write_line("error " + server.error().message);
      return 1;
    }
    pipe.write_line("ready");
    return server.value().run().ok() ? 0 : 2;
  });
}

bool starts_with(const std::optional<std::string>& line, const std::string& prefix) {
  return line && line->rfind(prefix, 0) == 0;
}

TEST(ControlServer, RegisteredClientGetsTheDaemonsReply) {
  TempRuntimeDir dir;
  auto recorder = std::make_shared<Recorder>();
  ServerThread server(open_server(options_for(dir, "register-ok"), recording_callbacks(recorder)));
  Pipe pipe;

  ChildProcess client =
      ChildProcess::spawn([&] { return register_and_report(dir.paths("register-ok"), pipe, stay_alive); });

  const std::optional<std::string> line = pipe.read_line();
  ASSERT_TRUE(starts_with(line, "ok {\"instance\":")) << line.value_or("(nothing)");
  const std::vector<InstanceHandle> registered = recorder->registered_instances();
  ASSERT_EQ(registered.size(), 1u);
  EXPECT_EQ(registered[0].pid, client.pid());
  EXPECT_EQ(registered[0].start_time, process_start_time(client.pid()).value());
}

TEST(ControlServer, ARegistrationPassesTheDescriptorsItGrantsWithItsReply) {
  TempRuntimeDir dir;
  auto recorder = std::make_shared<Recorder>();
  const int granted = ::memfd_create("exobus-test.granted", MFD_CLOEXEC);
  ASSERT_GE(granted, 0);
  struct stat original {};
  ASSERT_EQ(::fstat(granted, &original), 0);
  ServerCallbacks callbacks = recording_callbacks(recorder);
  callbacks.on_register = [granted](const RegisterRequest&, const PeerCredentials&, const InstanceHandle&) {
    return Result<Granted>(Granted{JsonText(), {granted, granted}});
  };
  ServerThread server(open_server(options_for(dir, "register-fds"), callbacks));

  Result<InstanceRegistration> registered = register_instance(
      dir.paths("register-fds"), RegisterRequest{"users", ::getpid(), "nonce-fds"}, std::chrono::milliseconds(2000));

  ASSERT_TRUE(registered.ok()) << registered.error().message;
  ASSERT_EQ(registered.value().fds.size(), 2u);
  for (const UniqueFd& fd : registered.value().fds) {
    struct stat received {};
    ASSERT_EQ(::fstat(fd.get(), &received), 0);
    EXPECT_EQ(received.st_ino, original.st_ino) << "the same memory object";
    EXPECT_NE(fd.get(), granted) << "a descriptor of the receiver's own";
    EXPECT_NE(::fcntl(fd.get(), F_GETFD) & FD_CLOEXEC, 0) << "not leaked into programs it runs";
  }
  ::close(granted);
}

TEST(ControlServer, KilledClientIsReportedGonePromptly) {
  TempRuntimeDir dir;
  auto recorder = std::make_shared<Recorder>();
  ServerThread server(open_server(options_for(dir, "kill-nine"), recording_callbacks(recorder)));
  Pipe pipe;
  ChildProcess client =
      ChildProcess::spawn([&] { return register_and_report(dir.paths("kill-nine"), pipe, stay_alive); });
  ASSERT_TRUE(starts_with(pipe.read_line(), "ok"));
  EXPECT_EQ(recorder->count_gone(client.pid()), 0);

  client.kill_hard();

  EXPECT_TRUE(recorder->wait_for_gone(client.pid(), 5s));
  const std::vector<InstanceHandle> gone = recorder->gone_instances();
  ASSERT_EQ(gone.size(), 1u);
  EXPECT_EQ(gone[0], recorder->registered_instances().at(0));
}

TEST(ControlServer, ExitingClientIsReportedGoneExactlyOnce) {
  TempRuntimeDir dir;
  auto recorder = std::make_shared<Recorder>();
  ServerThread server(open_server(options_for(dir, "exit-once"), recording_callbacks(recorder)));
  Pipe pipe;
  ChildProcess client =
      ChildProcess::spawn([&] { return register_and_report(dir.paths("exit-once"), pipe, exit_now); });
  ASSERT_TRUE(starts_with(pipe.read_line(), "ok"));
  const pid_t pid = client.pid();
  ASSERT_TRUE(client.wait().has_value());

  ASSERT_TRUE(recorder->wait_for_gone(pid, 5s));
  // Both the hang-up and the pidfd fire for an exit; give the second a chance to show up.
  std::this_thread::sleep_for(300ms);
  EXPECT_EQ(recorder->count_gone(pid), 1);
}

TEST(ControlServer, InstanceWhoseConnectionOutlivesItIsReportedGoneThroughItsPidfd) {
  TempRuntimeDir dir;
  auto recorder = std::make_shared<Recorder>();
  ServerThread server(open_server(options_for(dir, "pidfd-backup"), recording_callbacks(recorder)));
  Pipe pipe;
  // The instance forks a child that inherits its connection and outlives it, so the
  // connection never hangs up; only the pidfd can tell that the instance died. The child is
  // in the instance's process group and dies with the guard.
  ChildProcess client = ChildProcess::spawn([&] {
    return register_and_report(dir.paths("pidfd-backup"), pipe, [&pipe](InstanceRegistration&) {
      const pid_t holder = ::fork();
      if (holder == 0) {
        while (true) ::pause();
      }
      pipe.write_line(holder > 0 ? "forked" : "fork failed");
      return 0;
    });
  });
  ASSERT_TRUE(starts_with(pipe.read_line(), "ok"));
  ASSERT_EQ(pipe.read_line(), "forked");
  const pid_t pid = client.pid();
  // Reap the instance only: its process group, with the connection holder, lives on.
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);

  EXPECT_TRUE(recorder->wait_for_gone(pid, 5s));
  ::kill(-pid, SIGKILL);
}

TEST(ControlServer, ClosingTheConnectionEndsTheRegistration) {
  TempRuntimeDir dir;
  auto recorder = std::make_shared<Recorder>();
  ServerThread server(open_server(options_for(dir, "close-conn"), recording_callbacks(recorder)));
  {
    Result<InstanceRegistration> registration = register_instance(dir.paths("close-conn"), register_request());
    ASSERT_TRUE(registration.ok()) << registration.error().message;
    EXPECT_EQ(recorder->count_gone(::getpid()), 0);
  }
  EXPECT_TRUE(recorder->wait_for_gone(::getpid(), 5s));
}

TEST(ControlServer, ClientOfAnotherUserIsRefusedByPolicy) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root to switch to nobody";
  TempRuntimeDir dir;
  auto recorder = std::make_shared<Recorder>();
  ServerOptions options = options_for(dir, "policy");
  options.runtime_dir_mode = 0755;  // reachable by nobody, so that the daemon's policy decides
  options.socket_mode = 0666;
  ServerThread server(
      open_server(options, recording_callbacks(recorder, PeerPolicy::create({}, {}, ::geteuid()).value())));
  Pipe pipe;

  ChildProcess client = ChildProcess::spawn([&] {
    if (::setgroups(0, nullptr) != 0 || ::setgid(kNogroup) != 0 || ::setuid(kNobody) != 0) return 3;
    return register_and_report(dir.paths("policy"), pipe, exit_now);
  });

  const std::optional<std::string> line = pipe.read_line();
  ASSERT_TRUE(starts_with(line, "error permission_denied ")) << line.value_or("(nothing)");
  EXPECT_NE(line->find("user 'nobody' (uid 65534) may not run service type 'users'; allowed: the bus owner root"),
            std::string::npos)
      << *line;
  EXPECT_TRUE(recorder->registered_instances().empty());
}

TEST(ControlServer, ClientOfAnotherUserCannotReachAPrivateBus) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root to switch to nobody";
  TempRuntimeDir dir;
  auto recorder = std::make_shared<Recorder>();
  ServerThread server(open_server(options_for(dir, "private"), recording_callbacks(recorder)));
  Pipe pipe;

  ChildProcess client = ChildProcess::spawn([&] {
    if (::setgroups(0, nullptr) != 0 || ::setgid(kNogroup) != 0 || ::setuid(kNobody) != 0) return 3;
    return register_and_report(dir.paths("private"), pipe, exit_now);
  });

  const std::optional<std::string> line = pipe.read_line();
  EXPECT_TRUE(starts_with(line, "error permission_denied ")) << line.value_or("(nothing)");
}

TEST(ControlServer, ClientWithoutDaemonGetsDaemonNotRunning) {
  TempRuntimeDir dir;
  const RuntimePaths paths = dir.paths("nobody-home");

  const Result<InstanceRegistration> registration = register_instance(paths, register_request());

  ASSERT_FALSE(registration.ok());
  EXPECT_EQ(registration.error().code, Code::daemon_not_running);
  EXPECT_NE(registration.error().message.find(paths.socket.native()), std::string::npos);
  EXPECT_NE(registration.error().message.find("exobusd --config"), std::string::npos);
}

TEST(ControlServer, ClientInMissingRuntimeDirectoryGetsDaemonNotRunning) {
  TempRuntimeDir dir;
  const RuntimePaths paths = runtime_paths("gone", RuntimeDir{dir.path() / "missing", false}).value();
  EXPECT_EQ(request_status(paths).error().code, Code::daemon_not_running);
}

TEST(ControlServer, StatusAndCommandsAreAnsweredOnShortConnections) {
  TempRuntimeDir dir;
  auto recorder = std::make_shared<Recorder>();
  ServerThread server(open_server(options_for(dir, "status"), recording_callbacks(recorder)));
  const RuntimePaths paths = dir.paths("status");

  const Result<JsonText> status = request_status(paths);
  ASSERT_TRUE(status.ok()) << status.error().message;
  EXPECT_EQ(status.value().str(), R"({"state":"serving","asked_by":)" + std::to_string(::geteuid()) + "}");

  const JsonText args = JsonText::parse(R"({"action":"list","limit":5})").value();
  const Result<JsonText> echoed = run_command(paths, "echo", args);
  ASSERT_TRUE(echoed.ok()) << echoed.error().message;
  EXPECT_EQ(echoed.value(), args);

  const Result<JsonText> unknown = run_command(paths, "dlq", JsonText());
  ASSERT_FALSE(unknown.ok());
  EXPECT_EQ(unknown.error().code, Code::refused);
  EXPECT_EQ(unknown.error().message, "unknown command 'dlq'");
}

TEST(ControlServer, BadDatagramsGetErrorRepliesAndTheConnectionKeepsWorking) {
  TempRuntimeDir dir;
  auto recorder = std::make_shared<Recorder>();
  ServerThread server(open_server(options_for(dir, "bad-datagrams"), recording_callbacks(recorder)));
  UniqueFd fd = connect_raw(dir.paths("bad-datagrams"));

  const Reply malformed = exchange_raw(fd.get(), "{not json");
  ASSERT_FALSE(malformed.ok());
  EXPECT_EQ(malformed.error().code, Code::protocol);

  const Reply empty = exchange_raw(fd.get(), "");
  ASSERT_FALSE(empty.ok());
  EXPECT_EQ(empty.error().code, Code::protocol);

  const Reply oversized = exchange_raw(fd.get(), std::string(kMaxDatagramSize + 4096, '{'));
  ASSERT_FALSE(oversized.ok());
  EXPECT_EQ(oversized.error().code, Code::protocol);
  EXPECT_NE(oversized.error().message.find(std::to_string(kMaxDatagramSize)), std::string::npos);

  const Reply future = exchange_raw(fd.get(), R"({"protocol":3,"request":"status"})");
  ASSERT_FALSE(future.ok());
  EXPECT_EQ(future.error().code, Code::version_mismatch);
  EXPECT_NE(future.error().message.find("version 3"), std::string::npos) << future.error().message;
  EXPECT_NE(future.error().message.find("speaks 2"), std::string::npos) << future.error().message;

  const Reply status = exchange_raw(fd.get(), encode_request(StatusRequest{}).value());
  EXPECT_TRUE(status.ok()) << status.error().message;
}

TEST(ControlServer, RegisterNamingAnotherPidIsRefused) {
  TempRuntimeDir dir;
  auto recorder = std::make_shared<Recorder>();
  ServerThread server(open_server(options_for(dir, "wrong-pid"), recording_callbacks(recorder)));
  UniqueFd fd = connect_raw(dir.paths("wrong-pid"));
  RegisterRequest request = register_request();
  request.pid = ::getpid() + 1;

  const Reply reply = exchange_raw(fd.get(), encode_request(request).value());

  ASSERT_FALSE(reply.ok());
  EXPECT_EQ(reply.error().code, Code::refused);
  EXPECT_NE(reply.error().message.find("SO_PEERCRED"), std::string::npos) << reply.error().message;
  EXPECT_TRUE(recorder->registered_instances().empty());
}

TEST(ControlServer, SecondRegisterOnOneConnectionIsRefused) {
  TempRuntimeDir dir;
  auto recorder = std::make_shared<Recorder>();
  ServerThread server(open_server(options_for(dir, "twice"), recording_callbacks(recorder)));
  Result<InstanceRegistration> registration = register_instance(dir.paths("twice"), register_request());
  ASSERT_TRUE(registration.ok()) << registration.error().message;

  const Reply again = registration.value().connection.request(register_request());

  ASSERT_FALSE(again.ok());
  EXPECT_EQ(again.error().code, Code::refused);
  EXPECT_EQ(recorder->registered_instances().size(), 1u);
}

TEST(ControlServer, SecondServerForTheSameBusRefusesNamingTheRunningPid) {
  TempRuntimeDir dir;
  Pipe pipe;
  ChildProcess first = spawn_server_process(dir, "single", pipe);
  ASSERT_EQ(pipe.read_line(), "ready");

  const Result<ControlServer> second = ControlServer::open(options_for(dir, "single"), ServerCallbacks{});

  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.error().code, Code::refused);
  EXPECT_NE(second.error().message.find("already served by exobusd (pid " + std::to_string(first.pid()) + ","),
            std::string::npos)
      << second.error().message;
  // The refused server left the running one's socket alone.
  EXPECT_TRUE(request_status(dir.paths("single")).error().code != Code::daemon_not_running);
}

TEST(ControlServer, SocketOfAKilledDaemonIsReplacedByTheNextOne) {
  TempRuntimeDir dir;
  Pipe pipe;
  ChildProcess killed = spawn_server_process(dir, "restart", pipe);
  ASSERT_EQ(pipe.read_line(), "ready");
  killed.kill_hard();
  ASSERT_TRUE(killed.wait().has_value());
  ASSERT_TRUE(std::filesystem::exists(dir.paths("restart").socket));

  auto recorder = std::make_shared<Recorder>();
  Result<ControlServer> next = ControlServer::open(options_for(dir, "restart"), recording_callbacks(recorder));
  ASSERT_TRUE(next.ok()) << next.error().message;
  ServerThread server(std::move(next).value());

  const Result<JsonText> status = request_status(dir.paths("restart"));
  EXPECT_TRUE(status.ok()) << status.error().message;
}

TEST(ControlServer, NonSocketFileAtTheSocketPathIsNotRemoved) {
  TempRuntimeDir dir;
  const RuntimePaths paths = dir.paths("squatted");
  { std::ofstream(paths.socket) << "precious"; }

  const Result<ControlServer> server = ControlServer::open(options_for(dir, "squatted"), ServerCallbacks{});

  ASSERT_FALSE(server.ok());
  EXPECT_NE(server.error().message.find("not a socket"), std::string::npos) << server.error().message;
  EXPECT_TRUE(std::filesystem::is_regular_file(paths.socket));
}

TEST(ControlServer, SocketModeIsSetExactlyWhateverTheUmask) {
  TempRuntimeDir dir;
  ServerOptions options = options_for(dir, "mode");
  options.socket_mode = 0660;
  const mode_t old_umask = ::umask(0);
  Result<ControlServer> server = ControlServer::open(options, ServerCallbacks{});
  ::umask(old_umask);
  ASSERT_TRUE(server.ok()) << server.error().message;

  struct stat info {};
  ASSERT_EQ(::stat(dir.paths("mode").socket.c_str(), &info), 0);
  EXPECT_TRUE(S_ISSOCK(info.st_mode));
  EXPECT_EQ(info.st_mode & 07777, 0660u);
}

TEST(ControlServer, StoppedServerRemovesItsSocketAndReleasesTheBus) {
  TempRuntimeDir dir;
  { ServerThread server(open_server(options_for(dir, "cleanup"), ServerCallbacks{})); }
  EXPECT_FALSE(std::filesystem::exists(dir.paths("cleanup").socket));
  EXPECT_TRUE(ControlServer::open(options_for(dir, "cleanup"), ServerCallbacks{}).ok());
}

std::size_t open_descriptors() {
  std::size_t count = 0;
  for ([[maybe_unused]] const auto& entry : std::filesystem::directory_iterator("/proc/self/fd")) ++count;
  return count;
}

TEST(ControlServer, ServerAndClientsLeaveNoDescriptorsBehind) {
  TempRuntimeDir dir;
  const std::size_t before = open_descriptors();
  {
    auto recorder = std::make_shared<Recorder>();
    ServerThread server(open_server(options_for(dir, "no-leaks"), recording_callbacks(recorder)));
    for (int i = 0; i < 20; ++i) {
      {
        Result<InstanceRegistration> registration = register_instance(dir.paths("no-leaks"), register_request());
        ASSERT_TRUE(registration.ok()) << registration.error().message;
      }
      ASSERT_TRUE(recorder->wait_for_gone(::getpid(), 5s, i + 1));
      ASSERT_TRUE(request_status(dir.paths("no-leaks")).ok());
      ASSERT_FALSE(run_command(dir.paths("no-leaks"), "nope", JsonText()).ok());
    }
    UniqueFd idle = connect_raw(dir.paths("no-leaks"));  // still open when the server stops
  }
  EXPECT_EQ(open_descriptors(), before);
}

// Polls `condition` until it holds or `bound` passes (checked at least once).
template <class Condition>
bool eventually_true(Condition condition, std::chrono::milliseconds bound = 10s) {
  const auto deadline = std::chrono::steady_clock::now() + bound;
  while (!condition()) {
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(5ms);
  }
  return true;
}

// Whether the server closed `fd` within `bound` (a hang-up; a reply may wait before it).
bool closed_by_server(int fd, std::chrono::milliseconds bound = 10s) {
  return eventually_true(
      [fd] {
        pollfd probe{fd, POLLRDHUP, 0};
        return ::poll(&probe, 1, 0) == 1 && (probe.revents & (POLLRDHUP | POLLHUP)) != 0;
      },
      bound);
}

// As nobody (root switches in a child): the server's status, "ok" or "error <code> ...".
std::string status_as_nobody(const RuntimePaths& paths) {
  Pipe pipe;
  ChildProcess child = ChildProcess::spawn([&] {
    pipe.close_read_end();
    if (::setgroups(0, nullptr) != 0 || ::setgid(kNogroup) != 0 || ::setuid(kNobody) != 0) return 3;
    const Result<JsonText> status = request_status(paths);
    pipe.write_line(status ? "ok" : "error " + std::string(to_string(status.error().code)));
    return 0;
  });
  return pipe.read_line().value_or("(nothing)");
}

TEST(ControlServer, AConnectionBeyondItsUsersQuotaIsAnsweredQuotaExceededAndClosed) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root to switch to nobody";
  TempRuntimeDir dir;
  auto recorder = std::make_shared<Recorder>();
  auto refusals = std::make_shared<std::atomic<int>>(0);
  ServerCallbacks callbacks = recording_callbacks(recorder);
  callbacks.on_connection_refused = [refusals](const PeerCredentials&, std::uint32_t held) {
    EXPECT_EQ(held, 3u);
    refusals->fetch_add(1);
  };
  ServerOptions options = options_for(dir, "quota");
  options.runtime_dir_mode = 0755;  // reachable by nobody: another user
  options.socket_mode = 0666;
  options.max_connections_per_user = 3;
  options.registration_timeout = 600s;
  ServerThread server(open_server(options, callbacks));
  const RuntimePaths paths = dir.paths("quota");
  std::vector<UniqueFd> held;
  for (int k = 0; k < 3; ++k) held.push_back(connect_raw(paths));

  for (int k = 0; k < 3; ++k) {
    const Result<JsonText> refused = request_status(paths);
    ASSERT_FALSE(refused.ok());
    EXPECT_EQ(refused.error().code, Code::quota_exceeded) << refused.error().message;
    EXPECT_NE(refused.error().message.find("holds 3 connections to this exobusd already (max-connections-per-user 3"),
              std::string::npos)
        << refused.error().message;
  }
  UniqueFd beyond = connect_raw(paths);
  EXPECT_TRUE(closed_by_server(beyond.get())) << "closed at once, before any request";

  EXPECT_EQ(status_as_nobody(paths), "ok") << "another user's quota is its own";
  EXPECT_EQ(refusals->load(), 1) << "one report per burst";
  held.pop_back();  // gives its place back once the server sees the hang-up
  EXPECT_TRUE(eventually_true([&] { return request_status(paths).ok(); }));
  for (const UniqueFd& fd : held) EXPECT_FALSE(closed_by_server(fd.get(), 0ms)) << "what it admitted stays open";
}

TEST(ControlServer, ARegisteredInstanceDoesNotCountAgainstTheConnectionQuota) {
  TempRuntimeDir dir;
  auto recorder = std::make_shared<Recorder>();
  ServerOptions options = options_for(dir, "quota-registered");
  options.max_connections_per_user = 1;
  ServerThread server(open_server(options, recording_callbacks(recorder)));
  const RuntimePaths paths = dir.paths("quota-registered");
  Pipe pipe;

  ChildProcess instance = ChildProcess::spawn([&] { return register_and_report(paths, pipe, stay_alive); });
  ASSERT_TRUE(starts_with(pipe.read_line(), "ok ")) << "the registration took the one connection";

  EXPECT_TRUE(request_status(paths).ok()) << "and gave it back once registered";
}

TEST(ControlServer, AConnectionIdleBeyondTheRegistrationTimeoutIsClosedButARegisteredOneStays) {
  TempRuntimeDir dir;
  auto recorder = std::make_shared<Recorder>();
  auto idle_closed = std::make_shared<std::atomic<std::uint32_t>>(0);
  ServerCallbacks callbacks = recording_callbacks(recorder);
  callbacks.on_idle_closed = [idle_closed](std::uint32_t closed) { idle_closed->fetch_add(closed); };
  ServerOptions options = options_for(dir, "idle");
  options.registration_timeout = 200ms;
  ServerThread server(open_server(options, callbacks));
  const RuntimePaths paths = dir.paths("idle");
  Pipe pipe;
  ChildProcess instance = ChildProcess::spawn([&] { return register_and_report(paths, pipe, stay_alive); });
  ASSERT_TRUE(starts_with(pipe.read_line(), "ok "));

  UniqueFd silent = connect_raw(paths);
  UniqueFd asked_once = connect_raw(paths);
  ASSERT_TRUE(exchange_raw(asked_once.get(), R"({"protocol":2,"request":"status"})").ok());

  EXPECT_TRUE(closed_by_server(silent.get())) << "never registered, never asked";
  EXPECT_TRUE(closed_by_server(asked_once.get())) << "idle since its request";
  EXPECT_EQ(idle_closed->load(), 2u);
  EXPECT_TRUE(recorder->gone_instances().empty()) << "the registered instance's connection stays open";
  EXPECT_TRUE(request_status(paths).ok());
}

TEST(ControlServer, TickCallbackRunsEveryPeriod) {
  TempRuntimeDir dir;
  auto recorder = std::make_shared<Recorder>();
  ServerOptions options = options_for(dir, "ticks");
  options.tick_period = 10ms;
  ServerThread server(open_server(options, recording_callbacks(recorder)));

  EXPECT_TRUE(recorder->wait_for_ticks(5, 5s));
}

TEST(ControlServer, SighupReloadsAndSigtermStopsCleanly) {
  TempRuntimeDir dir;
  Pipe pipe;
  ChildProcess daemon = spawn_server_process(dir, "signals", pipe);
  ASSERT_EQ(pipe.read_line(), "ready");

  daemon.signal(SIGHUP);
  EXPECT_EQ(pipe.read_line(), "reload");

  daemon.signal(SIGTERM);
  const std::optional<int> status = daemon.wait(5s);
  ASSERT_TRUE(status.has_value());
  EXPECT_TRUE(WIFEXITED(*status)) << *status;
  EXPECT_EQ(WEXITSTATUS(*status), 0);
  EXPECT_FALSE(std::filesystem::exists(dir.paths("signals").socket));
}

}  // namespace
}  // namespace exobus::daemon
