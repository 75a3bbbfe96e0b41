// The segment creation protocol and its refusals: every way an opener can meet a segment
// it must not use (other version, half-built, foreign, tampered, forbidden) gives a typed
// error and never a crash; creation honours the requested mode whatever the umask, and a
// /dev/shm too small for the segment is a no_space error, not a SIGBUS on first touch.
#include "exobus/shm/segment.hpp"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sched.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstring>
#include <functional>

#include "scratch_segment.hpp"

namespace exobus::shm {
namespace {

using testing::small_spec;
using testing::unique_segment_name;
using Code = ErrorCode;

// Removes the named segment at the end of a test, whoever created it.
class SegmentName {
 public:
  explicit SegmentName(const std::string& purpose) : name_(unique_segment_name(purpose)) {}
  ~SegmentName() { Segment::remove(name_); }
  SegmentName(const SegmentName&) = delete;
  SegmentName& operator=(const SegmentName&) = delete;
  const std::string& str() const { return name_; }
  std::string path() const { return "/dev/shm/" + name_; }

 private:
  std::string name_;
};

::testing::AssertionResult fails_with(const exobus::Result<std::unique_ptr<Segment>>& result, Code expected) {
  if (result) return ::testing::AssertionFailure() << "succeeded, expected " << to_string(expected);
  if (result.error().code != expected) {
    return ::testing::AssertionFailure() << "failed with " << to_string(result.error().code) << " ("
                                         << result.error().message << "), expected " << to_string(expected);
  }
  if (result.error().message.empty()) return ::testing::AssertionFailure() << "error without a message";
  return ::testing::AssertionSuccess();
}

// A /dev/shm object of `size` zero bytes that nobody stamped: what a creator killed
// between shm_open and the magic leaves behind.
void create_unstamped_object(const std::string& name, off_t size) {
  const int fd = ::shm_open(("/" + name).c_str(), O_CREAT | O_EXCL | O_RDWR, 0600);
  ASSERT_GE(fd, 0) << std::strerror(errno);
  ASSERT_EQ(::ftruncate(fd, size), 0) << std::strerror(errno);
  ::close(fd);
}

// Runs `body` in a forked child and returns its exit status (as waitpid reports it).
int run_in_child(const std::function<int()>& body) {
  const pid_t child = ::fork();
  if (child == 0) ::_exit(body());
  int status = 0;
  ::waitpid(child, &status, 0);
  return status;
}

mode_t mode_of(const std::string& path) {
  struct stat info {};
  if (::stat(path.c_str(), &info) != 0) return 0;
  return info.st_mode & 07777;
}

TEST(Segment, CreatedSegmentOpensWithTheSameLayout) {
  SegmentName name("roundtrip");
  const LayoutSpec spec = small_spec(128, 3);
  exobus::Result<std::unique_ptr<Segment>> created = Segment::create(name.str(), spec, 0600);
  ASSERT_TRUE(created) << created.error().message;
  exobus::Result<std::unique_ptr<Segment>> opened = Segment::open(name.str());
  ASSERT_TRUE(opened) << opened.error().message;

  const Layout& mine = created.value()->layout();
  const Layout& theirs = opened.value()->layout();
  EXPECT_EQ(theirs.total_size, mine.total_size);
  EXPECT_EQ(theirs.lanes_offset, mine.lanes_offset);
  EXPECT_EQ(opened.value()->ring_count(), 3u);
  EXPECT_EQ(opened.value()->ring(2).capacity(), 128u);
  EXPECT_EQ(opened.value()->header().bus_generation, created.value()->header().bus_generation);
  // Both mappings see the same memory.
  created.value()->instance(3).pid.store(4242, std::memory_order_relaxed);
  EXPECT_EQ(opened.value()->instance(3).pid.load(std::memory_order_relaxed), 4242);
}

TEST(Segment, OpeningAMissingSegmentIsNotFound) {
  SegmentName name("missing");
  EXPECT_TRUE(fails_with(Segment::open(name.str()), Code::not_found));
}

TEST(Segment, CreatingAnExistingNameIsRefusedAndLeavesItIntact) {
  SegmentName name("exists");
  exobus::Result<std::unique_ptr<Segment>> first = Segment::create(name.str(), small_spec(), 0600);
  ASSERT_TRUE(first) << first.error().message;
  const std::uint64_t generation = first.value()->header().bus_generation;
  EXPECT_TRUE(fails_with(Segment::create(name.str(), small_spec(), 0600), Code::already_exists));
  exobus::Result<std::unique_ptr<Segment>> opened = Segment::open(name.str());
  ASSERT_TRUE(opened) << opened.error().message;
  EXPECT_EQ(opened.value()->header().bus_generation, generation);
}

TEST(Segment, OtherLayoutVersionIsRefusedWithBothVersionsNamed) {
  SegmentName name("version");
  exobus::Result<std::unique_ptr<Segment>> created = Segment::create(name.str(), small_spec(), 0600);
  ASSERT_TRUE(created) << created.error().message;
  created.value()->header().layout_version = kLayoutVersion + 1;
  const exobus::Result<std::unique_ptr<Segment>> opened = Segment::open(name.str());
  ASSERT_TRUE(fails_with(opened, Code::version_mismatch));
  EXPECT_NE(opened.error().message.find("layout version " + std::to_string(kLayoutVersion + 1)), std::string::npos)
      << opened.error().message;
  EXPECT_NE(opened.error().message.find("speaks version " + std::to_string(kLayoutVersion)), std::string::npos)
      << opened.error().message;
}

TEST(Segment, UnstampedSegmentIsHalfInitialised) {
  SegmentName name("unstamped");
  create_unstamped_object(name.str(), 1 << 20);
  EXPECT_TRUE(fails_with(Segment::open(name.str()), Code::not_initialised));
}

TEST(Segment, EmptyObjectIsHalfInitialised) {
  // A creator killed between shm_open and posix_fallocate leaves a zero-size object.
  SegmentName name("empty");
  create_unstamped_object(name.str(), 0);
  EXPECT_TRUE(fails_with(Segment::open(name.str()), Code::not_initialised));
}

TEST(Segment, ForeignMagicIsNotAnExoBusSegment) {
  SegmentName name("foreign");
  exobus::Result<std::unique_ptr<Segment>> created = Segment::create(name.str(), small_spec(), 0600);
  ASSERT_TRUE(created) << created.error().message;
  created.value()->header().magic.store(0x0123456789abcdef, std::memory_order_release);
  EXPECT_TRUE(fails_with(Segment::open(name.str()), Code::corrupted));
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
  SegmentName name("tampered");
  exobus::Result<std::unique_ptr<Segment>> created = Segment::create(name.str(), small_spec(64, 2), 0600);
  ASSERT_TRUE(created) << created.error().message;
  SegmentHeader& header = created.value()->header();
  auto* rings = reinterpret_cast<RingDescriptor*>(created.value()->base() + header.rings_offset);
  GetParam().apply(header, rings);
  EXPECT_TRUE(fails_with(Segment::open(name.str()), Code::corrupted));
}

INSTANTIATE_TEST_SUITE_P(EveryHeaderField, TamperedSegment, ::testing::ValuesIn(kTamperings), tampering_name);

// The header's counts only lay out the segment: one that describes a bigger segment than
// the object (a truncated file) must be refused before anything past the end is read.
TEST(Segment, TruncatedSegmentIsRefusedWithoutReadingPastItsEnd) {
  SegmentName name("truncated");
  exobus::Result<std::unique_ptr<Segment>> created = Segment::create(name.str(), small_spec(64, 2), 0600);
  ASSERT_TRUE(created) << created.error().message;
  const int fd = ::shm_open(("/" + name.str()).c_str(), O_RDWR, 0);
  ASSERT_GE(fd, 0);
  // Keep the header and ring table, cut the rest.
  ASSERT_EQ(::ftruncate(fd, 4096), 0);
  ::close(fd);
  EXPECT_TRUE(fails_with(Segment::open(name.str()), Code::corrupted));
}

// Stale segments: the creator died, its object stays in /dev/shm. The next creator must
// see it (exists), an opener must classify it, and removing it must make room for a new
// bus with a new generation.
TEST(Segment, HalfBuiltSegmentOfAKilledCreatorIsDetectedAndReplaceable) {
  SegmentName name("stale-half");
  const int status = run_in_child([&] {
    const int fd = ::shm_open(("/" + name.str()).c_str(), O_CREAT | O_EXCL | O_RDWR, 0600);
    if (fd < 0 || ::ftruncate(fd, 1 << 20) != 0) return 1;
    ::raise(SIGKILL);  // dies before stamping, as if killed mid-initialisation
    return 2;
  });
  ASSERT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL) << "status " << status;

