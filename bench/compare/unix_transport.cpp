// Unix domain stream sockets with length-prefixed frames: what most services use when they
// roll their own local IPC. Treated fairly: large socket buffers, one write() per message
// (the least a message-oriented sender can do on a stream), and a receiver that drains the
// socket in bulk and slices frames out of its buffer, so it pays a read() per burst rather
// than per message.
//
// Frame: | u32 length (host order) | payload (length bytes) |

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "transports.hpp"

namespace exobus::bench {
namespace {

constexpr std::size_t kHeader = sizeof(std::uint32_t);
constexpr int kSocketBuffer = 4 << 20;

[[noreturn]] void fail(const std::string& what) {
  throw TransportError("unix: " + what + ": " + std::strerror(errno));
}

class Fd {
 public:
  explicit Fd(int fd) : fd_(fd) {}
  ~Fd() {
    if (fd_ >= 0) ::close(fd_);
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int get() const { return fd_; }

 private:
  int fd_;
};

void set_buffers(int fd) {
  // FORCE lifts the net.core.{w,r}mem_max cap when we may; otherwise take what the cap allows.
  for (auto [force, plain] : {std::pair{SO_SNDBUFFORCE, SO_SNDBUF}, {SO_RCVBUFFORCE, SO_RCVBUF}}) {
    if (::setsockopt(fd, SOL_SOCKET, force, &kSocketBuffer, sizeof kSocketBuffer) != 0)
      ::setsockopt(fd, SOL_SOCKET, plain, &kSocketBuffer, sizeof kSocketBuffer);
  }
}

sockaddr_un address(const std::string& path) {
  sockaddr_un a{};
  a.sun_family = AF_UNIX;
  if (path.size() >= sizeof a.sun_path) throw TransportError("unix: socket path too long");
  std::memcpy(a.sun_path, path.c_str(), path.size() + 1);
  return a;
}

// Builds a frame in place: the payload is written by the caller right behind the header, so
// a message costs exactly one write().
class FrameWriter {
 public:
  FrameWriter(int fd, std::size_t max_payload) : fd_(fd), buf_(kHeader + max_payload) {}

  std::span<std::byte> acquire(std::size_t size) {
    if (size > buf_.size() - kHeader) throw TransportError("unix: payload too large");
    return {buf_.data() + kHeader, size};
  }

  void commit(std::size_t size) {
    const auto len = static_cast<std::uint32_t>(size);
    std::memcpy(buf_.data(), &len, kHeader);
    const std::byte* p = buf_.data();
    std::size_t left = kHeader + size;
    // A blocking stream write sends everything in one call unless a signal interrupts it;
    // the loop is for that case only.
    while (left > 0) {
      const ssize_t n = ::write(fd_, p, left);
      if (n < 0) {
        if (errno == EINTR) continue;
        fail("write");
      }
      p += n;
      left -= static_cast<std::size_t>(n);
    }
  }

 private:
  int fd_;
  std::vector<std::byte> buf_;
};

// Reads as much as the socket holds into a large buffer and hands out frames from it.
class FrameReader {
 public:
  FrameReader(int fd, std::size_t max_payload)
      : fd_(fd), max_payload_(max_payload),
        buf_(std::max<std::size_t>(4u << 20, 8 * (kHeader + max_payload))) {}

  std::span<const std::byte> receive() {
    for (;;) {
      if (end_ - pos_ >= kHeader) {
        std::uint32_t len;
        std::memcpy(&len, buf_.data() + pos_, kHeader);
        if (len > max_payload_) throw TransportError("unix: corrupt frame length");
        if (end_ - pos_ >= kHeader + len) {
          next_ = pos_ + kHeader + len;
          return {buf_.data() + pos_ + kHeader, len};
        }
      }
      // Keep room for a whole frame after pos_; moving the partial tail forward happens once
      // per buffer-full, not per message.
      if (buf_.size() - pos_ < kHeader + max_payload_) {
        std::memmove(buf_.data(), buf_.data() + pos_, end_ - pos_);
        end_ -= pos_;
        pos_ = 0;
      }
      const ssize_t n = ::read(fd_, buf_.data() + end_, buf_.size() - end_);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) fail("read");
      if (n == 0) throw TransportError("unix: peer closed the connection");
      end_ += static_cast<std::size_t>(n);
    }
  }

