#include "memory_keeper.hpp"

#include <fcntl.h>
#include <poll.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>

#include "exobus/control/control_protocol.hpp"
#include "exobus/control/system_error.hpp"

extern char** environ;

namespace exobus::daemon {

namespace {

using control::errno_error;
using control::retry_on_eintr;
using control::UniqueFd;
using Code = ErrorCode;

constexpr std::size_t kMaxWord = 16;
// Descriptors per datagram (the kernel's SCM_MAX_FD is 253); more travel in batches.
constexpr std::size_t kBatch = 200;

std::filesystem::path socket_path(const control::RuntimePaths& paths) {
  return paths.dir.path / (paths.bus + ".keep");
}

sockaddr_un address_of(const std::filesystem::path& path) {
  sockaddr_un address{};
  address.sun_family = AF_UNIX;
  std::strncpy(address.sun_path, path.c_str(), sizeof address.sun_path - 1);
  return address;
}

// Sends `word` with `fds` attached.
bool send_word(int socket, std::string_view word, std::span<const int> fds) {
  iovec iov{const_cast<char*>(word.data()), word.size()};
  msghdr message{};
  message.msg_iov = &iov;
  message.msg_iovlen = 1;
  std::vector<char> control(CMSG_SPACE(sizeof(int) * fds.size()));
  if (!fds.empty()) {
    message.msg_control = control.data();
    message.msg_controllen = control.size();
    cmsghdr* header = CMSG_FIRSTHDR(&message);
    header->cmsg_level = SOL_SOCKET;
    header->cmsg_type = SCM_RIGHTS;
    header->cmsg_len = CMSG_LEN(sizeof(int) * fds.size());
    std::memcpy(CMSG_DATA(header), fds.data(), sizeof(int) * fds.size());
  }
  return retry_on_eintr([&] { return ::sendmsg(socket, &message, MSG_NOSIGNAL); }) ==
         static_cast<ssize_t>(word.size());
}

// One word and the descriptors that came with it; nothing at a hang-up or an error.
std::optional<std::string> receive_word(int socket, std::vector<UniqueFd>& fds) {
  char word[kMaxWord];
  iovec iov{word, sizeof word};
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int) * kBatch)];
  msghdr message{};
  message.msg_iov = &iov;
  message.msg_iovlen = 1;
  message.msg_control = control;
  message.msg_controllen = sizeof control;
  const ssize_t n = retry_on_eintr([&] { return ::recvmsg(socket, &message, MSG_CMSG_CLOEXEC); });
  for (cmsghdr* header = CMSG_FIRSTHDR(&message); n > 0 && header != nullptr; header = CMSG_NXTHDR(&message, header)) {
    if (header->cmsg_level != SOL_SOCKET || header->cmsg_type != SCM_RIGHTS) continue;
    const std::size_t count = (header->cmsg_len - CMSG_LEN(0)) / sizeof(int);
    for (std::size_t k = 0; k < count; ++k) {
      int received = -1;
      std::memcpy(&received, CMSG_DATA(header) + k * sizeof(int), sizeof(int));
      fds.emplace_back(received);
    }
  }
  if (n <= 0 || (message.msg_flags & (MSG_TRUNC | MSG_CTRUNC)) != 0) return std::nullopt;
  return std::string(word, static_cast<std::size_t>(n));
}

bool same_user(int socket) {
  ucred peer{};
  socklen_t length = sizeof peer;
  return ::getsockopt(socket, SOL_SOCKET, SO_PEERCRED, &peer, &length) == 0 && peer.uid == ::geteuid();
}

}  // namespace

std::optional<MemoryKeeper> MemoryKeeper::connect(const control::RuntimePaths& paths) {
  UniqueFd socket(::socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0));
  if (!socket) return std::nullopt;
  const sockaddr_un address = address_of(socket_path(paths));
  if (::connect(socket.get(), reinterpret_cast<const sockaddr*>(&address), sizeof address) == -1) return std::nullopt;
  // Only a keeper of our own user holds our memory: anyone else's is not ours to trust.
  if (!same_user(socket.get())) return std::nullopt;
  return MemoryKeeper(std::move(socket));
}

