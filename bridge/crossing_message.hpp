#pragma once
// A bus message on its way between hosts, and its one encoding as a JetStream message:
// the payload is the NATS message's data, every other field a header (Exobus-Name,
// Exobus-Version, Exobus-Id, Exobus-Request-Id, Exobus-Response-To, Exobus-Sender,
// Exobus-Deliveries, and the return address: Exobus-Return-Host, Exobus-Return-Type,
// Exobus-Return-Member). The name is the public one: each host's bridge translates at its
// edge.
//
// Subjects, in the application's one work-queue stream EXOBUS_<application>:
// exobus.<application>.to.<type> carries the commands for service type <type>, pulled by
// its durable consumer to_<type> (shared by the bridges of every host that runs it, so
// their instances compete); exobus.<application>.reply.<host> carries the replies for
// requesters on <host>, pulled by that host's bridge through reply_<host>.
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
  // Where the replies to a command go, and where a reply goes: the requesting instance, by
  // its host, its type and its place among that type's instances there.
  struct ReturnAddress {
    std::string host;
    std::string requester;
    std::uint16_t member = 0;
  };
  std::optional<ReturnAddress> return_address;
};

std::string stream_name(const std::string& application);
std::string command_subject(const std::string& application, const std::string& type);
std::string command_consumer(const std::string& type);
std::string reply_subject(const std::string& application, const std::string& host);
std::string reply_consumer(const std::string& host);
// The JetStream message id: one per message and target type, so a fan-out to two remote
// types is two messages, and a publish repeated after a lost ack is one. (A reply has an
// id of its own; its target is its requester's host.)
std::string deduplication_id(const CrossingMessage& message, const std::string& target);

// Sets the headers of `into` (a message created with the payload as data).
Result<void> write_headers(const CrossingMessage& message, natsMsg* into);
// Reads a pulled message; a header missing or malformed is ErrorCode::corrupted.
Result<CrossingMessage> read_crossing(natsMsg* from);

}  // namespace exobus::bridge