  EXPECT_TRUE(fails_with(Segment::create(name.str(), small_spec(), 0600), Code::already_exists));
  EXPECT_TRUE(fails_with(Segment::open(name.str()), Code::not_initialised));
  ASSERT_TRUE(Segment::remove(name.str()));
  exobus::Result<std::unique_ptr<Segment>> recreated = Segment::create(name.str(), small_spec(), 0600);
  ASSERT_TRUE(recreated) << recreated.error().message;
  EXPECT_TRUE(Segment::open(name.str()));
}

TEST(Segment, CompleteSegmentOfAKilledCreatorIsReplacedByANewGeneration) {
  SegmentName name("stale-complete");
  int pipe_fds[2];
  ASSERT_EQ(::pipe(pipe_fds), 0);
  const int status = run_in_child([&] {
    exobus::Result<std::unique_ptr<Segment>> created = Segment::create(name.str(), small_spec(), 0600);
    if (!created) return 1;
    const std::uint64_t generation = created.value()->header().bus_generation;
    if (::write(pipe_fds[1], &generation, sizeof(generation)) != sizeof(generation)) return 2;
    ::raise(SIGKILL);
    return 3;
  });
  ASSERT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL) << "status " << status;
  std::uint64_t dead_generation = 0;
  ASSERT_EQ(::read(pipe_fds[0], &dead_generation, sizeof(dead_generation)),
            static_cast<ssize_t>(sizeof(dead_generation)));
  ::close(pipe_fds[0]);
  ::close(pipe_fds[1]);