Result<MemoryKeeper> MemoryKeeper::start(const control::RuntimePaths& paths, const std::filesystem::path& program) {
  posix_spawn_file_actions_t actions;
  posix_spawnattr_t attributes;
  posix_spawn_file_actions_init(&actions);
  posix_spawnattr_init(&attributes);
  // Its own session, so signals for the daemon's terminal or process group do not reach it;
  // no inherited stdio, so nobody waiting for the daemon's output waits for the keeper.
  posix_spawnattr_setflags(&attributes, POSIX_SPAWN_SETSID);
  for (const int fd : {STDIN_FILENO, STDOUT_FILENO, STDERR_FILENO}) {
    posix_spawn_file_actions_addopen(&actions, fd, "/dev/null", fd == STDIN_FILENO ? O_RDONLY : O_WRONLY, 0);
  }
  const std::string bus = paths.bus, dir = paths.dir.path.string(), path = program.string();
  const char* argv[] = {path.c_str(), "--keep", "--bus", bus.c_str(), "--runtime-dir", dir.c_str(), nullptr};
  pid_t pid = 0;
  const int spawned = posix_spawn(&pid, path.c_str(), &actions, &attributes, const_cast<char* const*>(argv), environ);
  posix_spawn_file_actions_destroy(&actions);
  posix_spawnattr_destroy(&attributes);
  if (spawned != 0) return errno_error(Code::io, "cannot start the memory keeper " + path, spawned);
  // The keeper is nobody's child to wait for: it runs in a session of its own.
  for (int attempt = 0; attempt < 200; ++attempt) {
    if (std::optional<MemoryKeeper> keeper = connect(paths)) return std::move(*keeper);
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return Error{Code::io, "the memory keeper of bus '" + paths.bus + "' did not come up on " +
                             socket_path(paths).string()};
}

Result<std::vector<UniqueFd>> MemoryKeeper::request(const std::string& word, std::span<const int> fds) {
  if (!send_word(connection_.get(), word, fds)) {
    return errno_error(Code::io, "cannot talk to the memory keeper", errno);
  }
  std::vector<UniqueFd> received;
  const std::optional<std::string> answer = receive_word(connection_.get(), received);
  if (!answer || *answer != "ok") return Error{Code::protocol, "the memory keeper did not answer '" + std::string(word) + "'"};
  return received;
}

Result<std::vector<UniqueFd>> MemoryKeeper::take_back() {
  std::vector<UniqueFd> all;
  for (;;) {
    Result<std::vector<UniqueFd>> batch = request("give " + std::to_string(all.size()), {});
    if (!batch) return batch.error();
    const std::size_t count = batch.value().size();
    for (UniqueFd& fd : batch.value()) all.push_back(std::move(fd));
    if (count < kBatch) return all;
  }
}

Result<void> MemoryKeeper::keep(std::span<const int> fds) {
  std::string_view word = "keep";  // the first batch replaces what is held
  do {
    const std::span<const int> batch = fds.first(std::min(fds.size(), kBatch));
    Result<std::vector<UniqueFd>> answered = request(std::string(word), batch);
    if (!answered) return answered.error();
    fds = fds.subspan(batch.size());
    word = "more";
  } while (!fds.empty());
  return {};
}

Result<void> MemoryKeeper::keep_more(std::span<const int> fds) {
  while (!fds.empty()) {
    const std::span<const int> batch = fds.first(std::min(fds.size(), kBatch));
    Result<std::vector<UniqueFd>> answered = request("more", batch);
    if (!answered) return answered.error();
    fds = fds.subspan(batch.size());
  }
  return {};
}

void MemoryKeeper::release() { (void)request("release", {}); }

bool MemoryKeeper::alive() const {
  pollfd probe{connection_.get(), POLLRDHUP, 0};
  return retry_on_eintr([&] { return ::poll(&probe, 1, 0); }) == 0;
}

int run_keeper(const control::RuntimePaths& paths) {
  const std::filesystem::path path = socket_path(paths);
  if (MemoryKeeper::connect(paths)) return 0;  // one keeper per bus: it runs already
  UniqueFd listener(::socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0));
  if (!listener) return 1;
  ::unlink(path.c_str());  // a stale socket of a keeper that died: nobody answers on it
  const sockaddr_un address = address_of(path);
  const mode_t old_umask = ::umask(0177);  // the daemon's user alone, from bind() on
  const bool bound = ::bind(listener.get(), reinterpret_cast<const sockaddr*>(&address), sizeof address) == 0;
  ::umask(old_umask);
  if (!bound || ::listen(listener.get(), 8) == -1) return 1;
  struct stat mine {};
  if (::stat(path.c_str(), &mine) == -1) return 1;

  std::vector<UniqueFd> held;
  std::vector<UniqueFd> connections;
  for (;;) {
    std::vector<pollfd> watched{{listener.get(), POLLIN, 0}};
    for (const UniqueFd& connection : connections) watched.push_back({connection.get(), POLLIN, 0});
    const int ready = retry_on_eintr([&] { return ::poll(watched.data(), watched.size(), 1000); });
    // Gone with its runtime directory (or replaced): the bus is no more.
    struct stat now {};
    if (::stat(path.c_str(), &now) == -1 || now.st_ino != mine.st_ino) return 0;
    if (ready <= 0) continue;
    if ((watched[0].revents & POLLIN) != 0) {
      UniqueFd accepted(::accept4(listener.get(), nullptr, nullptr, SOCK_CLOEXEC));
      if (accepted && same_user(accepted.get())) connections.push_back(std::move(accepted));
    }
    for (std::size_t k = 1; k < watched.size(); ++k) {
      if (watched[k].revents == 0) continue;
      UniqueFd& connection = connections[k - 1];
      std::vector<UniqueFd> received;
      const std::optional<std::string> word = receive_word(connection.get(), received);
      if (!word) {
        connection.reset();  // hung up: a daemon that stopped or died
      } else if (*word == "keep" || *word == "more") {
        if (*word == "keep") held.clear();
        for (UniqueFd& fd : received) held.push_back(std::move(fd));
        send_word(connection.get(), "ok", {});
      } else if (word->starts_with("give ")) {
        // "give N": the batch from the N-th held descriptor on.
        const std::size_t from = std::strtoul(word->c_str() + 5, nullptr, 10);
        std::vector<int> fds;
        for (std::size_t k = from; k < held.size() && fds.size() < kBatch; ++k) fds.push_back(held[k].get());
        send_word(connection.get(), "ok", fds);
      } else if (*word == "release") {
        send_word(connection.get(), "ok", {});
        ::unlink(path.c_str());
        return 0;
      } else {
        connection.reset();
      }
    }
    std::erase_if(connections, [](const UniqueFd& connection) { return !connection; });
  }
}

}  // namespace exobus::daemon
