#pragma once
// The seam between the comparison harness and the transports it measures.
//
// A Transport is a recipe for one channel between two processes. The harness calls
// `prepare()` in the coordinating process before it forks, then each forked child opens
// exactly one side, runs its loop, and exits; `cleanup()` runs in the coordinator after both
// children are gone. Sides are never shared between processes or threads.
//
// The message model is the one every transport already has in common and the one ExoBus
// exposes: the sender borrows a buffer, writes the payload into it and commits; the receiver
// is handed a read-only view, processes it and releases (acks) it. A transport that must copy
// (a socket) copies inside commit/receive; one that can lend its own memory (a ring, a chunk
// pool) lends it. The harness therefore charges every transport the same application work:
// one memcpy of the payload into the borrowed buffer and a read of its header and trailer.
//
// Not promised: views stay valid only until the matching release()/next receive(); sides
// are blocking and single-threaded; a failure is reported by throwing TransportError from
// open_*() or from any call, which ends that child with an error that fails the run.

#include <cstddef>
#include <memory>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>

namespace exobus::bench {

class TransportError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// What the harness will push through a channel, fixed before fork so a transport can size its
// buffers (ring slots, socket buffers, high-water marks) for it.
struct ChannelSpec {
  std::size_t max_payload = 0;  // largest message, in bytes, that any side will send
  std::string tag;              // unique per run; use it to name shm segments and socket paths
};

// One-way producer side. acquire() may block (spin or sleep) until the transport has room.
class Sender {
 public:
  virtual ~Sender() = default;
  // A writable buffer of at least `size` bytes (size <= ChannelSpec::max_payload) for the
  // next message; valid until commit().
  virtual std::span<std::byte> acquire(std::size_t size) = 0;
  // Publishes the first `size` bytes of the buffer returned by the last acquire().
  virtual void commit(std::size_t size) = 0;
};

// One-way consumer side.
class Receiver {
 public:
  virtual ~Receiver() = default;
  // Blocks until the next message and returns a view of its payload, valid until release().
  virtual std::span<const std::byte> receive() = 0;
  // Acks the message returned by the last receive(); its memory may be reused after this.
  virtual void release() = 0;
};

// One end of a request->reply channel: it both sends and receives. The client sends a request
// and receives the reply; the server receives a request, sends the reply, then releases.
class Duplex : public Sender, public Receiver {};

class Transport {
 public:
  virtual ~Transport() = default;
  // Short lowercase name used on the command line, in tables and in file names.
  virtual std::string_view name() const = 0;

  // Coordinator, before fork: create whatever both sides must find (segment, listening
  // socket). Called once per run with a fresh tag.
  virtual void prepare(const ChannelSpec& spec) = 0;
  // Coordinator, after both children exited (successfully or not): remove what prepare made.
  virtual void cleanup() = 0;

  // Child processes, after fork. Each side is opened by exactly one process.
  virtual std::unique_ptr<Sender> open_sender() = 0;
  virtual std::unique_ptr<Receiver> open_receiver() = 0;
  virtual std::unique_ptr<Duplex> open_client() = 0;
  virtual std::unique_ptr<Duplex> open_server() = 0;
};

}  // namespace exobus::bench