  // A complete segment outlives its creator and still opens: whether its bus is alive is
  // the daemon's call (its lock), the generation tells the old bus from the new one.
  EXPECT_TRUE(fails_with(Segment::create(name.str(), small_spec(), 0600), Code::already_exists));
  exobus::Result<std::unique_ptr<Segment>> stale = Segment::open(name.str());
  ASSERT_TRUE(stale) << stale.error().message;
  EXPECT_EQ(stale.value()->header().bus_generation, dead_generation);
  ASSERT_TRUE(Segment::remove(name.str()));
  exobus::Result<std::unique_ptr<Segment>> recreated = Segment::create(name.str(), small_spec(), 0600);
  ASSERT_TRUE(recreated) << recreated.error().message;
  EXPECT_NE(recreated.value()->header().bus_generation, dead_generation);
  // The process that still maps the old segment keeps its own (unlinked) memory.
  EXPECT_EQ(stale.value()->header().bus_generation, dead_generation);
}

// The final mode is set with fchmod after creation, so the umask of the creating
// process (a daemon started from any shell) can neither widen nor narrow it.
class SegmentModeUnderUmask : public ::testing::TestWithParam<mode_t> {};

TEST_P(SegmentModeUnderUmask, IsExactlyTheRequestedMode) {
  const mode_t umask_value = GetParam();
  for (const mode_t requested : {mode_t{0660}, mode_t{0600}, mode_t{0640}}) {
    SegmentName name("mode");
    const int status = run_in_child([&] {
      ::umask(umask_value);
      return Segment::create(name.str(), small_spec(), requested) ? 0 : 1;
    });
    ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "status " << status;
    EXPECT_EQ(mode_of(name.path()), requested) << std::oct << "umask 0" << umask_value << ", requested 0" << requested;
  }
}

INSTANTIATE_TEST_SUITE_P(Umasks, SegmentModeUnderUmask, ::testing::Values(mode_t{0000}, mode_t{0077}, mode_t{0022}));

TEST(Segment, ModesThatOpenTheSegmentToTheWorldOrLockOutTheOwnerAreRefused) {
  for (const mode_t mode : {mode_t{0666}, mode_t{0604}, mode_t{0602}, mode_t{0601}, mode_t{0777}, mode_t{0400},
                            mode_t{0200}, mode_t{0060}}) {
    SegmentName name("badmode");
    EXPECT_TRUE(fails_with(Segment::create(name.str(), small_spec(), mode), Code::config_error))
        << std::oct << "mode 0" << mode;
    EXPECT_EQ(::access(name.path().c_str(), F_OK), -1) << "a refused create left an object behind";
  }
}

