#include "send_command.hpp"

#include <atomic>
#include <future>
#include <iostream>
#include <memory>
#include <optional>
#include <string>

#include "bus_options.hpp"
#include "exobus/message_version.hpp"
#include "exobus/service.hpp"

namespace exobus::cli {

namespace {

// What the command line asks for; --version and --request-id are parsed (and refused, exit
// 2) by the parser, so the command itself only sees valid values.
struct SendCommandOptions {
  std::string name;
  std::string payload;
  std::string service;
  std::optional<double> version;
  std::optional<Uuid> request_id;
  double wait_seconds = 0;
};

void print_failure(const Error& error) { print_error("send: " + std::string(to_string(error.code)), error.message); }

exobus::SendOptions send_options_of(const SendCommandOptions& options) {
  exobus::SendOptions send_options;
  if (options.version) send_options.version(*options.version);
  if (options.request_id) send_options.request_id(*options.request_id);
  return send_options;
}

// One line per reply: "<outcome> version=<V> request=<UUID>[ <payload>]". The outcome is
// whatever the replier named it, "timeout" included; a timeout is never printed as a reply.
std::string reply_line(const Reply& reply) {
  std::string line = reply.outcome;
  line += " version=" + version_text(reply.message.version);
  line += " request=" + reply.message.request_id.to_string();
  if (!reply.payload.empty()) line += ' ' + reply.payload;
  return line;
}

int send_message(const BusOptions& bus, const SendCommandOptions& options) {
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
  const exobus::SendOptions send_options = send_options_of(options);
  if (options.wait_seconds <= 0) {
    const Result<void> sent = service.send(options.name, options.payload, send_options);
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
        // Only timed_out says the wait is over: an outcome may be named "timeout".
        if (reply.timed_out) {
          finished->set_value();
          return ReplyControl::done;
        }
        replies->fetch_add(1, std::memory_order_relaxed);
        std::cout << reply_line(reply) << std::endl;  // flushed per reply, so a pipe sees each as it comes
        return ReplyControl::more;
      },
      timeout, send_options);
  if (!sent) {
    print_failure(sent.error());
    return 1;
  }
  // The library reports the timeout a few milliseconds late; the margin only keeps a
  // late report from holding the command up.
  (void)done.wait_for(timeout + std::chrono::seconds(1));
  if (replies->load(std::memory_order_relaxed) == 0) {
    print_failure(Error{ErrorCode::timeout, "'" + options.name + "' was sent but no reply came within " +
                                                std::to_string(timeout.count()) + " ms"});
    return 1;
  }
  return 0;
}

}  // namespace

void add_send_command(CLI::App& app, std::function<int()>& run) {
  auto* command = app.add_subcommand("send", "Send one message as an instance of a service type");
  auto bus = add_bus_options(*command);
  auto options = std::make_shared<SendCommandOptions>();
  command->add_option("name", options->name, "The message name, as the sending service type knows it")->required();
  command->add_option("payload", options->payload, "The payload, JSON text (default: none)");
  command->add_option("--as", options->service, "The sending service type (default: $EXOBUS_SERVICE)")
      ->envname("EXOBUS_SERVICE");
  command
      ->add_option_function<std::string>(
          "--version",
          [options](const std::string& text) {
            Result<double> version = parse_version(text);
            if (!version) throw CLI::ValidationError("--version", version.error().message);
            options->version = version.value();
          },
          "The message's version, a number such as 1 or 1.2 (default: the default version the sending service "
          "type's configuration gives the message, 1 when it gives none); one the configuration does not list "
          "under versions fails with unknown_version")
      ->type_name("VERSION");
  command
      ->add_option_function<std::string>(
          "--request-id",
          [options](const std::string& text) {
            Result<Uuid> id = Uuid::parse(text);
            if (!id) throw CLI::ValidationError("--request-id", id.error().message);
            options->request_id = id.value();
          },
          "The end-user request the message belongs to, a UUID such as 123e4567-e89b-42d3-a456-426614174000 "
          "(default: a new request, whose id is the message's own)")
      ->type_name("UUID");
  command
      ->add_option("--wait-replies", options->wait_seconds,
                   "Print the replies that arrive within this many seconds, one line each: "
                   "OUTCOME version=VERSION request=UUID [PAYLOAD]")
      ->type_name("SECONDS")
      ->check(CLI::NonNegativeNumber);
  command->footer(
      "Exit codes:\n"
      "  0  sent (with --wait-replies: and at least one reply came)\n"
      "  1  not sent, or no reply came in time: the error code and message on stderr, e.g.\n"
      "     \"exobus: send: unknown_version: ...\" or \"exobus: send: timeout: ...\"\n"
      "  2  the command line is wrong, a malformed --version or --request-id included");
  command->callback([bus, options, &run] { run = [bus, options] { return send_message(*bus, *options); }; });
}

}  // namespace exobus::cli
