#include "send_command.hpp"

#include <atomic>
#include <future>
#include <iostream>
#include <memory>
#include <mutex>
#include <string>

#include "bus_options.hpp"
#include "exobus/service.hpp"

namespace exobus::cli {

namespace {

struct SendOptions {
  std::string name;
  std::string payload;
  std::string service;
  double wait_seconds = 0;
};

void print_failure(const Error& error) { print_error("send: " + std::string(to_string(error.code)), error.message); }

int send_message(const BusOptions& bus, const SendOptions& options) {
  ServiceOptions service_options;
  service_options.bus = bus.bus;
  service_options.service = options.service;
  service_options.runtime_dir = bus.runtime_dir;
  Result<std::unique_ptr<Service>> connected = Service::connect(std::move(service_options));
  if (!connected) {
    print_failure(connected.error());
    return 1;
  }
  Service& service = *connected.value();
  if (options.wait_seconds <= 0) {
    const Result<void> sent = service.send(options.name, options.payload);
    if (!sent) {
      print_failure(sent.error());
      return 1;
    }
    return 0;
  }

  const auto timeout = std::chrono::milliseconds(static_cast<std::int64_t>(options.wait_seconds * 1000));
  // The reply handler runs on the library's reply thread, until the timeout's last call.
  auto replies = std::make_shared<std::atomic<unsigned>>(0);
  auto finished = std::make_shared<std::promise<void>>();
  std::future<void> done = finished->get_future();
  const Result<void> sent = service.send(
      options.name, options.payload,
      [replies, finished](const Reply& reply) {
        if (reply.timed_out) {
          finished->set_value();
          return ReplyControl::done;
        }
        replies->fetch_add(1, std::memory_order_relaxed);
        std::cout << reply.outcome;
        if (!reply.payload.empty()) std::cout << ' ' << reply.payload;
        std::cout << std::endl;  // flushed per reply, so a pipe sees each as it comes
        return ReplyControl::more;
      },
      timeout);
  if (!sent) {
    print_failure(sent.error());
    return 1;
  }
  // The library reports the timeout a few milliseconds late; the margin only keeps a
  // late report from holding the command up.
  (void)done.wait_for(timeout + std::chrono::seconds(1));
  if (replies->load(std::memory_order_relaxed) == 0) {
    print_error("send: timeout",
                "'" + options.name + "' was sent but no reply came within " + std::to_string(timeout.count()) + " ms");
    return 1;
  }
  return 0;
}

}  // namespace

void add_send_command(CLI::App& app, std::function<int()>& run) {
  auto* command = app.add_subcommand("send", "Send one message as an instance of a service type");
  auto bus = add_bus_options(*command);
  auto options = std::make_shared<SendOptions>();
  command->add_option("name", options->name, "The message name, as the sending service type knows it")->required();
  command->add_option("payload", options->payload, "The payload, JSON text (default: none)");
  command->add_option("--as", options->service, "The sending service type (default: $EXOBUS_SERVICE)")
      ->envname("EXOBUS_SERVICE");
  command->add_option("--wait-replies", options->wait_seconds, "Print the replies that arrive within this many seconds")
      ->check(CLI::NonNegativeNumber);
  command->callback([bus, options, &run] { run = [bus, options] { return send_message(*bus, *options); }; });
}

}  // namespace exobus::cli
