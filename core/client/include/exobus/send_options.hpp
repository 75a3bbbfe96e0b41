#pragma once
// How a message is sent: the version it carries and the end-user request it belongs to.
//
//   service->send("user.create", payload, exobus::SendOptions().version(1.2));
//   service->send("audit.log", payload, exobus::SendOptions().request_id(http_request_id));
//
// Sends made through a Delivery (Delivery::send, Delivery::reply) belong to the delivery's
// request unless these options say otherwise; a Service's own sends start a new request.
#include <optional>

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

  const std::optional<double>& version() const { return version_; }
  const std::optional<Uuid>& request_id() const { return request_id_; }

 private:
  std::optional<double> version_;
  std::optional<Uuid> request_id_;
};

}  // namespace exobus
