// The ExoBus transports.
//
// exobus-busy, exobus-adaptive, exobus-sleep: the client library (exobus::Service) between two
// services of a real bus served by the real exobusd, started for each run. Every ExoBus thread
// of both processes (the receiving queue's and the reply inbox's) uses the named WaitMode.
// The library hands each message to a handler, so these rows run their own loops (OwnLoops)
// doing the same work as the shared ones; the payload is JSON text, as the library requires:
//
//  0  1                17 18                       size-17          size-1  size
//  +--+----------------+--+------ filler ----------+----------------+--+
//  |" | seq, 16 hex    |f | a..z repeated          | seq, 16 hex    |" |
//  +--+----------------+--+------------------------+----------------+--+
//   f: '1' on the last message of the run, else '0'. One JSON string of exactly `size` bytes.
//
// exobus-shm: the data plane alone (shm::DataPlane: allocate, publish, take, ack) between
// the two service types of a bus memory this harness creates with BusMemory::create (no
// daemon), through the shared loops; the sending process and the receiving process each
// map only their type's grants, and both busy-poll. It is the cost of the chunk pool, the
// channel and the lease, without the library's routing, JSON check, message encoding,
// UUIDs and copies.

#include <algorithm>
#include <atomic>
#include <bit>
#include <cstring>
#include <mutex>
#include <string>
#include <vector>

#include "exobus/shm/data_plane.hpp"
#include "exobus_daemon.hpp"
#include "scratch_bus.hpp"
#include "transports.hpp"
#include "workloads.hpp"

