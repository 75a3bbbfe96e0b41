#include "pending_replies.hpp"

#include <algorithm>
#include <vector>

namespace exobus::client {

void PendingReplies::add(const Uuid& request, PendingReply pending) {
  std::lock_guard lock(mutex_);
  pending_.emplace(request, std::move(pending));
  count();
}

void PendingReplies::cancel(const Uuid& request) { finish(request); }

PendingReplies::Found PendingReplies::find(const Uuid& request, std::uint16_t responder) {
  std::lock_guard lock(mutex_);
  const auto found = pending_.find(request);
  if (found == pending_.end()) return {};
  const std::vector<std::uint16_t>& responders = found->second.responders;
  if (std::find(responders.begin(), responders.end(), responder) == responders.end()) return {nullptr, true};
  return {&found->second.handler, false};
}

void PendingReplies::finish(const Uuid& request) {
  std::lock_guard lock(mutex_);
  pending_.erase(request);
  count();
}

void PendingReplies::expire(std::chrono::steady_clock::time_point now) {
  std::vector<ReplyHandler> expired;
  {
    std::lock_guard lock(mutex_);
    for (auto entry = pending_.begin(); entry != pending_.end();) {
      if (entry->second.deadline > now) {
        ++entry;
        continue;
      }
      expired.push_back(std::move(entry->second.handler));
      entry = pending_.erase(entry);
    }
    count();
  }
  // Outside the lock: a handler may send another request.
  for (const ReplyHandler& handler : expired) {
    Reply reply;  // no outcome: a timeout is not a reply
    reply.timed_out = true;
    handler(reply);
  }
}

}  // namespace exobus::client
