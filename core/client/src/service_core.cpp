#include "service_core.hpp"

#include <cstdlib>

#include "exobus/envelope.hpp"
#include "socket_daemon_link.hpp"

namespace exobus::client {

namespace {

std::string from_environment(const std::string& given, const char* variable) {
  if (!given.empty()) return given;
  const char* value = std::getenv(variable);
  return value == nullptr ? std::string() : std::string(value);
}

}  // namespace

ServiceCore::ServiceCore(ServiceOptions options_in, std::unique_ptr<DaemonLink> daemon_in)
    : options(std::move(options_in)), daemon(std::move(daemon_in)), routing(options.service) {}

Result<std::unique_ptr<ServiceCore>> ServiceCore::connect(ServiceOptions options) {
  options.bus = from_environment(options.bus, "EXOBUS_BUS");
  options.service = from_environment(options.service, "EXOBUS_SERVICE");
  if (options.bus.empty() || options.service.empty()) {
    return Error{ErrorCode::config_error,
                 "name the bus and the service type (ServiceOptions, or $EXOBUS_BUS and $EXOBUS_SERVICE)"};
  }
  Result<std::unique_ptr<SocketDaemonLink>> daemon =
      SocketDaemonLink::register_instance(options.bus, options.service, options.runtime_dir);
  if (!daemon) return daemon.error();
  return attach(std::move(options), std::move(daemon).value());
}

Result<std::unique_ptr<ServiceCore>> ServiceCore::attach(ServiceOptions options, std::unique_ptr<DaemonLink> daemon) {
  std::unique_ptr<ServiceCore> core(new ServiceCore(std::move(options), std::move(daemon)));
  const control::RegistrationReply& registration = core->daemon->registration();
  std::vector<control::UniqueFd> memory = core->daemon->take_memory();
  int data = -1;
  for (std::size_t k = 0; k < registration.memory.size() && k < memory.size(); ++k) {
    if (registration.memory[k].role == "data") data = memory[k].release();
  }
  if (data == -1) return Error{ErrorCode::protocol, "the registration granted no data segment"};
  Result<std::unique_ptr<shm::Segment>> segment = shm::Segment::map(data);
  if (!segment) return segment.error();
  core->segment = std::move(segment).value();
  core->plane = std::make_unique<shm::DataPlane>(*core->segment);
  if (Result<void> loaded = core->routing.load(registration.routing); !loaded) return loaded.error();

  const std::uint32_t lanes = core->segment->layout().lanes_per_instance;
  core->receiver.use_lanes(core->plane->lane_of(core->instance(), kHomeLane),
                           core->plane->lane_of(core->instance(), kInboxLane));
  for (std::uint32_t k = kFirstSendLane; k < lanes; ++k) core->lanes.add(core->plane->lane_of(core->instance(), k));
  // From here on the instance uses its lanes; see InstanceSlot::attached.
  core->slot().attached.store(1, std::memory_order_release);
  core->running.store(true, std::memory_order_relaxed);
  ServiceCore* raw = core.get();
  core->threads_.emplace_back([raw] { raw->receiver.run_replies(); });
  return core;
}

void ServiceCore::start() {
  if (handlers.empty()) return;
  for (unsigned t = 0; t < options.handler_threads; ++t) threads_.emplace_back([this] { receiver.run_handlers(); });
  threads_.emplace_back([this] { receiver.run_commands(); });
}

void ServiceCore::stop() {
  if (!running.exchange(false)) return;
  // Sleeping receive loops see the stop now, not at their next timeout.
  plane->ring(home_ring()).wake();
  plane->ring(inbox_ring()).wake();
  for (std::thread& thread : threads_) thread.join();
  threads_.clear();
  receiver.release_unhandled();
  held_deliveries.release_all();
  // Release: the lanes' last use comes before the daemon, seeing 0 after the hang-up,
  // recovers what is left and hands the slot to another instance.
  detached.store(true, std::memory_order_relaxed);
  slot().attached.store(0, std::memory_order_release);
  daemon->close();
}

}  // namespace exobus::client
