#include "status_command.hpp"

#include <signal.h>

#include <cerrno>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <memory>
#include <sstream>
#include <string>

#include "bus_options.hpp"
#include "exobus/control/control_client.hpp"
#include "status_fields.hpp"
#include "text_table.hpp"

namespace exobus::cli {

namespace {

// The status document as tables: one line per service type, its instances indented below.
int print_status(const rapidjson::Document& status) {
  if (!status.IsObject() || !status.HasMember("service_types") || !status["service_types"].IsArray()) {
    print_error("status", "the daemon's status lacks service_types; run exobus and exobusd of the same release");
    return 1;
  }
  std::cout << "bus " << text(status, "bus") << " (" << mebibytes(status, "memory_bytes") << " of shared memory)";
  if (status.HasMember("pool")) {
    const rapidjson::Value& pool = status["pool"];
    std::cout << ", message buffers: " << number(pool, "in_use") << " in use, " << number(pool, "free") << " free of "
              << number(pool, "chunks");
  }
  std::cout << '\n';
  if (status.HasMember("metrics")) std::cout << "metrics on http://" << text(status, "metrics") << "/metrics\n";
  std::cout << '\n';

  TextTable types(
      {"SERVICE TYPE", "QUEUED", "IN FLIGHT", "DELIVERED", "ACKED", "REDELIVERED", "DEAD-LETTERED", "INSTANCES"},
      {TextTable::left, TextTable::right, TextTable::right, TextTable::right, TextTable::right, TextTable::right,
       TextTable::right, TextTable::right});
  for (const rapidjson::Value& type : status["service_types"].GetArray()) {
    if (!type.IsObject()) continue;
    const bool listed = type.HasMember("instances") && type["instances"].IsArray();
    types.add_row({text(type, "name"), number(type, "queued"), number(type, "in_flight"), number(type, "delivered"),
                   number(type, "acked"), number(type, "redelivered"), number(type, "dead_lettered"),
                   listed ? std::to_string(type["instances"].Size()) : "?"});
  }
  types.print(std::cout);

  for (const rapidjson::Value& type : status["service_types"].GetArray()) {
    if (!type.IsObject() || !type.HasMember("instances") || !type["instances"].IsArray() || type["instances"].Empty()) {
      continue;
    }
    TextTable instances({"SLOT", "PID", "CONNECTED", "HUNG", "IN FLIGHT", "SENT", "DELIVERED", "ACKED", "REDELIVERED"},
                        {TextTable::right, TextTable::right, TextTable::left, TextTable::left, TextTable::right,
                         TextTable::right, TextTable::right, TextTable::right, TextTable::right});
    for (const rapidjson::Value& instance : type["instances"].GetArray()) {
      if (!instance.IsObject()) continue;
      instances.add_row({number(instance, "slot"), number(instance, "pid"), yes_no(instance, "connected"),
                         yes_no(instance, "hung"), number(instance, "in_flight"), number(instance, "sent"),
                         number(instance, "delivered"), number(instance, "acked"), number(instance, "redelivered")});
    }
    std::cout << "\ninstances of " << text(type, "name") << ":\n";
    instances.print(std::cout, "  ");
  }
  if (status.HasMember("dead_lettered_replies") && status["dead_lettered_replies"].IsUint64() &&
      status["dead_lettered_replies"].GetUint64() > 0) {
    std::cout << "\nreplies dropped because their requester was gone and nobody else receives them: "
              << status["dead_lettered_replies"].GetUint64() << '\n';
  }
  return 0;
}

// What exobus-bridge last wrote of itself (docs/bridge.md), when the bus has one: its pid
// and host, the NATS connection, and per remote type what crossed and the lag.
void print_bridge_status(const std::filesystem::path& file) {
  std::ifstream in(file);
  std::string first;
  if (!in || !std::getline(in, first)) return;
  std::istringstream words(first);
  std::string program, pid_word, host_word, host;
  long pid = 0;
  words >> program >> pid_word >> pid >> host_word >> host;
  const bool running = pid > 0 && (kill(static_cast<pid_t>(pid), 0) == 0 || errno == EPERM);
  std::cout << "\nbridge of host " << host << " (pid " << pid << (running ? "" : ", not running: its last status")
            << "):\n";
  for (std::string line; std::getline(in, line);) std::cout << "  " << line << '\n';
}

}  // namespace

void add_status_command(CLI::App& app, std::function<int()>& run) {
  auto* command = app.add_subcommand("status", "Show the bus as its daemon sees it: queues, instances, counters");
  auto options = add_bus_options(*command);
  auto json = std::make_shared<bool>(false);
  command->add_flag("--json", *json, "Print the daemon's status document as JSON");
  command->callback([options, json, &run] {
    run = [options, json] {
      const Result<control::RuntimePaths> paths = resolve_paths(*options);
      if (!paths) {
        print_error(exobus::to_string(paths.error().code), paths.error().message);
        return 1;
      }
      const Result<control::JsonText> status = control::request_status(paths.value());
      if (!status) {
        print_error(exobus::to_string(status.error().code), status.error().message);
        return 1;
      }
      if (*json) {
        std::cout << status.value().str() << '\n';
        return 0;
      }
      const int printed = print_status(status.value().document());
      if (printed == 0) print_bridge_status(paths.value().bridge_status);
      return printed;
    };
  });
}

}  // namespace exobus::cli
