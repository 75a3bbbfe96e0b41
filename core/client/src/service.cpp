// The public face of the client library: each call goes to the part of the instance that
// does it (service_core.hpp).
#include "exobus/service.hpp"

#include <algorithm>

#include "service_core.hpp"

namespace exobus {

Result<std::unique_ptr<Service>> Service::connect(ServiceOptions options) {
  Result<std::unique_ptr<client::ServiceCore>> core = client::ServiceCore::connect(std::move(options));
  if (!core) return core.error();
  return std::unique_ptr<Service>(new Service(std::move(core).value()));
}

Service::Service(std::unique_ptr<client::ServiceCore> core) : core_(std::move(core)) {}

Service::~Service() { stop(); }

void Service::on(std::string name, Handler handler) {
  core_->handlers[std::move(name)].any_version = std::move(handler);
}

void Service::on(std::string name, double version, Handler handler) {
  core_->handlers[std::move(name)].set(version, std::move(handler));
}

Result<void> Service::start() {
  core_->start();
  return {};
}

void Service::stop() { core_->stop(); }

Result<void> Service::send(std::string_view name, std::string_view payload, const SendOptions& options) {
  return core_->sender.send(client::Outgoing::command(name, payload, options));
}

Result<void> Service::try_send(std::string_view name, std::string_view payload, const SendOptions& options) {
  return core_->sender.send(client::Outgoing::command_without_waiting(name, payload, options));
}

Result<Loan> Service::loan(std::string_view name, std::size_t payload_size, const SendOptions& options) {
  return core_->sender.loan(name, payload_size, options);
}

Result<void> Service::send(std::string_view name, std::string_view payload, ReplyHandler on_reply,
                           std::chrono::milliseconds timeout, const SendOptions& options) {
  return core_->sender.send(client::Outgoing::request(
      name, payload, options, {std::move(on_reply), std::chrono::steady_clock::now() + timeout, {}}));
}

std::future<Result<Reply>> Service::request(std::string_view name, std::string_view payload,
                                            std::chrono::milliseconds timeout, const SendOptions& options) {
  return core_->sender.request(name, payload, timeout, options);
}

Result<Reply> Service::call(std::string_view name, std::string_view payload, std::chrono::milliseconds timeout,
                            const SendOptions& options) {
  return core_->sender.call(name, payload, timeout, options);
}

Result<void> Service::reply_to(const ReplyAddress& to, std::string_view outcome, std::string_view payload,
                               const SendOptions& options) {
  const client::RoutingState& state = core_->routing.current();
  const auto requester = std::find(state.type_names.begin(), state.type_names.end(), to.requester);
  if (requester == state.type_names.end()) {
    return Error{ErrorCode::unknown_message, "no service type '" + to.requester + "' to reply to"};
  }
  // What the send path reads of the command it answers: its id (the reply's response-to),
  // and a name for its errors.
  Received command;
  command.id = to.command;
  command.name = "command " + to.command.to_string();
  return core_->sender.send(client::Outgoing::reply(
      command, static_cast<std::uint16_t>(requester - state.type_names.begin()), to.member, outcome, payload, options));
}

const std::string& Service::service_type() const { return core_->options.service; }
std::uint32_t Service::instance() const { return core_->instance(); }

}  // namespace exobus
