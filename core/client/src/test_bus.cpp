// The test bus plays exobusd inside the test's process: it lays out memory of its own with
// the same plan the daemon uses, registers instances into its slots and grants them the
// same memory, recovers an instance that leaves, and expires leases on a tick. The
// services it plays are ordinary Services connected to it.
#include "exobus/test_bus.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <map>
#include <mutex>
#include <set>
#include <thread>

#include "exobus/bus_plan.hpp"
#include "exobus/config.hpp"
#include "exobus/message_name.hpp"
#include "exobus/shm/recovery.hpp"
#include "service_core.hpp"

namespace exobus {

class TestBus::State : public std::enable_shared_from_this<TestBus::State> {
 public:
  static Result<std::shared_ptr<State>> create(const std::filesystem::path& application_file);
  ~State();

  Result<std::unique_ptr<Service>> connect_under_test(ServiceOptions options);
  Result<Service*> played(std::string_view type);
  void script(std::string_view receiver, std::string name, Handler handler);
  std::vector<ObservedMessage> received();
  Result<ObservedMessage> wait_for(std::string_view name, std::chrono::milliseconds timeout);
  void reset();
  // Stops the played services (before the State can go: they hold it).
  void stop_playing();

  // The daemon's side of a registration and a leave.
  Result<control::RegistrationReply> register_instance(const std::string& type);
  void instance_left(std::uint32_t slot);
  // The routing, and the memory of `type` (copies of the descriptors, the instance's).
  client::RoutingUpdate routing(std::uint16_t type) const;

 private:
  State() = default;
  void play_all();  // under mutex_
  void observe(const std::string& receiver, Delivery& delivery);
  void tick();
  // Recovers a slot (under recovery_mutex_); true when nothing is left to do.
  bool recover(std::uint32_t slot);

  ApplicationConfig config_;
  BusPlan plan_;
  std::unique_ptr<shm::BusMemory> memory_;

  // Registration, recovery and expiry run one at a time, on the daemon's lanes.
  std::mutex recovery_mutex_;
  std::set<std::uint32_t> recovering_;  // left with work pending (a ring was full)

  std::mutex mutex_;
  std::condition_variable arrived_;
  std::set<std::string, std::less<>> under_test_;
  std::map<std::string, std::unique_ptr<Service>, std::less<>> played_;
  std::map<std::pair<std::string, std::string>, std::shared_ptr<Handler>> scripts_;
  std::vector<ObservedMessage> received_;
  std::map<std::string, std::size_t, std::less<>> waited_;  // wait_for's count per name

  std::atomic<bool> ticking_{true};
  std::thread ticker_;
};

namespace {

// The link of an instance of the test bus: the bus plays the daemon.
class TestBusLink final : public client::DaemonLink {
 public:
  TestBusLink(std::shared_ptr<TestBus::State> bus, control::RegistrationReply registration)
      : bus_(std::move(bus)), registration_(std::move(registration)) {}
  const control::RegistrationReply& registration() const override { return registration_; }
  client::GrantedMemory take_memory() override { return bus_->routing(registration_.type).memory; }
  Result<client::RoutingUpdate> fetch_routing() override { return bus_->routing(registration_.type); }
  void watch() override {}
  void close() override {
    if (bus_) bus_->instance_left(registration_.instance - 1);  // ids are 1-based, as exobusd's
    bus_.reset();
  }

 private:
  std::shared_ptr<TestBus::State> bus_;
  control::RegistrationReply registration_;
};

}  // namespace

Result<std::shared_ptr<TestBus::State>> TestBus::State::create(const std::filesystem::path& application_file) {
  Result<ApplicationConfig> config = load_application_config(application_file);
  if (!config) return config.error();
  Result<BusPlan> plan = plan_bus(config.value());
  if (!plan) return plan.error();
  std::shared_ptr<State> state(new State());
  state->config_ = std::move(config).value();
  state->plan_ = std::move(plan).value();
  Result<std::unique_ptr<shm::BusMemory>> memory = shm::BusMemory::create("exobus.test-bus", state->plan_.memory);
  if (!memory) return memory.error();
  state->memory_ = std::move(memory).value();
  State* raw = state.get();
  state->ticker_ = std::thread([raw] {
    while (raw->ticking_.load(std::memory_order_relaxed)) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
      raw->tick();
    }
  });
  return state;
}

TestBus::State::~State() {
  ticking_.store(false, std::memory_order_relaxed);
  if (ticker_.joinable()) ticker_.join();
}

client::RoutingUpdate TestBus::State::routing(std::uint16_t type) const {
  control::RoutingReply routing;
  routing.config_file = std::filesystem::absolute(config_.file);
  routing.types.insert(plan_.types.begin(), plan_.types.end());
  routing.routing_generation = memory_->directory().header().routing_generation.load(std::memory_order_acquire);
  std::vector<control::UniqueFd> fds;
  for (const shm::Grant& grant : memory_->grants_for(type)) {
    routing.memory.push_back({std::string(shm::to_string(grant.kind)), grant.index, grant.writable});
    fds.emplace_back(::fcntl(grant.fd, F_DUPFD_CLOEXEC, 0));
  }
  Result<client::GrantedMemory> memory = client::GrantedMemory::of(routing.memory, std::move(fds));
  return {std::move(routing), memory ? std::move(memory).value() : client::GrantedMemory()};
}

