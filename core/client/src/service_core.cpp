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
  GrantedMemory granted = core->daemon->take_memory();
  Result<std::unique_ptr<shm::BusMemory>> memory = shm::BusMemory::attach(granted.grants());
  if (!memory) return memory.error();
  core->memory = std::move(memory).value();
  shm::Tenant* tenant = core->memory->tenant(registration.type);
  if (tenant == nullptr || registration.member >= tenant->shape().instances) {
    return Error{ErrorCode::protocol, "exobusd granted no memory of this service type's, or an instance beyond it"};
  }
  core->plane = std::make_unique<shm::DataPlane>(*core->memory, registration.type, registration.member);
  if (Result<void> loaded = core->routing.load(registration.routing, *core->memory); !loaded) return loaded.error();

  core->receiver.use_lanes(core->plane->lane(shm::kCommandLane), core->plane->lane(shm::kReplyLane));
  for (std::uint32_t k = shm::kFirstSendLane; k < tenant->shape().lanes_per_instance; ++k) {
    core->lanes.add(core->plane->lane(k));
  }
  // From here on the instance uses its lanes; see InstanceRecord::attached.
  core->record().attached.store(1, std::memory_order_release);
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
  receiver.wake();
  for (std::thread& thread : threads_) thread.join();
  threads_.clear();
  receiver.release_unhandled();
  receiver.abandon_replies();
  held_deliveries.release_all();
  // Release: the lanes' last use comes before the daemon, seeing 0 after the hang-up,
  // recovers what is left and hands the slot to another instance.
  detached.store(true, std::memory_order_relaxed);
  record().attached.store(0, std::memory_order_release);
  daemon->close();
}

}  // namespace exobus::client
