#include "exobus/control/registration.hpp"

#include <rapidjson/document.h>

#include <limits>

namespace exobus::control {

namespace {

using rapidjson::Value;

Error malformed(std::string_view reply, std::string_view member, std::string_view wanted) {
  return Error{ErrorCode::protocol, "the daemon's " + std::string(reply) + " reply has no " + std::string(wanted) +
                                        " member '" + std::string(member) +
                                        "'; run services and exobusd of the same ExoBus release"};
}

// The member `name` of `object` as an unsigned integer no larger than `max`.
Result<std::uint64_t> unsigned_member(const Value& object, const char* name, std::uint64_t max,
                                      std::string_view reply) {
  const auto found = object.FindMember(name);
  if (found == object.MemberEnd() || !found->value.IsUint64() || found->value.GetUint64() > max) {
    return malformed(reply, name,
                     max == std::numeric_limits<std::uint64_t>::max()
                         ? "unsigned integer"
                         : "unsigned integer up to " + std::to_string(max));
  }
  return found->value.GetUint64();
}

Result<std::string> string_member(const Value& object, const char* name, std::string_view reply) {
  const auto found = object.FindMember(name);
  if (found == object.MemberEnd() || !found->value.IsString()) return malformed(reply, name, "string");
  return std::string(found->value.GetString(), found->value.GetStringLength());
}

void add_routing(const RoutingReply& reply, rapidjson::Document& document) {
  auto& allocator = document.GetAllocator();
  Value rings(rapidjson::kObjectType);
  for (const auto& [type, ring] : reply.type_rings) {
    rings.AddMember(Value(type.c_str(), allocator), Value(ring), allocator);
  }
  document.AddMember("config", Value(reply.config_file.c_str(), allocator), allocator);
  document.AddMember("type_rings", rings, allocator);
  document.AddMember("routing_generation", Value(reply.routing_generation), allocator);
}

Result<RoutingReply> read_routing(const Value& object, std::string_view reply_name) {
  RoutingReply reply;
  Result<std::string> config = string_member(object, "config", reply_name);
  if (!config) return config.error();
  reply.config_file = std::move(config).value();
  const auto rings = object.FindMember("type_rings");
  if (rings == object.MemberEnd() || !rings->value.IsObject()) return malformed(reply_name, "type_rings", "object");
  for (const auto& ring : rings->value.GetObject()) {
    if (!ring.value.IsUint() || ring.value.GetUint() > std::numeric_limits<std::uint16_t>::max()) {
      return malformed(reply_name, "type_rings." + std::string(ring.name.GetString()), "ring number");
    }
    reply.type_rings.emplace(std::string(ring.name.GetString(), ring.name.GetStringLength()),
                             static_cast<std::uint16_t>(ring.value.GetUint()));
  }
  Result<std::uint64_t> generation =
      unsigned_member(object, "routing_generation", std::numeric_limits<std::uint64_t>::max(), reply_name);
  if (!generation) return generation.error();
  reply.routing_generation = generation.value();
  return reply;
}

Result<rapidjson::Document> object_of(const JsonText& body, std::string_view reply_name) {
  rapidjson::Document document = body.document();
  if (!document.IsObject()) {
    return Error{ErrorCode::protocol, "the daemon's " + std::string(reply_name) + " reply is not a JSON object"};
  }
  return document;
}

}  // namespace

JsonText encode_routing_reply(const RoutingReply& reply) {
  rapidjson::Document document(rapidjson::kObjectType);
  add_routing(reply, document);
  return JsonText::from(document);
}

JsonText encode_registration_reply(const RegistrationReply& reply) {
  rapidjson::Document document(rapidjson::kObjectType);
  auto& allocator = document.GetAllocator();
  document.AddMember("instance", Value(reply.instance), allocator);
  Value memory(rapidjson::kArrayType);
  for (const MemoryGrant& grant : reply.memory) {
    Value entry(rapidjson::kObjectType);
    entry.AddMember("role", Value(grant.role.c_str(), allocator), allocator);
    entry.AddMember("writable", Value(grant.writable), allocator);
    memory.PushBack(entry, allocator);
  }
  document.AddMember("memory", memory, allocator);
  document.AddMember("home_ring", Value(reply.home_ring), allocator);
  document.AddMember("inbox_ring", Value(reply.inbox_ring), allocator);
  add_routing(reply.routing, document);
  return JsonText::from(document);
}

Result<RoutingReply> decode_routing_reply(const JsonText& body) {
  Result<rapidjson::Document> document = object_of(body, "routing");
  if (!document) return document.error();
  return read_routing(document.value(), "routing");
}

Result<RegistrationReply> decode_registration_reply(const JsonText& body) {
  constexpr std::string_view kName = "registration";
  Result<rapidjson::Document> document = object_of(body, kName);
  if (!document) return document.error();
  const Value& object = document.value();
  RegistrationReply reply;
  Result<std::uint64_t> instance =
      unsigned_member(object, "instance", std::numeric_limits<std::uint32_t>::max(), kName);
  if (!instance) return instance.error();
  reply.instance = static_cast<std::uint32_t>(instance.value());
  const auto memory = object.FindMember("memory");
  if (memory == object.MemberEnd() || !memory->value.IsArray()) return malformed(kName, "memory", "array");
  for (const Value& entry : memory->value.GetArray()) {
    if (!entry.IsObject()) return malformed(kName, "memory[]", "object");
    Result<std::string> role = string_member(entry, "role", kName);
    if (!role) return role.error();
    const auto writable = entry.FindMember("writable");
    if (writable == entry.MemberEnd() || !writable->value.IsBool()) return malformed(kName, "writable", "boolean");
    reply.memory.push_back({std::move(role).value(), writable->value.GetBool()});
  }
  Result<std::uint64_t> home = unsigned_member(object, "home_ring", std::numeric_limits<std::uint16_t>::max(), kName);
  if (!home) return home.error();
  reply.home_ring = static_cast<std::uint16_t>(home.value());
  Result<std::uint64_t> inbox = unsigned_member(object, "inbox_ring", std::numeric_limits<std::uint16_t>::max(), kName);
  if (!inbox) return inbox.error();
  reply.inbox_ring = static_cast<std::uint16_t>(inbox.value());
  Result<RoutingReply> routing = read_routing(object, kName);
  if (!routing) return routing.error();
  reply.routing = std::move(routing).value();
  return reply;
}

}  // namespace exobus::control
