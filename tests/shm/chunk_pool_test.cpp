// Unit tests of a link's chunk pool on its own: size classes and spilling, generations, the
// publish/read round trip and its validation, the receiver's forward-only ack and reuse only
// once a chunk's ack word holds its generation, abandon, the daemon's reclaim and unpublish,
// the seqlock check, the audit, the two halves each written by one side only, what a
// hostile writer of either half can do, and many threads at once.
//
// The chunks (the link's sender half) and the ack words (its receiver half) each live in
// their own zeroed anonymous mapping, as new memory objects do, so that a test can map one
// half read-only the way the other side of a link maps it.
#include "exobus/shm/chunk_pool.hpp"

#include <gtest/gtest.h>
#include <sys/mman.h>
#include <unistd.h>

#include <atomic>
#include <barrier>
#include <cstring>
#include <new>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "exobus/shm/fault_point.hpp"

namespace exobus::shm {
namespace {

constexpr std::uint32_t kLink = 9;
constexpr std::uint32_t kOwner = 3;
constexpr std::uint32_t kOtherOwner = 4;

// One half of a link: a zeroed, page-aligned mapping of its own.
class Half {
 public:
  explicit Half(std::uint64_t bytes) : size_(round_to_pages(bytes)) {
    void* base = ::mmap(nullptr, size_, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (base == MAP_FAILED) throw std::bad_alloc();
    base_ = static_cast<std::byte*>(base);
  }
  ~Half() { ::munmap(base_, size_); }
  Half(const Half&) = delete;
  Half& operator=(const Half&) = delete;

  std::byte* data() const { return base_; }
  void protect(int protection) const {
    if (::mprotect(base_, size_, protection) != 0) throw std::runtime_error("mprotect failed");
  }

 private:
  static std::size_t round_to_pages(std::uint64_t bytes) {
    const auto page = static_cast<std::uint64_t>(::sysconf(_SC_PAGESIZE));
    return static_cast<std::size_t>((bytes + page - 1) / page * page);
  }

  std::size_t size_;
  std::byte* base_ = nullptr;
};

// While it lives, `half` is mapped read-only, as the other side of a link maps it: any
// store to it, even a CAS that fails (x86 writes the old value back), ends the test with
// SIGSEGV.
class ReadOnly {
 public:
  explicit ReadOnly(const Half& half) : half_(half) { half_.protect(PROT_READ); }
  ~ReadOnly() { half_.protect(PROT_READ | PROT_WRITE); }
  ReadOnly(const ReadOnly&) = delete;
  ReadOnly& operator=(const ReadOnly&) = delete;

 private:
  const Half& half_;
};

// 4 chunks of 256 B (indices 0..3), 2 of 1 KiB (4..5), 1 of 4 KiB (6).
std::vector<SizeClass> three_classes() { return {{256, 4}, {1024, 2}, {4096, 1}}; }

// A pool over its two halves, laid out as link.hpp lays them out.
class SplitPool {
 public:
  explicit SplitPool(std::vector<SizeClass> classes, std::uint32_t link = kLink)
      : classes_(std::move(classes)),
        sender_half_(ChunkPool::chunk_bytes(classes_)),
        receiver_half_(ChunkPool::ack_bytes(classes_)),
        pool_(sender_half_.data(), acks(), classes_, link) {}

  ChunkPool& pool() { return pool_; }
  // Where chunk `chunk` lives, found from the classes the way any process finds it.
  ChunkHeader& header_of(std::uint32_t chunk) {
    std::uint64_t offset = 0;
    for (const SizeClass& size_class : classes_) {
      if (chunk < size_class.chunk_count) {
        return *reinterpret_cast<ChunkHeader*>(sender_half_.data() + offset +
                                               chunk * (kChunkHeaderBytes + size_class.chunk_size));
      }
      chunk -= size_class.chunk_count;
      offset += std::uint64_t{size_class.chunk_count} * (kChunkHeaderBytes + size_class.chunk_size);
    }
    throw std::out_of_range("no such chunk");
  }
  std::atomic<std::uint32_t>& ack_of(std::uint32_t chunk) { return acks()[chunk]; }
  const Half& sender_half() const { return sender_half_; }
  const Half& receiver_half() const { return receiver_half_; }

