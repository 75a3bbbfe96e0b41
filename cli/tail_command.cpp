#include "tail_command.hpp"

#include <rapidjson/document.h>
#include <signal.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <iostream>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "bus_options.hpp"
#include "exobus/control/control_client.hpp"
#include "exobus/control/registration.hpp"
#include "exobus/shm/bus_memory.hpp"
#include "trace_line.hpp"

namespace exobus::cli {

namespace {

constexpr auto kPollInterval = std::chrono::milliseconds(10);
constexpr auto kRenewInterval = std::chrono::seconds(1);  // the daemon's lease is 3 s

struct TailOptions {
  std::vector<std::string> types;
  std::string name;
  std::optional<Uuid> request;
  bool payload = false;
  bool json = false;
  std::uint64_t count = 0;  // 0: no limit
};

std::atomic<bool> stop_requested{false};
extern "C" void request_stop(int) { stop_requested.store(true, std::memory_order_relaxed); }

// One trace ring being followed.
struct Followed {
  std::uint16_t type;
  std::uint32_t instance;
  shm::TraceReader reader;
};

// The bus's memory as the daemon granted it to this tail: the directory and the types'
// memory, read-only.
struct Attached {
  std::unique_ptr<shm::BusMemory> memory;
  std::vector<std::uint16_t> types;
  std::vector<Followed> rings;
};

Result<Attached> attach(const control::RuntimePaths& paths, const TailOptions& options) {
  rapidjson::Document args(rapidjson::kObjectType);
  rapidjson::Value types(rapidjson::kArrayType);
  for (const std::string& type : options.types) {
    types.PushBack(rapidjson::Value(type.c_str(), args.GetAllocator()), args.GetAllocator());
  }
  args.AddMember("types", types, args.GetAllocator());
  Result<control::Answer> answer = control::exchange_command(paths, "tail", control::JsonText::from(args));
  if (!answer) return answer.error();
  const Result<control::RoutingReply> reply = control::decode_routing_reply(answer.value().body);
  if (!reply) return reply.error();
  const std::vector<control::MemoryGrant>& listed = reply.value().memory;
  std::vector<control::UniqueFd>& fds = answer.value().fds;
  if (listed.size() != fds.size() || listed.empty()) {
    return Error{ErrorCode::protocol, "exobusd granted " + std::to_string(listed.size()) +
                                          " memory objects but passed " + std::to_string(fds.size()) + " descriptors"};
  }
  // Every grant checked before any descriptor leaves its owner (attach() takes them over).
  std::vector<shm::RegionKind> kinds;
  for (const control::MemoryGrant& grant : listed) {
    const std::optional<shm::RegionKind> kind = shm::region_kind(grant.role);
    if (!kind || (*kind != shm::RegionKind::directory && *kind != shm::RegionKind::tenant)) {
      return Error{ErrorCode::protocol, "exobusd granted memory of role '" + grant.role +
                                            "' to a tail; run exobus and exobusd of the same release"};
    }
    kinds.push_back(*kind);
  }
  std::vector<shm::Grant> grants;
  for (std::size_t k = 0; k < listed.size(); ++k)
    grants.push_back({kinds[k], listed[k].index, false, fds[k].release()});
  Result<std::unique_ptr<shm::BusMemory>> memory = shm::BusMemory::attach(grants);
  if (!memory) return memory.error();
  Attached attached{std::move(memory).value(), {}, {}};
  for (const control::MemoryGrant& grant : listed) {
    if (grant.role != "tenant") continue;
    const auto type = static_cast<std::uint16_t>(grant.index);
    const shm::Tenant* tenant = attached.memory->tenant(type);
    if (tenant == nullptr) continue;
    attached.types.push_back(type);
    for (std::uint32_t instance = 0; instance < tenant->shape().instances; ++instance) {
      for (const shm::TraceLoop loop : {shm::TraceLoop::commands, shm::TraceLoop::replies}) {
        attached.rings.push_back({type, instance, shm::TraceReader(tenant->trace_ring(instance, loop))});
      }
    }
  }
  return attached;
}

bool wanted(const TraceLine& line, const TailOptions& options) {
  if (!options.name.empty() && line.name != options.name && line.internal_name != options.name) return false;
  return !options.request || line.request_id.bytes() == options.request->bytes();
}

std::string type_name(const shm::Directory& directory, std::uint16_t type) {
  const std::string_view name = directory.type_name(type);
  return name.empty() ? std::string("?") : std::string(name);
}

// On stderr, so that the trace on stdout is lines of deliveries alone.
void announce(const Attached& tail) {
  std::cerr << "exobus tail: tracing " << tail.types.size() << " service types:";
  for (const std::uint16_t type : tail.types) std::cerr << ' ' << type_name(tail.memory->directory(), type);
  std::cerr << std::endl;
}

// Renews the tail's lease. A lease that ran out (this process was stopped for seconds, or
// the daemon restarted) is taken again with a new attach, from the rings' ends: the lines
// in between are lost, and stderr says so.
Result<void> renew(const control::RuntimePaths& paths, const TailOptions& options, Attached& tail) {
  rapidjson::Document args(rapidjson::kObjectType);
  args.AddMember("renew", true, args.GetAllocator());
  const Result<control::JsonText> renewed = control::run_command(paths, "tail", control::JsonText::from(args));
  if (renewed || renewed.error().code != ErrorCode::refused) {
    return renewed ? Result<void>() : Result<void>(renewed.error());
  }
  Result<Attached> again = attach(paths, options);
  if (!again) return again.error();
  tail = std::move(again).value();
  std::cerr << "exobus tail: the lease had run out (stopped, or the daemon restarted); attached again, the lines "
               "in between are missing"
            << std::endl;
  announce(tail);
  return {};
}

int run_tail(const BusOptions& bus, const TailOptions& options) {
  const Result<control::RuntimePaths> paths = resolve_paths(bus);
  if (!paths) {
    print_error(exobus::to_string(paths.error().code), paths.error().message);
    return 1;
  }
  Result<Attached> attached = attach(paths.value(), options);
  if (!attached) {
    print_error(exobus::to_string(attached.error().code), attached.error().message);
    return 1;
  }
  Attached tail = std::move(attached).value();
  ::signal(SIGINT, request_stop);
  ::signal(SIGTERM, request_stop);
  announce(tail);
  struct Taken {
    shm::TraceEntry entry;
    const Followed* ring;
  };
  std::vector<Taken> batch;
  std::uint64_t printed = 0;
  auto renew_at = std::chrono::steady_clock::now() + kRenewInterval;
  while (!stop_requested.load(std::memory_order_relaxed)) {
    // Each ring's new records (at most kTraceRecords a ring), then all of them in the order
    // their receivers took them.
    batch.clear();
    std::uint64_t dropped = 0;
    for (Followed& ring : tail.rings) {
      while (const std::optional<shm::TraceEntry> entry = ring.reader.next()) batch.push_back({*entry, &ring});
      dropped += ring.reader.take_dropped();
    }
    std::stable_sort(batch.begin(), batch.end(),
                     [](const Taken& a, const Taken& b) { return a.entry.taken_at_ns < b.entry.taken_at_ns; });
    if (dropped > 0) std::cout << (options.json ? dropped_json(dropped) : dropped_text(dropped)) << '\n';
    const shm::Directory& directory = tail.memory->directory();
    for (const Taken& taken : batch) {
      const TraceLine line = TraceLine::of(taken.entry, type_name(directory, taken.entry.sender_type),
                                           type_name(directory, taken.ring->type), taken.ring->instance);
      if (!wanted(line, options)) continue;
      std::cout << (options.json ? json_line(line, options.payload) : text_line(line, options.payload)) << '\n';
      if (options.count != 0 && ++printed == options.count) {
        std::cout.flush();
        return 0;
      }
    }
    std::cout.flush();
    if (!std::cout) return 1;  // the reader went away
    if (std::chrono::steady_clock::now() >= renew_at) {
      if (const Result<void> renewed = renew(paths.value(), options, tail); !renewed) {
        print_error(exobus::to_string(renewed.error().code), renewed.error().message);
        return 1;
      }
      renew_at = std::chrono::steady_clock::now() + kRenewInterval;
    }
    std::this_thread::sleep_for(kPollInterval);
  }
  return 0;
}

}  // namespace

void add_tail_command(CLI::App& app, std::function<int()>& run) {
  auto* command = app.add_subcommand("tail", "Trace the bus live: one line per delivery, as the receivers take them");
  auto bus = add_bus_options(*command);
  auto options = std::make_shared<TailOptions>();
  command->add_option("-t,--type", options->types, "Only deliveries to this service type (repeatable)");
  command->add_option("--name", options->name, "Only messages of this name (public, or the receiver's)");
  command
      ->add_option_function<std::string>(
          "--request",
          [options](const std::string& text) {
            Result<Uuid> id = Uuid::parse(text);
            if (!id) throw CLI::ValidationError("--request", id.error().message);
            options->request = id.value();
          },
          "Only messages of this end-user request (a UUID): follows it through every service it touches")
      ->type_name("UUID");
  command->add_flag("--payload", options->payload, "Show the head of each payload");
  command->add_flag("--json", options->json, "One JSON object per line");
  command->add_option("--count", options->count, "Stop after this many lines")->check(CLI::PositiveNumber);
  command->callback([bus, options, &run] { run = [bus, options] { return run_tail(*bus, *options); }; });
}

}  // namespace exobus::cli
