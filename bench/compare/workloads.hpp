#pragma once
// The two measurements, written once against transport.hpp so every transport runs the very
// same loop.
//
// Every message carries its sequence number at both ends of the payload:
//
//  0        8        16                         size-8   size
//  +--------+--------+------ filler ------------+--------+
//  | seq    | flags  |                          | seq    |
//  +--------+--------+--------------------------+--------+
//   flags bit 0: last message of the run.
//
// The receiver checks both copies and the size of every message, so a lost, duplicated,
// reordered, torn or truncated message fails the run instead of inflating its figure. It also
// reads every payload byte (unless told not to): a zero-copy transport only lends a view, and
// a consumer that never reads its message would make the view look free.

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "process_pair.hpp"

namespace exobus::bench {

inline constexpr std::size_t kMinPayload = 24;

struct StreamParams {
  std::size_t payload = 64;
  std::chrono::duration<double> duration{1.0};  // how long the sender keeps sending
  bool read_payload = true;                      // false: receiver reads header and trailer only
};

struct RoundTripParams {
  std::size_t payload = 64;
  std::size_t warmup = 10'000;    // round trips before the first recorded sample
  std::size_t samples = 100'000;  // recorded round trips
};

SideMain stream_sender(const StreamParams& p);
SideMain stream_receiver(const StreamParams& p);
SideMain round_trip_client(const RoundTripParams& p);
SideMain round_trip_server(const RoundTripParams& p);

// A transport whose API hands each message to a callback (ExoBus's client library) cannot
// lend it through Receiver::receive() without a thread hand-off the application would never
// pay. It implements this too, and runs the same workloads -- same payload sizes, the same
// sequence checks and byte reads, the same timing points -- with loops written for its API.
class OwnLoops {
 public:
  virtual ~OwnLoops() = default;
  virtual SideMain stream_sender(const StreamParams& p) = 0;
  virtual SideMain stream_receiver(const StreamParams& p) = 0;
  virtual SideMain round_trip_client(const RoundTripParams& p) = 0;
  virtual SideMain round_trip_server(const RoundTripParams& p) = 0;
};

// Reads every byte of the payload, as a consumer that uses its message would.
std::uint64_t digest(std::span<const std::byte> msg);
// Nearest-rank percentile of sorted samples.
double percentile(const std::vector<std::uint64_t>& sorted, double p);
// Fills a report's p50/p99/p99.9/min/max from samples (sorted here).
void summarise_samples(std::vector<std::uint64_t>& samples, SideReport& rep);

}  // namespace exobus::bench
