#include "crossing_message.hpp"

#include <nats/nats.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <system_error>

namespace exobus::bridge {

namespace {

constexpr const char* kName = "Exobus-Name";
constexpr const char* kVersion = "Exobus-Version";
constexpr const char* kId = "Exobus-Id";
constexpr const char* kRequestId = "Exobus-Request-Id";
constexpr const char* kResponseTo = "Exobus-Response-To";
constexpr const char* kSender = "Exobus-Sender";
constexpr const char* kDeliveries = "Exobus-Deliveries";
constexpr const char* kReturnHost = "Exobus-Return-Host";
constexpr const char* kReturnType = "Exobus-Return-Type";
constexpr const char* kReturnMember = "Exobus-Return-Member";

std::string without_dots(std::string name) {
  std::replace(name.begin(), name.end(), '.', '_');
  return name;
}

Error corrupted(const std::string& what) { return Error{ErrorCode::corrupted, "pulled message: " + what}; }

Result<std::string> header(natsMsg* message, const char* key) {
  const char* value = nullptr;
  if (natsMsgHeader_Get(message, key, &value) != NATS_OK || value == nullptr) {
    return corrupted(std::string("no ") + key + " header");
  }
  return std::string(value);
}

Result<Uuid> uuid_header(natsMsg* message, const char* key) {
  Result<std::string> text = header(message, key);
  if (!text) return text.error();
  Result<Uuid> parsed = Uuid::parse(text.value());
  if (!parsed) return corrupted(std::string(key) + " is not a UUID");
  return parsed.value();
}

Result<void> set(natsMsg* message, const char* key, const std::string& value) {
  if (natsStatus status = natsMsgHeader_Set(message, key, value.c_str()); status != NATS_OK) {
    return Error{ErrorCode::io, std::string("cannot set header ") + key + ": " + natsStatus_GetText(status)};
  }
  return {};
}

}  // namespace

std::string stream_name(const std::string& application) { return "EXOBUS_" + without_dots(application); }

std::string command_subject(const std::string& application, const std::string& type) {
  return "exobus." + application + ".to." + type;
}

std::string command_consumer(const std::string& type) { return "to_" + without_dots(type); }

std::string reply_subject(const std::string& application, const std::string& host) {
  return "exobus." + application + ".reply." + host;
}

std::string reply_consumer(const std::string& host) { return "reply_" + without_dots(host); }

std::string deduplication_id(const CrossingMessage& message, const std::string& target) {
  return message.id.to_string() + "/" + target;
}

Result<void> write_headers(const CrossingMessage& message, natsMsg* into) {
  // The shortest text that reads back as the same binary64: 1.2 stays 1.2.
  char version[32];
  const auto written = std::to_chars(version, version + sizeof version, message.version);
  for (const auto& [key, value] :
       {std::pair{kName, message.name}, std::pair{kVersion, std::string(version, written.ptr)},
        std::pair{kId, message.id.to_string()}, std::pair{kRequestId, message.request_id.to_string()},
        std::pair{kSender, message.sender}, std::pair{kDeliveries, std::to_string(message.deliveries)}}) {
    if (Result<void> done = set(into, key, value); !done) return done;
  }
  if (message.response_to) {
    if (Result<void> done = set(into, kResponseTo, message.response_to->to_string()); !done) return done;
  }
  if (message.return_address) {
    for (const auto& [key, value] : {std::pair{kReturnHost, message.return_address->host},
                                     std::pair{kReturnType, message.return_address->requester},
                                     std::pair{kReturnMember, std::to_string(message.return_address->member)}}) {
      if (Result<void> done = set(into, key, value); !done) return done;
    }
  }
  return {};
}

Result<CrossingMessage> read_crossing(natsMsg* from) {
  CrossingMessage message;
  Result<std::string> name = header(from, kName);
  if (!name) return name.error();
  message.name = name.value();
  Result<std::string> sender = header(from, kSender);
  if (!sender) return sender.error();
  message.sender = sender.value();

  Result<std::string> version = header(from, kVersion);
  if (!version) return version.error();
  const std::string& text = version.value();
  const auto parsed = std::from_chars(text.data(), text.data() + text.size(), message.version);
  if (parsed.ec != std::errc() || parsed.ptr != text.data() + text.size() || !std::isfinite(message.version) ||
      message.version < 0) {
    return corrupted("Exobus-Version '" + text + "' is not a version");
  }

  Result<Uuid> id = uuid_header(from, kId);
  if (!id) return id.error();
  message.id = id.value();
  Result<Uuid> request_id = uuid_header(from, kRequestId);
  if (!request_id) return request_id.error();
  message.request_id = request_id.value();
  const char* response_to = nullptr;
  if (natsMsgHeader_Get(from, kResponseTo, &response_to) == NATS_OK && response_to != nullptr) {
    Result<Uuid> replying = Uuid::parse(response_to);
    if (!replying) return corrupted("Exobus-Response-To is not a UUID");
    message.response_to = replying.value();
  }

  Result<std::string> deliveries = header(from, kDeliveries);
  if (!deliveries) return deliveries.error();
  const std::string& count = deliveries.value();
  const auto counted = std::from_chars(count.data(), count.data() + count.size(), message.deliveries);
  if (counted.ec != std::errc() || counted.ptr != count.data() + count.size()) {
    return corrupted("Exobus-Deliveries '" + count + "' is not a count");
  }

  const char* return_host = nullptr;
  if (natsMsgHeader_Get(from, kReturnHost, &return_host) == NATS_OK && return_host != nullptr) {
    CrossingMessage::ReturnAddress to{return_host, {}, 0};
    Result<std::string> requester = header(from, kReturnType);
    if (!requester) return requester.error();
    to.requester = requester.value();
    Result<std::string> member = header(from, kReturnMember);
    if (!member) return member.error();
    const std::string& place = member.value();
    const auto placed = std::from_chars(place.data(), place.data() + place.size(), to.member);
    if (placed.ec != std::errc() || placed.ptr != place.data() + place.size()) {
      return corrupted("Exobus-Return-Member '" + place + "' is not an instance's place");
    }
    message.return_address = std::move(to);
  }

  message.payload.assign(natsMsg_GetData(from), static_cast<std::size_t>(natsMsg_GetDataLength(from)));
  return message;
}

}  // namespace exobus::bridge
