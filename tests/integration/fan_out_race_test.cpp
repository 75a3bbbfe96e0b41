// A fan-out is all or nothing, also when senders race: four sender processes fan one name
// out to two roomy types and one small, slow one, and race for the small queue's last
// slots. Every send that returned ok reached each type once (a second copy only flagged
// redelivered), and every send refused with queue_full reached no type at all.
#include <gtest/gtest.h>

#include <thread>

#include "bus_fixture.hpp"

namespace exobus::integration {
namespace {

constexpr const char* kRace = R"(
  web:
    config: { sends: [job.run] }
  wide:
    config: { receives: [job.run] }
  deep:
    config: { receives: [job.run] }
  narrow:
    config: { receives: [job.run], queue-capacity: 16 }
)";
constexpr unsigned kSenders = 4;
constexpr unsigned kPerSender = 900;  // numbers sender * kPerSender + k, within a Ledger
static_assert(kSenders * kPerSender < Ledger::kCapacity);

// What the senders made of each number: 1 sent, 2 refused with queue_full, 3 another error.
struct Outcomes {
  std::atomic<std::uint8_t> of[Ledger::kCapacity]{};
  std::atomic<std::uint32_t> done{0};
};

TEST(FanOutRace, ARefusedSendReachesNoTypeAndASentOneEachTypeOnce) {
  Bus bus(kRace);
  Shared<Ledger> wide, deep, narrow;
  const auto recording = [](Ledger& ledger, bool slow) {
    return [&ledger, slow](Service& service) {
      service.on("job.run", [&ledger, slow](Delivery& delivery) {
        if (slow) std::this_thread::sleep_for(std::chrono::microseconds(200));
        ledger.record(delivery.message());
      });
    };
  };
  bus.spawn_service("wide", *wide, recording(*wide, false));
  bus.spawn_service("deep", *deep, recording(*deep, false));
  bus.spawn_service("narrow", *narrow, recording(*narrow, true));
  ASSERT_TRUE(Bus::ready(*wide) && Bus::ready(*deep) && Bus::ready(*narrow));

  Shared<Outcomes> outcomes;
  for (unsigned sender = 0; sender < kSenders; ++sender) {
    const ServiceOptions options = bus.options("web");
    Outcomes& shared = *outcomes;
    bus.spawn([options, sender, &shared] {
      Result<std::unique_ptr<Service>> web = Service::connect(options);
      if (!web) return 2;
      for (unsigned k = 0; k < kPerSender; ++k) {
        const unsigned n = sender * kPerSender + k;
        const Result<void> sent = web.value()->try_send("job.run", numbered(n));
        shared.of[n].store(sent.ok() ? 1 : sent.error().code == ErrorCode::queue_full ? 2 : 3);
        // Together a little faster than narrow drains: its queue fills and empties by turns.
        std::this_thread::sleep_for(std::chrono::microseconds(400));
      }
      shared.done.fetch_add(1);
      return 0;
    });
  }
  ASSERT_TRUE(eventually([&] { return outcomes->done.load() == kSenders; }, std::chrono::seconds(60)));

  unsigned sent = 0, refused = 0;
  for (unsigned n = 0; n < kSenders * kPerSender; ++n) {
    ASSERT_NE(outcomes->of[n].load(), 3) << "message " << n << " failed otherwise than queue_full";
    (outcomes->of[n].load() == 1 ? sent : refused) += 1;
  }
  ASSERT_GT(refused, 0u) << "the narrow queue never filled: the race did not happen";
  ASSERT_GT(sent, 0u);
  for (Ledger* ledger : {&*wide, &*deep, &*narrow}) {
    ASSERT_TRUE(eventually([&] { return ledger->count() >= sent; }, std::chrono::seconds(60)));
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(200));  // late duplicates would land by now
  for (unsigned n = 0; n < kSenders * kPerSender; ++n) {
    for (const auto& [name, ledger] : {std::pair{"wide", &*wide}, {"deep", &*deep}, {"narrow", &*narrow}}) {
      if (outcomes->of[n].load() == 2) {
        EXPECT_EQ(ledger->times_of(n), 0u) << "refused message " << n << " reached " << name;
      } else {
        EXPECT_GE(ledger->times_of(n), 1u) << "sent message " << n << " never reached " << name;
        EXPECT_LE(ledger->times_of(n) - ledger->redelivered_of(n), 1u)
            << "message " << n << " reached " << name << " twice unflagged";
      }
    }
  }
  std::printf("fan-out race: %u sent, %u refused\n", sent, refused);
}

}  // namespace
}  // namespace exobus::integration
