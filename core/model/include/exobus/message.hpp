#pragma once

// The message model of the communication spec (spec/communication.md, "Message Format").
//
// There are two kinds of message: commands, and replies to a command. A reply names the
// command it answers in `response_to` and carries its outcome as its name
// ("user.create.ok", "file.copy.in-progress"); a command may get any number of replies
// (a streaming reply).
//
// What the bus does not promise: delivery is at least once per subscribed service type
// (a message may arrive twice after a crash), and there is no ordering between messages
// from different senders, nor between the replies to one command if the replier runs
// several instances.

#include <optional>
#include <string>

#include "exobus/uuid.hpp"

namespace exobus {

struct Message {
  std::string name;
  // A JSON number such as 1.2; finite and not negative. 1 when the sender does not say.
  double version = 1.0;
  // Raw JSON text, empty for "no payload".
  std::string payload;
  // Unique per message.
  Uuid id;
  // Shared by every message caused by one end-user request, so its handling can be traced
  // across services.
  Uuid request_id;
  // Replies only: the id of the command replied to.
  std::optional<Uuid> response_to;
  // Name of the sending service type.
  std::string sender;

  bool is_reply() const noexcept { return response_to.has_value(); }
};

}  // namespace exobus
