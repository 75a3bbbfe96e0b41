// The daemon tells a hung instance (alive, but silent: no heartbeat) from a working one, and
// a live instance that lost its connection from a dead one.
#include <gtest/gtest.h>
#include <signal.h>

#include "bus_fixture.hpp"
#include "exobus/control/registration.hpp"
#include "exobus/shm/bus_memory.hpp"

namespace exobus::integration {
namespace {

// The "hung" flag of the one instance of `type` in the daemon's status.
std::optional<bool> hung(const Bus& bus, const std::string& type) {
  const rapidjson::Document document = bus.status();
  if (!document.IsObject() || !document.HasMember("service_types")) return std::nullopt;
  for (const auto& entry : document["service_types"].GetArray()) {
    if (entry["name"].GetString() != type || entry["instances"].Empty()) continue;
    return entry["instances"][0]["hung"].GetBool();
  }
  return std::nullopt;
}

TEST(Liveness, StoppedInstanceIsReportedHungAndRecoversWhenContinued) {
  Bus bus(R"(
  worker:
    config: { receives: [job] }
)");
  Shared<Ledger> ledger;
  const pid_t worker =
      bus.spawn_service("worker", *ledger, [](Service& service) { service.on("job", [](Delivery&) {}); });
  ASSERT_TRUE(Bus::ready(*ledger));
  ASSERT_TRUE(eventually([&] { return hung(bus, "worker") == false; }));

  ASSERT_EQ(::kill(worker, SIGSTOP), 0);
  // Heartbeats stop; past the daemon's bound (5 s) the instance is reported hung.
  EXPECT_TRUE(eventually([&] { return hung(bus, "worker") == true; }, std::chrono::seconds(15)));
  ASSERT_EQ(::kill(worker, SIGCONT), 0);
  EXPECT_TRUE(eventually([&] { return hung(bus, "worker") == false; }));
}

// Registers by hand, as the client library does, and maps the memory the registration
// granted; the test marks the instance attached (the library does so before it first uses
// its lanes). The registration's connection is the result.
struct HandRegistration {
  control::InstanceRegistration registration;
  std::uint32_t slot;  // the instance id, as status lists it
  std::unique_ptr<shm::BusMemory> memory;
  std::atomic<std::uint32_t>* attached;  // in the type's tenant memory
};
std::optional<HandRegistration> register_by_hand(const Bus& bus, const std::string& nonce) {
  Result<control::InstanceRegistration> registered =
      control::register_instance(bus.paths(), {"worker", ::getpid(), nonce});
  if (!registered) return std::nullopt;
  const Result<control::RegistrationReply> reply = control::decode_registration_reply(registered.value().reply);
  if (!reply || reply.value().routing.memory.size() != registered.value().fds.size()) return std::nullopt;
  std::vector<shm::Grant> grants;
  for (std::size_t k = 0; k < reply.value().routing.memory.size(); ++k) {
    const control::MemoryGrant& listed = reply.value().routing.memory[k];
    grants.push_back({*shm::region_kind(listed.role), listed.index, listed.writable,
                      registered.value().fds[k].release()});
  }
  Result<std::unique_ptr<shm::BusMemory>> memory = shm::BusMemory::attach(grants);
  if (!memory) return std::nullopt;
  shm::Tenant* tenant = memory.value()->tenant(reply.value().type);
  if (tenant == nullptr) return std::nullopt;
  std::atomic<std::uint32_t>* attached = &tenant->instance(reply.value().member).attached;
  return HandRegistration{std::move(registered).value(), reply.value().instance, std::move(memory).value(), attached};
}

// The "connected" flag of the worker instance in `slot`; nullopt when the slot is not in use.
std::optional<bool> connected(const Bus& bus, std::uint32_t slot) {
  const rapidjson::Document document = bus.status();
  if (!document.IsObject() || !document.HasMember("service_types")) return std::nullopt;
  for (const auto& type : document["service_types"].GetArray()) {
    for (const auto& instance : type["instances"].GetArray()) {
      if (instance["slot"].GetUint() == slot) return instance["connected"].GetBool();
    }
  }
  return std::nullopt;
}

// A live instance whose connection closes (it gave up waiting for a slow daemon's answer
// to its re-registration, say) may still be using its lanes: its slot must not go to
// another instance, or two processes would share its leases. It resumes the slot with its
// nonce; only a clean leave (attached 0) frees it while the process runs.
TEST(Liveness, LiveAttachedInstanceThatLosesItsConnectionKeepsItsSlot) {
  Bus bus(kWebToWorker);
  std::optional<HandRegistration> first = register_by_hand(bus, "kept-nonce");
  ASSERT_TRUE(first);
  const std::uint32_t slot = first->slot;
  const std::unique_ptr<shm::BusMemory> memory = std::move(first->memory);  // mapped on after the hang-up
  std::atomic<std::uint32_t>& attached = *first->attached;
  EXPECT_EQ(attached.load(), 0u) << "a slot is handed out detached";
  attached.store(1);
  first.reset();  // the connection closes; this process runs on

  ASSERT_TRUE(eventually([&] { return connected(bus, slot) == false; }));
  const std::optional<HandRegistration> other = register_by_hand(bus, "another-nonce");
  ASSERT_TRUE(other);
  EXPECT_NE(other->slot, slot) << "the slot of a live, attached instance went to another instance";

  std::optional<HandRegistration> resumed = register_by_hand(bus, "kept-nonce");
  ASSERT_TRUE(resumed);
  EXPECT_EQ(resumed->slot, slot);
  EXPECT_EQ(connected(bus, slot), true);

  attached.store(0);  // a clean leave: done with its lanes, then the hang-up
  resumed.reset();
  EXPECT_TRUE(eventually([&] { return !connected(bus, slot).has_value(); }));
}

// The library's clean leave: stop() detaches the slot before closing the connection, so
// the daemon frees it at once although the process runs on; later sends are refused.
TEST(Liveness, StoppedServiceLeavesItsSlotWhileItsProcessRuns) {
  Bus bus(kWebToWorker);
  std::unique_ptr<Service> web = bus.connect("web");
  const std::uint32_t slot = web->instance();
  ASSERT_TRUE(eventually([&] { return connected(bus, slot) == true; }));
  web->stop();
  EXPECT_TRUE(eventually([&] { return !connected(bus, slot).has_value(); }));
  const Result<void> sent = web->send("job.run", numbered(1));
  ASSERT_FALSE(sent);
  EXPECT_EQ(sent.error().code, ErrorCode::closed);
}

// A process killed with its connection already closed is recovered when it exits, even
// before its parent reaps it.
TEST(Liveness, DisconnectedInstanceIsRecoveredWhenItsProcessExits) {
  Bus bus(kWebToWorker);
  Shared<std::atomic<std::uint32_t>> slot_of_child;
  slot_of_child->store(~0u);
  const pid_t child = bus.spawn([&] {
    std::optional<HandRegistration> registered = register_by_hand(bus, "child-nonce");
    if (!registered) return 2;
    registered->attached->store(1);
    const std::uint32_t slot = registered->slot;
    registered.reset();
    slot_of_child->store(slot);
    for (;;) ::pause();
  });
  ASSERT_TRUE(eventually([&] { return slot_of_child->load() != ~0u; }));
  const std::uint32_t slot = slot_of_child->load();
  ASSERT_TRUE(eventually([&] { return connected(bus, slot) == false; }));

  ASSERT_EQ(::kill(child, SIGKILL), 0);  // a zombie from here until it is reaped below
  EXPECT_TRUE(eventually([&] { return !connected(bus, slot).has_value(); }));
  bus.kill_child(child);
}

}  // namespace
}  // namespace exobus::integration
