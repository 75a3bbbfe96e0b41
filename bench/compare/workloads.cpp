#include "workloads.hpp"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

namespace exobus::bench {
namespace {

using Clock = std::chrono::steady_clock;
constexpr std::uint64_t kLast = 1;

// The application's share of producing a message: copy a prepared payload into the borrowed
// buffer and stamp it. Identical for every transport.
void fill(std::span<std::byte> buf, const std::vector<std::byte>& filler, std::uint64_t seq,
          std::uint64_t flags) {
  std::memcpy(buf.data(), filler.data(), buf.size());
  std::memcpy(buf.data(), &seq, 8);
  std::memcpy(buf.data() + 8, &flags, 8);
  std::memcpy(buf.data() + buf.size() - 8, &seq, 8);
}

// The application's share of consuming one: check it is the one expected, whole.
std::uint64_t check(std::span<const std::byte> msg, std::size_t size, std::uint64_t expected) {
  if (msg.size() != size)
    throw TransportError("message " + std::to_string(expected) + " has " +
                         std::to_string(msg.size()) + " bytes, expected " + std::to_string(size));
  std::uint64_t head, flags, tail;
  std::memcpy(&head, msg.data(), 8);
  std::memcpy(&flags, msg.data() + 8, 8);
  std::memcpy(&tail, msg.data() + msg.size() - 8, 8);
  if (head != expected || tail != expected)
    throw TransportError("expected message " + std::to_string(expected) + ", got " +
                         std::to_string(head) + " (trailer " + std::to_string(tail) + ")");
  return flags;
}

std::vector<std::byte> make_filler(std::size_t size) {
  std::vector<std::byte> f(size);
  for (std::size_t i = 0; i < size; ++i) f[i] = static_cast<std::byte>(i * 131 + 7);
  return f;
}

void validate(std::size_t payload) {
  if (payload < kMinPayload)
    throw TransportError("payload must be at least " + std::to_string(kMinPayload) + " bytes");
}

}  // namespace

// Reads every byte of the payload, as a consumer that uses its message would.
std::uint64_t digest(std::span<const std::byte> msg) {
  std::uint64_t sum = 0;
  std::size_t i = 0;
  for (; i + 8 <= msg.size(); i += 8) {
    std::uint64_t w;
    std::memcpy(&w, msg.data() + i, 8);
    sum += w;
  }
  for (; i < msg.size(); ++i) sum += static_cast<std::uint64_t>(msg[i]);
  return sum;
}

// Nearest-rank percentile of sorted samples.
double percentile(const std::vector<std::uint64_t>& sorted, double p) {
  const auto rank = static_cast<std::size_t>(std::ceil(p * static_cast<double>(sorted.size())));
  return static_cast<double>(sorted[std::clamp<std::size_t>(rank, 1, sorted.size()) - 1]);
}

void summarise_samples(std::vector<std::uint64_t>& samples, SideReport& rep) {
  std::sort(samples.begin(), samples.end());
  rep.samples = samples.size();
  if (samples.empty()) return;
  rep.p50_ns = percentile(samples, 0.50);
  rep.p99_ns = percentile(samples, 0.99);
  rep.p999_ns = percentile(samples, 0.999);
  rep.min_ns = static_cast<double>(samples.front());
  rep.max_ns = static_cast<double>(samples.back());
}


SideMain stream_sender(const StreamParams& p) {
  return [p](Transport& t, const std::function<void()>& start, SideReport&) {
    validate(p.payload);
    const auto filler = make_filler(p.payload);
    auto sender = t.open_sender();
    start();
    const auto end = Clock::now() + std::chrono::duration_cast<Clock::duration>(p.duration);
    for (std::uint64_t seq = 0;; ++seq) {
      // Reading the clock every message would cost the fastest transports a visible share.
      const bool last = (seq & 255) == 255 && Clock::now() >= end;
      const auto buf = sender->acquire(p.payload);
      fill(buf, filler, seq, last ? kLast : 0);
      sender->commit(p.payload);
      if (last) break;
    }
  };
}

SideMain stream_receiver(const StreamParams& p) {
  return [p](Transport& t, const std::function<void()>& start, SideReport& rep) {
    validate(p.payload);
    auto receiver = t.open_receiver();
    start();
    Clock::time_point first, last;
    std::uint64_t sum = 0;
    for (std::uint64_t expected = 0;; ++expected) {
      const auto msg = receiver->receive();
      if (expected == 0) first = Clock::now();
      const std::uint64_t flags = check(msg, p.payload, expected);
      if (p.read_payload) sum += digest(msg);
      receiver->release();
      if (flags & kLast) {
        last = Clock::now();
        rep.messages = expected + 1;
        break;
      }
    }
    rep.seconds = std::chrono::duration<double>(last - first).count();
    // Reported so the compiler cannot drop the reads.
    rep.checksum = sum;
  };
}

SideMain round_trip_client(const RoundTripParams& p) {
  return [p](Transport& t, const std::function<void()>& start, SideReport& rep) {
    validate(p.payload);
    const auto filler = make_filler(p.payload);
    std::vector<std::uint64_t> samples(p.samples);  // allocated before the loop, not in it
    auto client = t.open_client();
    start();
    const std::size_t total = p.warmup + p.samples;
    for (std::uint64_t seq = 0; seq <= total; ++seq) {
      // One extra round trip, flagged last, tells the server to stop; it is not recorded.
      const bool last = seq == total;
      const auto t0 = Clock::now();
      fill(client->acquire(p.payload), filler, seq, last ? kLast : 0);
      client->commit(p.payload);
      check(client->receive(), p.payload, seq);
      client->release();
      const auto t1 = Clock::now();
      if (seq >= p.warmup && !last)
        samples[seq - p.warmup] =
            static_cast<std::uint64_t>(std::chrono::nanoseconds(t1 - t0).count());
    }
    summarise_samples(samples, rep);
  };
}

SideMain round_trip_server(const RoundTripParams& p) {
  return [p](Transport& t, const std::function<void()>& start, SideReport& rep) {
    validate(p.payload);
    auto server = t.open_server();
    start();
    for (std::uint64_t expected = 0;; ++expected) {
      const auto req = server->receive();
      const std::uint64_t flags = check(req, p.payload, expected);
      // The reply echoes the request: the server pays the same copy the client did.
      const auto out = server->acquire(req.size());
      std::memcpy(out.data(), req.data(), req.size());
      server->commit(req.size());
      server->release();
      if (flags & kLast) {
        rep.messages = expected + 1;
        break;
      }
    }
  };
}

}  // namespace exobus::bench
