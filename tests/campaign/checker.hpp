#pragma once
// The campaign's checker: what the histories must show after the bus has quiesced.
//
//  - lost: a message whose send returned ok, not acknowledged by some service type that
//    subscribes to its name (checked per type: a fan-out must reach every target);
//  - unflagged duplicate: a second delivery of a message to the same type that does not say
//    it is a redelivery (the first delivery to a type may be unflagged, no later one may);
//  - misrouted: a delivery to a type that does not subscribe to the message's name;
//  - refused yet delivered: a send that failed with queue_full (back-pressure) must leave
//    no trace, not even at one target of a fan-out.
// An ack whose caller was killed inside the call (a K record last in its file) counts as
// an ack when no other instance acked the message: had it not taken effect, the message
// would have come back and been acked by another instance before the bus went quiet.
// Deliveries of messages whose send never returned ok (the sender died inside send) are
// allowed and counted as unconfirmed.
#include <cstdint>
#include <string>
#include <vector>

#include "history.hpp"

namespace exobus::campaign {

struct CheckReport {
  std::uint64_t sent = 0;          // sends that returned ok
  std::uint64_t refused = 0;       // sends refused with queue_full
  std::uint64_t refused_delivered = 0;
  std::uint64_t deliveries = 0;    // all recorded deliveries
  std::uint64_t redeliveries = 0;  // deliveries flagged redelivered
  std::uint64_t acks = 0;          // acks that returned ok
  std::uint64_t acks_in_doubt = 0;  // the only ack was cut short by its receiver's death
  std::uint64_t lost = 0;          // (message, type) pairs never acknowledged
  std::uint64_t unflagged_duplicates = 0;
  std::uint64_t misrouted = 0;
  std::uint64_t unconfirmed = 0;   // delivered messages with no ok send on record
  std::vector<std::string> problems;  // the first few, readable

  bool passed() const { return lost == 0 && unflagged_duplicates == 0 && misrouted == 0 && refused_delivered == 0; }
};

CheckReport check(const History& history);

}  // namespace exobus::campaign
