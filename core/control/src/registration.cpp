#include "exobus/control/registration.hpp"

#include "exobus/control/control_protocol.hpp"

#include <rapidjson/document.h>

#include <limits>
#include <string>

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
  Value types(rapidjson::kObjectType);
  for (const auto& [type, index] : reply.types) types.AddMember(Value(type.c_str(), allocator), Value(index), allocator);
  Value memory(rapidjson::kArrayType);
  for (const MemoryGrant& grant : reply.memory) {
    Value entry(rapidjson::kObjectType);
    entry.AddMember("role", Value(grant.role.c_str(), allocator), allocator);
    entry.AddMember("index", Value(grant.index), allocator);
    entry.AddMember("writable", Value(grant.writable), allocator);
    memory.PushBack(entry, allocator);
  }
  document.AddMember("config", Value(reply.config_file.c_str(), allocator), allocator);
  document.AddMember("types", types, allocator);
  document.AddMember("routing_generation", Value(reply.routing_generation), allocator);
  document.AddMember("memory", memory, allocator);
}

Result<RoutingReply> read_routing(const Value& object, std::string_view reply_name) {
  RoutingReply reply;
  Result<std::string> config = string_member(object, "config", reply_name);
  if (!config) return config.error();
  reply.config_file = std::move(config).value();
  const auto types = object.FindMember("types");
  if (types == object.MemberEnd() || !types->value.IsObject()) return malformed(reply_name, "types", "object");
  for (const auto& type : types->value.GetObject()) {
    if (!type.value.IsUint() || type.value.GetUint() > std::numeric_limits<std::uint16_t>::max()) {
      return malformed(reply_name, "types." + std::string(type.name.GetString()), "type index");
    }
    reply.types.emplace(std::string(type.name.GetString(), type.name.GetStringLength()),
                        static_cast<std::uint16_t>(type.value.GetUint()));
  }
  Result<std::uint64_t> generation =
      unsigned_member(object, "routing_generation", std::numeric_limits<std::uint64_t>::max(), reply_name);
  if (!generation) return generation.error();
  reply.routing_generation = generation.value();
  const auto memory = object.FindMember("memory");
  if (memory == object.MemberEnd() || !memory->value.IsArray()) return malformed(reply_name, "memory", "array");
  if (memory->value.Size() > kMaxDescriptors) {
    return malformed(reply_name, "memory", "array of at most " + std::to_string(kMaxDescriptors) + " entries, as");
  }
  for (const Value& entry : memory->value.GetArray()) {
    if (!entry.IsObject()) return malformed(reply_name, "memory[]", "object");
    Result<std::string> role = string_member(entry, "role", reply_name);
    if (!role) return role.error();
    // Instances are granted these alone (the registry is the daemon's).
    if (role.value() != "directory" && role.value() != "tenant" && role.value() != "sender_half" &&
        role.value() != "receiver_half") {
      return malformed(reply_name, "role", "directory, tenant, sender_half or receiver_half");
    }
    Result<std::uint64_t> index =
        unsigned_member(entry, "index", std::numeric_limits<std::uint32_t>::max(), reply_name);
    if (!index) return index.error();
    const auto writable = entry.FindMember("writable");
    if (writable == entry.MemberEnd() || !writable->value.IsBool()) {
      return malformed(reply_name, "writable", "boolean");
    }
    reply.memory.push_back(
        {std::move(role).value(), static_cast<std::uint32_t>(index.value()), writable->value.GetBool()});
  }
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
  document.AddMember("type", Value(reply.type), allocator);
  document.AddMember("member", Value(reply.member), allocator);
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
  Result<std::uint64_t> type = unsigned_member(object, "type", std::numeric_limits<std::uint16_t>::max(), kName);
  if (!type) return type.error();
  reply.type = static_cast<std::uint16_t>(type.value());
  Result<std::uint64_t> member = unsigned_member(object, "member", std::numeric_limits<std::uint32_t>::max(), kName);
  if (!member) return member.error();
  reply.member = static_cast<std::uint32_t>(member.value());
  Result<RoutingReply> routing = read_routing(object, kName);
  if (!routing) return routing.error();
  reply.routing = std::move(routing).value();
  return reply;
}

}  // namespace exobus::control
