#pragma once
// The client library: connect a process to a bus as one instance of a service type, send
// commands and replies, and handle what the bus delivers.
//
//   auto users = exobus::Service::connect({.bus = "demo", .service = "users"}).value();
//   users->on("user.create", [&](exobus::Delivery& delivery) {
//     delivery.reply("user.create.ok", R"({"id": 7})");
//   });            // returning normally acks; throwing releases for redelivery
//   users->start();
//
// Messages travel through shared memory with no system call while the receiver is busy;
// the daemon only registers the instance and recovers what a dead one held.
//
// Guarantees: a send that returned ok reaches at least one instance of every service type
// subscribed to its name, even if the sender, a receiver or the daemon dies afterwards.
// Non-guarantees: no order across senders; at-least-once, not exactly-once (a redelivered
// message says so: Received::redelivered()); handlers must tolerate duplicates.
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <future>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "exobus/error.hpp"
#include "exobus/uuid.hpp"

namespace exobus {

enum class WaitMode {
  adaptive,   // spin briefly, then yield, then sleep on a futex: fast and idle-cheap
  busy_poll,  // never sleep: lowest latency, one core per receiving thread
  sleep,      // sleep as soon as the queue is empty: least CPU
};

struct ServiceOptions {
  std::string bus{};                             // default: $EXOBUS_BUS
  std::string service{};                         // the service type; default: $EXOBUS_SERVICE
  std::filesystem::path runtime_dir{};           // default: $EXOBUS_RUNTIME_DIR or /tmp/exobus-<uid>
  std::chrono::milliseconds send_timeout{1000};  // how long send() waits for room in a full queue
  unsigned handler_threads = 0;                  // 0: handlers run on the receiving thread
  WaitMode wait_mode = WaitMode::adaptive;
  // false: Received::payload stays empty and handlers read Delivery::payload() in place,
  // saving a copy of every payload (large payloads: see docs/benchmarks.md).
  bool copy_payloads = true;
};

// A received message, its name in the receiver's own terms (after message translation).
struct Received {
  std::string name;
  double version = 1.0;
  std::string payload;  // JSON text, or empty
  Uuid id;
  Uuid request_id;
  std::optional<Uuid> response_to;
  std::string sender;       // the sending service type
  unsigned deliveries = 0;  // earlier deliveries to this service type
  bool redelivered() const { return deliveries > 0; }
};

namespace client {
class ServiceCore;
class Receiver;
class Sender;
}  // namespace client

// A message being handled. Settle it once: ack (done), release (redeliver now, maybe to
// another instance), reject (dead-letter), or let the handler return (ack) or throw
// (release). renew() extends the ack deadline for long work.
class Delivery {
 public:
  const Received& message() const { return message_; }
  // The payload where it lies in shared memory, with no copy. Valid until the delivery is
  // settled, or its lease expires (then it may be redelivered, acknowledged elsewhere and
  // its memory reused): copy what must outlive that.
  std::string_view payload() const { return payload_; }
  // Asked after reading payload(): whether every byte read was this message's. False only
  // when the lease was lost meanwhile (the process stopped or ran past ack-timeout-ms) and
  // the memory reused; the message was redelivered, so drop what was read. (message() is
  // checked by the library before the handler runs.)
  bool payload_intact() const;
  // Reply to this command with an outcome (a name in the replier's `sends`); may be called
  // any number of times for a streaming reply.
  Result<void> reply(std::string_view outcome, std::string_view payload = {});
  Result<void> ack();
  Result<void> release();
  Result<void> reject();
  Result<void> renew();
  bool settled() const { return settled_; }

 private:
  friend class client::Receiver;
  enum class Settlement : std::uint8_t;
  Delivery(client::ServiceCore& core, std::uint64_t lease, std::uint64_t chunk, std::uint16_t reply_ring,
           Received message, std::string_view payload)
      : core_(&core),
        lease_(lease),
        chunk_(chunk),
        reply_ring_(reply_ring),
        message_(std::move(message)),
        payload_(payload) {}
  Result<void> settle(Settlement how);
  client::ServiceCore* core_;
  std::uint64_t lease_;  // shm::LeaseToken::word()
  std::uint64_t chunk_;  // the message's handle in shared memory
  std::uint16_t reply_ring_;
  Received message_;
  std::string_view payload_;
  bool settled_ = false;
};

using Handler = std::function<void(Delivery&)>;

struct Reply {
  std::string outcome;  // the reply's name in the requester's terms, or "timeout"
  std::string payload;
  Received message;
  bool timed_out = false;
};
enum class ReplyControl { more, done };
using ReplyHandler = std::function<ReplyControl(const Reply&)>;

// A message written in place: the application fills its payload straight in shared
// memory, and the library neither copies it nor keeps the caller's buffer.
//
//   exobus::Loan loan = service->loan("file.chunk", text.size()).value();
//   std::memcpy(loan.payload().data(), text.data(), text.size());  // all payload().size() bytes
//   loan.send();
//
// send() checks the payload (JSON, the name's schemas) where it lies, waits up to
// send_timeout for room in full queues, and spends the loan whatever its result. A loan
// not sent is given back when destroyed. It must not outlive its Service.
class Loan {
 public:
  Loan() = default;
  Loan(Loan&& other) noexcept;
  Loan& operator=(Loan&& other) noexcept;
  ~Loan();
  std::span<char> payload() const { return payload_; }
  Result<void> send();

 private:
  friend class client::Sender;
  client::ServiceCore* core_ = nullptr;  // null once sent or given back
  std::uint64_t chunk_ = 0;
  std::uint32_t length_ = 0;
  const void* route_ = nullptr;
  std::span<char> payload_;
};

class Service {
 public:
  static Result<std::unique_ptr<Service>> connect(ServiceOptions options);
  ~Service();
  Service(const Service&) = delete;
  Service& operator=(const Service&) = delete;

  // Register before start(); name is the service's own (internal) message name.
  void on(std::string name, Handler handler);
  Result<void> start();
  // Stops receiving; unfinished deliveries are released and the instance leaves the bus.
  // Sends after it fail with closed; a send still running on another thread when stop()
  // is called is a bug of the caller (its lanes may be handed to another instance).
  void stop();

  // Fire-and-forget. Waits up to send_timeout for room in a full queue, then fails.
  Result<void> send(std::string_view name, std::string_view payload = {});
  // Never waits: a full queue fails at once with queue_full.
  Result<void> try_send(std::string_view name, std::string_view payload = {});
  // A message of `payload_size` bytes to fill in place (see Loan). Waits up to send_timeout
  // for a free buffer; fails as send() would for the name or the size.
  Result<Loan> loan(std::string_view name, std::size_t payload_size);
  // on_reply runs once per reply (on the library's reply thread) until it returns done or
  // `timeout` passes, when it gets one last Reply with timed_out set.
  Result<void> send(std::string_view name, std::string_view payload, ReplyHandler on_reply,
                    std::chrono::milliseconds timeout);
  // The one-reply case: the first reply, or a timeout error.
  std::future<Result<Reply>> request(std::string_view name, std::string_view payload,
                                     std::chrono::milliseconds timeout);

  const std::string& service_type() const;
  std::uint32_t instance() const;

 private:
  explicit Service(std::unique_ptr<client::ServiceCore> core);
  std::unique_ptr<client::ServiceCore> core_;
};

}  // namespace exobus
