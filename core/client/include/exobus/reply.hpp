#pragma once
// A reply to a command this service sent, as its reply handler gets it.
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

enum class ReplyControl { more, done };
// Runs on the library's reply thread, once per reply, until it returns done or the timeout
// passes (then once more, with timed_out set).
using ReplyHandler = std::function<ReplyControl(const Reply&)>;

}  // namespace exobus
