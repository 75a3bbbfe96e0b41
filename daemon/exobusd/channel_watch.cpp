#include "channel_watch.hpp"

#include "exobus/shm/data_plane.hpp"

namespace exobus::daemon {

namespace {

std::string name_of(const shm::BusMemory& memory, std::uint16_t type) {
  const std::string_view name = memory.directory().type_name(type);
  return name.empty() ? "#" + std::to_string(type) : std::string(name);
}

}  // namespace

void ChannelWatch::inspect(const shm::BusMemory& memory) {
  for (std::uint32_t index = 0; index < memory.link_slots(); ++index) {
    shm::Link* link = memory.link(index);
    if (link == nullptr) continue;
    if (link->has_type_channel()) inspect_channel(memory, *link, shm::kTypeChannel, link->type_channel());
    for (std::uint32_t instance = 0; instance < link->reply_channel_count(); ++instance) {
      inspect_channel(memory, *link, instance + 1, *link->reply_channel(instance));
    }
    report_refusals(memory, *link);
  }
}

void ChannelWatch::inspect_channel(const shm::BusMemory& memory, shm::Link& link, std::uint32_t k,
                                   shm::Channel& channel) {
  const auto key = std::make_pair(link.index(), k);
  const shm::ChannelRepair::Inspection seen = shm::ChannelRepair::inspect(channel);
  if (!seen.damaged) {
    damaged_.erase(key);
    return;
  }
  // Damaged at two inspections a second apart: no step in progress looks damaged that long
  // (a send or take that keeps failing on the damage may move the hints, so they are not
  // compared).
  if (!damaged_.contains(key)) {
    damaged_[key] = seen;
    return;
  }
  const std::string sender = name_of(memory, link.sender()), receiver = name_of(memory, link.receiver());
  shm::Tenant* receiving = memory.tenant(link.receiver());
  const bool commands = k == shm::kTypeChannel;
  // Commands go back to the receiving type's retry ring; a reply is dropped (its requester
  // times out), its chunk freed. Handles that are not this link's are the scribble itself.
  const auto salvage = [&](shm::MessageHandle handle) {
    if (handle.link() != link.index() || !link.pool().still_pending(handle)) return true;
    if (!commands) {
      link.pool().acknowledge(handle);
      return true;
    }
    const std::uint16_t lane = receiving->lane_of(receiving->daemon_instance(), shm::kFirstSendLane);
    return receiving->retry_ring().push(handle, shm::one_more(0), lane, [](std::uint64_t) {}) == shm::PushStatus::ok;
  };
  const std::optional<std::uint32_t> salvaged = shm::ChannelRepair::repair(channel, salvage);
  const std::string what = commands ? "the queue from '" + sender + "' to '" + receiver + "'"
                                    : "the reply channel from '" + sender + "' to instance " + std::to_string(k) +
                                          " of '" + receiver + "'";
  if (!salvaged) {
    log_->warn("{} is damaged ({}) and '{}' has no room to take its messages back; retrying", what, seen.problem,
               receiver);
    return;
  }
  damaged_.erase(key);
  ++repairs_;
  log_->warn("{} was damaged ({}): an instance of '{}' or '{}' wrote over it; repaired it, {} {}", what,
             seen.problem, sender, receiver, *salvaged,
             commands ? "messages put back for redelivery" : "replies dropped");
}

void ChannelWatch::report_refusals(const shm::BusMemory& memory, shm::Link& link) {
  const std::uint64_t refused = link.counters().refused_in_all();
  std::uint64_t& seen = refused_seen_[link.index()];
  if (refused <= seen) {
    seen = refused;  // a receiver may misreport only its own refusals, lower as well
    return;
  }
  log_->warn("'{}' refused {} more messages from '{}' ({} in all): a forged sender or reply, a name '{}' may not "
             "send, or a payload its schema rejects",
             name_of(memory, link.receiver()), refused - seen, name_of(memory, link.sender()), refused,
             name_of(memory, link.sender()));
  seen = refused;
}

}  // namespace exobus::daemon
