#pragma once
// What the daemon sees of its bus at one moment: the figures behind `exobus status` (and so
// `exobus top`) and the metrics endpoint, read from the bus's memory by the coordinator.
//
// Counters of a type (sent, delivered, acked, redelivered, histograms) count since the daemon started,
// instances that left included: an instance's own counters go with its slot, so the
// coordinator adds them to its type's when it frees the slot, and a type's counters never go
// back while the daemon runs. Depths, in flight, instances and pool use are gauges.
#include <array>
#include <cmath>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "exobus/shm/delay_histogram.hpp"
#include "exobus/shm/link.hpp"

namespace exobus::daemon {

// Durations of stamped deliveries (senders stamp them while metrics are served), in the
// buckets of shm/delay_histogram.hpp: their queueing delays, or their handler times.
struct DelayFigures {
  std::array<std::uint64_t, shm::kDelayBuckets> buckets{};
  std::uint64_t sum_ns = 0;

  std::uint64_t samples() const {
    std::uint64_t total = 0;
    for (std::uint64_t count : buckets) total += count;
    return total;
  }
  // The upper bound in ns of the bucket that holds the q-quantile (0 < q <= 1): the delay
  // that share of the samples stayed below. 0 without samples; nullopt when it lies in the
  // last, unbounded bucket.
  std::optional<std::uint64_t> quantile_bound_ns(double q) const {
    const std::uint64_t total = samples();
    if (total == 0) return 0;
    const auto rank = static_cast<std::uint64_t>(std::ceil(q * static_cast<double>(total)));
    std::uint64_t seen = 0;
    for (std::size_t bucket = 0; bucket + 1 < buckets.size(); ++bucket) {
      seen += buckets[bucket];
      if (seen >= rank) return shm::delay_bucket_bound_ns(bucket);
    }
    return std::nullopt;
  }
  DelayFigures& operator+=(const DelayFigures& other) {
    for (std::size_t bucket = 0; bucket < buckets.size(); ++bucket) buckets[bucket] += other.buckets[bucket];
    sum_ns += other.sum_ns;
    return *this;
  }
};

struct MessageCounts {
  std::uint64_t sent = 0, delivered = 0, acked = 0, redelivered = 0;
  DelayFigures delays;         // from the send to the take
  DelayFigures handler_times;  // from the take to the settlement
  // Replies sent, by outcome (their public name); replies_other: under names the instances'
  // tables had no room for, or that name none of the type's sends.
  std::map<std::string, std::uint64_t> replies_by_outcome;
  std::uint64_t replies_other = 0;

  MessageCounts& operator+=(const MessageCounts& other) {
    sent += other.sent;
    delivered += other.delivered;
    acked += other.acked;
    redelivered += other.redelivered;
    delays += other.delays;
    handler_times += other.handler_times;
    for (const auto& [outcome, replies] : other.replies_by_outcome) replies_by_outcome[outcome] += replies;
    replies_other += other.replies_other;
    return *this;
  }
};

// What a type's instances refused of one sending type, by shm::RefusalReason.
struct RefusalFigures {
  std::string sender;
  std::array<std::uint64_t, shm::kRefusalReasons> by_reason{};

  std::uint64_t total() const {
    std::uint64_t sum = 0;
    for (std::uint64_t count : by_reason) sum += count;
    return sum;
  }
};

struct InstanceFigures {
  std::uint32_t slot = 0;  // the instance's id on the bus (from 1)
  std::int32_t pid = 0;
  bool connected = false;       // to this daemon (a restarted daemon waits for it to reconnect)
  bool hung = false;            // no heartbeat for the daemon's hang time
  std::uint64_t in_flight = 0;  // its leases
  MessageCounts counts;         // since it registered
  std::uint64_t refused = 0;    // messages that failed its checks
};

struct TypeFigures {
  std::string name;
  std::uint64_t queued = 0;         // in the channels towards it and its retry ring
  std::uint64_t in_flight = 0;      // leased by its instances
  std::uint64_t dead_lettered = 0;  // in its dead letters now
  MessageCounts counts;             // since the daemon started, instances that left included
  std::uint64_t refused = 0;        // by its instances, from every sender
  std::vector<RefusalFigures> refused_from;  // by sending type, those above 0
  std::vector<InstanceFigures> instances;
};

// One size class over every link's pool.
struct SizeClassFigures {
  std::uint32_t size = 0;  // bytes of a chunk
  std::uint64_t chunks = 0, free = 0, in_use = 0;
};

struct BusFigures {
  std::string bus;
  std::uint64_t memory_bytes = 0;
  std::vector<SizeClassFigures> size_classes;  // by increasing size
  std::vector<TypeFigures> types;              // in the configuration's order
  std::uint64_t replies_dropped = 0;           // replies whose requester was gone
};

}  // namespace exobus::daemon
