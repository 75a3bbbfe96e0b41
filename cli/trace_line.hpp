#pragma once
// One line of `exobus tail`: a delivery as a trace ring recorded it, with the bus's names
// for its types, printed in ExoCom's form or as one JSON object:
//
//   web#0 --[ user.create ]-[ create ]-> users#1 (1.2ms)
//   SENDER#INSTANCE --[ PUBLIC NAME ]-[ RECEIVER'S NAME ]-> RECEIVER#INSTANCE (QUEUEING DELAY)
//
// The receiver's name is there only where its type translates the public one; the delay is
// "-" when the sender did not stamp the message; "redelivered (delivery N)" follows a
// message delivered before (N: 2 for the second); with --payload, the head of the payload follows ("..." when
// cut). Everything in a line but the type names comes from the receiving type's memory:
// its bytes are printed with control characters replaced and invalid UTF-8 replaced, so a
// lying instance cannot drive the terminal or break the JSON.
#include <cstdint>
#include <optional>
#include <string>

#include "exobus/shm/trace_ring.hpp"
#include "exobus/uuid.hpp"

namespace exobus::cli {

struct TraceLine {
  std::string sender;  // service type
  std::uint32_t sender_instance = 0;
  std::string name;           // public
  std::string internal_name;  // the receiver's, empty when not translated
  std::string receiver;       // service type
  std::uint32_t receiver_instance = 0;
  std::optional<std::uint64_t> delay_ns;  // none: not stamped
  unsigned delivery = 1;                  // which delivery of the message this is: 1 the first
  bool redelivered = false;
  bool reply = false;
  Uuid id;
  Uuid request_id;
  std::string payload_head;
  std::uint32_t payload_size = 0;
  bool payload_truncated = false;
  std::uint64_t taken_at_ns = 0;

  // `sender` and `receiver` are the caller's (type names from the directory).
  static TraceLine of(const shm::TraceEntry& entry, std::string sender, std::string receiver,
                      std::uint32_t receiver_instance);
};

std::string text_line(const TraceLine& line, bool with_payload);
std::string json_line(const TraceLine& line, bool with_payload);
// What the tail says when it fell behind and lines were overwritten unread.
std::string dropped_text(std::uint64_t dropped);
std::string dropped_json(std::uint64_t dropped);
// "850ns", "12.3us", "1.2ms", "2.05s".
std::string delay_text(std::uint64_t ns);

}  // namespace exobus::cli