 private:
  std::atomic<std::uint32_t>* acks() const {
    return reinterpret_cast<std::atomic<std::uint32_t>*>(receiver_half_.data());
  }

  std::vector<SizeClass> classes_;
  Half sender_half_;
  Half receiver_half_;
  ChunkPool pool_;
};

// Allocates, writes `text` and publishes it.
MessageHandle send(ChunkPool& pool, const std::string& text, std::uint32_t owner = kOwner) {
  const Allocation allocation = pool.allocate(text.size(), owner);
  EXPECT_EQ(allocation.status, PoolStatus::ok);
  if (allocation.status != PoolStatus::ok) return {};
  std::memcpy(allocation.buffer.data(), text.data(), text.size());
  pool.publish(allocation.handle, static_cast<std::uint32_t>(text.size()));
  return allocation.handle;
}

std::string text_of(const ChunkView& view) {
  return std::string(reinterpret_cast<const char*>(view.payload.data()), view.payload.size());
}

struct ChunkPoolTest : ::testing::Test {
  SplitPool memory{three_classes()};
  ChunkPool& pool = memory.pool();

  Allocation allocate(std::size_t size, std::uint32_t owner = kOwner) { return pool.allocate(size, owner); }
  MessageHandle send(const std::string& text) { return shm::send(pool, text); }
};

// A pool of one chunk, where every allocation must reuse it.
struct OneChunkPoolTest : ::testing::Test {
  SplitPool memory{{{256, 1}}};
  ChunkPool& pool = memory.pool();

