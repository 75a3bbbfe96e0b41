#pragma once
// A registered instance that bypasses the client library, as hostile code would: it
// registers over the control socket, maps what the daemon granted, and writes its memory
// through shm/ directly: any bytes, any envelope, any word of its own halves.
#include <unistd.h>

#include <cstring>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "bus_fixture.hpp"
#include "exobus/control/registration.hpp"
#include "exobus/control/unique_fd.hpp"
#include "exobus/envelope.hpp"
#include "exobus/shm/data_plane.hpp"

namespace exobus::security {

using integration::Bus;

struct RawInstance {
  control::InstanceRegistration registration;
  control::RegistrationReply reply;
  std::vector<control::UniqueFd> descriptors;  // duplicates of every granted descriptor, in the reply's order
  std::unique_ptr<shm::BusMemory> memory;

  static std::optional<RawInstance> register_as(const Bus& bus, const std::string& type) {
    Result<control::InstanceRegistration> registered =
        control::register_instance(bus.paths(), {type, ::getpid(), "raw-" + std::to_string(::getpid())});
    if (!registered) return std::nullopt;
    Result<control::RegistrationReply> reply = control::decode_registration_reply(registered.value().reply);
    if (!reply || reply.value().routing.memory.size() != registered.value().fds.size()) return std::nullopt;
    RawInstance raw{std::move(registered).value(), std::move(reply).value(), {}, {}};
    std::vector<shm::Grant> grants;
    for (std::size_t k = 0; k < raw.reply.routing.memory.size(); ++k) {
      const control::MemoryGrant& listed = raw.reply.routing.memory[k];
      const std::optional<shm::RegionKind> kind = shm::region_kind(listed.role);
      if (!kind) return std::nullopt;
      const int fd = raw.registration.fds[k].release();
      raw.descriptors.emplace_back(::dup(fd));
      grants.push_back({*kind, listed.index, listed.writable, fd});
    }
    Result<std::unique_ptr<shm::BusMemory>> memory = shm::BusMemory::attach(grants);
    if (!memory) return std::nullopt;
    raw.memory = std::move(memory).value();
    raw.memory->tenant(raw.reply.type)->instance(raw.reply.member).attached.store(1);
    return raw;
  }

  std::uint16_t type_index(const std::string& name) const { return reply.routing.types.at(name); }

  // The link from this instance's type to `receiver`, if the daemon granted it.
  shm::Link* link_to(const std::string& receiver) const {
    for (std::uint32_t index = 0; index < memory->link_slots(); ++index) {
      shm::Link* link = memory->link(index);
      if (link != nullptr && link->sender() == reply.type && link->receiver() == type_index(receiver)) return link;
    }
    return nullptr;
  }

  // Publishes a message of these fields, as written by hand, into `channel` of `link`.
  bool publish(shm::Link& link, std::uint32_t channel, const MessageView& message, Envelope envelope = {}) {
    std::vector<std::byte> bytes(enveloped_size(message));
    if (!encode_enveloped(envelope, message, bytes)) return false;
    return publish_bytes(link, channel, bytes);
  }
  bool publish_bytes(shm::Link& link, std::uint32_t channel, std::span<const std::byte> bytes) {
    shm::DataPlane plane(*memory, reply.type, reply.member);
    const shm::Allocation allocation = plane.allocate(link, bytes.size());
    if (allocation.status != shm::PoolStatus::ok) return false;
    std::memcpy(allocation.buffer.data(), bytes.data(), bytes.size());
    shm::LaneCursor lane{plane.lane(shm::kFirstSendLane)};
    const shm::Part part{{&link, channel}, allocation.handle, static_cast<std::uint32_t>(bytes.size())};
    return plane.publish(lane, std::span(&part, 1)).status == shm::SendStatus::ok;
  }
};

// The fields of a forged command: `name` from `sender`, a fresh id.
inline MessageView forged(std::string_view name, std::string_view sender, std::string_view payload) {
  MessageView message;
  message.name = name;
  message.sender = sender;
  message.payload = payload;
  message.id = Uuid::generate();
  message.request_id = Uuid::generate();
  return message;
}

}  // namespace exobus::security
