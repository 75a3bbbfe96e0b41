#pragma once
// A received message, as its receiver sees it: every field of the spec's message, its name
// in the receiver's own terms (after message translation), and how often it was delivered.
//
// What a receiver can trust: name (the bus routed it by that name to this type, and the
// sender's library checked it against the sender's `sends`), version (checked against the
// sender's declared versions), payload (checked against the schemas of that name and
// version), id, request_id, response_to and sender are written by the sending process and
// checked there; a receiver should treat them as the sender's word, not the bus's proof
// (docs/design.md, "What a receiver can trust").
#include <optional>
#include <string>

#include "exobus/send_options.hpp"
#include "exobus/uuid.hpp"

namespace exobus {

struct Received {
  std::string name;
  double version = 1.0;  // exactly as the sender set it (message_version.hpp prints it)
  std::string payload;   // JSON text, or empty
  Uuid id;
  Uuid request_id;
  std::optional<Uuid> response_to;
  std::string sender;       // the sending service type
  unsigned deliveries = 0;  // earlier deliveries to this service type
  bool redelivered() const { return deliveries > 0; }

  // Options that make a send part of this message's request, for sends made from a reply
  // callback or anywhere the message is known: service->send(name, payload, reply.message.in_request()).
  SendOptions in_request() const { return SendOptions().request_id(request_id); }
};

}  // namespace exobus
