// The data segment as memory handed over by descriptor: sealed against resizing, mapped
// only after every check of its seals, header and layout.
#include "exobus/shm/segment.hpp"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <functional>

#include <gtest/gtest.h>

#include "scratch_segment.hpp"

namespace exobus::shm {
namespace {

using testing::small_spec;
using Code = ErrorCode;

::testing::AssertionResult fails_with(const exobus::Result<std::unique_ptr<Segment>>& result, Code expected) {
  if (result) return ::testing::AssertionFailure() << "succeeded, expected " << to_string(expected);
  if (result.error().code != expected) {
    return ::testing::AssertionFailure() << "failed with " << to_string(result.error().code) << " ("
                                         << result.error().message << "), expected " << to_string(expected);
  }
  if (result.error().message.empty()) return ::testing::AssertionFailure() << "error without a message";
  return ::testing::AssertionSuccess();
}

std::unique_ptr<Segment> created(const LayoutSpec& spec = small_spec()) {
  exobus::Result<std::unique_ptr<Segment>> segment = Segment::create("exobus-test.segment", spec);
  if (!segment) throw std::runtime_error(segment.error().message);
  return std::move(segment).value();
}

// A second mapping of the same memory, from its own descriptor, as an instance gets it.
exobus::Result<std::unique_ptr<Segment>> mapped_again(const Segment& segment) {
  return Segment::map(::fcntl(segment.fd(), F_DUPFD_CLOEXEC, 0));
}

// A memory object of `size` zero bytes, sealed or not.
int memory_object(off_t size, bool sealed) {
  const int fd = ::memfd_create("exobus-test.object", MFD_CLOEXEC | MFD_ALLOW_SEALING);
  if (fd == -1 || ::ftruncate(fd, size) == -1) return -1;
  if (sealed && ::fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW) == -1) return -1;
  return fd;
}

TEST(Segment, AMappedSegmentHasTheLayoutItWasCreatedWith) {
  const std::unique_ptr<Segment> segment = created(small_spec(64, 2));
  exobus::Result<std::unique_ptr<Segment>> mapped = mapped_again(*segment);
  ASSERT_TRUE(mapped) << mapped.error().message;
  const Layout& mine = segment->layout();
  const Layout& theirs = mapped.value()->layout();
  EXPECT_EQ(theirs.total_size, mine.total_size);
  EXPECT_EQ(theirs.rings.size(), mine.rings.size());
  EXPECT_EQ(theirs.lanes_offset, mine.lanes_offset);
  EXPECT_EQ(mapped.value()->header().bus_generation, segment->header().bus_generation);
  segment->header().routing_generation.store(42);
  EXPECT_EQ(mapped.value()->header().routing_generation.load(), 42u) << "the same memory";
}

TEST(Segment, TheMemoryCannotBeShrunkGrownOrUnsealedByAnyoneHoldingIt) {
  const std::unique_ptr<Segment> segment = created();
  const int fd = ::fcntl(segment->fd(), F_DUPFD_CLOEXEC, 0);
  ASSERT_GE(fd, 0);
  EXPECT_EQ(::ftruncate(fd, 4096), -1);
  EXPECT_EQ(errno, EPERM);
  EXPECT_EQ(::ftruncate(fd, static_cast<off_t>(segment->layout().total_size) * 2), -1);
  EXPECT_EQ(errno, EPERM);
  EXPECT_EQ(::fallocate(fd, 0, 0, static_cast<off_t>(segment->layout().total_size) + 4096), -1);
  EXPECT_EQ(::fcntl(fd, F_ADD_SEALS, F_SEAL_WRITE), -1) << "F_SEAL_SEAL: the seals are final";
  ::close(fd);
  EXPECT_EQ(segment->header().magic.load(), kSegmentMagic) << "the segment is untouched";
}

TEST(Segment, MemoryThatCouldBeResizedIsRefused) {
  const std::unique_ptr<Segment> segment = created();
  const int unsealed = memory_object(static_cast<off_t>(segment->layout().total_size), false);
  ASSERT_GE(unsealed, 0);
  std::memcpy(mmap(nullptr, 4096, PROT_WRITE, MAP_SHARED, unsealed, 0), segment->base(), 4096);
  EXPECT_TRUE(fails_with(Segment::map(unsealed), Code::segment_error));
}

TEST(Segment, AFileIsRefused) {
  char path[] = "/tmp/exobus-segment-XXXXXX";
  const int fd = ::mkstemp(path);
  ASSERT_GE(fd, 0);
  ::unlink(path);
  ASSERT_EQ(::ftruncate(fd, 1 << 20), 0);
  EXPECT_TRUE(fails_with(Segment::map(fd), Code::segment_error));
}

TEST(Segment, ARefusedDescriptorIsClosed) {
  const int fd = memory_object(4096, false);
  ASSERT_GE(fd, 0);
  EXPECT_FALSE(Segment::map(fd));
  EXPECT_EQ(::fcntl(fd, F_GETFD), -1) << "no descriptor leaks from a refusal";
}

TEST(Segment, MemoryTooSmallForAHeaderIsRefused) {
  EXPECT_TRUE(fails_with(Segment::map(memory_object(64, true)), Code::segment_error));
}

TEST(Segment, SealedMemoryNobodyInitialisedIsNotInitialised) {
  EXPECT_TRUE(fails_with(Segment::map(memory_object(1 << 20, true)), Code::not_initialised));
}

TEST(Segment, AnotherLayoutVersionIsRefusedWithBothVersionsNamed) {
  const std::unique_ptr<Segment> segment = created();
  segment->header().layout_version = kLayoutVersion + 1;
  const exobus::Result<std::unique_ptr<Segment>> mapped = mapped_again(*segment);
  ASSERT_TRUE(fails_with(mapped, Code::version_mismatch));
  EXPECT_NE(mapped.error().message.find("layout version " + std::to_string(kLayoutVersion + 1)), std::string::npos)
      << mapped.error().message;
  EXPECT_NE(mapped.error().message.find("speaks version " + std::to_string(kLayoutVersion)), std::string::npos)
      << mapped.error().message;
}

TEST(Segment, ForeignMagicIsNotAnExoBusSegment) {
  const std::unique_ptr<Segment> segment = created();
  segment->header().magic.store(0x0123456789abcdef, std::memory_order_release);
  EXPECT_TRUE(fails_with(mapped_again(*segment), Code::corrupted));
}

// One way to tamper with a real segment's header or ring descriptors.
struct Tampering {
  const char* name;
  std::function<void(SegmentHeader&, RingDescriptor*)> apply;
};

std::string tampering_name(const ::testing::TestParamInfo<Tampering>& info) { return info.param.name; }

const Tampering kTamperings[] = {
    {"RingCountZero", [](SegmentHeader& h, RingDescriptor*) { h.ring_count = 0; }},
    {"RingCountOneMore", [](SegmentHeader& h, RingDescriptor*) { h.ring_count += 1; }},
    {"RingCountHuge", [](SegmentHeader& h, RingDescriptor*) { h.ring_count = 0xffffffff; }},
    {"SizeClassCountZero", [](SegmentHeader& h, RingDescriptor*) { h.size_class_count = 0; }},
    {"SizeClassCountOverMax", [](SegmentHeader& h, RingDescriptor*) { h.size_class_count = kMaxSizeClasses + 1; }},
    {"SizeClassCountOneLess", [](SegmentHeader& h, RingDescriptor*) { h.size_class_count -= 1; }},
    {"ChunkSizeDoubled", [](SegmentHeader& h, RingDescriptor*) { h.size_classes[0].chunk_size *= 2; }},
    {"ChunkSizeNotPowerOfTwo", [](SegmentHeader& h, RingDescriptor*) { h.size_classes[1].chunk_size += 8; }},
    {"ChunkCountChanged", [](SegmentHeader& h, RingDescriptor*) { h.size_classes[0].chunk_count += 1; }},
    {"ChunkCountZero", [](SegmentHeader& h, RingDescriptor*) { h.size_classes[1].chunk_count = 0; }},
    {"SizeClassOffsetMoved", [](SegmentHeader& h, RingDescriptor*) { h.size_classes[1].offset += 64; }},
    {"SizeClassOffsetOutside", [](SegmentHeader& h, RingDescriptor*) { h.size_classes[1].offset = ~0ull - 63; }},
    {"FirstChunkMoved", [](SegmentHeader& h, RingDescriptor*) { h.size_classes[1].first_chunk += 1; }},
    {"TotalSizeSmaller", [](SegmentHeader& h, RingDescriptor*) { h.total_size -= 64; }},
    {"TotalSizeHuge", [](SegmentHeader& h, RingDescriptor*) { h.total_size = ~0ull; }},
    {"RingsOffsetMoved", [](SegmentHeader& h, RingDescriptor*) { h.rings_offset += 64; }},
    {"RingsOffsetOutside", [](SegmentHeader& h, RingDescriptor*) { h.rings_offset = ~0ull - 8; }},
    {"InstancesOffsetMoved", [](SegmentHeader& h, RingDescriptor*) { h.instances_offset += 64; }},
    {"LanesOffsetMoved", [](SegmentHeader& h, RingDescriptor*) { h.lanes_offset -= 64; }},
    {"MaxInstancesZero", [](SegmentHeader& h, RingDescriptor*) { h.max_instances = 0; }},
    {"MaxInstancesDoubled", [](SegmentHeader& h, RingDescriptor*) { h.max_instances *= 2; }},
    {"LanesOverflow", [](SegmentHeader& h, RingDescriptor*) { h.lanes_per_instance = 0x80000000; }},
    {"LeasesPerLaneHuge", [](SegmentHeader& h, RingDescriptor*) { h.leases_per_lane = 0xffffffff; }},
    {"LeasesPerLaneOneMore", [](SegmentHeader& h, RingDescriptor*) { h.leases_per_lane += 1; }},
    {"RingOffsetMoved", [](SegmentHeader&, RingDescriptor* r) { r[1].offset += 64; }},
    {"RingOffsetOutside", [](SegmentHeader&, RingDescriptor* r) { r[0].offset = ~0ull - 191; }},
    {"RingCapacityDoubled", [](SegmentHeader&, RingDescriptor* r) { r[0].capacity *= 2; }},
    {"RingCapacityNotPowerOfTwo", [](SegmentHeader&, RingDescriptor* r) { r[1].capacity = 100; }},
    {"RingCapacityZero", [](SegmentHeader&, RingDescriptor* r) { r[1].capacity = 0; }},
    {"DeadLetterRingOutOfRange", [](SegmentHeader&, RingDescriptor* r) { r[0].dead_letter_ring = 7; }},
    {"DeliveryLimitZero", [](SegmentHeader&, RingDescriptor* r) { r[0].delivery_limit = 0; }},
};

class TamperedSegment : public ::testing::TestWithParam<Tampering> {};

TEST_P(TamperedSegment, IsRefusedAsCorrupt) {
  const std::unique_ptr<Segment> segment = created(small_spec(64, 2));
  SegmentHeader& header = segment->header();
  auto* rings = reinterpret_cast<RingDescriptor*>(segment->base() + header.rings_offset);
  GetParam().apply(header, rings);
  EXPECT_TRUE(fails_with(mapped_again(*segment), Code::corrupted));
}

INSTANTIATE_TEST_SUITE_P(EveryHeaderField, TamperedSegment, ::testing::ValuesIn(kTamperings), tampering_name);

// The header's counts only lay out the segment: one that describes a bigger segment than
// the memory handed over must be refused before anything past the end is read.
TEST(Segment, AHeaderDescribingMoreThanTheMemoryIsRefusedWithoutReadingPastItsEnd) {
  const std::unique_ptr<Segment> segment = created(small_spec(64, 2));
  const int small = memory_object(4096, true);
  ASSERT_GE(small, 0);
  void* page = ::mmap(nullptr, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, small, 0);
  ASSERT_NE(page, MAP_FAILED);
  std::memcpy(page, segment->base(), 4096);  // the header and ring table of a bigger segment
  ::munmap(page, 4096);
  EXPECT_TRUE(fails_with(Segment::map(small), Code::corrupted));
}

TEST(Segment, MoreMemoryThanTheMachineHasIsNoSpaceNotAFaultLater) {
  LayoutSpec huge = small_spec();
  huge.size_classes = {{1u << 20, 1u << 24, 0, 0, 0}};  // 16 TiB of chunks
  const exobus::Result<std::unique_ptr<Segment>> refused = Segment::create("exobus-test.huge", huge);
  EXPECT_TRUE(fails_with(refused, Code::no_space));
}

TEST(Segment, ABadSpecIsAConfigError) {
  LayoutSpec bad = small_spec();
  bad.rings.clear();
  EXPECT_TRUE(fails_with(Segment::create("exobus-test.bad", bad), Code::config_error));
}

}  // namespace
}  // namespace exobus::shm