TEST(Segment, UserWithoutPermissionGetsPermissionDenied) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root to switch to the user 'nobody'";
  SegmentName name("forbidden");
  exobus::Result<std::unique_ptr<Segment>> created = Segment::create(name.str(), small_spec(), 0600);
  ASSERT_TRUE(created) << created.error().message;
  constexpr uid_t kNobody = 65534;
  const int status = run_in_child([&] {
    if (::setgid(kNobody) != 0 || ::setuid(kNobody) != 0) return 10;
    const exobus::Result<std::unique_ptr<Segment>> opened = Segment::open(name.str());
    if (opened) return 1;
    if (opened.error().code != Code::permission_denied) return 2;
    return opened.error().message.find("permission denied") != std::string::npos ? 0 : 3;
  });
  ASSERT_TRUE(WIFEXITED(status)) << "status " << status;
  EXPECT_NE(WEXITSTATUS(status), 10) << "setuid(nobody) failed";
  EXPECT_EQ(WEXITSTATUS(status), 0) << "1: opened, 2: wrong code, 3: message does not say why";
}

// A 16 MiB segment on a 1 MiB /dev/shm: posix_fallocate reserves every page up front, so
// creation fails with no_space instead of the creator (or a service) dying of SIGBUS when
// it first touches a page tmpfs cannot back. The small /dev/shm lives in a private mount
// namespace of a child process; the child reports through its exit code.
TEST(Segment, TooSmallDevShmIsNoSpaceNotSigbus) {
  constexpr int kOk = 0, kSucceeded = 1, kWrongError = 2, kLeftBehind = 3, kNoUnshare = 77, kNoMount = 78;
  const std::string name = unique_segment_name("nospace");
  int pipe_fds[2];
  ASSERT_EQ(::pipe(pipe_fds), 0);
  const int status = run_in_child([&]() -> int {
    auto skip = [&](int reason) {
      const int error = errno;
      [[maybe_unused]] const ssize_t written = ::write(pipe_fds[1], &error, sizeof(error));
      return reason;
    };
    if (::unshare(CLONE_NEWNS) != 0) return skip(kNoUnshare);
    if (::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0 ||
        ::mount("tmpfs", "/dev/shm", "tmpfs", 0, "size=1m,mode=1777") != 0) {
      return skip(kNoMount);
    }
    LayoutSpec spec = small_spec();
    spec.size_classes = {{4096, 4096, 0, 0, 0}};  // 4096 x (64 + 4096) B: about 16 MiB
    const exobus::Result<std::unique_ptr<Segment>> created = Segment::create(name, spec, 0600);
    if (created) return kSucceeded;
    if (created.error().code != Code::no_space) return kWrongError;
    // The failed creation removed its object: nothing occupies the small /dev/shm.
    return ::access(("/dev/shm/" + name).c_str(), F_OK) == 0 ? kLeftBehind : kOk;
  });
  ::close(pipe_fds[1]);
  int child_errno = 0;
  const bool has_errno = ::read(pipe_fds[0], &child_errno, sizeof(child_errno)) == sizeof(child_errno);
  ::close(pipe_fds[0]);
  Segment::remove(name);  // in case it landed in the real /dev/shm

  ASSERT_FALSE(WIFSIGNALED(status)) << "the creator died of signal " << WTERMSIG(status);
  ASSERT_TRUE(WIFEXITED(status));
  const int code = WEXITSTATUS(status);
  const std::string why = has_errno ? std::strerror(child_errno) : "unknown";
  if (code == kNoUnshare) GTEST_SKIP() << "unshare(CLONE_NEWNS) failed: " << why;
  if (code == kNoMount) GTEST_SKIP() << "cannot mount a small tmpfs on /dev/shm: " << why;
  EXPECT_EQ(code, kOk) << "1: created anyway, 2: another error than no_space, 3: object left behind";
}

}  // namespace
}  // namespace exobus::shm
