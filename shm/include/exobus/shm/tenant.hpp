#pragma once
// A service type's own memory, its tenant region: written by its instances (and the
// daemon), mapped by nobody else. Everything a type keeps for itself lies here, so no other
// type can read or damage it:
//
//   +-------------------------------+  0
//   | InstanceRecord[instances]     |  each instance's heartbeat, counters, histograms, outcomes
//   +-------------------------------+  lanes
//   | lanes: SendRecord + leases    |  (instances + 1) x lanes per instance; the last
//   |                               |  instance's lanes are the daemon's (lane.hpp)
//   +-------------------------------+  retry ring
//   | RingHeader + RingSlot[...]    |  messages released, expired or recovered, to take
//   |                               |  again (ready_ring.hpp)
//   +-------------------------------+  dead letters
//   | RingHeader + RingSlot[...]    |  messages over the delivery limit or rejected
//   +-------------------------------+  trace block
//   | trace rings: instances x 2    |  the last deliveries of each instance's command and
//   |                               |  reply loops, for exobus tail (trace_ring.hpp)
//   +-------------------------------+  bytes
//
// The rings hold handles into the links whose receiver is this type; their messages stay
// in the senders' chunks until acknowledged (a dead letter pins its chunk, and only this
// link's pool runs short of it). No header: the layout is computed from the type's shape,
// which the daemon keeps in the directory.
//
// The trace block is last, so that nothing else moves when it changes. Each instance
// writes its own two rings only while the directory's observers word asks for deliveries
// (kObserveDeliveries); the daemon grants the type's memory read-only to a tail the type's
// policy allows, which reads the rings and nothing else.
#include <atomic>
#include <cstddef>
#include <cstdint>

#include "exobus/error.hpp"
#include "exobus/shm/delay_histogram.hpp"
#include "exobus/shm/lane.hpp"
#include "exobus/shm/lease_table.hpp"
#include "exobus/shm/ready_ring.hpp"
#include "exobus/shm/reply_outcomes.hpp"
#include "exobus/shm/trace_ring.hpp"

namespace exobus::shm {

// What a service type's memory holds, as the daemon decided it from the configuration.
struct TenantShape {
  std::uint32_t instances = 0;             // instance slots of the type
  std::uint32_t lanes_per_instance = 0;
  std::uint32_t leases_per_lane = 0;       // the type's prefetch
  std::uint32_t retry_capacity = 0;        // power of two
  std::uint32_t dead_letter_capacity = 0;  // power of two
  std::uint32_t lease_ms = 0;              // ack deadline of a taken message
  std::uint32_t delivery_limit = 0;        // deliveries before a message is dead-lettered
};

//  InstanceRecord (768 bytes): written by the instance itself, read by the daemon.
//  attached: 1 while the instance may use its lanes. The daemon stores 0 when it hands out
//  the slot; the instance stores 1 once registered, before its first take or send, and 0
//  in a clean stop, after its last. A slot is recovered and freed only when its process
//  has exited, or when its connection closed and attached is 0: a live instance that
//  merely lost its connection keeps its slot, or two processes would share its lanes.
//  The counters and the delay histogram are zeroed by the daemon when it hands out the
//  slot, then only go up; a death leaves them as they were, and the daemon adds them to
//  its type's when it frees the slot. An instance that lies in them skews only its own
//  type's figures.
//  delay_ns_sum, delays: the queueing delay of its deliveries that were stamped with their
//  send time (Envelope::sent_at_ns), from that stamp to the take, in the buckets of
//  delay_histogram.hpp. Written by its receiving thread alone (plain stores), after the
//  delivered count of the same delivery.
//  handler_ns_sum, handler_times: for those same stamped deliveries, the time from the take
//  to the settlement (ack, release or reject), whoever settles: the handler inline, a
//  handler thread, or code that held the delivery. Written by any thread of the instance,
//  hence relaxed atomic adds, paid only by observed deliveries.
//  outcomes: its replies by outcome name (reply_outcomes.hpp has its invariants).
struct alignas(64) InstanceRecord {
  std::atomic<std::uint64_t> heartbeat_ms;  // monotonic
  std::atomic<std::uint64_t> sent;
  std::atomic<std::uint64_t> delivered;
  std::atomic<std::uint64_t> acked;
  std::atomic<std::uint64_t> redelivered;
  std::atomic<std::uint64_t> refused;  // messages that failed this instance's checks
  std::atomic<std::uint32_t> attached;
  std::atomic<std::uint64_t> delay_ns_sum;
  std::atomic<std::uint64_t> delays[kDelayBuckets];
  std::atomic<std::uint64_t> handler_ns_sum;
  std::atomic<std::uint64_t> handler_times[kDelayBuckets];
  ReplyOutcomes outcomes;
};
static_assert(sizeof(InstanceRecord) == 768 && alignof(InstanceRecord) == 64 &&
              std::is_standard_layout_v<InstanceRecord>);
static_assert(offsetof(InstanceRecord, heartbeat_ms) == 0 && offsetof(InstanceRecord, sent) == 8 &&
              offsetof(InstanceRecord, delivered) == 16 && offsetof(InstanceRecord, acked) == 24 &&
              offsetof(InstanceRecord, redelivered) == 32 && offsetof(InstanceRecord, refused) == 40 &&
              offsetof(InstanceRecord, attached) == 48 && offsetof(InstanceRecord, delay_ns_sum) == 56 &&
              offsetof(InstanceRecord, delays) == 64 && offsetof(InstanceRecord, handler_ns_sum) == 256 &&
              offsetof(InstanceRecord, handler_times) == 264 && offsetof(InstanceRecord, outcomes) == 512);

// What the daemon does to a record when it hands out its slot: counters and histograms back
// to 0.
inline void clear_figures(InstanceRecord& record) {
  for (auto* counter : {&record.sent, &record.delivered, &record.acked, &record.redelivered, &record.refused,
                        &record.delay_ns_sum, &record.handler_ns_sum}) {
    counter->store(0, std::memory_order_relaxed);
  }
  for (std::atomic<std::uint64_t>& bucket : record.delays) bucket.store(0, std::memory_order_relaxed);
  for (std::atomic<std::uint64_t>& bucket : record.handler_times) bucket.store(0, std::memory_order_relaxed);
  clear(record.outcomes);
}

struct TenantLayout {
  std::uint64_t lanes = 0, lane_stride = 0, retry_ring = 0, dead_letters = 0, trace = 0, bytes = 0;
  std::uint32_t lane_count = 0;
};

// Validates the shape and lays it out; config_error otherwise.
Result<TenantLayout> compute_tenant_layout(const TenantShape& shape);

class Tenant {
 public:
  Tenant() = default;
  Tenant(std::uint16_t type, const TenantShape& shape, const TenantLayout& layout, std::byte* base);