namespace exobus::bench {
namespace {

using Clock = std::chrono::steady_clock;
constexpr std::size_t kMinJsonPayload = 36;
// From this payload size on, the sender fills a Loan instead of calling send(): the payload
// is then written once, in shared memory. Below it send() is faster: it reads the payload
// from the caller's hot buffer, whereas a loan's check reads back lines just written into a
// chunk that the receiving core held last (1 KiB: 2.3 M msg/s by send, 1.2-1.4 M by loan;
// 64 KiB: 179 k by send, 205 k by loan; docs/benchmarks.md).
constexpr std::size_t kLoanFrom = 16 * 1024;

// --- the JSON payload ---------------------------------------------------------------------

std::string make_json_filler(std::size_t size) {
  if (size < kMinJsonPayload)
    throw TransportError("exobus: payload must be at least " + std::to_string(kMinJsonPayload) +
                         " bytes (a JSON string holding the sequence number twice)");
  std::string s(size, 'x');
  for (std::size_t i = 1; i + 1 < size; ++i) s[i] = static_cast<char>('a' + i % 26);
  s.front() = '"';
  s.back() = '"';
  return s;
}

void put_hex(char* at, std::uint64_t v) {
  static constexpr char kDigits[] = "0123456789abcdef";
  for (int i = 15; i >= 0; --i, v >>= 4) at[i] = kDigits[v & 15];
}

bool get_hex(const char* at, std::uint64_t& v) {
  v = 0;
  for (int i = 0; i < 16; ++i) {
    const char c = at[i];
    const int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
    if (d < 0) return false;
    v = v << 4 | static_cast<std::uint64_t>(d);
  }
  return true;
}

// The application's share of producing a message: copy the prepared payload, stamp it.
void fill_json(std::span<char> buf, const std::string& filler, std::uint64_t seq, bool last) {
  std::memcpy(buf.data(), filler.data(), buf.size());
  put_hex(buf.data() + 1, seq);
  buf[17] = last ? '1' : '0';
  put_hex(buf.data() + buf.size() - 17, seq);
}

// Checks size and both sequence copies; returns an error text (empty when fine) and the flag.
std::string check_json(std::string_view msg, std::size_t size, std::uint64_t expected, bool& last) {
  if (msg.size() != size)
    return "message " + std::to_string(expected) + " has " + std::to_string(msg.size()) + " bytes, expected " +
           std::to_string(size);
  std::uint64_t head = 0, tail = 0;
  if (!get_hex(msg.data() + 1, head) || !get_hex(msg.data() + size - 17, tail) || head != expected || tail != expected)
    return "expected message " + std::to_string(expected) + ", got " + std::string(msg.substr(0, 18));
  last = msg[17] == '1';
  return {};
}

std::span<const std::byte> bytes_of(std::string_view s) {
  return {reinterpret_cast<const std::byte*>(s.data()), s.size()};
}

// Where a handler running on the library's thread leaves its result for the side's main thread,
// which sleeps on `done` (a futex) so it never competes with the handler for the core.
struct Outcome {
  std::atomic<int> done{0};
  std::mutex mutex;
  std::string error;
  void finish(std::string why = {}) {
    if (!why.empty()) {
      std::lock_guard lock(mutex);
      if (error.empty()) error = std::move(why);
    }
    done.store(1, std::memory_order_release);  // pairs with the acquire in wait()
    done.notify_all();
  }
  void wait_or_throw(std::chrono::seconds limit) {
    const auto until = Clock::now() + limit;
    while (done.load(std::memory_order_acquire) == 0) {
      if (Clock::now() > until) throw TransportError("exobus: no progress within the time limit");
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    std::lock_guard lock(mutex);
    if (!error.empty()) throw TransportError("exobus: " + error);
  }
};

// A receiving side's run: starts the service's handlers, releases the start barrier, and
// serves until a handler finishes the outcome (throwing its error, if any).
void serve_until_finished(Service& service, const std::function<void()>& start, Outcome& outcome) {
  if (Result<void> started = service.start(); !started)
    throw TransportError("exobus: start: " + started.error().message);
  start();
  outcome.wait_or_throw(std::chrono::seconds(3600));
  service.stop();
}

std::string application_yml(std::size_t max_payload) {
  return "name: bench\n"
         "bus:\n"
         "  max-instances: 16\n"
         "  reply-inbox-capacity: 65536\n"
         "  size-classes:\n" +
         size_classes_yaml(max_payload, comparison_in_flight(max_payload)) +
         "services:\n"
         "  bench-sender:\n"
         "    config:\n"
         "      sends: [bench.msg, bench.ping]\n"
         "      receives: [bench.pong]\n"
         "  bench-receiver:\n"
         "    config:\n"
         "      receives: [bench.msg, bench.ping]\n"
         "      sends: [bench.pong]\n"
         "      queue-capacity: 65536\n"
         "      prefetch: 256\n";
}

// --- the client library -------------------------------------------------------------------

class ExobusTransport final : public Transport, public OwnLoops {
 public:
  ExobusTransport(std::string name, WaitMode mode) : name_(std::move(name)), mode_(mode) {}
  std::string_view name() const override { return name_; }

  void prepare(const ChannelSpec& spec) override { bus_.start(spec.tag, application_yml(spec.max_payload)); }
  void cleanup() override { bus_.stop(); }

  // The shared loops are never given this transport (see OwnLoops).
  std::unique_ptr<Sender> open_sender() override { throw TransportError("exobus: use its own loops"); }
  std::unique_ptr<Receiver> open_receiver() override { throw TransportError("exobus: use its own loops"); }
  std::unique_ptr<Duplex> open_client() override { throw TransportError("exobus: use its own loops"); }
  std::unique_ptr<Duplex> open_server() override { throw TransportError("exobus: use its own loops"); }