  void release() { pos_ = next_; }

 private:
  int fd_;
  std::size_t max_payload_;
  std::vector<std::byte> buf_;
  std::size_t pos_ = 0;  // start of the current frame
  std::size_t next_ = 0;
  std::size_t end_ = 0;  // end of the bytes read so far
};

int accept_one(int listen_fd) {
  const int fd = ::accept(listen_fd, nullptr, nullptr);
  if (fd < 0) fail("accept");
  ::close(listen_fd);  // this child's inherited copy; the coordinator keeps its own
  set_buffers(fd);
  return fd;
}

int connect_to(const std::string& path) {
  const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) fail("socket");
  set_buffers(fd);
  const sockaddr_un a = address(path);
  if (::connect(fd, reinterpret_cast<const sockaddr*>(&a), sizeof a) != 0) fail("connect");
  return fd;
}

class UnixSender final : public Sender {
 public:
  UnixSender(int fd, std::size_t max) : fd_(fd), out_(fd, max) {}
  std::span<std::byte> acquire(std::size_t size) override { return out_.acquire(size); }
  void commit(std::size_t size) override { out_.commit(size); }

 private:
  Fd fd_;
  FrameWriter out_;
};

class UnixReceiver final : public Receiver {
 public:
  UnixReceiver(int fd, std::size_t max) : fd_(fd), in_(fd, max) {}
  std::span<const std::byte> receive() override { return in_.receive(); }
  void release() override { in_.release(); }

 private:
  Fd fd_;
  FrameReader in_;
};

class UnixDuplex final : public Duplex {
 public:
  UnixDuplex(int fd, std::size_t max) : fd_(fd), out_(fd, max), in_(fd, max) {}
  std::span<std::byte> acquire(std::size_t size) override { return out_.acquire(size); }
  void commit(std::size_t size) override { out_.commit(size); }
  std::span<const std::byte> receive() override { return in_.receive(); }
  void release() override { in_.release(); }

 private:
  Fd fd_;
  FrameWriter out_;
  FrameReader in_;
};

class UnixTransport final : public Transport {
 public:
  std::string_view name() const override { return "unix"; }

  // The listening socket is made before fork so the connecting child never races the
  // accepting one; children inherit it.
  void prepare(const ChannelSpec& spec) override {
    max_ = spec.max_payload;
    path_ = "/tmp/exobus-bench-unix-" + spec.tag + ".sock";
    listen_fd_ = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (listen_fd_ < 0) fail("socket");
    const sockaddr_un a = address(path_);
    ::unlink(path_.c_str());
    if (::bind(listen_fd_, reinterpret_cast<const sockaddr*>(&a), sizeof a) != 0) fail("bind");
    if (::listen(listen_fd_, 4) != 0) fail("listen");
  }

  void cleanup() override {
    if (listen_fd_ >= 0) ::close(listen_fd_);
    listen_fd_ = -1;
    if (!path_.empty()) ::unlink(path_.c_str());
    path_.clear();
  }

  std::unique_ptr<Sender> open_sender() override {
    return std::make_unique<UnixSender>(connect_to(path_), max_);
  }
  std::unique_ptr<Receiver> open_receiver() override {
    return std::make_unique<UnixReceiver>(accept_one(listen_fd_), max_);
  }
  std::unique_ptr<Duplex> open_client() override {
    return std::make_unique<UnixDuplex>(connect_to(path_), max_);
  }
  std::unique_ptr<Duplex> open_server() override {
    return std::make_unique<UnixDuplex>(accept_one(listen_fd_), max_);
  }

 private:
  std::size_t max_ = 0;
  std::string path_;
  int listen_fd_ = -1;
};

}  // namespace

std::unique_ptr<Transport> make_unix_transport() { return std::make_unique<UnixTransport>(); }

}  // namespace exobus::bench
