// Hostile peers against a real daemon and real services: an instance of type `attacker`,
// registered as the bus allows, that bypasses the client library and writes whatever it
// can (raw_instance.hpp), and users outside the bus's group. Each test is one attack; what
// it must find is that the attacker harms nothing but its own type's traffic, and that
// what it tried is refused, counted and logged.
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>

#include <gtest/gtest.h>

#include <fstream>
#include <thread>

#include "bus_fixture.hpp"
#include "os_accounts.hpp"
#include "raw_instance.hpp"

namespace exobus::security {
namespace {

using integration::eventually;
using integration::Ledger;
using integration::numbered;
using integration::Shared;

// orders asks billing to charge, billing answers; payroll is a bystander type; attacker
// may send audit.ping to billing and orders.poke to orders, nothing else. billing checks
// what it receives against its schemas.
constexpr const char* kTenants = R"(
  orders:
    config: { sends: [billing.charge], receives: [billing.charged, orders.poke] }
  billing:
    config:
      receives: [billing.charge, audit.ping]
      sends: [billing.charged]
      validate-received: true
      schemas:
        audit.ping: { type: object, required: [n] }
  payroll:
    config: { receives: [payroll.run] }
  clock:
    config: { sends: [payroll.run] }
  attacker:
    config: { sends: [audit.ping, orders.poke] }
)";

// What the attacker child reports back.
struct Report {
  std::atomic<int> step{0};  // how far it got; a test asserts the step it needs
  std::atomic<int> failures{0};
  std::atomic<std::uint32_t> granted{0}, foreign{0};
  std::atomic<int> shrink_errno[64]{}, grow_errno[64]{}, write_map_errno[64]{};
  std::atomic<std::uint32_t> read_only{0};
  char request_id[Uuid::kTextLength + 1]{};
  std::atomic<int> forged{0};
};

// The refused count of `type` from `sender`, as exobus status reports it.
std::uint64_t refused_from(const Bus& bus, const std::string& type, const std::string& sender) {
  const rapidjson::Document document = bus.status();
  if (!document.IsObject() || !document.HasMember("service_types")) return 0;
  for (const auto& entry : document["service_types"].GetArray()) {
    if (entry["name"].GetString() != type || !entry.HasMember("refused_from")) continue;
    const auto& from = entry["refused_from"];
    return from.HasMember(sender.c_str()) ? from[sender.c_str()].GetUint64() : 0;
  }
  return 0;
}

// The refusals of `type` from `sender` for one reason, as exobus status reports them.
std::uint64_t refused_for(const Bus& bus, const std::string& type, const std::string& sender, const char* reason) {
  const rapidjson::Document document = bus.status();
  if (!document.IsObject() || !document.HasMember("service_types")) return 0;
  for (const auto& entry : document["service_types"].GetArray()) {
    if (entry["name"].GetString() != type || !entry.HasMember("refusals")) continue;
    const auto& from = entry["refusals"];
    if (!from.HasMember(sender.c_str())) return 0;
    const auto& reasons = from[sender.c_str()];
    return reasons.HasMember(reason) ? reasons[reason].GetUint64() : 0;
  }
  return 0;
}

// What `exobus top --once` prints of the bus.
std::string top_frame(const Bus& bus) {
  const std::string command = std::string(EXOBUS_PATH) + " top --once --interval 0.1 --bus " + bus.name() +
                              " --runtime-dir " + bus.runtime_dir().string() + " 2>&1";
  std::string frame;
  if (FILE* pipe = ::popen(command.c_str(), "r"); pipe != nullptr) {
    char buffer[4096];
    for (std::size_t got; (got = std::fread(buffer, 1, sizeof buffer, pipe)) > 0;) frame.append(buffer, got);
    ::pclose(pipe);
  }
  return frame;
}

// The attacker's body in a forked child: registers raw, runs `attack`, then waits to be
// killed (its memory stays mapped, as a live hostile process's would).
template <class Attack>
pid_t spawn_attacker(Bus& bus, Report& report, Attack attack) {
  return bus.spawn([&bus, &report, attack] {
    std::optional<RawInstance> raw = RawInstance::register_as(bus, "attacker");
    if (!raw) {
      report.failures.fetch_add(1);
      report.step.store(-1);
      return 2;
    }
    attack(*raw, report);
    for (;;) ::pause();
  });
}

TEST(HostilePeer, AnInstanceIsGrantedTheMemoryOfItsOwnLinksAndNothingElse) {
  Bus bus(kTenants);
  Shared<Report> report;
  spawn_attacker(bus, *report, [](RawInstance& raw, Report& out) {
    const std::uint16_t own = raw.reply.type;
    for (const control::MemoryGrant& grant : raw.reply.routing.memory) {
      out.granted.fetch_add(1);
      if (!grant.writable) out.read_only.fetch_add(1);
      const std::optional<shm::LinkShape> link = raw.memory->directory().link_shape(grant.index);
      const bool ours = grant.role == "directory" ? !grant.writable
                        : grant.role == "tenant" ? grant.index == own
                                                 : link && (link->sender == own || link->receiver == own) &&
                                                       grant.writable == ((grant.role == "sender_half") ==
                                                                          (link->sender == own));
      if (!ours) out.foreign.fetch_add(1);
    }
    // Nothing of billing's traffic from orders is even mapped here.
    if (raw.memory->tenant(raw.type_index("billing")) != nullptr) out.foreign.fetch_add(1);
    for (std::uint32_t index = 0; index < raw.memory->link_slots(); ++index) {
      const shm::Link* link = raw.memory->link(index);
      if (link != nullptr && link->sender() != own && link->receiver() != own) out.foreign.fetch_add(1);
    }
    out.step.store(1);
  });
  ASSERT_TRUE(eventually([&] { return report->step.load() != 0; }));
  ASSERT_EQ(report->step.load(), 1);
  // The directory, its tenant, and two links each way (to billing, to orders): 2 + 4 x 2.
  EXPECT_EQ(report->granted.load(), 10u);
  EXPECT_EQ(report->foreign.load(), 0u) << "granted memory that is not the attacker's type's";
  EXPECT_EQ(report->read_only.load(), 5u) << "the directory and the other side of each link";
}

TEST(HostilePeer, NoGrantedObjectCanBeResizedNorAReadOnlyOneWritten) {
  Bus bus(kTenants);
  Shared<Ledger> charged;
  bus.spawn_service("billing", *charged, [&](Service& billing) {
    billing.on("billing.charge", [&](Delivery& delivery) { charged->record(delivery.message()); });
  });
  Shared<Report> report;
  spawn_attacker(bus, *report, [](RawInstance& raw, Report& out) {
    for (std::size_t k = 0; k < raw.descriptors.size() && k < 64; ++k) {
      const int fd = raw.descriptors[k].get();
      struct stat before{};
      ::fstat(fd, &before);
      // Shrinking would SIGBUS everyone mapping it; growing would make it unbounded.
      out.shrink_errno[k].store(::ftruncate(fd, 4096) == 0 ? -1 : errno);
      out.grow_errno[k].store(::ftruncate(fd, before.st_size + 4096) == 0 ? -1 : errno);
      if (!raw.reply.routing.memory[k].writable) {
        void* mapped = ::mmap(nullptr, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
        out.write_map_errno[k].store(mapped == MAP_FAILED ? errno : -1);
        if (mapped != MAP_FAILED) ::munmap(mapped, 4096);
      }
    }
    out.step.store(1);
  });
  ASSERT_TRUE(eventually([&] { return report->step.load() != 0; }));
  ASSERT_EQ(report->step.load(), 1);
  for (std::size_t k = 0; k < 10; ++k) {
    // Sealed (EPERM) where writable, not open for writing (EINVAL) where read-only.
    EXPECT_TRUE(report->shrink_errno[k].load() == EPERM || report->shrink_errno[k].load() == EINVAL)
        << "object " << k << " shrunk (-1) or failed otherwise: " << report->shrink_errno[k].load();
    EXPECT_TRUE(report->grow_errno[k].load() == EPERM || report->grow_errno[k].load() == EINVAL)
        << "object " << k << " grown (-1) or failed otherwise: " << report->grow_errno[k].load();
    EXPECT_NE(report->write_map_errno[k].load(), -1) << "read-only object " << k << " mapped writable";
  }
  // Nobody died of SIGBUS: the daemon serves, and orders' charges reach billing.
  ASSERT_TRUE(Bus::ready(*charged));
  auto orders = bus.connect("orders");
  ASSERT_TRUE(orders);
  for (unsigned n = 0; n < 20; ++n) ASSERT_TRUE(orders->send("billing.charge", numbered(n))) << n;
  EXPECT_TRUE(eventually([&] { return charged->distinct(20) == 20; }));
}

TEST(HostilePeer, AForgedSenderAForeignNameAndAnInvalidPayloadNeverReachAHandler) {
  Bus bus(kTenants);
  Shared<Ledger> handled;
  bus.spawn_service("billing", *handled, [&](Service& billing) {
    billing.on("billing.charge", [&](Delivery& delivery) { handled->record(delivery.message()); });
    billing.on("audit.ping", [&](Delivery& delivery) { handled->record(delivery.message()); });
  });
  ASSERT_TRUE(Bus::ready(*handled));
  Shared<Report> report;
  spawn_attacker(bus, *report, [](RawInstance& raw, Report& out) {
    shm::Link* to_billing = raw.link_to("billing");
    if (to_billing == nullptr) return out.step.store(-2);
    const bool all = raw.publish(*to_billing, shm::kTypeChannel, forged("billing.charge", "orders", numbered(1))) &&
                     raw.publish(*to_billing, shm::kTypeChannel, forged("billing.charge", "attacker", numbered(2))) &&
                     raw.publish(*to_billing, shm::kTypeChannel, forged("audit.ping", "attacker", R"({"m":3})")) &&
                     raw.publish(*to_billing, shm::kTypeChannel, forged("audit.ping", "attacker", "not json {")) &&
                     raw.publish(*to_billing, shm::kTypeChannel, forged("audit.ping", "attacker", numbered(5)));
    out.step.store(all ? 1 : -3);
  });
  ASSERT_TRUE(eventually([&] { return report->step.load() != 0; }));
  ASSERT_EQ(report->step.load(), 1);
  // The one honest message arrives, the four forgeries never do.
  ASSERT_TRUE(eventually([&] { return handled->saw(5); }));
  EXPECT_TRUE(eventually([&] { return refused_from(bus, "billing", "attacker") == 4; }))
      << "refused from attacker: " << refused_from(bus, "billing", "attacker");
  EXPECT_EQ(handled->count(), 1u) << "a forged message reached billing's handler";
  EXPECT_EQ(refused_from(bus, "billing", "orders"), 0u) << "the forgery is counted against its real sender";
  // Each for its reason: a sender it is not, a name it may not send, two payloads the
  // schema refuses (one is no JSON at all).
  EXPECT_EQ(refused_for(bus, "billing", "attacker", "forged"), 1u);
  EXPECT_EQ(refused_for(bus, "billing", "attacker", "not_routed"), 1u);
  EXPECT_EQ(refused_for(bus, "billing", "attacker", "payload"), 2u);
  const std::string frame = top_frame(bus);
  EXPECT_NE(frame.find("refused by billing: 4 from attacker (1 forged, 1 not_routed, 2 payload)"), std::string::npos)
      << frame;
  EXPECT_TRUE(eventually([&] { return bus.daemon_log().find("'billing' refused") != std::string::npos; }))
      << bus.daemon_log();
}

TEST(HostilePeer, ItsOwnOutcomeTableNamesOnlyWhatItsTypeSends) {
  Bus bus(kTenants);
  Shared<Report> report;
  // Its replies' table, written by hand: a name it sends, one it does not (billing's), and
  // a hash of no name at all.
  spawn_attacker(bus, *report, [](RawInstance& raw, Report& out) {
    shm::ReplyOutcomes& outcomes = raw.memory->tenant(raw.reply.type)->instance(raw.reply.member).outcomes;
    const std::uint64_t hashes[] = {shm::outcome_hash("orders.poke"), shm::outcome_hash("billing.charged"),
                                    0x0123456789abcdefull};
    const std::uint64_t replies[] = {3, 7, 5};
    for (std::size_t k = 0; k < 3; ++k) {
      outcomes.named[k].name_hash.store(hashes[k]);
      outcomes.named[k].replies.store(replies[k]);
    }
    out.step.store(1);
  });
  ASSERT_TRUE(eventually([&] { return report->step.load() != 0; }));
  ASSERT_EQ(report->step.load(), 1);
  const auto attacker = [&](const char* field) -> rapidjson::Document {
    rapidjson::Document document = bus.status(), value;
    for (const auto& entry : document["service_types"].GetArray()) {
      if (std::string(entry["name"].GetString()) == "attacker") value.CopyFrom(entry[field], value.GetAllocator());
    }
    return value;
  };
  const rapidjson::Document named = attacker("replies_by_outcome");
  ASSERT_TRUE(named.IsObject());
  EXPECT_EQ(named.MemberCount(), 1u) << "a name its type does not send became a label";
  ASSERT_TRUE(named.HasMember("orders.poke"));
  EXPECT_EQ(named["orders.poke"].GetUint64(), 3u);
  EXPECT_EQ(attacker("replies_other").GetUint64(), 12u);
}

TEST(HostilePeer, AForgedReplyAnswersNoRequestEvenWithTheRightId) {
  Bus bus(kTenants);
  Shared<Report> report;
  Shared<Ledger> billing_ledger;
  // billing hands the request id to the attacker, waits for its forgery, then replies.
  bus.spawn_service("billing", *billing_ledger, [&](Service& billing) {
    billing.on("billing.charge", [&](Delivery& delivery) {
      const std::string id = delivery.message().id.to_string();
      std::memcpy(report->request_id, id.c_str(), Uuid::kTextLength);
      report->step.store(1);
      eventually([&] { return report->forged.load() != 0; });
      (void)delivery.reply("billing.charged", R"({"real":true})");
    });
  });
  ASSERT_TRUE(Bus::ready(*billing_ledger));
  spawn_attacker(bus, *report, [](RawInstance& raw, Report& out) {
    eventually([&] { return out.step.load() == 1; });
    shm::Link* to_orders = raw.link_to("orders");
    const Result<Uuid> id = Uuid::parse(std::string_view(out.request_id, Uuid::kTextLength));
    if (to_orders == nullptr || !id) return out.forged.store(-1);
    MessageView reply = forged("billing.charged", "billing", R"({"forged":true})");
    reply.response_to = id.value();
    // Into every reply channel of orders' instances: whichever asked.
    bool all = true;
    for (std::uint32_t member = 0; member < to_orders->reply_channel_count(); ++member) {
      all = raw.publish(*to_orders, member + 1, reply) && all;
    }
    out.forged.store(all ? 1 : -2);
  });
  auto orders = bus.connect("orders");  // after the last fork
  ASSERT_TRUE(orders);

  std::future<Result<Reply>> answer = orders->request("billing.charge", numbered(1), std::chrono::seconds(10));
  const Result<Reply> reply = answer.get();

  ASSERT_TRUE(reply.ok()) << reply.error().message;
  EXPECT_EQ(report->forged.load(), 1);
  EXPECT_EQ(reply.value().payload, R"({"real":true})") << "the forged reply answered the request";
  EXPECT_TRUE(eventually([&] { return refused_from(bus, "orders", "attacker") >= 1; }));
  EXPECT_EQ(refused_for(bus, "orders", "attacker", "forged"), refused_from(bus, "orders", "attacker"));
}

TEST(HostilePeer, AQueueItsSenderScribbledOverIsRepairedWhileOtherQueuesFlow) {
  Bus bus(kTenants);
  Shared<Ledger> handled;
  const pid_t billing = bus.spawn_service("billing", *handled, [&](Service& service) {
    service.on("billing.charge", [&](Delivery& delivery) { handled->record(delivery.message()); });
    service.on("audit.ping", [&](Delivery& delivery) { handled->record(1000 + integration::number_of(delivery.message().payload)); });
  });
  ASSERT_TRUE(Bus::ready(*handled));
  Shared<Report> report;
  spawn_attacker(bus, *report, [](RawInstance& raw, Report& out) {
    shm::Link* to_billing = raw.link_to("billing");
    if (to_billing == nullptr || !raw.publish(*to_billing, shm::kTypeChannel, forged("audit.ping", "attacker", numbered(1)))) {
      return out.step.store(-2);
    }
    // Overwrites the tail of its own half of the channel, again and again for 3 s.
    shm::Channel& channel = to_billing->type_channel();
    auto* tail = reinterpret_cast<shm::ChannelTail*>(reinterpret_cast<char*>(&channel.signal()) -
                                                     offsetof(shm::ChannelTail, signal));
    const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(3);
    out.step.store(1);
    while (std::chrono::steady_clock::now() < until) {
      tail->tail.store(0xdeadbeefdeadbeefull);
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    out.step.store(2);
    // Then it behaves: a message sent after the repair arrives.
    eventually([&] { return raw.publish(*to_billing, shm::kTypeChannel, forged("audit.ping", "attacker", numbered(2))); });
    out.step.store(3);
  });
  auto orders = bus.connect("orders");  // after the last fork
  ASSERT_TRUE(orders);
  ASSERT_TRUE(eventually([&] { return report->step.load() >= 1; }));
  const auto cpu_of = [](pid_t pid) {
    std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
    std::string field;
    for (int k = 1; k <= 13 && stat >> field; ++k) {
    }
    unsigned long user = 0, system = 0;
    stat >> user >> system;
    return user + system;  // clock ticks
  };
  const unsigned long cpu_before = cpu_of(billing);
  // orders' queue to billing is another link: it flows throughout.
  for (unsigned n = 0; n < 100; ++n) ASSERT_TRUE(orders->send("billing.charge", numbered(n))) << n;
  EXPECT_TRUE(eventually([&] { return handled->distinct(100) == 100; }));
  ASSERT_TRUE(eventually([&] { return report->step.load() >= 2; }));
  const unsigned long cpu_during = cpu_of(billing) - cpu_before;
  EXPECT_LT(cpu_during, 1ul * static_cast<unsigned long>(::sysconf(_SC_CLK_TCK)))
      << "billing spent " << cpu_during << " ticks of CPU in ~3 s: a busy loop on the damaged queue";

  ASSERT_TRUE(eventually([&] { return report->step.load() == 3; }));
  EXPECT_TRUE(eventually([&] { return handled->saw(1002); })) << "the repaired queue carries messages again";
  EXPECT_NE(bus.daemon_log().find("was damaged"), std::string::npos) << bus.daemon_log();
}

TEST(HostilePeer, RandomScribblesOverAllItMayWriteLoseNoMessageOfAnotherType) {
  Bus bus(kTenants);
  Shared<Ledger> charged;
  bus.spawn_service("billing", *charged, [&](Service& billing) {
    billing.on("billing.charge", [&](Delivery& delivery) { charged->record(delivery.message()); });
    billing.on("audit.ping", [](Delivery&) {});
  });
  ASSERT_TRUE(Bus::ready(*charged));
  Shared<Report> report;
  // Random 8-byte words at random places of every object it may write (its tenant memory,
  // its sender halves, the receiver halves of links to it), while sending now and then so
  // that billing keeps reading what it scribbles, for 4 s.
  spawn_attacker(bus, *report, [](RawInstance& raw, Report& out) {
    std::vector<const shm::Region*> writable;
    for (const control::MemoryGrant& grant : raw.reply.routing.memory) {
      const std::optional<shm::RegionKind> kind = shm::region_kind(grant.role);
      const shm::Region* region = raw.memory->region(*kind, grant.index);
      if (grant.writable && region != nullptr) writable.push_back(region);
    }
    shm::Link* to_billing = raw.link_to("billing");
    std::uint64_t state = 0x9e3779b97f4a7c15ull ^ static_cast<std::uint64_t>(::getpid());
    const auto next = [&] { return state = state * 6364136223846793005ull + 1442695040888963407ull; };
    out.step.store(1);
    const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(4);
    for (unsigned round = 0; std::chrono::steady_clock::now() < until; ++round) {
      const shm::Region* region = writable[next() % writable.size()];
      const std::uint64_t offset = (next() % (region->size() / 8)) * 8;
      reinterpret_cast<std::atomic<std::uint64_t>*>(region->base() + offset)->store(next(), std::memory_order_relaxed);
      if (round % 64 == 0 && to_billing != nullptr) {
        raw.publish(*to_billing, shm::kTypeChannel, forged("audit.ping", "attacker", numbered(round)));
      }
      if (round % 256 == 0) std::this_thread::sleep_for(std::chrono::microseconds(200));
    }
    out.step.store(2);
  });
  auto orders = bus.connect("orders");  // after the last fork
  ASSERT_TRUE(orders);
  ASSERT_TRUE(eventually([&] { return report->step.load() >= 1; }));
  constexpr unsigned kCharges = 2000;
  for (unsigned n = 0; n < kCharges; ++n) {
    ASSERT_TRUE(orders->send("billing.charge", numbered(n))) << n;
    if (n % 100 == 0) std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  EXPECT_TRUE(eventually([&] { return charged->distinct(kCharges) == kCharges; }, std::chrono::seconds(30)))
      << "billing received " << charged->distinct(kCharges) << " of orders' " << kCharges << " charges";
  for (unsigned n = 0; n < kCharges; ++n) {
    ASSERT_LE(charged->times_of(n) - charged->redelivered_of(n), 1u) << "charge " << n << " twice unflagged";
  }
  ASSERT_TRUE(eventually([&] { return report->step.load() == 2; }));
  EXPECT_TRUE(bus.status().IsObject()) << "the daemon stopped answering";
}

TEST(HostilePeer, AUserOutsideTheGroupCannotPlantTheMemoryTheDaemonUses) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root to create users";
  integration::Accounts accounts;
  if (!accounts.created()) GTEST_SKIP() << "groupadd/useradd are not available";
  // Before the daemon starts, the outsider plants what older releases adopted: a file with
  // the segment's name, and a socket where the memory keeper listens.
  Bus bus(kTenants, "group: " + accounts.group + "\n", /*start=*/false);
  const std::string planted = "/dev/shm/exobus." + bus.name() + ".data";
  const std::string outsider = accounts.outsider;
  const pid_t planter = bus.spawn([&] {
    if (!integration::become(outsider)) return 3;
    const int fd = ::open(planted.c_str(), O_RDWR | O_CREAT | O_EXCL, 0666);
    if (fd == -1) return 4;
    const std::string bait(1 << 20, 'x');
    return ::write(fd, bait.data(), bait.size()) == static_cast<ssize_t>(bait.size()) ? 0 : 5;
  });
  ASSERT_EQ(bus.wait_child(planter), 0);
  bus.start_daemon();

  Shared<Ledger> charged;
  bus.spawn_service("billing", *charged, [&](Service& billing) {
    billing.on("billing.charge", [&](Delivery& delivery) { charged->record(delivery.message()); });
  });
  auto orders = bus.connect("orders");
  ASSERT_TRUE(orders && Bus::ready(*charged));
  for (unsigned n = 0; n < 10; ++n) ASSERT_TRUE(orders->send("billing.charge", numbered(n)));
  EXPECT_TRUE(eventually([&] { return charged->distinct(10) == 10; }));
  std::ifstream file(planted);
  const std::string content((std::istreambuf_iterator<char>(file)), {});
  EXPECT_EQ(content, std::string(1 << 20, 'x')) << "the daemon used the planted file";
  std::filesystem::remove(planted);
}

}  // namespace
}  // namespace exobus::security