  SideMain stream_sender(const StreamParams& p) override {
    return [this, p](Transport&, const std::function<void()>& start, SideReport& rep) {
      const std::string filler = make_json_filler(p.payload);
      std::string buf = filler;
      auto service = bus_.connect("bench-sender", mode_);
      start();
      const auto begin = Clock::now();
      const auto end = begin + std::chrono::duration_cast<Clock::duration>(p.duration);
      for (std::uint64_t seq = 0;; ++seq) {
        const bool last = (seq & 255) == 255 && Clock::now() >= end;
        if (p.payload >= kLoanFrom) {
          // Zero-copy: the payload is written once, straight into shared memory.
          Result<Loan> loan = service->loan("bench.msg", p.payload);
          if (!loan) throw TransportError("exobus: loan " + std::to_string(seq) + ": " + loan.error().message);
          fill_json(loan.value().payload(), filler, seq, last);
          if (Result<void> sent = loan.value().send(); !sent)
            throw TransportError("exobus: send " + std::to_string(seq) + ": " + sent.error().message);
        } else {
          fill_json(buf, filler, seq, last);
          if (Result<void> sent = service->send("bench.msg", buf); !sent)
            throw TransportError("exobus: send " + std::to_string(seq) + ": " + sent.error().message);
        }
        if (last) {
          rep.messages = seq + 1;
          break;
        }
      }
      rep.seconds = std::chrono::duration<double>(Clock::now() - begin).count();
      service->stop();
    };
  }

  SideMain stream_receiver(const StreamParams& p) override {
    return [this, p](Transport&, const std::function<void()>& start, SideReport& rep) {
      (void)make_json_filler(p.payload);  // validates the size
      auto service = bus_.connect("bench-receiver", mode_, /*copy_payloads=*/false);
      Outcome outcome;
      std::uint64_t expected = 0, sum = 0;
      Clock::time_point first, last_at;
      service->on("bench.msg", [&](Delivery& delivery) {
        if (outcome.done.load(std::memory_order_relaxed) != 0) return;
        if (expected == 0) first = Clock::now();
        const std::string_view payload = delivery.payload();  // read in place, no copy
        bool last = false;
        if (std::string error = check_json(payload, p.payload, expected, last); !error.empty())
          return outcome.finish(std::move(error));
        if (p.read_payload) sum += digest(bytes_of(payload));
        ++expected;
        if (last) {
          last_at = Clock::now();
          outcome.finish();
        }
        // Returning acks the message.
      });
      serve_until_finished(*service, start, outcome);
      rep.messages = expected;
      rep.seconds = std::chrono::duration<double>(last_at - first).count();
      rep.checksum = sum;
    };
  }

  // The client sends the next request from the reply handler (on the library's reply thread),
  // so no thread hand-off sits inside a timed round trip; the side's main thread sleeps.
  SideMain round_trip_client(const RoundTripParams& p) override {
    return [this, p](Transport&, const std::function<void()>& start, SideReport& rep) {
      const std::string filler = make_json_filler(p.payload);
      std::string buf = filler;
      std::vector<std::uint64_t> samples(p.samples);
      auto service = bus_.connect("bench-sender", mode_);
      Outcome outcome;
      const std::size_t total = p.warmup + p.samples;
      std::uint64_t seq = 0;
      Clock::time_point t0;
      std::function<void()> send_next;
      const ReplyHandler on_reply = [&](const Reply& reply) {
        if (reply.timed_out) {
          outcome.finish("no reply to request " + std::to_string(seq) + " within 10 s");
          return ReplyControl::done;
        }
        bool last = false;
        if (std::string error = check_json(reply.payload, p.payload, seq, last); !error.empty()) {
          outcome.finish("reply: " + error);
          return ReplyControl::done;
        }
        const auto t1 = Clock::now();
        if (seq >= p.warmup && seq < total)
          samples[seq - p.warmup] = static_cast<std::uint64_t>(std::chrono::nanoseconds(t1 - t0).count());
        if (last) {
          outcome.finish();
        } else {
          ++seq;
          send_next();
        }
        return ReplyControl::done;
      };
      send_next = [&] {
        t0 = Clock::now();
        fill_json(buf, filler, seq, seq == total);  // one extra, flagged last, is not recorded
        if (Result<void> sent = service->send("bench.ping", buf, on_reply, std::chrono::seconds(10)); !sent)
          outcome.finish("send " + std::to_string(seq) + ": " + sent.error().message);
      };
      start();
      send_next();
      outcome.wait_or_throw(std::chrono::seconds(3600));
      service->stop();
      summarise_samples(samples, rep);
    };
  }

