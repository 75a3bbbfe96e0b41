#pragma once
// A reply to a command this service sent, as its reply handler gets it.
#include <cstdint>
#include <functional>
#include <string>

#include "exobus/received.hpp"

namespace exobus {

struct Reply {
  // The reply's name (its outcome) in the requester's terms; empty when timed_out. An
  // outcome may be named anything, "timeout" included: only timed_out tells a timeout.
  std::string outcome;
  std::string payload;
  Received message;        // every field of the reply; empty when timed_out
  bool timed_out = false;  // no (further) reply came within the timeout: the last call
};

// Where the replies to a command go: the instance that sent it. A relay that carries the
// command to another bus (exobus-bridge) keeps it with the command, and sends the replies
// that come back there with Service::reply_to.
struct ReplyAddress {
  Uuid command;              // the command's id
  std::string requester;     // the sending service type
  std::uint16_t member = 0;  // the sending instance's place among its type's
};

enum class ReplyControl { more, done };
// Runs on the library's reply thread, once per reply, until it returns done or the timeout
// passes (then once more, with timed_out set).
using ReplyHandler = std::function<ReplyControl(const Reply&)>;

}  // namespace exobus
