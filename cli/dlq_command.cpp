#include "dlq_command.hpp"

#include <rapidjson/document.h>

#include <iostream>
#include <memory>
#include <string>

#include "bus_options.hpp"
#include "exobus/control/control_client.hpp"
#include "exobus/message_version.hpp"
#include "text_table.hpp"

namespace exobus::cli {

namespace {

struct DlqOptions {
  std::string type;
  bool requeue = false;
  bool json = false;
};

std::string string_member(const rapidjson::Value& object, const char* key) {
  const auto member = object.FindMember(key);
  return member != object.MemberEnd() && member->value.IsString() ? member->value.GetString() : "";
}

// The message's version, which the daemon lists as text (exactly the sender's number), or
// "?" when the listing's is not a version.
std::string version_member(const rapidjson::Value& object) {
  const Result<double> version = parse_version(string_member(object, "version"));
  return version ? version_text(version.value()) : "?";
}

int run_dlq(const BusOptions& bus, const DlqOptions& options) {
  const Result<control::RuntimePaths> paths = resolve_paths(bus);
  if (!paths) {
    print_error(exobus::to_string(paths.error().code), paths.error().message);
    return 1;
  }
  rapidjson::Document args(rapidjson::kObjectType);
  args.AddMember("type", rapidjson::Value(options.type.c_str(), args.GetAllocator()), args.GetAllocator());
  args.AddMember("requeue", options.requeue, args.GetAllocator());
  const Result<control::JsonText> reply = control::run_command(paths.value(), "dlq", control::JsonText::from(args));
  if (!reply) {
    print_error(exobus::to_string(reply.error().code), reply.error().message);
    return 1;
  }
  if (options.json) {
    std::cout << reply.value().str() << '\n';
    return 0;
  }
  const rapidjson::Document document = reply.value().document();
  if (options.requeue) {
    if (!document.IsObject() || !document.HasMember("requeued") || !document["requeued"].IsUint64()) {
      print_error("dlq", "the daemon's reply lacks 'requeued'; run exobus and exobusd of the same release");
      return 1;
    }
    std::cout << "requeued " << document["requeued"].GetUint64() << " dead letters of '" << options.type << "'\n";
    return 0;
  }
  if (!document.IsObject() || !document.HasMember("messages") || !document["messages"].IsArray()) {
    print_error("dlq", "the daemon's reply lacks 'messages'; run exobus and exobusd of the same release");
    return 1;
  }
  const auto& messages = document["messages"].GetArray();
  std::cout << messages.Size() << " dead letters of '" << options.type << "'\n";
  TextTable table({"ID", "NAME", "VERSION", "SENDER", "PAYLOAD"}, {});
  for (const rapidjson::Value& message : messages) {
    if (!message.IsObject()) continue;
    table.add_row({string_member(message, "id"), string_member(message, "name"), version_member(message),
                   string_member(message, "sender"), string_member(message, "payload")});
  }
  if (!table.empty()) table.print(std::cout);
  return 0;
}

void add_dlq_subcommand(CLI::App& dlq, std::function<int()>& run, const char* name, const char* description,
                        bool requeue) {
  auto* command = dlq.add_subcommand(name, description);
  auto bus = add_bus_options(*command);
  auto options = std::make_shared<DlqOptions>();
  options->requeue = requeue;
  command->add_option("-t,--type", options->type, "The service type whose dead letters these are")->required();
  if (!requeue) command->add_flag("--json", options->json, "Print the daemon's reply as JSON");
  command->callback([bus, options, &run] { run = [bus, options] { return run_dlq(*bus, *options); }; });
}

}  // namespace

void add_dlq_command(CLI::App& app, std::function<int()>& run) {
  auto* dlq = app.add_subcommand("dlq", "Inspect and requeue dead-lettered messages");
  dlq->require_subcommand(1);
  add_dlq_subcommand(*dlq, run, "list",
                     "List the dead letters of a service type, one line each: id, name, version, sender, payload",
                     false);
  add_dlq_subcommand(*dlq, run, "requeue", "Move the dead letters of a service type back into its queue", true);
}

}  // namespace exobus::cli
