#include "outbound_relay.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <thread>

namespace exobus::bridge {

Result<std::unique_ptr<OutboundRelay>> OutboundRelay::connect(const ApplicationConfig& application,
                                                              ServiceTypeIndex type, const std::string& host,
                                                              ServiceOptions options, JetStream& jet) {
  options.service = application.services[type].name;
  // Each handler thread waits for one publish ack at a time: several keep the link busy.
  options.handler_threads = 8;
  Result<std::unique_ptr<Service>> service = Service::connect(options);
  if (!service) return service.error();
  std::unique_ptr<OutboundRelay> relay(new OutboundRelay(application, type, host, std::move(service.value()), jet));
  for (const std::string& name : application.services[type].receives) {
    relay->service_->on(name, [raw = relay.get()](Delivery& delivery) { raw->relay(delivery); });
  }
  return relay;
}

OutboundRelay::OutboundRelay(const ApplicationConfig& application, ServiceTypeIndex type, std::string host,
                             std::unique_ptr<Service> service, JetStream& jet)
    : application_(application),
      type_(type),
      type_name_(application.services[type].name),
      host_(std::move(host)),
      retry_every_(std::clamp<std::uint32_t>(application.services[type].ack_timeout_ms / 4, 1, 200)),
      service_(std::move(service)),
      jet_(jet) {}

Result<void> OutboundRelay::start() { return service_->start(); }

void OutboundRelay::stop() {
  stopping_.store(true, std::memory_order_relaxed);
  service_->stop();
}

void OutboundRelay::relay(Delivery& delivery) {
  const Received& received = delivery.message();
  CrossingMessage crossing;
  crossing.name = std::string(application_.routing.to_public(type_, received.name));
  crossing.version = received.version;
  crossing.payload = received.payload;
  crossing.id = received.id;
  crossing.request_id = received.request_id;
  crossing.response_to = received.response_to;
  crossing.sender = received.sender;
  crossing.deliveries = static_cast<std::uint16_t>(std::min<unsigned>(received.deliveries, 0xffff));
  if (Result<ReplyAddress> address = delivery.reply_address(); address) {
    crossing.return_address = CrossingMessage::ReturnAddress{host_, address.value().requester, address.value().member};
  }

  for (;;) {
    Result<void> published = jet_.publish_command(crossing, type_name_);
    if (published) {
      // Stored on the stream: the bus may forget it now.
      if (Result<void> acked = delivery.ack(); acked) counters_.relayed.fetch_add(1, std::memory_order_relaxed);
      return;
    }
    counters_.retried.fetch_add(1, std::memory_order_relaxed);
    if (stopping_.load(std::memory_order_relaxed)) {
      (void)delivery.release();
      return;
    }
    // The failed attempt may have been stored all the same (its ack lost with a server), and
    // the de-duplication window does not always survive a stream leader's death: the next
    // attempt says it may be a second delivery, so that if both are stored the second copy
    // is flagged redelivered.
    if (crossing.deliveries < 0xffff) ++crossing.deliveries;
    // The connection is moving to another server, or the stream's leader is being
    // elected, or the cluster is out of reach: the lease is kept (renewed) and the same
    // message id published again, for as long as it takes. Releasing instead would count
    // a delivery per attempt and dead-letter the message after delivery-limit of them.
    spdlog::debug("{} for '{}' not published yet: {}", crossing.id.to_string(), type_name_, published.error().message);
    std::this_thread::sleep_for(retry_every_);
    (void)delivery.renew();
  }
}

}  // namespace exobus::bridge
