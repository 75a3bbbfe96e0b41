#pragma once
// Deliveries the application took out of their handlers and has not settled yet. The
// service releases them when it stops, so a held delivery never outlives its lanes; calls
// on one after that fail with closed. Only moves out of a handler, moves between holders,
// settling and stop() come here: a delivery settled in its handler never does.
#include <mutex>
#include <unordered_set>

#include "exobus/delivery.hpp"

namespace exobus::client {

class HeldDeliveries {
 public:
  void hold(Delivery& delivery);
  void move(Delivery& from, Delivery& to);
  void forget(Delivery& delivery);
  // At stop, after the receiving threads stopped: releases every held delivery's lease and
  // detaches it from the service.
  void release_all();

 private:
  std::mutex mutex_;
  std::unordered_set<Delivery*> held_;
};

}  // namespace exobus::client
