#pragma once
// A bus message on its way between hosts, and its one encoding as a JetStream message:
// the payload is the NATS message's data, every other field a header (Exobus-Name,
// Exobus-Version, Exobus-Id, Exobus-Request-Id, Exobus-Response-To, Exobus-Sender,
// Exobus-Deliveries). The name is the public one: each host's bridge translates at its edge.
//
// Subjects: exobus.<application>.<type> carries what is for service type <type>, in the
// application's one work-queue stream EXOBUS_<application>; the durable pull consumer of a
// type, shared by the bridges of every host that runs it, is named after the type.
#include <cstdint>
#include <optional>
#include <string>

#include "exobus/error.hpp"
#include "exobus/uuid.hpp"

typedef struct __natsMsg natsMsg;

namespace exobus::bridge {

struct CrossingMessage {
  std::string name;  // public
  double version = 1.0;
  std::string payload;
  Uuid id;
  Uuid request_id;
  std::optional<Uuid> response_to;
  std::string sender;            // the sending service type
  std::uint16_t deliveries = 0;  // earlier deliveries, on every bus and stream it passed
};

std::string stream_name(const std::string& application);
std::string subject_for(const std::string& application, const std::string& type);
std::string consumer_name(const std::string& type);
// The JetStream message id: one per message and target type, so a fan-out to two remote
// types is two messages, and a publish repeated after a lost ack is one.
std::string deduplication_id(const CrossingMessage& message, const std::string& type);

// Sets the headers of `into` (a message created with the payload as data).
Result<void> write_headers(const CrossingMessage& message, natsMsg* into);
// Reads a pulled message; a header missing or malformed is ErrorCode::corrupted.
Result<CrossingMessage> read_crossing(natsMsg* from);

}  // namespace exobus::bridge
