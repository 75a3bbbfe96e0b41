#pragma once
// What an instance writes into its trace rings (shm/trace_ring.hpp) while a tail watches
// the bus: one entry per delivery handled, commands by the receiving thread, replies by the
// holder of the reply turn. While no tail is attached (the directory's observers word
// lacks kObserveDeliveries) a delivery costs one relaxed load and a branch.
#include <cstdint>
#include <string_view>

#include "exobus/envelope.hpp"
#include "exobus/shm/bus_memory.hpp"
#include "exobus/shm/trace_ring.hpp"

namespace exobus::client {

// A delivery as the receiver checked it.
struct TracedDelivery {
  const EnvelopedMessage& message;
  std::string_view internal_name;  // the receiver's name for it
  std::uint16_t sender_type = 0;   // the link's sender
  unsigned deliveries = 0;
  bool redelivered = false;
  std::uint64_t taken_at_ns = 0;  // the receiver's clock reading, if it read it (0: not yet)
};

class DeliveryTrace {
 public:
  static bool wanted(const shm::BusMemory& memory) {
    return (memory.directory().header().observers.load(std::memory_order_relaxed) & shm::kObserveDeliveries) != 0;
  }
  // One thread at a time per loop; the two loops use separate rings and writers.
  void record(const shm::Tenant& tenant, std::uint32_t member, shm::TraceLoop loop, const TracedDelivery& delivery);

 private:
  // Per loop: the writer and the ring it writes (a re-registration may move the instance
  // to another slot, hence another ring).
  shm::TraceRingHeader* rings_[shm::kTraceRingsPerInstance] = {};
  shm::TraceWriter writers_[shm::kTraceRingsPerInstance];
};

}  // namespace exobus::client