  std::uint16_t type() const { return type_; }
  const TenantShape& shape() const { return shape_; }
  std::uint32_t lane_count() const { return layout_.lane_count; }
  std::uint16_t lane_of(std::uint32_t instance, std::uint32_t k) const {
    return static_cast<std::uint16_t>(instance * shape_.lanes_per_instance + k);
  }
  // The daemon's own instance number in this type: its lanes follow the instances'.
  std::uint32_t daemon_instance() const { return shape_.instances; }

  // Out-of-range indices are the caller's bug: they come from the layout, never from
  // shared memory.
  InstanceRecord& instance(std::uint32_t index) const { return reinterpret_cast<InstanceRecord*>(base_)[index]; }
  SendRecord& send_record(std::uint16_t lane) const {
    return *reinterpret_cast<SendRecord*>(base_ + layout_.lanes + lane * layout_.lane_stride);
  }
  LeaseTable leases(std::uint16_t lane) const {  // on the path of every take and ack
    auto* first =
        reinterpret_cast<LeaseEntry*>(base_ + layout_.lanes + lane * layout_.lane_stride + sizeof(SendRecord));
    return LeaseTable(std::span<LeaseEntry>(first, shape_.leases_per_lane));
  }
  // Null for a lane out of range (lease tokens come back from applications).
  std::optional<LeaseTable> leases_of(std::uint16_t lane) const {
    if (lane >= layout_.lane_count) return std::nullopt;
    return leases(lane);
  }
  ReadyRing retry_ring() const { return ring_at(layout_.retry_ring, shape_.retry_capacity); }
  ReadyRing dead_letters() const { return ring_at(layout_.dead_letters, shape_.dead_letter_capacity); }
  TraceRingHeader* trace_ring(std::uint32_t instance, TraceLoop loop) const {
    return reinterpret_cast<TraceRingHeader*>(base_ + layout_.trace +
                                              (instance * kTraceRingsPerInstance + static_cast<std::uint32_t>(loop)) *
                                                  kTraceRingBytes);
  }

 private:
  ReadyRing ring_at(std::uint64_t offset, std::uint32_t capacity) const {
    auto* header = reinterpret_cast<RingHeader*>(base_ + offset);
    return ReadyRing(header, reinterpret_cast<RingSlot*>(header + 1), capacity);
  }

  std::uint16_t type_ = 0;
  TenantShape shape_;
  TenantLayout layout_;
  std::byte* base_ = nullptr;
};

}  // namespace exobus::shm
