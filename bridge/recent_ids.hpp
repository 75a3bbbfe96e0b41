#pragma once
// The ids of the last messages an inbound relay delivered into its bus. JetStream counts
// a redelivery in the message's delivery count, but a consumer whose leader died before
// it replicated that a message went out may deliver it again as if for the first time;
// a relay that remembers having delivered the id flags the copy redelivered all the same.
// Bounded: the oldest ids are forgotten first. One puller thread uses it; no lock.
#include <cstddef>
#include <deque>
#include <unordered_set>

#include "exobus/uuid.hpp"

namespace exobus::bridge {

class RecentIds {
 public:
  explicit RecentIds(std::size_t capacity) : capacity_(capacity) {}
  bool contains(const Uuid& id) const { return ids_.count(id) != 0; }
  void add(const Uuid& id) {
    if (!ids_.insert(id).second) return;
    order_.push_back(id);
    if (order_.size() > capacity_) {
      ids_.erase(order_.front());
      order_.pop_front();
    }
  }

 private:
  std::size_t capacity_;
  std::unordered_set<Uuid> ids_;
  std::deque<Uuid> order_;
};

}  // namespace exobus::bridge
