// ZeroMQ over ipc://: PUSH/PULL for one-way streams, REQ/REP for round trips, through the C
// API. Messages are built in place in a zmq_msg_t (zmq_msg_init_size + zmq_msg_send), which
// is ZeroMQ's own zero-extra-copy path; the allocation it makes per message is part of what
// ZeroMQ costs. Received messages are read from the zmq_msg_t without copying out.
//
// ZeroMQ runs an I/O thread per context; it inherits the CPU affinity of the process that
// created it, so it shares the core the harness pinned that side to.

#include <zmq.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <string>

#include "transports.hpp"

namespace exobus::bench {
namespace {

[[noreturn]] void fail(const std::string& what) {
  throw TransportError("zeromq: " + what + ": " + zmq_strerror(zmq_errno()));
}

// The queue each side may hold, in messages: about the same few MiB the other transports get.
int high_water_mark(std::size_t max_payload) {
  return static_cast<int>(std::clamp<std::size_t>((4u << 20) / std::max<std::size_t>(max_payload, 1), 16, 100000));
}

// One context and one socket per side: the side owns the whole ZeroMQ state of its process.
class Side {
 public:
  Side(int type, const std::string& endpoint, bool bind, int hwm) {
    ctx_ = zmq_ctx_new();
    if (ctx_ == nullptr) fail("zmq_ctx_new");
    sock_ = zmq_socket(ctx_, type);
    if (sock_ == nullptr) fail("zmq_socket");
    if (zmq_setsockopt(sock_, ZMQ_SNDHWM, &hwm, sizeof hwm) != 0) fail("ZMQ_SNDHWM");
    if (zmq_setsockopt(sock_, ZMQ_RCVHWM, &hwm, sizeof hwm) != 0) fail("ZMQ_RCVHWM");
    // ipc:// runs over a Unix stream socket: give it the buffers the unix transport gets.
    const int kernel_buffer = 4 << 20;
    if (zmq_setsockopt(sock_, ZMQ_SNDBUF, &kernel_buffer, sizeof kernel_buffer) != 0) fail("ZMQ_SNDBUF");
    if (zmq_setsockopt(sock_, ZMQ_RCVBUF, &kernel_buffer, sizeof kernel_buffer) != 0) fail("ZMQ_RCVBUF");
    const int rc = bind ? zmq_bind(sock_, endpoint.c_str()) : zmq_connect(sock_, endpoint.c_str());
    if (rc != 0) fail(bind ? "zmq_bind " + endpoint : "zmq_connect " + endpoint);
    zmq_msg_init(&in_);
    zmq_msg_init(&out_);
  }
  ~Side() {
    zmq_msg_close(&in_);
    zmq_msg_close(&out_);
    // Default linger: close waits until queued messages reached the peer, so a sender that
    // exits right after its last send still delivers it.
    zmq_close(sock_);
    zmq_ctx_term(ctx_);
  }
  Side(const Side&) = delete;
  Side& operator=(const Side&) = delete;

  std::span<std::byte> acquire(std::size_t size) {
    zmq_msg_close(&out_);
    if (zmq_msg_init_size(&out_, size) != 0) fail("zmq_msg_init_size");
    return {static_cast<std::byte*>(zmq_msg_data(&out_)), size};
  }

  void commit(std::size_t size) {
    if (size != zmq_msg_size(&out_)) throw TransportError("zeromq: commit size differs from acquire");
    // On success ZeroMQ takes the content and leaves out_ empty.
    while (zmq_msg_send(&out_, sock_, 0) < 0) {
      if (zmq_errno() != EINTR) fail("zmq_msg_send");
    }
  }

  std::span<const std::byte> receive() {
    // Releases the previous message's content and reuses the zmq_msg_t.
    while (zmq_msg_recv(&in_, sock_, 0) < 0) {
      if (zmq_errno() != EINTR) fail("zmq_msg_recv");
    }
    return {static_cast<const std::byte*>(zmq_msg_data(&in_)), zmq_msg_size(&in_)};
  }

 private:
  void* ctx_ = nullptr;
  void* sock_ = nullptr;
  zmq_msg_t in_;
  zmq_msg_t out_;
};

class ZmqSender final : public Sender {
 public:
  ZmqSender(const std::string& ep, int hwm) : side_(ZMQ_PUSH, ep, false, hwm) {}
  std::span<std::byte> acquire(std::size_t size) override { return side_.acquire(size); }
  void commit(std::size_t size) override { side_.commit(size); }

 private:
  Side side_;
};

class ZmqReceiver final : public Receiver {
 public:
  ZmqReceiver(const std::string& ep, int hwm) : side_(ZMQ_PULL, ep, true, hwm) {}
  std::span<const std::byte> receive() override { return side_.receive(); }
  void release() override {}

 private:
  Side side_;
};

class ZmqDuplex final : public Duplex {
 public:
  ZmqDuplex(int type, const std::string& ep, bool bind, int hwm) : side_(type, ep, bind, hwm) {}
  std::span<std::byte> acquire(std::size_t size) override { return side_.acquire(size); }
  void commit(std::size_t size) override { side_.commit(size); }
  std::span<const std::byte> receive() override { return side_.receive(); }
  void release() override {}

 private:
  Side side_;
};

class ZmqTransport final : public Transport {
 public:
  std::string_view name() const override { return "zeromq"; }

  void prepare(const ChannelSpec& spec) override {
    path_ = "/tmp/exobus-bench-zmq-" + spec.tag + ".ipc";
    endpoint_ = "ipc://" + path_;
    hwm_ = high_water_mark(spec.max_payload);
  }

  void cleanup() override {
    if (!path_.empty()) std::remove(path_.c_str());
    path_.clear();
  }

  // The receiving side binds, the sending side connects: the harness opens the receiver first.
  std::unique_ptr<Sender> open_sender() override {
    return std::make_unique<ZmqSender>(endpoint_, hwm_);
  }
  std::unique_ptr<Receiver> open_receiver() override {
    return std::make_unique<ZmqReceiver>(endpoint_, hwm_);
  }
  std::unique_ptr<Duplex> open_client() override {
    return std::make_unique<ZmqDuplex>(ZMQ_REQ, endpoint_, false, hwm_);
  }
  std::unique_ptr<Duplex> open_server() override {
    return std::make_unique<ZmqDuplex>(ZMQ_REP, endpoint_, true, hwm_);
  }

 private:
  std::string path_;
  std::string endpoint_;
  int hwm_ = 1000;
};

}  // namespace

std::unique_ptr<Transport> make_zeromq_transport() { return std::make_unique<ZmqTransport>(); }

}  // namespace exobus::bench
