// Unit tests of the chunk pool on its own: size classes and spilling, generations, the
// publish/read round trip and its validation, the per-target release, abandon and recovery
// by owner, the seqlock check, the audit, and many threads at once. The pool lives in a
// zeroed heap block laid out by compute_layout, as the creator of a segment lays it out.
#include "exobus/shm/chunk_pool.hpp"

#include <gtest/gtest.h>

#include <array>
#include <atomic>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <new>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "exobus/shm/bus_layout.hpp"

namespace exobus::shm {
namespace {

constexpr std::uint16_t kOwner = 3;
constexpr std::uint16_t kOtherOwner = 4;

// 4 chunks of 256 B (global indices 0..3), 2 of 1 KiB (4..5), 1 of 4 KiB (6).
std::vector<SizeClassLayout> three_classes() { return {{256, 4, 0, 0, 0}, {1024, 2, 0, 0, 0}, {4096, 1, 0, 0, 0}}; }

class HeapPool {
 public:
  explicit HeapPool(std::vector<SizeClassLayout> classes) {
    LayoutSpec spec;
    spec.size_classes = std::move(classes);
    spec.rings = {{2, 1000, 1, kNoRing}};
    spec.max_instances = 1;
    spec.lanes_per_instance = 1;
    spec.leases_per_lane = 1;
    Result<Layout> layout = compute_layout(spec);
    if (!layout) throw std::runtime_error(layout.error().message);
    layout_ = std::move(layout).value();
    const std::size_t bytes = (layout_.total_size + 63) / 64 * 64;  // aligned_alloc wants whole alignments
    memory_.reset(static_cast<std::byte*>(std::aligned_alloc(64, bytes)));
    if (!memory_) throw std::bad_alloc();
    std::memset(memory_.get(), 0, bytes);
    pool_ = ChunkPool(memory_.get(), layout_.size_classes);
  }

  ChunkPool& pool() { return pool_; }
  // Where chunk `chunk` lives, found from the layout the way any process finds it.
  ChunkHeader& header_of(std::uint32_t chunk) {
    for (const SizeClassLayout& size_class : layout_.size_classes) {
      if (chunk - size_class.first_chunk < size_class.chunk_count) {
        return *reinterpret_cast<ChunkHeader*>(memory_.get() + size_class.offset +
                                               (chunk - size_class.first_chunk) *
                                                   (kChunkHeaderBytes + size_class.chunk_size));
      }
    }
    throw std::out_of_range("no such chunk");
  }

 private:
  struct Free {
    void operator()(std::byte* memory) const { std::free(memory); }
  };

  Layout layout_;
  std::unique_ptr<std::byte, Free> memory_;
  ChunkPool pool_;
};

using Cursors = std::array<std::uint32_t, kMaxSizeClasses>;

struct ChunkPoolTest : ::testing::Test {
  HeapPool memory{three_classes()};
  ChunkPool& pool = memory.pool();
  Cursors cursors{};

  Allocation allocate(std::size_t size, std::uint16_t owner = kOwner) { return pool.allocate(size, owner, cursors); }

