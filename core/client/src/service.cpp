// The public face of the client library: each call goes to the part of the instance that
// does it (service_core.hpp).
#include "exobus/service.hpp"

#include "service_core.hpp"

namespace exobus {

Result<std::unique_ptr<Service>> Service::connect(ServiceOptions options) {
  Result<std::unique_ptr<client::ServiceCore>> core = client::ServiceCore::connect(std::move(options));
  if (!core) return core.error();
  return std::unique_ptr<Service>(new Service(std::move(core).value()));
}

Service::Service(std::unique_ptr<client::ServiceCore> core) : core_(std::move(core)) {}

Service::~Service() { stop(); }

void Service::on(std::string name, Handler handler) { core_->handlers[std::move(name)] = std::move(handler); }

Result<void> Service::start() {
  core_->start();
  return {};
}

void Service::stop() { core_->stop(); }

Result<void> Service::send(std::string_view name, std::string_view payload) {
  return core_->sender.send(client::Outgoing::command(name, payload));
}

Result<void> Service::try_send(std::string_view name, std::string_view payload) {
  return core_->sender.send(client::Outgoing::command_without_waiting(name, payload));
}

Result<Loan> Service::loan(std::string_view name, std::size_t payload_size) {
  return core_->sender.loan(name, payload_size);
}

Result<void> Service::send(std::string_view name, std::string_view payload, ReplyHandler on_reply,
                           std::chrono::milliseconds timeout) {
  return core_->sender.send(
      client::Outgoing::request(name, payload, {std::move(on_reply), std::chrono::steady_clock::now() + timeout}));
}

std::future<Result<Reply>> Service::request(std::string_view name, std::string_view payload,
                                            std::chrono::milliseconds timeout) {
  auto promise = std::make_shared<std::promise<Result<Reply>>>();
  std::future<Result<Reply>> future = promise->get_future();
  const std::string what(name);
  Result<void> sent = send(
      name, payload,
      [promise, what, timeout](const Reply& reply) {
        if (reply.timed_out) {
          promise->set_value(Error{ErrorCode::timeout,
                                   "no reply to '" + what + "' within " + std::to_string(timeout.count()) + " ms"});
        } else {
          promise->set_value(reply);
        }
        return ReplyControl::done;
      },
      timeout);
  if (!sent) promise->set_value(sent.error());
  return future;
}

const std::string& Service::service_type() const { return core_->options.service; }
std::uint32_t Service::instance() const { return core_->instance(); }

}  // namespace exobus