  SideMain round_trip_server(const RoundTripParams& p) override {
    return [this, p](Transport&, const std::function<void()>& start, SideReport& rep) {
      (void)make_json_filler(p.payload);
      auto service = bus_.connect("bench-receiver", mode_);
      Outcome outcome;
      std::uint64_t expected = 0;
      service->on("bench.ping", [&](Delivery& delivery) {
        const std::string& payload = delivery.message().payload;
        bool last = false;
        if (std::string error = check_json(payload, p.payload, expected, last); !error.empty())
          return outcome.finish(std::move(error));
        // The reply echoes the request.
        if (Result<void> sent = delivery.reply("bench.pong", payload); !sent)
          return outcome.finish("reply: " + sent.error().message);
        ++expected;
        if (last) outcome.finish();
      });
      serve_until_finished(*service, start, outcome);
      rep.messages = expected;
    };
  }

 private:
  std::string name_;
  WaitMode mode_;
  RunBus bus_;
};

// --- the data plane alone -----------------------------------------------------------------

// The bus of the exobus-shm rows: the two service types of a scratch bus (tests/support/
// scratch_bus.hpp), one instance each. Link 0 carries the sender's messages and requests
// to the receiver's type channel, link 1 the receiver's replies to the sender's reply
// channel. One size class holds the largest payload, with as many chunks as the floor ring
// has slots (comparison_in_flight); the type channels hold as many messages as the pool has
// chunks, so a publish never finds one full.
shm::BusShape shm_bus_shape(std::size_t max_payload) {
  std::uint32_t size = shm::kMinChunkSize;
  while (size < max_payload) size *= 2;
  const auto count = static_cast<std::uint32_t>(comparison_in_flight(max_payload));
  shm::testing::ScratchOptions options;
  options.channel_capacity = std::bit_ceil(std::max<std::uint32_t>(count, 2));
  options.reply_capacity = 64;  // one request in flight at a time
  options.instances = 1;
  options.lanes_per_instance = shm::kFirstSendLane + 1;
  options.leases_per_lane = 256;
  options.size_classes = {{size, count}};
  return shm::testing::two_type_shape(options);
}

// One side: the grants of its service type mapped in its own process, as a service maps
// them at registration (the other type's halves read-only), and the plane of its instance.
// It sends to `out` and takes from `in` (a channel of `in_link`).
class ShmSide : public Duplex {
 public:
  // `memory` was created by the transport before the fork; the side maps its own grants.
  ShmSide(const shm::BusMemory& memory, std::uint16_t type) {
    Result<std::unique_ptr<shm::BusMemory>> attached = shm::testing::attach_as(memory, type);
    if (!attached) throw TransportError("exobus-shm: attach: " + attached.error().message);
    memory_ = std::move(attached).value();
    plane_ = std::make_unique<shm::DataPlane>(*memory_, type, kMember);
    send_cursor_ = {plane_->lane(shm::kFirstSendLane)};
    if (type == shm::testing::kSenderType) {
      // Sends on link 0's type channel; takes its replies from its reply channel on link 1.
      out_ = {memory_->link(shm::testing::kCommandLink), shm::kTypeChannel};
      in_link_ = memory_->link(shm::testing::kReplyLink);
      in_ = in_link_->reply_channel(kMember);
      take_cursor_ = {plane_->lane(shm::kReplyLane)};
    } else {
      // Takes from link 0's type channel; replies to the sender's instance on link 1.
      out_ = {memory_->link(shm::testing::kReplyLink), kMember + 1};
      in_link_ = memory_->link(shm::testing::kCommandLink);
      in_ = &in_link_->type_channel();
      take_cursor_ = {plane_->lane(shm::kCommandLane)};
    }
  }
  std::span<std::byte> acquire(std::size_t size) override {
    for (;;) {
      const shm::Allocation a = plane_->allocate(*out_.link, size);
      if (a.status == shm::PoolStatus::ok) {
        handle_ = a.handle;
        return a.buffer.first(size);
      }
      if (a.status != shm::PoolStatus::exhausted)
        throw TransportError("exobus-shm: allocate failed (status " + std::to_string(int(a.status)) + ")");
      __builtin_ia32_pause();  // every chunk is queued: the receiver frees one by acking
    }
  }
  void commit(std::size_t size) override {
    const shm::Part part{out_, handle_, static_cast<std::uint32_t>(size)};
    for (;;) {
      const shm::SendResult r = plane_->publish(send_cursor_, std::span(&part, 1));
      if (r.status == shm::SendStatus::ok) return;
      // The channel holds every chunk of the pool, so it is not full; should it be anyway,
      // the chunk is still ours and the publish is tried again.
      if (r.status != shm::SendStatus::queue_full)
        throw TransportError("exobus-shm: publish failed (status " + std::to_string(int(r.status)) + ")");
      __builtin_ia32_pause();
    }
  }
  std::span<const std::byte> receive() override {
    for (;;) {
      const shm::TakeOutcome t = plane_->take(take_cursor_, *in_link_, *in_, shm::DataPlane::now_ms());
      if (t.status == shm::TakeOutcomeStatus::ok) {
        lease_ = t.delivery.lease;
        return t.delivery.payload;
      }
      if (t.status != shm::TakeOutcomeStatus::empty)
        throw TransportError("exobus-shm: take failed (status " + std::to_string(int(t.status)) + ")");
      __builtin_ia32_pause();
    }
  }
  void release() override {
    if (plane_->ack(lease_) != shm::LeaseStatus::ok) throw TransportError("exobus-shm: ack was late");
  }

