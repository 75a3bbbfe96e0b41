// The floor transport: two floor rings (request and reply direction) in one POSIX shared
// memory segment. One-way runs use only the first.

#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <new>
#include <string>

#include "floor_ring.hpp"
#include "transports.hpp"

namespace exobus::bench {
namespace {

using floor_ring::RingConsumer;
using floor_ring::RingGeometry;
using floor_ring::RingIndices;
using floor_ring::RingProducer;

[[noreturn]] void fail(const std::string& what) {
  throw TransportError("floor: " + what + ": " + std::strerror(errno));
}

// A mapping of the whole segment, unmapped when the side that owns it is destroyed.
class Mapping {
 public:
  Mapping(const std::string& name, std::size_t bytes) : bytes_(bytes) {
    const int fd = ::shm_open(name.c_str(), O_RDWR, 0);
    if (fd < 0) fail("shm_open " + name);
    // MAP_POPULATE: take the page faults now, not during the first lap of the measurement.
    void* p = ::mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd, 0);
    ::close(fd);
    if (p == MAP_FAILED) fail("mmap");
    base_ = static_cast<std::byte*>(p);
  }
  ~Mapping() { ::munmap(base_, bytes_); }
  Mapping(const Mapping&) = delete;
  Mapping& operator=(const Mapping&) = delete;

  std::byte* at(std::size_t offset) const { return base_ + offset; }

 private:
  std::byte* base_ = nullptr;
  std::size_t bytes_;
};

class FloorSender final : public Sender {
 public:
  FloorSender(const std::string& name, const RingGeometry& g)
      : map_(name, 2 * g.bytes()), ring_(map_.at(0), g) {}
  std::span<std::byte> acquire(std::size_t size) override { return ring_.acquire(size); }
  void commit(std::size_t size) override { ring_.commit(size); }

 private:
  Mapping map_;
  RingProducer ring_;
};

class FloorReceiver final : public Receiver {
 public:
  FloorReceiver(const std::string& name, const RingGeometry& g)
      : map_(name, 2 * g.bytes()), ring_(map_.at(0), g) {}
  std::span<const std::byte> receive() override { return ring_.receive(); }
  void release() override { ring_.release(); }

 private:
  Mapping map_;
  RingConsumer ring_;
};

// The client produces into ring 0 and consumes ring 1; the server the other way round.
class FloorDuplex final : public Duplex {
 public:
  FloorDuplex(const std::string& name, const RingGeometry& g, bool client)
      : map_(name, 2 * g.bytes()),
        out_(map_.at(client ? 0 : g.bytes()), g),
        in_(map_.at(client ? g.bytes() : 0), g) {}
  std::span<std::byte> acquire(std::size_t size) override { return out_.acquire(size); }
  void commit(std::size_t size) override { out_.commit(size); }
  std::span<const std::byte> receive() override { return in_.receive(); }
  void release() override { in_.release(); }

 private:
  Mapping map_;
  RingProducer out_;
  RingConsumer in_;
};

class FloorTransport final : public Transport {
 public:
  std::string_view name() const override { return "floor"; }

  void prepare(const ChannelSpec& spec) override {
    geo_ = RingGeometry::for_payload(spec.max_payload);
    name_ = "/exobus-bench-floor-" + spec.tag;
    const int fd = ::shm_open(name_.c_str(), O_RDWR | O_CREAT | O_EXCL, 0600);
    if (fd < 0) fail("shm_open " + name_);
    const std::size_t bytes = 2 * geo_.bytes();
    if (::ftruncate(fd, static_cast<off_t>(bytes)) != 0) {
      ::close(fd);
      fail("ftruncate");
    }
    void* p = ::mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    ::close(fd);
    if (p == MAP_FAILED) fail("mmap");
    // ftruncate zero-fills, but the atomics must still begin their lifetime somewhere.
    for (std::size_t off : {std::size_t{0}, geo_.bytes()}) {
      auto* idx = new (static_cast<std::byte*>(p) + off) RingIndices;
      idx->tail.store(0, std::memory_order_relaxed);
      idx->head.store(0, std::memory_order_relaxed);
    }
    ::munmap(p, bytes);
  }

  void cleanup() override {
    if (!name_.empty()) ::shm_unlink(name_.c_str());
    name_.clear();
  }

  std::unique_ptr<Sender> open_sender() override {
    return std::make_unique<FloorSender>(name_, geo_);
  }
  std::unique_ptr<Receiver> open_receiver() override {
    return std::make_unique<FloorReceiver>(name_, geo_);
  }
  std::unique_ptr<Duplex> open_client() override {
    return std::make_unique<FloorDuplex>(name_, geo_, true);
  }
  std::unique_ptr<Duplex> open_server() override {
    return std::make_unique<FloorDuplex>(name_, geo_, false);
  }

 private:
  RingGeometry geo_;
  std::string name_;
};

}  // namespace

std::unique_ptr<Transport> make_floor_transport() { return std::make_unique<FloorTransport>(); }

}  // namespace exobus::bench
