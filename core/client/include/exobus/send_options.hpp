#pragma once
// How a message is sent: the version it carries and the end-user request it belongs to.
//
//   service->send("user.create", payload, exobus::SendOptions().version(1.2));
//   service->send("audit.log", payload, exobus::SendOptions().request_id(http_request_id));
//
// Sends made through a Delivery (Delivery::send, Delivery::reply) belong to the delivery's
// request unless these options say otherwise; a Service's own sends start a new request.
#include <cstdint>
#include <optional>
#include <string_view>

#include "exobus/uuid.hpp"

namespace exobus {

class SendOptions {
 public:
  // The message's version; default: the default version the sender's configuration gives
  // the name (`versions` in docs/config.md), 1 when it gives none. A version the
  // configuration does not list fails with unknown_version.
  SendOptions& version(double value) {
    version_ = value;
    return *this;
  }
  // The end-user request the message belongs to (an incoming HTTP request's id, say);
  // default: a new request, whose id is the message's own.
  SendOptions& request_id(const Uuid& value) {
    request_id_ = value;
    return *this;
  }

  // For a relay that carries messages from another bus into this one (exobus-bridge): the
  // message keeps the id it was first sent with (default: a new one), says how often it
  // was delivered before (receivers count these with their own, so a message redelivered
  // on the way arrives flagged redelivered), and goes to the receiving type `only_to`
  // alone, not to every type that receives its name (it reached the others where it was
  // first sent). `only_to` is viewed, not copied: it must outlive the send call. A type
  // that does not receive the name fails the send with unknown_message.
  SendOptions& relayed(const Uuid& id, std::uint16_t earlier_deliveries, std::string_view only_to) {
    id_ = id;
    earlier_deliveries_ = earlier_deliveries;
    only_to_ = only_to;
    return *this;
  }

  const std::optional<double>& version() const { return version_; }
  const std::optional<Uuid>& request_id() const { return request_id_; }
  const std::optional<Uuid>& id() const { return id_; }
  std::uint16_t earlier_deliveries() const { return earlier_deliveries_; }
  std::string_view only_to() const { return only_to_; }

 private:
  std::optional<double> version_;
  std::optional<Uuid> request_id_;
  std::optional<Uuid> id_;
  std::uint16_t earlier_deliveries_ = 0;
  std::string_view only_to_;
};

}  // namespace exobus
