#pragma once
// What the daemon tells an instance: where its bus's routing comes from (the reply to the
// "routing" command, and part of every registration reply), and which instance slot, memory
// and rings a registration gave it. One encoder and one decoder per reply, used by both sides:
// the daemon encodes, the client library decodes and checks the type of every member.
//
//   {"instance":3,"memory":[{"role":"data","writable":true}],"home_ring":1,"inbox_ring":12,
//    "config":"/srv/demo/application.yml","type_rings":{"users":1,"web":0},"routing_generation":2}
//
// The memory itself travels with the reply as descriptors (SCM_RIGHTS), one per entry of
// "memory", in that order.
//
// docs/control-protocol.md describes each member.
#include <cstdint>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "exobus/control/json_text.hpp"
#include "exobus/error.hpp"

namespace exobus::control {

struct RoutingReply {
  // The application.yml the daemon serves, absolute: a client loads the same file.
  std::filesystem::path config_file;
  // Every service type's ready ring, by service type name.
  std::map<std::string, std::uint16_t> type_rings;
  // Bumped by the daemon at each reload; the segment header holds the current one.
  std::uint64_t routing_generation = 0;
  friend bool operator==(const RoutingReply&, const RoutingReply&) = default;
};

// One descriptor a registration grants: what the memory is for, and whether the instance
// may write it (a read-only grant is mapped read-only).
struct MemoryGrant {
  std::string role;  // "data": the bus's data segment
  bool writable = false;
  friend bool operator==(const MemoryGrant&, const MemoryGrant&) = default;
};

struct RegistrationReply {
  std::uint32_t instance = 0;        // the instance slot in the data segment
  std::vector<MemoryGrant> memory;   // the descriptors passed with the reply, in order
  std::uint16_t home_ring = 0;   // the service type's ready ring
  std::uint16_t inbox_ring = 0;  // this instance's reply inbox
  RoutingReply routing;
  friend bool operator==(const RegistrationReply&, const RegistrationReply&) = default;
};

JsonText encode_routing_reply(const RoutingReply& reply);
JsonText encode_registration_reply(const RegistrationReply& reply);
// A member missing or of the wrong type is a protocol error naming it.
Result<RoutingReply> decode_routing_reply(const JsonText& body);
Result<RegistrationReply> decode_registration_reply(const JsonText& body);

}  // namespace exobus::control
