#include "held_deliveries.hpp"

#include <vector>

namespace exobus::client {

void HeldDeliveries::hold(Delivery& delivery) {
  std::lock_guard lock(mutex_);
  held_.insert(&delivery);
  delivery.held_ = true;
}

void HeldDeliveries::move(Delivery& from, Delivery& to) {
  std::lock_guard lock(mutex_);
  held_.erase(&from);
  held_.insert(&to);
  from.held_ = false;
  to.held_ = true;
}

void HeldDeliveries::forget(Delivery& delivery) {
  std::lock_guard lock(mutex_);
  held_.erase(&delivery);
  delivery.held_ = false;
}

void HeldDeliveries::release_all() {
  std::vector<Delivery*> held;
  {
    std::lock_guard lock(mutex_);
    held.assign(held_.begin(), held_.end());
    held_.clear();
  }
  for (Delivery* delivery : held) {
    delivery->held_ = false;  // settling below must not come back here
    (void)delivery->release();
    delivery->detach();
  }
}

}  // namespace exobus::client