  MessageHandle send(const std::string& text) { return shm::send(pool, text); }
};

// --- size classes ---

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

TEST_F(ChunkPoolTest, AuditOfAClassCountsOnlyItsOwnChunks) {
  ASSERT_EQ(allocate(10).status, PoolStatus::ok);
  ASSERT_EQ(allocate(10).status, PoolStatus::ok);
  ASSERT_EQ(allocate(1000).status, PoolStatus::ok);
  ASSERT_EQ(pool.class_count(), 3u);
  EXPECT_EQ(pool.class_chunk_size(1), 1024u);
  const PoolAudit small = pool.audit_class(0), middle = pool.audit_class(1), large = pool.audit_class(2);
  EXPECT_EQ(small.total, 4u);
  EXPECT_EQ(small.allocated, 2u);
  EXPECT_EQ(middle.total, 2u);
  EXPECT_EQ(middle.allocated, 1u);
  EXPECT_EQ(large.free, 1u);
  EXPECT_EQ(pool.audit().allocated, small.allocated + middle.allocated + large.allocated);
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

TEST_F(ChunkPoolTest, ChunkCountLargestChunkAndLinkComeFromTheConstruction) {
  EXPECT_EQ(pool.chunk_count(), 7u);
  EXPECT_EQ(pool.largest_chunk(), 4096u);
  EXPECT_EQ(pool.link(), kLink);
}

TEST_F(ChunkPoolTest, HandleNamesThePoolsLink) { EXPECT_EQ(allocate(1).handle.link(), kLink); }

TEST(ChunkPool, HalvesHoldEveryChunkWithItsHeaderAndOneAckWordPerChunk) {
  const std::vector<SizeClass> classes = three_classes();
  EXPECT_EQ(ChunkPool::chunk_bytes(classes), 4 * (64 + 256) + 2 * (64 + 1024) + 1 * (64 + 4096u));
  EXPECT_EQ(ChunkPool::ack_bytes(classes), 7 * 4u);
}

TEST_F(ChunkPoolTest, LoneSenderWalksAClassInOrder) {
  for (std::uint32_t n = 0; n < 4; ++n) EXPECT_EQ(allocate(1).handle.chunk(), n);
}

TEST_F(ChunkPoolTest, ChunkGivenBackIsFoundAgainWhenTheScanComesRound) {
  const Allocation first = allocate(1);
  for (int n = 0; n < 3; ++n) allocate(1);
  pool.abandon(first.handle, kOwner);
  const Allocation again = allocate(1);
  ASSERT_EQ(again.status, PoolStatus::ok);
  EXPECT_EQ(again.handle.chunk(), first.handle.chunk());
  EXPECT_EQ(again.buffer.size(), 256u) << "not spilled into the next class";
}

// --- generations ---

TEST_F(OneChunkPoolTest, EveryAllocationOfAChunkChangesItsGenerationAndNeverToZero) {
  std::uint32_t previous = 0;
  for (int n = 0; n < 1000; ++n) {
    const Allocation allocation = pool.allocate(1, kOwner);
    ASSERT_EQ(allocation.status, PoolStatus::ok) << n;
    ASSERT_NE(allocation.handle.generation(), 0u) << n;
    ASSERT_NE(allocation.handle.generation(), previous) << n;
    previous = allocation.handle.generation();
    pool.abandon(allocation.handle, kOwner);
  }
}

TEST_F(OneChunkPoolTest, GenerationSkipsZeroWhenItWraps) {
  memory.header_of(0).state.store(ChunkState{0, ChunkKind::free, kGenerationMask}.encode());
  const Allocation allocation = pool.allocate(1, kOwner);
  ASSERT_EQ(allocation.status, PoolStatus::ok);
  EXPECT_EQ(allocation.handle.generation(), 1u);
}

// --- publish and read ---

TEST_F(ChunkPoolTest, PublishedMessageReadsBackWithItsLengthAndBytes) {
  const MessageHandle handle = send("hello, chunk");
  const ChunkView view = pool.read(handle);
  ASSERT_TRUE(view.valid);
  EXPECT_EQ(view.payload.size(), 12u);
  EXPECT_EQ(text_of(view), "hello, chunk");
}

TEST_F(ChunkPoolTest, ReadOfAnAllocatedButUnpublishedChunkIsInvalid) {
  const Allocation allocation = allocate(1);
  EXPECT_FALSE(pool.read(allocation.handle).valid);
}

TEST_F(ChunkPoolTest, ReadWithAnotherGenerationIsInvalid) {
  const MessageHandle handle = send("x");
  EXPECT_FALSE(pool.read(MessageHandle(handle.chunk(), kLink, next_generation(handle.generation()))).valid);
}

TEST_F(ChunkPoolTest, ReadOfAHandleFromAnotherLinkIsInvalid) {
  const MessageHandle handle = send("x");
  EXPECT_FALSE(pool.read(MessageHandle(handle.chunk(), kLink + 1, handle.generation())).valid);
}

TEST_F(ChunkPoolTest, ReadOfAChunkOutsideThePoolIsInvalid) {
  send("x");
  EXPECT_FALSE(pool.read(MessageHandle(pool.chunk_count(), kLink, 1)).valid);
  EXPECT_FALSE(pool.read(MessageHandle(kMaxChunksPerPool, kLink, 1)).valid);
}

TEST_F(ChunkPoolTest, LengthBeyondTheChunkIsInvalidRatherThanReadPastIt) {
  const Allocation allocation = allocate(1);
  pool.publish(allocation.handle, 257);  // as a corrupt or hostile sender would
  EXPECT_FALSE(pool.read(allocation.handle).valid);
}

TEST_F(ChunkPoolTest, ReadOfAnAcknowledgedMessageIsInvalid) {
  const MessageHandle handle = send("x");
  pool.acknowledge(handle);
  EXPECT_FALSE(pool.read(handle).valid);
}

TEST_F(OneChunkPoolTest, ReadOfAHandleFromTheChunksEarlierLifeIsInvalid) {
  const MessageHandle old = send("old");
  pool.acknowledge(old);
  const MessageHandle reused = send("new");
  ASSERT_EQ(reused.chunk(), old.chunk());
  EXPECT_FALSE(pool.read(old).valid);
  EXPECT_EQ(text_of(pool.read(reused)), "new");
}

TEST_F(ChunkPoolTest, OwnedBufferIsTheAllocationsWholePayloadArea) {
  const Allocation allocation = allocate(1000);
  const std::span<std::byte> owned = pool.owned_buffer(allocation.handle);
  EXPECT_EQ(owned.data(), allocation.buffer.data());
  EXPECT_EQ(owned.size(), 1024u);
}

TEST_F(ChunkPoolTest, OwnedBufferOfAChunkOutsideThePoolIsEmpty) {
  EXPECT_TRUE(pool.owned_buffer(MessageHandle(pool.chunk_count(), kLink, 1)).empty());
}

// --- the receiver's ack and the sender's reuse ---

TEST_F(OneChunkPoolTest, PublishedChunkIsNotReusedBeforeItsAck) {
  send("x");
  EXPECT_EQ(pool.allocate(1, kOwner).status, PoolStatus::exhausted);
}

TEST_F(OneChunkPoolTest, AcknowledgedChunkIsReusedWithTheNextGeneration) {
  const MessageHandle handle = send("x");
  pool.acknowledge(handle);
  const Allocation reused = pool.allocate(1, kOwner);
  ASSERT_EQ(reused.status, PoolStatus::ok);
  EXPECT_EQ(reused.handle.chunk(), handle.chunk());
  EXPECT_EQ(reused.handle.generation(), next_generation(handle.generation()));
}

// The sender reads a line of sixteen ack words at once and keeps copies: a copy read for
// one generation must never let a later generation of the chunk be reused unacknowledged.
TEST(ChunkPool, AckSeenForOneGenerationNeverReusesTheNextUnacknowledged) {
  SplitPool memory{{{256, 32}}};
  ChunkPool& pool = memory.pool();
  for (int lap = 0; lap < 4; ++lap) {
    std::vector<MessageHandle> sent;
    for (std::uint32_t n = 0; n < pool.chunk_count(); ++n) sent.push_back(send(pool, "m"));
    EXPECT_EQ(pool.allocate(1, kOwner).status, PoolStatus::exhausted) << "lap " << lap;
    // Acks of every other chunk: exactly those are reused, whatever the copies held.
    for (const MessageHandle handle : sent) {
      if (handle.chunk() % 2 == 0) pool.acknowledge(handle);
    }
    std::vector<std::uint32_t> reused;
    for (Allocation a = pool.allocate(1, kOwner); a.status == PoolStatus::ok; a = pool.allocate(1, kOwner)) {
      reused.push_back(a.handle.chunk());
      pool.abandon(a.handle, kOwner);
      if (reused.size() > sent.size()) break;
    }
    for (const std::uint32_t chunk : reused) EXPECT_EQ(chunk % 2, 0u) << "chunk " << chunk << " on lap " << lap;
    // Given back, they are free; the odd ones are acked too, for the next lap.
    for (const MessageHandle handle : sent) {
      if (handle.chunk() % 2 == 1) pool.acknowledge(handle);
    }
    for (std::uint32_t n = 0; n < pool.chunk_count(); ++n) ASSERT_EQ(pool.allocate(1, kOwner).status, PoolStatus::ok);
    EXPECT_EQ(pool.allocate(1, kOwner).status, PoolStatus::exhausted);
    pool.reclaim_allocations_of(kOwner);
  }
}

TEST(ChunkPool, AckArrivingAfterTheSenderLookedIsSeenOnItsNextScan) {
  SplitPool memory{{{256, 16}}};
  ChunkPool& pool = memory.pool();
  std::vector<MessageHandle> sent;
  for (std::uint32_t n = 0; n < pool.chunk_count(); ++n) sent.push_back(send(pool, "m"));
  EXPECT_EQ(pool.allocate(1, kOwner).status, PoolStatus::exhausted);  // copies made: none acked
  pool.acknowledge(sent[5]);
  const Allocation reused = pool.allocate(1, kOwner);
  ASSERT_EQ(reused.status, PoolStatus::ok);
  EXPECT_EQ(reused.handle.chunk(), sent[5].chunk());
}

TEST_F(ChunkPoolTest, AckStoresTheMessagesGenerationInItsChunksAckWord) {
  send("a");
  const MessageHandle handle = send("b");
  pool.acknowledge(handle);
  EXPECT_EQ(memory.ack_of(handle.chunk()).load(), handle.generation());
  EXPECT_EQ(memory.ack_of(0).load(), 0u) << "the other chunk's ack word";
}

TEST_F(ChunkPoolTest, SecondAckOfTheSameMessageChangesNothing) {
  const MessageHandle handle = send("x");
  pool.acknowledge(handle);
  pool.acknowledge(handle);
  EXPECT_EQ(memory.ack_of(handle.chunk()).load(), handle.generation());
  EXPECT_EQ(pool.audit().free, pool.chunk_count());
}

TEST_F(OneChunkPoolTest, LateAckOfAnEarlierGenerationNeverUndoesANewerOne) {
  const MessageHandle old = send("old");
  pool.acknowledge(old);
  const MessageHandle newer = send("new");
  pool.acknowledge(newer);
  pool.acknowledge(old);  // a lease lost to expiry, acknowledged after the copy was handled
  EXPECT_EQ(memory.ack_of(0).load(), newer.generation());
  EXPECT_EQ(pool.allocate(1, kOwner).status, PoolStatus::ok) << "the chunk is free again";
}

TEST_F(OneChunkPoolTest, LateAckOfAnEarlierGenerationLeavesTheReusedChunksMessagePending) {
  const MessageHandle old = send("old");
  pool.acknowledge(old);
  const MessageHandle newer = send("new");
  pool.acknowledge(old);
  EXPECT_TRUE(pool.still_pending(newer));
  EXPECT_EQ(pool.allocate(1, kOwner).status, PoolStatus::exhausted);
}

TEST_F(ChunkPoolTest, AckOfAHandleFromAnotherLinkIsIgnored) {
  const MessageHandle handle = send("x");
  pool.acknowledge(MessageHandle(handle.chunk(), kLink + 1, handle.generation()));
  EXPECT_TRUE(pool.still_pending(handle));
  EXPECT_EQ(memory.ack_of(handle.chunk()).load(), 0u);
}

TEST_F(ChunkPoolTest, AckOfAChunkOutsideThePoolOrOfGenerationZeroIsIgnored) {
  const MessageHandle handle = send("x");
  pool.acknowledge(MessageHandle(pool.chunk_count(), kLink, 1));
  pool.acknowledge(MessageHandle(handle.chunk(), kLink, 0));
  EXPECT_TRUE(pool.still_pending(handle));
  EXPECT_EQ(memory.ack_of(handle.chunk()).load(), 0u);
}

TEST_F(ChunkPoolTest, StillPendingHoldsExactlyFromPublishUntilAck) {
  const Allocation allocation = allocate(1);
  EXPECT_FALSE(pool.still_pending(allocation.handle)) << "not yet published";
  pool.publish(allocation.handle, 1);
  EXPECT_TRUE(pool.still_pending(allocation.handle));
  EXPECT_FALSE(pool.still_pending(MessageHandle(allocation.handle.chunk(), kLink + 1, allocation.handle.generation())));
  pool.acknowledge(allocation.handle);
  EXPECT_FALSE(pool.still_pending(allocation.handle));
}

// --- abandon, and the daemon's repairs of a dead sender ---

TEST_F(ChunkPoolTest, AbandonByTheOwnerFreesTheChunk) {
  const Allocation allocation = allocate(1, kOwner);
  pool.abandon(allocation.handle, kOwner);
  const PoolAudit audit = pool.audit();
  EXPECT_EQ(audit.allocated, 0u);
  EXPECT_EQ(audit.free, pool.chunk_count());
}

TEST_F(ChunkPoolTest, AbandonByAnotherOwnerChangesNothing) {
  const Allocation allocation = allocate(1, kOwner);
  pool.abandon(allocation.handle, kOtherOwner);
  EXPECT_EQ(pool.audit().allocated, 1u);
}

TEST_F(ChunkPoolTest, AbandonOfAPublishedChunkChangesNothing) {
  const MessageHandle handle = send("x");
  pool.abandon(handle, kOwner);
  EXPECT_TRUE(pool.still_pending(handle));
}

TEST_F(OneChunkPoolTest, AbandonWithAnEarlierLifesHandleLeavesTheNewAllocationAlone) {
  const MessageHandle old = pool.allocate(1, kOwner).handle;
  pool.abandon(old, kOwner);
  ASSERT_EQ(pool.allocate(1, kOwner).status, PoolStatus::ok);
  pool.abandon(old, kOwner);
  EXPECT_EQ(pool.audit().allocated, 1u);
}

TEST_F(ChunkPoolTest, DeathAfterClaimingAChunkLeavesItAllocatedToItsOwnerUntilReclaimed) {
  arm_fault(FaultPoint::allocate_claimed, 1, FaultAction::throw_exception);
  EXPECT_THROW(allocate(1, kOwner), FaultInjected);
  disarm_fault();
  ASSERT_EQ(pool.audit().allocated, 1u);
  EXPECT_EQ(pool.reclaim_allocations_of(kOwner), 1u);
  EXPECT_EQ(pool.audit().free, pool.chunk_count());
}

TEST_F(ChunkPoolTest, ReclaimFreesOnlyTheOwnersUnpublishedChunks) {
  allocate(1, kOwner);
  allocate(2000, kOwner);
  const Allocation published = allocate(1, kOwner);
  pool.publish(published.handle, 1);
  const Allocation others = allocate(1, kOtherOwner);

  EXPECT_EQ(pool.reclaim_allocations_of(kOwner), 2u);
  const PoolAudit audit = pool.audit();
  EXPECT_EQ(audit.allocated, 1u);
  EXPECT_EQ(audit.published, 1u);
  EXPECT_TRUE(pool.still_pending(published.handle));
  pool.abandon(others.handle, kOtherOwner);  // still the other owner's to give back
  EXPECT_EQ(pool.audit().allocated, 0u);
}

TEST_F(ChunkPoolTest, ReclaimOfAnOwnerWithoutChunksFreesNothing) {
  allocate(1, kOwner);
  EXPECT_EQ(pool.reclaim_allocations_of(kOtherOwner), 0u);
  EXPECT_EQ(pool.audit().allocated, 1u);
}

TEST_F(OneChunkPoolTest, UnpublishFreesThePublishedChunkOfAnInterruptedSendWithoutAnAck) {
  const MessageHandle handle = send("x");
  pool.unpublish(handle);
  EXPECT_FALSE(pool.still_pending(handle));
  EXPECT_EQ(memory.ack_of(0).load(), 0u) << "the daemon writes no receiver word";
  EXPECT_EQ(pool.allocate(1, kOwner).status, PoolStatus::ok);
}

TEST_F(ChunkPoolTest, UnpublishFreesTheAllocatedChunkOfAnInterruptedSend) {
  const Allocation allocation = allocate(1, kOwner);
  pool.unpublish(allocation.handle);
  EXPECT_EQ(pool.audit().free, pool.chunk_count());
}

TEST_F(OneChunkPoolTest, UnpublishWithAnEarlierLifesHandleLeavesTheNewMessageAlone) {
  const MessageHandle old = send("old");
  pool.acknowledge(old);
  const MessageHandle newer = send("new");
  pool.unpublish(old);
  EXPECT_TRUE(pool.still_pending(newer));
}

// --- intact(): the reader's check after reading ---

TEST_F(ChunkPoolTest, MessageIsIntactWhilePublished) {
  const MessageHandle handle = send("x");
  EXPECT_TRUE(pool.intact(handle));
}

TEST_F(ChunkPoolTest, MessageStaysIntactOnceMerelyAcknowledged) {
  const MessageHandle handle = send("x");
  pool.acknowledge(handle);
  EXPECT_TRUE(pool.intact(handle));
}

TEST_F(OneChunkPoolTest, MessageIsNoLongerIntactOnceItsChunkIsReallocated) {
  const MessageHandle handle = send("x");
  pool.acknowledge(handle);
  ASSERT_EQ(pool.allocate(1, kOtherOwner).handle.chunk(), handle.chunk());
  EXPECT_FALSE(pool.intact(handle));
}

// --- audit ---

TEST_F(ChunkPoolTest, AuditCountsChunksByStateAndAcknowledgedOnesAsFree) {
  allocate(1);
  send("a");
  send("b");
  pool.acknowledge(send("c"));
  const PoolAudit audit = pool.audit();
  EXPECT_EQ(audit.allocated, 1u);
  EXPECT_EQ(audit.published, 2u);
  EXPECT_EQ(audit.free, pool.chunk_count() - 3);
  EXPECT_EQ(audit.total, pool.chunk_count());
}

// --- each half written by its own side only ---

TEST_F(ChunkPoolTest, SenderOperationsNeverWriteTheReceiverHalf) {
  pool.acknowledge(send("acked"));  // so that allocate scans over an ack word that frees
  send("pending");
  const ReadOnly sealed(memory.receiver_half());

  const Allocation first = allocate(1);  // chunk 2
  ASSERT_EQ(first.status, PoolStatus::ok);
  std::memcpy(pool.owned_buffer(first.handle).data(), "y", 1);
  pool.publish(first.handle, 1);
  pool.abandon(allocate(1).handle, kOwner);  // chunk 3
  const Allocation reused = allocate(1);     // round to chunk 0, past its ack word
  EXPECT_EQ(reused.handle.chunk(), 0u);
  allocate(1, kOtherOwner);
  EXPECT_EQ(pool.reclaim_allocations_of(kOtherOwner), 1u);
  pool.unpublish(reused.handle);
  EXPECT_EQ(pool.audit().published, 2u);
}

TEST_F(ChunkPoolTest, ReceiverOperationsNeverWriteTheSenderHalf) {
  const MessageHandle handle = send("x");
  const ReadOnly sealed(memory.sender_half());

  EXPECT_EQ(text_of(pool.read(handle)), "x");
  EXPECT_TRUE(pool.intact(handle));
  EXPECT_TRUE(pool.still_pending(handle));
  pool.acknowledge(handle);
  pool.acknowledge(handle);
  EXPECT_FALSE(pool.still_pending(handle));
  EXPECT_EQ(pool.audit().free, pool.chunk_count());
}

// --- a hostile writer of the other half ---

// Whatever a receiver leaves in an ack word, acknowledge() returns, leaving the word as it
// was or at the handle's generation, and the sender reuses the chunk exactly when the word
// holds its generation.
TEST(ChunkPool, ScribbledAckWordLeavesAckAndAllocateReturningAndReuseExact) {
  for (const std::uint32_t scribble : {0xffffffffu, 0xff000001u, 0x00800001u, 0x00000100u, 0x00ffffffu}) {
    SCOPED_TRACE(scribble);
    SplitPool memory({{256, 1}});
    ChunkPool& pool = memory.pool();
    const MessageHandle handle = send(pool, "x");
    memory.ack_of(0).store(scribble);

    EXPECT_TRUE(pool.read(handle).valid) << "the scribble is not this message's ack";
    pool.acknowledge(handle);
    const std::uint32_t after = memory.ack_of(0).load();
    EXPECT_TRUE(after == scribble || after == handle.generation()) << after;
    EXPECT_EQ(pool.allocate(1, kOwner).status, after == handle.generation() ? PoolStatus::ok : PoolStatus::exhausted);
  }
}

TEST_F(ChunkPoolTest, ScribbledAckWordsMakeOnlyPublishedChunksLookBusy) {
  const MessageHandle handle = send("x");
  for (std::uint32_t chunk = 0; chunk < pool.chunk_count(); ++chunk) memory.ack_of(chunk).store(0xdeadbeef);
  const PoolAudit audit = pool.audit();
  EXPECT_EQ(audit.published, 1u);
  EXPECT_EQ(audit.free, pool.chunk_count() - 1);
  std::uint32_t allocated = 0;
  while (allocate(1).status == PoolStatus::ok) ++allocated;
  EXPECT_EQ(allocated, pool.chunk_count() - 1);
  EXPECT_TRUE(pool.still_pending(handle));
}

TEST_F(ChunkPoolTest, ChunkStateOfUnknownKindReadsInvalid) {
  const MessageHandle handle = send("x");
  memory.header_of(handle.chunk()).state.store(ChunkState{0, static_cast<ChunkKind>(9), handle.generation()}.encode());
  EXPECT_FALSE(pool.read(handle).valid);
  EXPECT_FALSE(pool.still_pending(handle));
  EXPECT_FALSE(pool.intact(handle));
  EXPECT_EQ(pool.audit().total, pool.chunk_count());
}

// --- many threads ---

TEST(ChunkPoolThreads, SendersAndReceiversSharingAPoolSeeOnlyTheirOwnMessagesBytes) {
  constexpr std::uint32_t kPairs = 2, kMessages = 20'000;
  // 6 chunks for 2 senders: classes run dry, spill, and every chunk is reused thousands of
  // times, by either sender, after an ack by either receiver.
  SplitPool memory({{256, 4}, {1024, 2}});
  ChunkPool& pool = memory.pool();
  // Sender p hands message i to its receiver in streams[p][i] (release; the receiver
  // acquires it). Nothing flows back but the ack words, so the only order between a
  // receiver's reads and the next writer of the chunk is the one under test.
  std::vector<std::vector<std::atomic<std::uint64_t>>> streams;
  for (std::uint32_t p = 0; p < kPairs; ++p) streams.emplace_back(kMessages);
  std::atomic<std::uint32_t> failures{0};

  // A message is its sender, its number, and a fill byte over the rest: a chunk handed to
  // two writers at once, or reused under a reader, shows as another message's bytes.
  const auto message_of = [](std::uint32_t sender, std::uint32_t n) {
    std::string text(n % 3 == 0 ? 600 : 40, static_cast<char>('a' + (n + sender) % 26));
    std::memcpy(text.data(), &sender, sizeof(sender));
    std::memcpy(text.data() + sizeof(sender), &n, sizeof(n));
    return text;
  };
  std::vector<std::thread> threads;
  for (std::uint32_t p = 0; p < kPairs; ++p) {
    threads.emplace_back([&, p] {
      for (std::uint32_t n = 0; n < kMessages;) {
        const std::string text = message_of(p, n);
        const Allocation allocation = pool.allocate(text.size(), 1 + p);
        if (allocation.status == PoolStatus::exhausted) {
          std::this_thread::yield();
          continue;
        }
        if (allocation.status != PoolStatus::ok) {
          failures.fetch_add(1);
          return;
        }
        std::memcpy(allocation.buffer.data(), text.data(), text.size());
        pool.publish(allocation.handle, static_cast<std::uint32_t>(text.size()));
        streams[p][n++].store(allocation.handle.word(), std::memory_order_release);
      }
    });
    threads.emplace_back([&, p] {
      for (std::uint32_t n = 0; n < kMessages; ++n) {
        std::uint64_t word;
        while ((word = streams[p][n].load(std::memory_order_acquire)) == 0) std::this_thread::yield();
        const MessageHandle handle = MessageHandle::from_word(word);
        const ChunkView view = pool.read(handle);
        if (!view.valid || text_of(view) != message_of(p, n) || !pool.intact(handle)) failures.fetch_add(1);
        pool.acknowledge(handle);
        if (pool.still_pending(handle)) failures.fetch_add(1);
      }
    });
  }
  for (std::thread& thread : threads) thread.join();

  EXPECT_EQ(failures.load(), 0u);
  const PoolAudit audit = pool.audit();
  EXPECT_EQ(audit.free, pool.chunk_count());
  EXPECT_EQ(audit.total, pool.chunk_count());
}

TEST(ChunkPoolThreads, RacingAcksOfSeveralGenerationsLeaveTheNewest) {
  constexpr std::uint32_t kAckers = 4, kRounds = 2'000;
  SplitPool memory({{256, 1}});
  ChunkPool& pool = memory.pool();
  std::barrier sync(kAckers + 1);
  std::atomic<std::uint32_t> base{1};

  std::vector<std::thread> ackers;
  for (std::uint32_t a = 0; a < kAckers; ++a) {
    ackers.emplace_back([&, a] {
      for (std::uint32_t round = 0; round < kRounds; ++round) {
        sync.arrive_and_wait();
        pool.acknowledge(MessageHandle(0, kLink, base.load(std::memory_order_relaxed) + a));
        sync.arrive_and_wait();
      }
    });
  }
  std::uint32_t bad_rounds = 0;
  for (std::uint32_t round = 0; round < kRounds; ++round) {
    // Every round a few generations ahead of the last, as a chunk reused meanwhile would be.
    base.store(1 + round * kAckers * 2, std::memory_order_relaxed);
    sync.arrive_and_wait();
    sync.arrive_and_wait();
    bad_rounds += memory.ack_of(0).load() != base.load() + kAckers - 1;
  }
  for (std::thread& acker : ackers) acker.join();
  EXPECT_EQ(bad_rounds, 0u) << "rounds whose ack word is not the newest generation acknowledged, of " << kRounds;
}

}  // namespace
}  // namespace exobus::shm