  // Allocates, writes `text` and publishes it to `target_mask`.
  MessageHandle send(const std::string& text, std::uint32_t target_mask = 0b1) {
    const Allocation allocation = allocate(text.size());
    EXPECT_EQ(allocation.status, PoolStatus::ok);
    std::memcpy(allocation.buffer.data(), text.data(), text.size());
    pool.publish(allocation.handle, static_cast<std::uint32_t>(text.size()), target_mask);
    return allocation.handle;
  }
};

std::string text_of(const ChunkView& view) {
  return std::string(reinterpret_cast<const char*>(view.payload.data()), view.payload.size());
}

TEST_F(ChunkPoolTest, AllocationIsServedFromTheSmallestClassThatFits) {
  const Allocation small = allocate(100);
  const Allocation medium = allocate(1000);
  const Allocation large = allocate(4000);
  ASSERT_EQ(small.status, PoolStatus::ok);
  ASSERT_EQ(medium.status, PoolStatus::ok);
  ASSERT_EQ(large.status, PoolStatus::ok);
  EXPECT_EQ(small.buffer.size(), 256u);
  EXPECT_LT(small.handle.chunk(), 4u);
  EXPECT_EQ(medium.buffer.size(), 1024u);
  EXPECT_EQ(medium.handle.chunk() / 2, 2u);  // 4 or 5
  EXPECT_EQ(large.buffer.size(), 4096u);
  EXPECT_EQ(large.handle.chunk(), 6u);
}

TEST_F(ChunkPoolTest, SizeEqualToAChunkSizeFitsThatClass) {
  EXPECT_EQ(allocate(256).buffer.size(), 256u);
  EXPECT_EQ(allocate(1024).buffer.size(), 1024u);
  EXPECT_EQ(allocate(257).buffer.size(), 1024u);
}

TEST_F(ChunkPoolTest, ExhaustedClassSpillsIntoTheNextLargerOne) {
  for (int n = 0; n < 4; ++n) ASSERT_EQ(allocate(10).buffer.size(), 256u) << n;
  const Allocation spilled = allocate(10);
  ASSERT_EQ(spilled.status, PoolStatus::ok);
  EXPECT_EQ(spilled.buffer.size(), 1024u);
}

TEST_F(ChunkPoolTest, ExhaustedLargerClassNeverFallsBackToASmallerOne) {
  ASSERT_EQ(allocate(4000).status, PoolStatus::ok);
  EXPECT_EQ(allocate(4000).status, PoolStatus::exhausted);
  EXPECT_EQ(pool.audit().free, 6u);
}

TEST_F(ChunkPoolTest, SizeAboveTheLargestClassIsTooLargeAndTakesNothing) {
  const Allocation allocation = allocate(4097);
  EXPECT_EQ(allocation.status, PoolStatus::too_large);
  EXPECT_TRUE(allocation.handle.is_null());
  EXPECT_EQ(pool.audit().free, pool.chunk_count());
}

TEST_F(ChunkPoolTest, AllocationWithEveryClassExhaustedReportsExhausted) {
  for (std::uint32_t n = 0; n < pool.chunk_count(); ++n) ASSERT_EQ(allocate(1).status, PoolStatus::ok) << n;
  const Allocation allocation = allocate(1);
  EXPECT_EQ(allocation.status, PoolStatus::exhausted);
  EXPECT_TRUE(allocation.handle.is_null());
}

TEST_F(ChunkPoolTest, ChunkCountAndLargestChunkComeFromTheClasses) {
  EXPECT_EQ(pool.chunk_count(), 7u);
  EXPECT_EQ(pool.largest_chunk(), 4096u);
}

TEST(ChunkPool, EveryAllocationOfAChunkChangesItsGenerationAndNeverToZero) {
  HeapPool memory({{256, 1, 0, 0, 0}});
  ChunkPool& pool = memory.pool();
  Cursors cursors{};
  std::uint32_t previous = 0;
  for (int n = 0; n < 1000; ++n) {
    const Allocation allocation = pool.allocate(1, kOwner, cursors);
    ASSERT_EQ(allocation.status, PoolStatus::ok) << n;
    ASSERT_NE(allocation.handle.generation(), 0u) << n;
    ASSERT_NE(allocation.handle.generation(), previous) << n;
    previous = allocation.handle.generation();
    pool.abandon(allocation.handle, kOwner);
  }
}

TEST(ChunkPool, GenerationSkipsZeroWhenItWraps) {
  HeapPool memory({{256, 1, 0, 0, 0}});
  memory.header_of(0).state.store(ChunkState{0, ChunkKind::free, kGenerationMask}.encode());
  Cursors cursors{};
  const Allocation allocation = memory.pool().allocate(1, kOwner, cursors);
  ASSERT_EQ(allocation.status, PoolStatus::ok);
  EXPECT_EQ(allocation.handle.generation(), 1u);
}

TEST_F(ChunkPoolTest, PublishedMessageReadsBackWithItsLengthAndBytes) {
  const MessageHandle handle = send("hello, chunk");
  const ChunkView view = pool.read(handle);
  ASSERT_TRUE(view.valid);
  EXPECT_EQ(view.payload.size(), 12u);
  EXPECT_EQ(text_of(view), "hello, chunk");
}

TEST_F(ChunkPoolTest, EveryPendingTargetReadsTheSameMessage) {
  const MessageHandle handle = send("fan", 0b101);
  EXPECT_EQ(text_of(pool.read(handle.with_target(0))), "fan");
  EXPECT_EQ(text_of(pool.read(handle.with_target(2))), "fan");
}

TEST_F(ChunkPoolTest, ReadForATargetWhoseBitIsClearIsInvalid) {
  const MessageHandle handle = send("x", 0b101);
  EXPECT_FALSE(pool.read(handle.with_target(1)).valid);
  pool.release_target(handle.with_target(2));
  EXPECT_FALSE(pool.read(handle.with_target(2)).valid);
}

TEST_F(ChunkPoolTest, ReadWithAnotherGenerationIsInvalid) {
  const MessageHandle handle = send("x");
  EXPECT_FALSE(pool.read(MessageHandle(handle.chunk(), 0, next_generation(handle.generation()))).valid);
}

TEST(ChunkPool, ReadOfAHandleFromTheChunksEarlierLifeIsInvalid) {
  HeapPool memory({{256, 1, 0, 0, 0}});
  ChunkPool& pool = memory.pool();
  Cursors cursors{};
  const MessageHandle old = pool.allocate(1, kOwner, cursors).handle;
  pool.publish(old, 1, 0b1);
  ASSERT_EQ(pool.release_target(old), TargetRelease::freed);
  const MessageHandle reused = pool.allocate(1, kOwner, cursors).handle;
  ASSERT_EQ(reused.chunk(), old.chunk());
  pool.publish(reused, 1, 0b1);
  EXPECT_FALSE(pool.read(old).valid);
  EXPECT_TRUE(pool.read(reused).valid);
}

TEST_F(ChunkPoolTest, ReadOfAnAllocatedButUnpublishedChunkIsInvalid) {
  const Allocation allocation = allocate(1);
  EXPECT_FALSE(pool.read(allocation.handle).valid);
}

TEST_F(ChunkPoolTest, ReadOfAChunkOutsideThePoolIsInvalid) {
  send("x");
  EXPECT_FALSE(pool.read(MessageHandle(pool.chunk_count(), 0, 1)).valid);
  EXPECT_FALSE(pool.read(MessageHandle(0xffffffff, 0, 1)).valid);
}

TEST_F(ChunkPoolTest, ReadForATargetBeyondTheMaskIsInvalid) {
  const MessageHandle handle = send("x", 0xffffffff);
  EXPECT_TRUE(pool.read(handle.with_target(kMaxTargets - 1)).valid);
  EXPECT_FALSE(pool.read(handle.with_target(kMaxTargets)).valid);
}

TEST_F(ChunkPoolTest, LengthBeyondTheChunkIsInvalidRatherThanReadPastIt) {
  const Allocation allocation = allocate(1);
  pool.publish(allocation.handle, 257, 0b1);  // as a corrupt or hostile writer would
  EXPECT_FALSE(pool.read(allocation.handle).valid);
}

TEST_F(ChunkPoolTest, ReleasingEachTargetClearsItsBitAndTheLastFreesTheChunk) {
  const MessageHandle handle = send("x", 0b111);
  EXPECT_EQ(pool.release_target(handle.with_target(1)), TargetRelease::still_pending);
  EXPECT_FALSE(pool.still_pending(handle.with_target(1)));
  EXPECT_EQ(pool.release_target(handle.with_target(0)), TargetRelease::still_pending);
  EXPECT_EQ(pool.audit().published, 1u);
  EXPECT_EQ(pool.release_target(handle.with_target(2)), TargetRelease::freed);
  EXPECT_EQ(pool.audit().free, pool.chunk_count());
}

TEST_F(ChunkPoolTest, SecondReleaseOfAPendingChunksTargetIsStale) {
  const MessageHandle handle = send("x", 0b11);
  ASSERT_EQ(pool.release_target(handle.with_target(0)), TargetRelease::still_pending);
  EXPECT_EQ(pool.release_target(handle.with_target(0)), TargetRelease::stale);
  EXPECT_TRUE(pool.still_pending(handle.with_target(1)));
}

TEST_F(ChunkPoolTest, ReleaseAfterTheChunkWasFreedIsStale) {
  const MessageHandle handle = send("x");
  ASSERT_EQ(pool.release_target(handle), TargetRelease::freed);
  EXPECT_EQ(pool.release_target(handle), TargetRelease::stale);
  EXPECT_EQ(pool.audit().free, pool.chunk_count());
}

TEST(ChunkPool, ReleaseWithAnEarlierLifesHandleLeavesTheNewMessageAlone) {
  HeapPool memory({{256, 1, 0, 0, 0}});
  ChunkPool& pool = memory.pool();
  Cursors cursors{};
  const MessageHandle old = pool.allocate(1, kOwner, cursors).handle;
  pool.publish(old, 1, 0b1);
  pool.release_target(old);
  const MessageHandle reused = pool.allocate(1, kOwner, cursors).handle;
  pool.publish(reused, 1, 0b1);
  EXPECT_EQ(pool.release_target(old), TargetRelease::stale);
  EXPECT_TRUE(pool.still_pending(reused));
}

TEST_F(ChunkPoolTest, AbandonByAnotherOwnerChangesNothing) {
  const Allocation allocation = allocate(1, kOwner);
  pool.abandon(allocation.handle, kOtherOwner);
  EXPECT_EQ(pool.audit().allocated, 1u);
}

TEST_F(ChunkPoolTest, AbandonByTheOwnerFreesTheChunk) {
  const Allocation allocation = allocate(1, kOwner);
  pool.abandon(allocation.handle, kOwner);
  const PoolAudit audit = pool.audit();
  EXPECT_EQ(audit.allocated, 0u);
  EXPECT_EQ(audit.free, pool.chunk_count());
}

TEST_F(ChunkPoolTest, AbandonOfAPublishedChunkChangesNothing) {
  const MessageHandle handle = send("x");
  pool.abandon(handle, kOwner);
  EXPECT_TRUE(pool.still_pending(handle));
}

TEST(ChunkPool, AbandonWithAnEarlierLifesHandleLeavesTheNewAllocationAlone) {
  HeapPool memory({{256, 1, 0, 0, 0}});
  ChunkPool& pool = memory.pool();
  Cursors cursors{};
  const MessageHandle old = pool.allocate(1, kOwner, cursors).handle;
  pool.abandon(old, kOwner);
  ASSERT_EQ(pool.allocate(1, kOwner, cursors).status, PoolStatus::ok);
  pool.abandon(old, kOwner);
  EXPECT_EQ(pool.audit().allocated, 1u);
}

TEST_F(ChunkPoolTest, ReclaimFreesOnlyTheOwnersUnpublishedChunks) {
  const Allocation first = allocate(1, kOwner);
  const Allocation second = allocate(2000, kOwner);
  const Allocation published = allocate(1, kOwner);
  pool.publish(published.handle, 1, 0b1);
  const Allocation others = allocate(1, kOtherOwner);

  EXPECT_EQ(pool.reclaim_allocations_of(kOwner), 2u);
  const PoolAudit audit = pool.audit();
  EXPECT_EQ(audit.allocated, 1u);
  EXPECT_EQ(audit.published, 1u);
  EXPECT_TRUE(pool.still_pending(published.handle));
  pool.abandon(others.handle, kOtherOwner);  // still the other owner's to give back
  EXPECT_EQ(pool.audit().allocated, 0u);
  EXPECT_NE(first.handle.chunk(), second.handle.chunk());
}

TEST_F(ChunkPoolTest, ReclaimOfAnOwnerWithoutChunksFreesNothing) {
  allocate(1, kOwner);
  EXPECT_EQ(pool.reclaim_allocations_of(kOtherOwner), 0u);
  EXPECT_EQ(pool.audit().allocated, 1u);
}

TEST_F(ChunkPoolTest, MessageIsIntactWhilePublished) {
  const MessageHandle handle = send("x");
  EXPECT_TRUE(pool.intact(handle));
}

TEST_F(ChunkPoolTest, MessageStaysIntactOnceMerelyFreed) {
  const MessageHandle handle = send("x");
  ASSERT_EQ(pool.release_target(handle), TargetRelease::freed);
  EXPECT_TRUE(pool.intact(handle));
}

TEST(ChunkPool, MessageIsNoLongerIntactOnceItsChunkIsReallocated) {
  HeapPool memory({{256, 1, 0, 0, 0}});
  ChunkPool& pool = memory.pool();
  Cursors cursors{};
  const MessageHandle handle = pool.allocate(1, kOwner, cursors).handle;
  pool.publish(handle, 1, 0b1);
  pool.release_target(handle);
  ASSERT_EQ(pool.allocate(1, kOtherOwner, cursors).handle.chunk(), handle.chunk());
  EXPECT_FALSE(pool.intact(handle));
}

TEST_F(ChunkPoolTest, AuditCountsChunksByState) {
  allocate(1);
  send("a");
  send("b", 0b11);
  const MessageHandle freed = send("c");
  pool.release_target(freed);
  const PoolAudit audit = pool.audit();
  EXPECT_EQ(audit.allocated, 1u);
  EXPECT_EQ(audit.published, 2u);
  EXPECT_EQ(audit.free, pool.chunk_count() - 3);
  EXPECT_EQ(audit.total, pool.chunk_count());
}

TEST_F(ChunkPoolTest, StillPendingHoldsExactlyUntilTheTargetIsReleased) {
  const Allocation allocation = allocate(1);
  EXPECT_FALSE(pool.still_pending(allocation.handle)) << "not yet published";
  pool.publish(allocation.handle, 1, 0b10);
  EXPECT_TRUE(pool.still_pending(allocation.handle.with_target(1)));
  EXPECT_FALSE(pool.still_pending(allocation.handle.with_target(0)));
  pool.release_target(allocation.handle.with_target(1));
  EXPECT_FALSE(pool.still_pending(allocation.handle.with_target(1)));
}

TEST(ChunkPoolThreads, ManyOwnersAllocatingPublishingAndReleasingLeaveEveryChunkFree) {
  constexpr std::uint32_t kThreads = 4, kRounds = 100'000, kHeld = 3;
  // 12 chunks for 4 threads holding up to 3 messages each: classes run dry and spill.
  HeapPool memory({{256, 8, 0, 0, 0}, {1024, 4, 0, 0, 0}});
  ChunkPool& pool = memory.pool();
  std::atomic<std::uint32_t> failures{0};

  std::vector<std::thread> threads;
  for (std::uint32_t t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      const auto owner = static_cast<std::uint16_t>(1 + t);
      Cursors cursors{};
      // A message is its owner and round, written over the payload's first bytes: a chunk
      // handed to two threads at once shows as the other's bytes.
      struct Sent {
        MessageHandle handle;
        std::uint32_t stamp[2];
      };
      std::vector<Sent> held;
      auto release_oldest = [&] {
        const Sent sent = held.front();
        held.erase(held.begin());
        const ChunkView view = pool.read(sent.handle.with_target(1));
        if (!view.valid || view.payload.size() != sizeof(sent.stamp) ||
            std::memcmp(view.payload.data(), sent.stamp, sizeof(sent.stamp)) != 0 || !pool.intact(sent.handle)) {
          failures.fetch_add(1);
        }
        if (pool.release_target(sent.handle.with_target(0)) != TargetRelease::still_pending ||
            pool.release_target(sent.handle.with_target(1)) != TargetRelease::freed) {
          failures.fetch_add(1);
        }
      };
      for (std::uint32_t round = 0; round < kRounds / kThreads;) {
        const Allocation allocation = pool.allocate(round % 3 == 0 ? 600 : 100, owner, cursors);
        if (allocation.status == PoolStatus::exhausted) {
          if (!held.empty()) release_oldest();
          std::this_thread::yield();
          continue;
        }
        if (allocation.status != PoolStatus::ok) {
          failures.fetch_add(1);
          return;
        }
        Sent sent{allocation.handle, {owner, round}};
        std::memcpy(allocation.buffer.data(), sent.stamp, sizeof(sent.stamp));
        pool.publish(allocation.handle, sizeof(sent.stamp), 0b11);
        held.push_back(sent);
        if (held.size() == kHeld) release_oldest();
        ++round;
      }
      while (!held.empty()) release_oldest();
    });
  }
  for (std::thread& thread : threads) thread.join();

  EXPECT_EQ(failures.load(), 0u);
  const PoolAudit audit = pool.audit();
  EXPECT_EQ(audit.free, pool.chunk_count());
  EXPECT_EQ(audit.allocated, 0u);
  EXPECT_EQ(audit.published, 0u);
  EXPECT_EQ(audit.free + audit.allocated + audit.published, audit.total);
  EXPECT_EQ(audit.total, pool.chunk_count());
}

}  // namespace
}  // namespace exobus::shm
