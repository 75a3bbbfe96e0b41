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
#include <future>
#include <memory>
#include <string>
#include <string_view>

#include "exobus/delivery.hpp"
#include "exobus/error.hpp"
#include "exobus/loan.hpp"
#include "exobus/received.hpp"
#include "exobus/reply.hpp"
#include "exobus/send_options.hpp"
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

class Service {
 public:
  static Result<std::unique_ptr<Service>> connect(ServiceOptions options);
  ~Service();
  Service(const Service&) = delete;
  Service& operator=(const Service&) = delete;

  // Register before start(); name is the service's own (internal) message name. A handler
  // for one version takes that version; the handler without a version takes the others. A
  // message no handler takes is dead-lettered.
  void on(std::string name, Handler handler);
  void on(std::string name, double version, Handler handler);
  Result<void> start();
  // Stops receiving; unfinished deliveries (in handler queues or held by the application)
  // are released, requests still awaiting replies get their timed-out call (a request()'s
  // future, a timeout error), and the instance leaves the bus. Sends and settlements after
  // it fail with closed; one still running on another thread when stop() is called is a
  // bug of the caller (its lanes may be handed to another instance).
  void stop();

  // Fire-and-forget; a new request unless options name one. Waits up to send_timeout for
  // room in a full queue, then fails: queue_full when a receiving type's queue stayed full
  // (then no type has it: a fan-out reaches every receiving type or none), pool_exhausted
  // when no message buffer of its size was free.
  Result<void> send(std::string_view name, std::string_view payload = {}, const SendOptions& options = {});
  // Never waits: a full queue fails at once.
  Result<void> try_send(std::string_view name, std::string_view payload = {}, const SendOptions& options = {});
  // A message of `payload_size` bytes to fill in place (see Loan). Waits up to send_timeout
  // for a free buffer; fails as send() would for the name, version or size.
  Result<Loan> loan(std::string_view name, std::size_t payload_size, const SendOptions& options = {});
  // on_reply runs once per reply (on the library's reply thread) until it returns done or
  // `timeout` passes, when it gets one last Reply with timed_out set.
  Result<void> send(std::string_view name, std::string_view payload, ReplyHandler on_reply,
                    std::chrono::milliseconds timeout, const SendOptions& options = {});
  // The one-reply case: the first reply, or a timeout error. With request(), on the
  // library's reply thread, which hands the reply to the future's thread.
  std::future<Result<Reply>> request(std::string_view name, std::string_view payload, std::chrono::milliseconds timeout,
                                     const SendOptions& options = {});
  // With call(), on the calling thread, which takes the instance's replies itself while it
  // waits (spinning as wait_mode says, then sleeping): no hand-off, the shortest round trip.
  // Other requests' reply handlers may run on this thread meanwhile. Not from a reply
  // handler of this service: that call fails with refused (it would wait for itself).
  Result<Reply> call(std::string_view name, std::string_view payload, std::chrono::milliseconds timeout,
                     const SendOptions& options = {});

  // For a relay (exobus-bridge): a reply, as Delivery::reply would send it, to a command this
  // type received on another bus and that came here as `to`. The requester's library takes
  // it only while it still awaits replies to that command, from this type.
  Result<void> reply_to(const ReplyAddress& to, std::string_view outcome, std::string_view payload = {},
                        const SendOptions& options = {});

  const std::string& service_type() const;
  std::uint32_t instance() const;

 private:
  friend class TestBus;
  explicit Service(std::unique_ptr<client::ServiceCore> core);
  std::unique_ptr<client::ServiceCore> core_;
};

}  // namespace exobus