Result<control::RegistrationReply> TestBus::State::register_instance(const std::string& type) {
  const std::optional<std::uint16_t> index = plan_.type_index(type);
  if (!index) {
    return Error{ErrorCode::config_error,
                 "unknown service type '" + type + "'; declare it under services: in " + config_.file.string()};
  }
  std::lock_guard lock(recovery_mutex_);
  shm::Registry& registry = *memory_->registry();
  const shm::Tenant& tenant = *memory_->tenant(*index);
  std::vector<bool> taken(tenant.shape().instances, false);
  std::optional<std::uint32_t> slot;
  for (std::uint32_t candidate = 0; candidate < registry.instance_slots(); ++candidate) {
    const shm::InstanceEntry& instance = registry.instance(candidate);
    if (instance.state.load(std::memory_order_acquire) == static_cast<std::uint32_t>(shm::InstanceState::free)) {
      if (!slot) slot = candidate;
    } else if (instance.type.load() == *index && instance.member.load() < taken.size()) {
      taken[instance.member.load()] = true;
    }
  }
  const auto member = static_cast<std::uint32_t>(std::find(taken.begin(), taken.end(), false) - taken.begin());
  if (!slot || member == taken.size()) {
    return Error{ErrorCode::config_error, "the test bus has no free instance slot for '" + type +
                                              "' (max-instances " + std::to_string(registry.instance_slots()) +
                                              "); raise bus.max-instances in " + config_.file.string()};
  }
  shm::InstanceEntry& instance = registry.instance(*slot);
  instance.pid.store(::getpid(), std::memory_order_relaxed);
  instance.type.store(*index, std::memory_order_relaxed);
  instance.member.store(static_cast<std::uint16_t>(member), std::memory_order_relaxed);
  shm::InstanceRecord& record = tenant.instance(member);
  record.heartbeat_ms.store(shm::DataPlane::now_ms(), std::memory_order_relaxed);
  shm::clear_figures(record);
  record.attached.store(0, std::memory_order_relaxed);
  instance.state.store(static_cast<std::uint32_t>(shm::InstanceState::active), std::memory_order_release);
  control::RegistrationReply reply{*slot + 1, *index, member, routing(*index).reply};
  return reply;
}

bool TestBus::State::recover(std::uint32_t slot) {
  shm::InstanceEntry& instance = memory_->registry()->instance(slot);
  instance.state.store(static_cast<std::uint32_t>(shm::InstanceState::recovering), std::memory_order_release);
  const shm::RecoveryReport report = shm::Recovery(*memory_).recover_instance(instance.type.load(), instance.member.load());
  if (report.pending > 0) return false;
  instance.state.store(static_cast<std::uint32_t>(shm::InstanceState::free), std::memory_order_release);
  return true;
}

void TestBus::State::instance_left(std::uint32_t slot) {
  std::lock_guard lock(recovery_mutex_);
  if (!recover(slot)) recovering_.insert(slot);
}

void TestBus::State::tick() {
  std::lock_guard lock(recovery_mutex_);
  shm::Recovery(*memory_).reclaim_expired(shm::DataPlane::now_ms());
  std::erase_if(recovering_, [&](std::uint32_t slot) { return recover(slot); });
}

Result<std::unique_ptr<Service>> TestBus::State::connect_under_test(ServiceOptions options) {
  {
    std::lock_guard lock(mutex_);
    if (played_.contains(options.service)) {
      return Error{ErrorCode::config_error, "service type '" + options.service +
                                                "' is already played by the test bus; connect the services under "
                                                "test before sending, scripting or waiting as the others"};
    }
    if (!config_.find_service(options.service)) {
      return Error{ErrorCode::config_error, "unknown service type '" + options.service +
                                                "'; declare it under services: in " + config_.file.string()};
    }
    under_test_.insert(options.service);
  }
  Result<control::RegistrationReply> registration = register_instance(options.service);
  if (!registration) return registration.error();
  Result<std::unique_ptr<client::ServiceCore>> core = client::ServiceCore::attach(
      std::move(options), std::make_unique<TestBusLink>(shared_from_this(), std::move(registration).value()));
  if (!core) return core.error();
  return std::unique_ptr<Service>(new Service(std::move(core).value()));
}

void TestBus::State::play_all() {
  for (const ServiceTypeConfig& type : config_.services) {
    if (under_test_.contains(type.name) || played_.contains(type.name)) continue;
    Result<control::RegistrationReply> registration = register_instance(type.name);
    if (!registration) continue;  // no slot left: this type stays unplayed
    ServiceOptions options;
    options.service = type.name;
    options.wait_mode = WaitMode::sleep;  // played services must not take the test's cores
    Result<std::unique_ptr<client::ServiceCore>> core = client::ServiceCore::attach(
        std::move(options), std::make_unique<TestBusLink>(shared_from_this(), std::move(registration).value()));
    if (!core) continue;
    std::unique_ptr<Service> service(new Service(std::move(core).value()));
    for (const std::string& name : type.receives) {
      service->on(name, [this, receiver = type.name](Delivery& delivery) { observe(receiver, delivery); });
    }
    (void)service->start();
    played_.emplace(type.name, std::move(service));
  }
}

