#pragma once
// What one relay did since the bridge started, for its status line.
#include <atomic>
#include <cstdint>

namespace exobus::bridge {

struct RelayCounters {
  std::atomic<std::uint64_t> relayed{0};  // published and acked (outbound), sent and acked (inbound)
  std::atomic<std::uint64_t> retried{0};  // publishes repeated, or pulled messages handed back for later
  std::atomic<std::uint64_t> refused{0};  // pulled messages the bus can never take (logged, terminated)
};

}  // namespace exobus::bridge
