#pragma once
// The daemon's watch over what instances write into each other's sight: every channel of
// every link is inspected once a second and repaired when it stays damaged
// (shm/channel_repair.hpp), and what each type's instances refused from each sender
// (forged senders, names it may not send, invalid payloads, forged replies) is logged as it
// grows. Only the two types of a link can write its words, so the log names both.
#include <cstdint>
#include <map>
#include <memory>
#include <utility>

#include <spdlog/logger.h>

#include "exobus/shm/bus_memory.hpp"
#include "exobus/shm/channel_repair.hpp"

namespace exobus::daemon {

class ChannelWatch {
 public:
  explicit ChannelWatch(std::shared_ptr<spdlog::logger> log) : log_(std::move(log)) {}

  // One pass over every link of `memory` (mapped whole and writable, the daemon's).
  void inspect(const shm::BusMemory& memory);
  std::uint64_t repairs() const { return repairs_; }

 private:
  // The link's channel k: kTypeChannel, or reply channel k - 1.
  void inspect_channel(const shm::BusMemory& memory, shm::Link& link, std::uint32_t k, shm::Channel& channel);
  void report_refusals(const shm::BusMemory& memory, shm::Link& link);

  std::shared_ptr<spdlog::logger> log_;
  std::map<std::pair<std::uint32_t, std::uint32_t>, shm::ChannelRepair::Inspection> damaged_;  // (link, k)
  std::map<std::uint32_t, std::uint64_t> refused_seen_;                                         // link -> refused
  std::uint64_t repairs_ = 0;
};

}  // namespace exobus::daemon