Result<Service*> TestBus::State::played(std::string_view type) {
  std::lock_guard lock(mutex_);
  play_all();
  const auto found = played_.find(type);
  if (found == played_.end()) {
    return Error{ErrorCode::config_error,
                 under_test_.contains(type)
                     ? "service type '" + std::string(type) + "' is under test, not played"
                     : "unknown service type '" + std::string(type) + "' in " + config_.file.string()};
  }
  return found->second.get();
}

void TestBus::State::observe(const std::string& receiver, Delivery& delivery) {
  // Recorded after its script ran, so that a test woken by the record sees what the
  // script did; copied before, since the script may move the delivery out.
  Received message = delivery.message();
  std::shared_ptr<Handler> script;
  {
    std::lock_guard lock(mutex_);
    const auto found = scripts_.find({receiver, message.name});
    if (found != scripts_.end()) script = found->second;
  }
  const auto record = [&] {
    {
      std::lock_guard lock(mutex_);
      received_.push_back({receiver, std::move(message)});
    }
    arrived_.notify_all();
  };
  try {
    if (script) (*script)(delivery);
  } catch (...) {
    record();  // the delivery is released and comes again, to be recorded again
    throw;
  }
  record();
}

void TestBus::State::script(std::string_view receiver, std::string name, Handler handler) {
  std::lock_guard lock(mutex_);
  play_all();
  scripts_[{std::string(receiver), std::move(name)}] = std::make_shared<Handler>(std::move(handler));
}

std::vector<ObservedMessage> TestBus::State::received() {
  std::lock_guard lock(mutex_);
  play_all();
  return received_;
}

Result<ObservedMessage> TestBus::State::wait_for(std::string_view name, std::chrono::milliseconds timeout) {
  std::unique_lock lock(mutex_);
  play_all();
  auto& count = waited_.try_emplace(std::string(name), 0).first->second;
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    std::size_t seen = 0;
    for (const ObservedMessage& observed : received_) {
      if (observed.message.name != name) continue;
      if (seen++ == count) {
        ++count;
        return observed;
      }
    }
    if (arrived_.wait_until(lock, deadline) == std::cv_status::timeout) {
      return Error{ErrorCode::timeout, "no message " + quote_name(name) + " reached a played service type within " +
                                           std::to_string(timeout.count()) + " ms (" + std::to_string(count) +
                                           " waited for before)"};
    }
  }
}

void TestBus::State::reset() {
  std::lock_guard lock(mutex_);
  received_.clear();
  waited_.clear();
  scripts_.clear();
}

void TestBus::State::stop_playing() {
  std::map<std::string, std::unique_ptr<Service>, std::less<>> played;
  {
    std::lock_guard lock(mutex_);
    played.swap(played_);
  }
  played.clear();  // each stop() leaves the bus through its link, outside the lock
}

Result<std::unique_ptr<TestBus>> TestBus::create(const std::filesystem::path& application_file) {
  Result<std::shared_ptr<State>> state = State::create(application_file);
  if (!state) return state.error();
  return std::unique_ptr<TestBus>(new TestBus(std::move(state).value()));
}

TestBus::~TestBus() { state_->stop_playing(); }

Result<std::unique_ptr<Service>> TestBus::connect(ServiceOptions options) {
  return state_->connect_under_test(std::move(options));
}

Result<std::unique_ptr<Service>> TestBus::connect(std::string_view service_type) {
  ServiceOptions options;
  options.service = std::string(service_type);
  return connect(std::move(options));
}

Result<void> TestBus::send(std::string_view sender, std::string_view name, std::string_view payload,
                           const SendOptions& options) {
  Result<Service*> service = state_->played(sender);
  if (!service) return service.error();
  return service.value()->send(name, payload, options);
}

Result<Reply> TestBus::request(std::string_view sender, std::string_view name, std::string_view payload,
                               std::chrono::milliseconds timeout, const SendOptions& options) {
  Result<Service*> service = state_->played(sender);
  if (!service) return service.error();
  return service.value()->request(name, payload, timeout, options).get();
}

Result<void> TestBus::send(std::string_view sender, std::string_view name, std::string_view payload,
                           ReplyHandler on_reply, std::chrono::milliseconds timeout, const SendOptions& options) {
  Result<Service*> service = state_->played(sender);
  if (!service) return service.error();
  return service.value()->send(name, payload, std::move(on_reply), timeout, options);
}

void TestBus::on(std::string_view receiver, std::string name, Handler handler) {
  state_->script(receiver, std::move(name), std::move(handler));
}

std::vector<ObservedMessage> TestBus::received() const { return state_->received(); }

Result<ObservedMessage> TestBus::wait_for(std::string_view name, std::chrono::milliseconds timeout) {
  return state_->wait_for(name, timeout);
}

void TestBus::reset() { state_->reset(); }

}  // namespace exobus
