#pragma once
// A received message, as its receiver sees it: every field of the spec's message, its name
// in the receiver's own terms (after message translation), and how often it was delivered.
//
// What a receiver can trust: sender (the link the message came by proves it), name (checked
// against what that sender may send this type), payload (checked by the sender against its
// schemas, and again here where the type sets validate-received). version, id, request_id
// and response_to are the sending type's word (docs/design.md, "What a receiver can trust").
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