 private:
  static constexpr std::uint32_t kMember = 0;  // each type's one instance
  std::unique_ptr<shm::BusMemory> memory_;
  std::unique_ptr<shm::DataPlane> plane_;
  shm::LaneCursor send_cursor_, take_cursor_;
  shm::Destination out_;
  shm::Link* in_link_ = nullptr;
  shm::Channel* in_ = nullptr;
  shm::MessageHandle handle_{};
  shm::LeaseToken lease_{};
};

class ExobusShmTransport final : public Transport {
 public:
  std::string_view name() const override { return "exobus-shm"; }

  void prepare(const ChannelSpec& spec) override {
    Result<std::unique_ptr<shm::BusMemory>> created =
        shm::BusMemory::create("exobus.bench-shm-" + spec.tag, shm_bus_shape(spec.max_payload));
    if (!created) throw TransportError("exobus-shm: " + created.error().message);
    memory_ = std::move(created).value();
  }
  void cleanup() override { memory_.reset(); }
  std::unique_ptr<Sender> open_sender() override { return side(shm::testing::kSenderType); }
  std::unique_ptr<Receiver> open_receiver() override { return side(shm::testing::kReceiverType); }
  std::unique_ptr<Duplex> open_client() override { return side(shm::testing::kSenderType); }
  std::unique_ptr<Duplex> open_server() override { return side(shm::testing::kReceiverType); }

 private:
  std::unique_ptr<ShmSide> side(std::uint16_t type) const { return std::make_unique<ShmSide>(*memory_, type); }
  std::unique_ptr<shm::BusMemory> memory_;  // created before the fork: every child inherits it
};

}  // namespace

std::unique_ptr<Transport> make_exobus_transport(std::string name, WaitMode mode) {
  return std::make_unique<ExobusTransport>(std::move(name), mode);
}
std::unique_ptr<Transport> make_exobus_shm_transport() { return std::make_unique<ExobusShmTransport>(); }

}  // namespace exobus::bench
