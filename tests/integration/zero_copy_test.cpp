// The zero-copy path: a Loan is filled in shared memory and sent without a copy; a receiver
// with copy_payloads off reads Delivery::payload() in place. Bad input through a loan gets
// the same typed errors as send(), and a loan that is refused or dropped leaves no chunk.
#include <gtest/gtest.h>

#include <cstring>

#include "bus_fixture.hpp"

namespace exobus::integration {
namespace {

constexpr const char* kServices = R"(
  web:
    config: { sends: [job.run] }
  worker:
    config: { receives: [job.run], queue-capacity: 16 }
)";

std::uint64_t chunks_in_use(const Bus& bus) {
  const rapidjson::Document status = bus.status();
  return status.IsObject() ? status["pool"]["in_use"].GetUint64() : ~0ull;
}

Result<void> send_by_loan(Service& service, const std::string& payload) {
  Result<Loan> loan = service.loan("job.run", payload.size());
  if (!loan) return loan.error();
  if (loan.value().payload().size() != payload.size()) return Error{ErrorCode::internal, "loan of the wrong size"};
  std::memcpy(loan.value().payload().data(), payload.data(), payload.size());
  return loan.value().send();
}

class ZeroCopy : public ::testing::Test {
 protected:
  Bus bus{kServices};
  std::unique_ptr<Service> web = bus.connect("web");
};

TEST_F(ZeroCopy, LoanedMessageArrivesAndIsReadInPlace) {
  ServiceOptions options = bus.options("worker");
  options.copy_payloads = false;
  std::unique_ptr<Service> worker = Service::connect(options).value();
  std::mutex mutex;
  std::vector<std::string> seen_in_place, seen_copied;
  std::vector<bool> intact;
  worker->on("job.run", [&](Delivery& delivery) {
    std::lock_guard lock(mutex);
    seen_in_place.emplace_back(delivery.payload());
    intact.push_back(delivery.payload_intact());  // read, then check: the lease was held throughout
    seen_copied.push_back(delivery.message().payload);
  });
  ASSERT_TRUE(worker->start());

  const std::string big = R"({"n": 1, "text": ")" + std::string(3000, 'x') + "\"}";
  ASSERT_TRUE(send_by_loan(*web, numbered(0)));
  ASSERT_TRUE(send_by_loan(*web, big));

  ASSERT_TRUE(eventually([&] {
    std::lock_guard lock(mutex);
    return seen_in_place.size() == 2;
  }));
  std::lock_guard lock(mutex);
  EXPECT_EQ(seen_in_place[0], numbered(0));
  EXPECT_EQ(seen_in_place[1], big);
  EXPECT_EQ(seen_copied, (std::vector<std::string>{"", ""})) << "copy_payloads off leaves Received::payload empty";
  EXPECT_EQ(intact, (std::vector<bool>{true, true}));
  EXPECT_TRUE(eventually([&] { return chunks_in_use(bus) == 0; }));
}

TEST_F(ZeroCopy, BadLoansGetTypedErrorsAndLeaveNoChunk) {
  const Result<Loan> undeclared = web->loan("job.other", 10);
  ASSERT_FALSE(undeclared);
  EXPECT_EQ(undeclared.error().code, ErrorCode::not_declared) << undeclared.error().message;

  const Result<Loan> huge = web->loan("job.run", 1u << 30);
  ASSERT_FALSE(huge);
  EXPECT_EQ(huge.error().code, ErrorCode::payload_too_large) << huge.error().message;

  const Result<void> malformed = send_by_loan(*web, R"({"n": 1,)");
  ASSERT_FALSE(malformed);
  EXPECT_EQ(malformed.error().code, ErrorCode::malformed_json) << malformed.error().message;

  {
    Result<Loan> dropped = web->loan("job.run", 8);
    ASSERT_TRUE(dropped);
    EXPECT_GT(chunks_in_use(bus), 0u);
  }  // never sent: given back
  EXPECT_EQ(chunks_in_use(bus), 0u);

  Result<Loan> twice = web->loan("job.run", 2);
  ASSERT_TRUE(twice);
  std::memcpy(twice.value().payload().data(), "{}", 2);
  ASSERT_TRUE(twice.value().send());
  const Result<void> again = twice.value().send();
  ASSERT_FALSE(again);
  EXPECT_EQ(again.error().code, ErrorCode::closed);
}

TEST_F(ZeroCopy, LoanIntoAFullQueueIsRefusedAfterTheTimeoutAndNothingQueuedIsLost) {
  constexpr unsigned kCapacity = 16;  // worker's queue-capacity; no instance runs yet
  for (unsigned n = 0; n < kCapacity; ++n) ASSERT_TRUE(send_by_loan(*web, numbered(n))) << n;

  const Result<void> refused = send_by_loan(*web, numbered(kCapacity));
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().code, ErrorCode::queue_full) << refused.error().message;
  EXPECT_EQ(chunks_in_use(bus), kCapacity) << "the refused loan's chunk is freed";

  Ledger handled;
  std::unique_ptr<Service> worker = bus.connect("worker");
  worker->on("job.run", [&](Delivery& delivery) { handled.record(delivery.message()); });
  ASSERT_TRUE(worker->start());
  EXPECT_TRUE(eventually([&] { return handled.distinct(kCapacity) == kCapacity; }));
  EXPECT_FALSE(handled.saw(kCapacity));
  EXPECT_TRUE(eventually([&] { return chunks_in_use(bus) == 0; }));
}

}  // namespace
}  // namespace exobus::integration
