#pragma once
// What the daemon tells an instance: where its bus's routing comes from (the reply to the
// "routing" command, and part of every registration reply), and which instance slot and
// memory a registration gave it. One encoder and one decoder per reply, used by both sides:
// the daemon encodes, the client library decodes and checks the type of every member.
//
//   {"instance":3,"type":1,"member":0,
//    "config":"/srv/demo/application.yml","types":{"users":1,"web":0},"routing_generation":2,
//    "memory":[{"role":"directory","index":0,"writable":false},{"role":"tenant","index":1,"writable":true},
//              {"role":"sender_half","index":4,"writable":true},...]}
//
// The memory itself travels with the reply as descriptors (SCM_RIGHTS), one per entry of
// "memory", in that order. A routing reply carries memory too when it answers a registered
// instance: the links a reload added.
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

// One descriptor the daemon grants: which memory object it is (shm/bus_memory.hpp), and
// whether the instance may write it (a read-only grant is mapped read-only).
struct MemoryGrant {
  std::string role;         // "directory", "tenant", "sender_half" or "receiver_half"
  std::uint32_t index = 0;  // the type of a tenant, the link of a half
  bool writable = false;
  friend bool operator==(const MemoryGrant&, const MemoryGrant&) = default;
};

struct RoutingReply {
  // The application.yml the daemon serves, absolute: a client loads the same file.
  std::filesystem::path config_file;
  // Every service type's index in the bus's memory, by service type name.
  std::map<std::string, std::uint16_t> types;
  // Bumped by the daemon at each reload; the directory holds the current one.
  std::uint64_t routing_generation = 0;
  // The descriptors passed with the reply, in order (none for a process that is not a
  // registered instance).
  std::vector<MemoryGrant> memory;
  friend bool operator==(const RoutingReply&, const RoutingReply&) = default;
};

struct RegistrationReply {
  std::uint32_t instance = 0;  // the instance's id on the bus, from 1 (0: none)
  std::uint16_t type = 0;      // the instance's service type index
  std::uint32_t member = 0;    // the instance's index among its type's instances
  RoutingReply routing;        // with the memory granted
  friend bool operator==(const RegistrationReply&, const RegistrationReply&) = default;
};

JsonText encode_routing_reply(const RoutingReply& reply);
JsonText encode_registration_reply(const RegistrationReply& reply);
// A member missing or of the wrong type is a protocol error naming it.
Result<RoutingReply> decode_routing_reply(const JsonText& body);
Result<RegistrationReply> decode_registration_reply(const JsonText& body);

}  // namespace exobus::control
