// A bus's memory as the daemon lays it out and hands it over: one sealed memory object per
// concern, granted to each instance exactly as its type needs (read-only where it only
// reads), adopted again by a restarted daemon from what its keeper held, grown at a reload,
// and refused rather than trusted when what is handed over is not what it should be.
#include "exobus/shm/bus_memory.hpp"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstring>
#include <map>
#include <vector>

#include <gtest/gtest.h>

#include "scratch_bus.hpp"

namespace exobus::shm {
namespace {

using testing::bytes_of;
using testing::kCommandLink;
using testing::kObserverLink;
using testing::kObserverReplyLink;
using testing::kObserverType;
using testing::kReceiverType;
using testing::kReplyLink;
using testing::kSenderType;
using testing::ScratchBus;
using testing::send_one;
using testing::text_of;
using Code = ErrorCode;

::testing::AssertionResult fails_with(const Result<std::unique_ptr<BusMemory>>& result, Code expected) {
  if (result) return ::testing::AssertionFailure() << "succeeded, expected " << to_string(expected);
  if (result.error().code != expected) {
    return ::testing::AssertionFailure() << "failed with " << to_string(result.error().code) << " ("
                                         << result.error().message << "), expected " << to_string(expected);
  }
  if (result.error().message.empty()) return ::testing::AssertionFailure() << "an error without a message";
  return ::testing::AssertionSuccess();
}

int duplicate(int fd) { return ::fcntl(fd, F_DUPFD_CLOEXEC, 0); }

// The keeper's descriptors of a bus, in its order: what a restarted daemon is given back.
std::vector<int> kept_descriptors(const BusMemory& memory) {
  std::vector<int> fds;
  for (const Region* region : memory.regions_in_order()) fds.push_back(duplicate(region->fd()));
  return fds;
}

// Grants with descriptors of their own, as a registration reply passes them.
std::vector<Grant> granted(const BusMemory& memory, std::uint16_t type) {
  std::vector<Grant> grants = memory.grants_for(type);
  for (Grant& grant : grants) grant.fd = duplicate(grant.fd);
  return grants;
}

// A sealed memory object of `bytes`, filled with `fill`, as a hostile or confused keeper
// might hand one over.
int sealed_object(std::uint64_t bytes, unsigned char fill) {
  const int fd = ::memfd_create("exobus-test.garbage", MFD_CLOEXEC | MFD_ALLOW_SEALING);
  if (fd == -1 || ::ftruncate(fd, static_cast<off_t>(bytes)) == -1) return -1;
  std::vector<unsigned char> contents(bytes, fill);
  if (::pwrite(fd, contents.data(), contents.size(), 0) != static_cast<ssize_t>(contents.size())) return -1;
  if (::fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW) == -1) return -1;
  return fd;
}

std::uint64_t expected_tenant_bytes(const TenantShape& shape) { return compute_tenant_layout(shape).value().bytes; }

// An object as grants name it, readably: ("sender_half", 0).
using ObjectName = std::pair<std::string, std::uint32_t>;
ObjectName name_of(const Grant& grant) { return {std::string(to_string(grant.kind)), grant.index}; }

// --- creation ---

TEST(BusMemoryCreate, LaysOutEveryObjectOfTheShapeInTheRegistrysOrder) {
  const BusShape shape = testing::two_type_shape();
  ScratchBus bus(shape, "layout");
  const BusMemory& memory = bus.memory();
  const std::vector<const Region*> regions = memory.regions_in_order();
  ASSERT_NE(memory.registry(), nullptr);
  ASSERT_EQ(memory.registry()->region_count(), regions.size());
  const std::vector<std::pair<RegionKind, std::uint32_t>> expected = {
      {RegionKind::registry, 0},      {RegionKind::directory, 0},       {RegionKind::tenant, kSenderType},
      {RegionKind::tenant, kReceiverType}, {RegionKind::sender_half, kCommandLink}, {RegionKind::receiver_half, kCommandLink},
      {RegionKind::sender_half, kReplyLink}, {RegionKind::receiver_half, kReplyLink}};
  ASSERT_EQ(regions.size(), expected.size());
  for (std::size_t k = 0; k < expected.size(); ++k) {
    const RegionEntry& entry = memory.registry()->region(static_cast<std::uint32_t>(k));
    EXPECT_EQ(entry.kind, expected[k].first) << "entry " << k;
    EXPECT_EQ(entry.index, expected[k].second) << "entry " << k;
    EXPECT_EQ(memory.region(expected[k].first, expected[k].second), regions[k]) << "entry " << k;
    EXPECT_TRUE(regions[k]->writable()) << "the daemon maps everything writable";
  }
  const LinkLayout link = compute_link_layout(shape.links[0].shape).value();
  EXPECT_EQ(memory.region(RegionKind::tenant, kSenderType)->size(), expected_tenant_bytes(shape.types[0].shape));
  EXPECT_EQ(memory.region(RegionKind::sender_half, kCommandLink)->size(), link.sender_bytes);
  EXPECT_EQ(memory.region(RegionKind::receiver_half, kCommandLink)->size(), link.receiver_bytes);
  EXPECT_NE(memory.tenant(kSenderType), nullptr);
  EXPECT_NE(memory.tenant(kReceiverType), nullptr);
  EXPECT_NE(memory.link(kCommandLink), nullptr);
  EXPECT_NE(memory.link(kReplyLink), nullptr);
  EXPECT_EQ(memory.link(2), nullptr) << "a spare link slot has no memory";
}

TEST(BusMemoryCreate, TheDirectoryDescribesEveryTypeAndLink) {
  ScratchBus bus(testing::two_type_shape(), "directory");
  const Directory& directory = bus.memory().directory();
  EXPECT_EQ(directory.type_name(kSenderType), "sender");
  EXPECT_EQ(directory.type_name(kReceiverType), "receiver");
  const std::optional<LinkShape> commands = directory.link_shape(kCommandLink);
  ASSERT_TRUE(commands);
  EXPECT_EQ(commands->sender, kSenderType);
  EXPECT_EQ(commands->receiver, kReceiverType);
  EXPECT_FALSE(directory.link_shape(2)) << "a spare slot is not in use";
  EXPECT_FALSE(directory.type_shape(2)) << "out of range";
}

TEST(BusMemoryCreate, TotalBytesIsWhatTheObjectsHold) {
  const BusShape shape = testing::three_type_shape();
  ScratchBus bus(shape, "total");
  std::uint64_t held = 0;
  for (const Region* region : bus.memory().regions_in_order()) held += region->size();
  const Result<std::uint64_t> total = BusMemory::total_bytes(shape);
  ASSERT_TRUE(total) << total.error().message;
  EXPECT_EQ(total.value(), held);
}

TEST(BusMemoryCreate, EveryCreationHasABusGenerationOfItsOwn) {
  ScratchBus first(testing::two_type_shape(), "first");
  ScratchBus second(testing::two_type_shape(), "second");
  EXPECT_NE(first.memory().bus_generation(), second.memory().bus_generation());
}

TEST(BusMemoryCreate, ABadShapeIsAConfigError) {
  BusShape shape = testing::two_type_shape();
  shape.links[0].shape.channel_capacity = 3;  // not a power of two
  const Result<std::unique_ptr<BusMemory>> created = BusMemory::create("exobus-test.bad", shape);
  EXPECT_TRUE(fails_with(created, Code::config_error));
}

// More than the machine has is refused before anything is reserved. Run in a child whose
// file size limit stops a reservation that should never have been tried, so a regression
// fails this test instead of exhausting the machine.
TEST(BusMemoryCreate, ABusLargerThanTheAvailableMemoryIsRefusedWithNoSpace) {
  const std::optional<std::uint64_t> available = available_memory();
  ASSERT_TRUE(available) << "no MemAvailable in /proc/meminfo";
  BusShape shape = testing::two_type_shape();
  const std::uint32_t chunks = static_cast<std::uint32_t>(std::min<std::uint64_t>(*available / (1u << 20) + 1, kMaxChunksPerPool));
  shape.directory.size_classes = {{1u << 20, chunks}};
  for (BusShape::LinkEntry& link : shape.links) link.shape.size_classes = {{1u << 20, chunks}};
  ASSERT_GT(BusMemory::total_bytes(shape).value(), *available);

  const pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    const rlimit limit{1u << 30, 1u << 30};
    ::setrlimit(RLIMIT_FSIZE, &limit);
    ::signal(SIGXFSZ, SIG_IGN);
    const Result<std::unique_ptr<BusMemory>> created = BusMemory::create("exobus-test.huge", shape);
    const bool refused = !created && created.error().code == Code::no_space &&
                         created.error().message.find("MiB") != std::string::npos;
    ::_exit(refused ? 0 : 1);
  }
  int status = 0;
  ASSERT_EQ(::waitpid(child, &status, 0), child);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "not refused with no_space (status " << status << ")";
}

// --- grants ---

TEST(BusMemoryGrants, AnInstanceIsGrantedExactlyWhatItsTypeNeeds) {
  ScratchBus bus(testing::three_type_shape(), "grants");
  std::map<ObjectName, bool> grants;  // writable
  for (const Grant& grant : bus.memory().grants_for(kReceiverType)) {
    EXPECT_TRUE(grants.emplace(name_of(grant), grant.writable).second) << "granted twice";
  }
  const std::map<ObjectName, bool> expected = {
      {{"directory", 0}, false},
      {{"tenant", kReceiverType}, true},
      {{"sender_half", kCommandLink}, false},   // sender -> receiver: the sender writes its half
      {{"receiver_half", kCommandLink}, true},  // ... and the receiver its own
      {{"sender_half", kReplyLink}, true},      // receiver -> sender
      {{"receiver_half", kReplyLink}, false},
  };
  EXPECT_EQ(grants, expected) << "nothing of the sender's or the observer's own memory, nor of their link";
}

TEST(BusMemoryGrants, ATypeAtTheEndOfOneLinkOnlyIsGrantedThatLinkOnly) {
  BusShape shape = testing::three_type_shape();
  std::erase_if(shape.links, [](const BusShape::LinkEntry& link) { return link.index == kObserverReplyLink; });
  ScratchBus bus(shape, "grants-one");
  std::map<ObjectName, bool> grants;
  for (const Grant& grant : bus.memory().grants_for(kObserverType)) grants[name_of(grant)] = grant.writable;
  const std::map<ObjectName, bool> expected = {
      {{"directory", 0}, false},
      {{"tenant", kObserverType}, true},
      {{"sender_half", kObserverLink}, false},
      {{"receiver_half", kObserverLink}, true},
  };
  EXPECT_EQ(grants, expected);
}

TEST(BusMemoryGrants, ReadOnlyGrantsCarryReadOnlyDescriptors) {
  ScratchBus bus(testing::two_type_shape(), "grant-fds");
  for (const Grant& grant : bus.memory().grants_for(kSenderType)) {
    const int mode = ::fcntl(grant.fd, F_GETFL) & O_ACCMODE;
    EXPECT_EQ(mode, grant.writable ? O_RDWR : O_RDONLY) << to_string(grant.kind) << " " << grant.index;
  }
}

TEST(BusMemoryAttach, AnInstanceMapsItsGrantsAndNothingElse) {
  ScratchBus bus(testing::three_type_shape(), "attach");
  std::vector<Grant> grants = granted(bus.memory(), kReceiverType);
  const Result<std::unique_ptr<BusMemory>> attached = BusMemory::attach(grants);
  ASSERT_TRUE(attached) << attached.error().message;
  const BusMemory& instance = *attached.value();
  EXPECT_EQ(instance.registry(), nullptr) << "the registry is the daemon's alone";
  EXPECT_EQ(instance.bus_generation(), bus.memory().bus_generation());
  EXPECT_NE(instance.tenant(kReceiverType), nullptr);
  EXPECT_EQ(instance.tenant(kSenderType), nullptr);
  EXPECT_EQ(instance.tenant(kObserverType), nullptr);
  EXPECT_NE(instance.link(kCommandLink), nullptr);
  EXPECT_NE(instance.link(kReplyLink), nullptr);
  EXPECT_EQ(instance.link(kObserverLink), nullptr);
  EXPECT_FALSE(instance.region(RegionKind::directory, 0)->writable());
  EXPECT_FALSE(instance.region(RegionKind::sender_half, kCommandLink)->writable());
  EXPECT_TRUE(instance.region(RegionKind::receiver_half, kCommandLink)->writable());
  for (const Grant& grant : grants) EXPECT_EQ(grant.fd, -1) << "attach takes every descriptor over";
}

TEST(BusMemoryAttach, AnAttachedInstanceTakesWhatTheDaemonsViewSent) {
  ScratchBus bus(testing::two_type_shape(), "attach-traffic");
  DataPlane sender = bus.plane(kSenderType, 0);
  LaneCursor sending{sender.lane(kFirstSendLane)};
  ASSERT_TRUE(send_one(sender, sending, bus.link(kCommandLink), bytes_of("through")).ok());
  std::vector<Grant> grants = granted(bus.memory(), kReceiverType);
  const Result<std::unique_ptr<BusMemory>> attached = BusMemory::attach(grants);
  ASSERT_TRUE(attached) << attached.error().message;
  DataPlane receiver(*attached.value(), kReceiverType, 0);
  LaneCursor taking{receiver.lane(kCommandLane)};
  Link& commands = *attached.value()->link(kCommandLink);
  const TakeOutcome taken = receiver.take(taking, commands, commands.type_channel(), 0);
  ASSERT_EQ(taken.status, TakeOutcomeStatus::ok);
  EXPECT_EQ(text_of(taken.delivery.payload), "through");
  EXPECT_EQ(receiver.ack(taken.delivery.lease), LeaseStatus::ok);
  EXPECT_EQ(bus.link(kCommandLink).pool().audit().published, 0u) << "the ack is in the daemon's view too";
}

TEST(BusMemoryAttach, AGrantTheDirectoryDoesNotKnowIsRefused) {
  ScratchBus bus(testing::two_type_shape(), "attach-unknown");
  std::vector<Grant> grants = granted(bus.memory(), kSenderType);
  grants.push_back({RegionKind::tenant, 3, true, duplicate(bus.memory().region(RegionKind::tenant, 1)->fd())});
  EXPECT_TRUE(fails_with(BusMemory::attach(grants), Code::protocol));
  std::vector<Grant> link_grants = granted(bus.memory(), kSenderType);
  link_grants.push_back(
      {RegionKind::sender_half, 2, true, duplicate(bus.memory().region(RegionKind::sender_half, 0)->fd())});
  EXPECT_TRUE(fails_with(BusMemory::attach(link_grants), Code::protocol));
}

TEST(BusMemoryAttach, GrantsWithoutADirectoryAreRefused) {
  ScratchBus bus(testing::two_type_shape(), "attach-no-directory");
  std::vector<Grant> grants = granted(bus.memory(), kSenderType);
  ::close(grants.front().fd);
  grants.erase(grants.begin());
  EXPECT_TRUE(fails_with(BusMemory::attach(grants), Code::protocol));
}

TEST(BusMemoryAttach, AGrantOfTheWrongSizeIsRefused) {
  BusShape shape = testing::two_type_shape();
  shape.types[1].shape.leases_per_lane = 8;  // the receiver's memory is smaller than the sender's
  ScratchBus bus(shape, "attach-size");
  std::vector<Grant> grants = granted(bus.memory(), kSenderType);
  for (Grant& grant : grants) {
    if (grant.kind != RegionKind::tenant) continue;
    ::close(grant.fd);
    grant.fd = duplicate(bus.memory().region(RegionKind::tenant, kReceiverType)->fd());
  }
  EXPECT_TRUE(fails_with(BusMemory::attach(grants), Code::segment_error));
}

TEST(BusMemoryAttach, AWritableGrantOfAReadOnlyDescriptorIsRefused) {
  ScratchBus bus(testing::two_type_shape(), "attach-forged");
  std::vector<Grant> grants = granted(bus.memory(), kSenderType);
  for (Grant& grant : grants) {
    if (grant.kind != RegionKind::receiver_half) continue;
    grant.writable = true;  // claims to write the receiver's half, over its read-only descriptor
  }
  EXPECT_TRUE(fails_with(BusMemory::attach(grants), Code::io)) << "the kernel refuses the writable mapping";
}

TEST(BusMemoryAttach, ADirectoryOfAnotherLayoutVersionIsRefused) {
  ScratchBus bus(testing::two_type_shape(), "attach-version");
  bus.memory().directory().header().layout_version = kLayoutVersion + 1;
  std::vector<Grant> grants = granted(bus.memory(), kSenderType);
  EXPECT_TRUE(fails_with(BusMemory::attach(grants), Code::version_mismatch));
}

TEST(BusMemoryAttach, GarbageGrantedAsTheDirectoryIsRefused) {
  ScratchBus bus(testing::two_type_shape(), "attach-garbage");
  std::vector<Grant> grants = granted(bus.memory(), kSenderType);
  ::close(grants.front().fd);
  grants.front().fd = sealed_object(bus.memory().region(RegionKind::directory, 0)->size(), 0xa5);
  ASSERT_NE(grants.front().fd, -1);
  EXPECT_TRUE(fails_with(BusMemory::attach(grants), Code::corrupted));
}

TEST(BusMemoryAttach, AnUnsealedObjectIsRefused) {
  ScratchBus bus(testing::two_type_shape(), "attach-unsealed");
  std::vector<Grant> grants = granted(bus.memory(), kSenderType);
  const int unsealed = ::memfd_create("exobus-test.unsealed", MFD_CLOEXEC);
  ASSERT_EQ(::ftruncate(unsealed, static_cast<off_t>(bus.memory().region(RegionKind::tenant, 0)->size())), 0);
  for (Grant& grant : grants) {
    if (grant.kind != RegionKind::tenant) continue;
    ::close(grant.fd);
    grant.fd = unsealed;
  }
  EXPECT_TRUE(fails_with(BusMemory::attach(grants), Code::segment_error));
}

// --- seals and read-only descriptors ---

TEST(BusMemorySeals, NoHolderCanShrinkGrowOrUnsealAnyObject) {
  ScratchBus bus(testing::two_type_shape(), "seals");
  for (const Region* region : bus.memory().regions_in_order()) {
    const int fd = duplicate(region->fd());
    ASSERT_GE(fd, 0);
    const auto size = static_cast<off_t>(region->size());
    errno = 0;
    EXPECT_EQ(::ftruncate(fd, size / 2), -1);
    EXPECT_EQ(errno, EPERM) << "shrink";
    errno = 0;
    EXPECT_EQ(::ftruncate(fd, size * 2), -1);
    EXPECT_EQ(errno, EPERM) << "grow";
    errno = 0;
    EXPECT_EQ(::fallocate(fd, 0, 0, size + 4096), -1);
    EXPECT_EQ(errno, EPERM) << "grow by fallocate";
    EXPECT_EQ(::fcntl(fd, F_ADD_SEALS, F_SEAL_WRITE), -1) << "F_SEAL_SEAL: the seals are final";
    struct stat info {};
    ASSERT_EQ(::fstat(fd, &info), 0);
    EXPECT_EQ(static_cast<std::uint64_t>(info.st_size), region->size());
    ::close(fd);
  }
}

TEST(BusMemorySeals, AReadOnlyDescriptorCannotBeMappedWritable) {
  ScratchBus bus(testing::two_type_shape(), "read-only");
  for (const Grant& grant : bus.memory().grants_for(kSenderType)) {
    if (grant.writable) continue;
    const std::size_t size = bus.memory().region(grant.kind, grant.index)->size();
    errno = 0;
    EXPECT_EQ(::mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED, grant.fd, 0), MAP_FAILED);
    EXPECT_EQ(errno, EACCES) << to_string(grant.kind) << " " << grant.index;
  }
}

TEST(BusMemorySeals, AReadOnlyMappingCannotBeMadeWritable) {
  ScratchBus bus(testing::two_type_shape(), "mprotect");
  const Region& directory = *bus.memory().region(RegionKind::directory, 0);
  void* mapped = ::mmap(nullptr, directory.size(), PROT_READ, MAP_SHARED, directory.read_only_fd(), 0);
  ASSERT_NE(mapped, MAP_FAILED);
  errno = 0;
  EXPECT_EQ(::mprotect(mapped, directory.size(), PROT_READ | PROT_WRITE), -1);
  EXPECT_EQ(errno, EACCES);
  ::munmap(mapped, directory.size());
}

TEST(BusMemorySeals, AReadOnlyDescriptorCannotBeWrittenThrough) {
  ScratchBus bus(testing::two_type_shape(), "write");
  const Region& directory = *bus.memory().region(RegionKind::directory, 0);
  const char byte = 'x';
  EXPECT_EQ(::pwrite(directory.read_only_fd(), &byte, 1, 0), -1);
  EXPECT_EQ(::fcntl(directory.read_only_fd(), F_GETFL) & O_ACCMODE, O_RDONLY);
}

// --- adoption by a restarted daemon ---

TEST(BusMemoryAdopt, TheKeepersObjectsInOrderAreTheSameBus) {
  ScratchBus bus(testing::two_type_shape(), "adopt");
  DataPlane sender = bus.plane(kSenderType, 0);
  LaneCursor sending{sender.lane(kFirstSendLane)};
  ASSERT_TRUE(send_one(sender, sending, bus.link(kCommandLink), bytes_of("before the restart")).ok());
  Result<std::unique_ptr<BusMemory>> adopted = BusMemory::adopt(kept_descriptors(bus.memory()));
  ASSERT_TRUE(adopted) << adopted.error().message;
  BusMemory& memory = *adopted.value();
  EXPECT_EQ(memory.bus_generation(), bus.memory().bus_generation());
  ASSERT_NE(memory.registry(), nullptr);
  EXPECT_EQ(memory.registry()->region_count(), bus.memory().registry()->region_count());
  EXPECT_EQ(memory.regions_in_order().size(), bus.memory().regions_in_order().size());
  for (const Region* region : memory.regions_in_order()) EXPECT_TRUE(region->writable());

  DataPlane receiver(memory, kReceiverType, 0);
  LaneCursor taking{receiver.lane(kCommandLane)};
  Link& commands = *memory.link(kCommandLink);
  const TakeOutcome taken = receiver.take(taking, commands, commands.type_channel(), 0);
  ASSERT_EQ(taken.status, TakeOutcomeStatus::ok);
  EXPECT_EQ(text_of(taken.delivery.payload), "before the restart");
}

TEST(BusMemoryAdopt, AnAdoptedBusGrantsInstancesAgain) {
  ScratchBus bus(testing::two_type_shape(), "adopt-grants");
  Result<std::unique_ptr<BusMemory>> adopted = BusMemory::adopt(kept_descriptors(bus.memory()));
  ASSERT_TRUE(adopted) << adopted.error().message;
  std::vector<Grant> grants = granted(*adopted.value(), kSenderType);
  EXPECT_EQ(grants.size(), bus.memory().grants_for(kSenderType).size()) << "read-only descriptors opened again";
  for (const Grant& grant : grants) {
    ASSERT_GE(grant.fd, 0);
    EXPECT_EQ(::fcntl(grant.fd, F_GETFL) & O_ACCMODE, grant.writable ? O_RDWR : O_RDONLY);
  }
  const Result<std::unique_ptr<BusMemory>> attached = BusMemory::attach(grants);
  EXPECT_TRUE(attached) << attached.error().message;
}

TEST(BusMemoryAdopt, AnObjectRecordedButNeverKeptIsDroppedFromTheRegistry) {
  BusShape shape = testing::two_type_shape();
  ScratchBus bus(shape, "adopt-unkept");
  const std::uint32_t kept = bus.memory().registry()->region_count();
  BusShape::LinkEntry link{2, {kSenderType, kReceiverType, 8, 0, 0, shape.directory.size_classes}};
  ASSERT_TRUE(bus.memory().add_link("exobus-test.adopt-unkept", link));  // recorded: two halves
  ASSERT_EQ(bus.memory().registry()->region_count(), kept + 2);
  std::vector<int> fds = kept_descriptors(bus.memory());
  for (std::size_t k = kept; k < fds.size(); ++k) ::close(fds[k]);
  fds.resize(kept);  // the daemon died before handing them to the keeper
  Result<std::unique_ptr<BusMemory>> adopted = BusMemory::adopt(fds);
  ASSERT_TRUE(adopted) << adopted.error().message;
  EXPECT_EQ(adopted.value()->registry()->region_count(), kept);
  EXPECT_EQ(adopted.value()->link(2), nullptr);
  EXPECT_NE(adopted.value()->link(kCommandLink), nullptr);
}

TEST(BusMemoryAdopt, AnObjectKeptButNeverPublishedInTheDirectoryIsDropped) {
  ScratchBus bus(testing::two_type_shape(), "adopt-unpublished");
  const std::uint32_t published = bus.memory().registry()->region_count();
  BusShape::LinkEntry link{2, {kSenderType, kReceiverType, 8, 0, 0, bus.memory().directory().size_classes()}};
  ASSERT_TRUE(bus.memory().add_link("exobus-test.adopt-unpublished", link));
  // Kept, but the daemon died before publish_link(): nobody was granted it.
  Result<std::unique_ptr<BusMemory>> adopted = BusMemory::adopt(kept_descriptors(bus.memory()));
  ASSERT_TRUE(adopted) << adopted.error().message;
  EXPECT_EQ(adopted.value()->registry()->region_count(), published);
  EXPECT_EQ(adopted.value()->link(2), nullptr);
  EXPECT_EQ(adopted.value()->regions_in_order().size(), published);
}

TEST(BusMemoryAdopt, AnObjectKeptButNeverRecordedIsDropped) {
  ScratchBus bus(testing::two_type_shape(), "adopt-unrecorded");
  std::vector<int> fds = kept_descriptors(bus.memory());
  fds.push_back(sealed_object(4096, 0));  // handed to the keeper, the record never written
  Result<std::unique_ptr<BusMemory>> adopted = BusMemory::adopt(fds);
  ASSERT_TRUE(adopted) << adopted.error().message;
  EXPECT_EQ(adopted.value()->regions_in_order().size(), bus.memory().regions_in_order().size());
}

TEST(BusMemoryAdopt, GarbageKeptAsTheRegistryIsRefused) {
  ScratchBus bus(testing::two_type_shape(), "adopt-garbage");
  std::vector<int> fds = kept_descriptors(bus.memory());
  ::close(fds[0]);
  fds[0] = sealed_object(bus.memory().region(RegionKind::registry, 0)->size(), 0x5a);
  ASSERT_NE(fds[0], -1);
  EXPECT_TRUE(fails_with(BusMemory::adopt(fds), Code::corrupted));
}

TEST(BusMemoryAdopt, ARegistryOfAnotherLayoutVersionIsRefused) {
  ScratchBus bus(testing::two_type_shape(), "adopt-version");
  bus.memory().registry()->header().layout_version = kLayoutVersion - 1;
  EXPECT_TRUE(fails_with(BusMemory::adopt(kept_descriptors(bus.memory())), Code::version_mismatch));
}

TEST(BusMemoryAdopt, ARegistryWhoseCountsDisagreeWithItsSizeIsRefused) {
  ScratchBus bus(testing::two_type_shape(), "adopt-counts");
  bus.memory().registry()->header().instance_slots += 1;
  EXPECT_TRUE(fails_with(BusMemory::adopt(kept_descriptors(bus.memory())), Code::corrupted));
}

TEST(BusMemoryAdopt, ARegistryListingMoreObjectsThanItHasSlotsForIsRefused) {
  ScratchBus bus(testing::two_type_shape(), "adopt-overfull");
  RegistryHeader& header = bus.memory().registry()->header();
  header.region_count.store(header.region_slots + 1);
  EXPECT_TRUE(fails_with(BusMemory::adopt(kept_descriptors(bus.memory())), Code::corrupted));
}

TEST(BusMemoryAdopt, ARegistryThatDoesNotListItsDirectorySecondIsRefused) {
  ScratchBus bus(testing::two_type_shape(), "adopt-order");
  const_cast<RegionEntry&>(bus.memory().registry()->region(1)).kind = RegionKind::tenant;
  EXPECT_TRUE(fails_with(BusMemory::adopt(kept_descriptors(bus.memory())), Code::corrupted));
}

TEST(BusMemoryAdopt, AKeeperThatHandsBackSomethingElseAsTheDirectoryIsRefused) {
  ScratchBus bus(testing::two_type_shape(), "adopt-swapped");
  std::vector<int> fds = kept_descriptors(bus.memory());
  std::swap(fds[1], fds[2]);  // a tenant's memory where the directory should be
  EXPECT_FALSE(BusMemory::adopt(fds));
}

TEST(BusMemoryAdopt, TooFewObjectsAreRefused) {
  ScratchBus bus(testing::two_type_shape(), "adopt-few");
  EXPECT_TRUE(fails_with(BusMemory::adopt({duplicate(bus.memory().region(RegionKind::registry, 0)->fd())}),
                         Code::segment_error));
}

// --- a reload ---

struct BusMemoryReload : ::testing::Test {
  ScratchBus bus{testing::three_type_shape(), "reload"};
  const std::string label = "exobus-test.reload";
  BusShape::Type late{3, "late", testing::three_type_shape().types[1].shape};
  BusShape::LinkEntry to_late{4, {kSenderType, 3, 16, 0, 0, bus.memory().directory().size_classes()}};

  void reload() {
    ASSERT_TRUE(bus.memory().add_type(label, late));
    ASSERT_TRUE(bus.memory().add_link(label, to_late));
    bus.memory().publish_type(late);
    bus.memory().publish_link(to_late);
  }
};

TEST_F(BusMemoryReload, AnAddedTypeAndLinkCarryMessages) {
  reload();
  DataPlane sender = bus.plane(kSenderType, 0);
  DataPlane receiver = bus.plane(late.index, 0);
  LaneCursor sending{sender.lane(kFirstSendLane)};
  LaneCursor taking{receiver.lane(kCommandLane)};
  Link& link = bus.link(to_late.index);
  ASSERT_TRUE(send_one(sender, sending, link, bytes_of("new route")).ok());
  const TakeOutcome taken = receiver.take(taking, link, link.type_channel(), 0);
  ASSERT_EQ(taken.status, TakeOutcomeStatus::ok);
  EXPECT_EQ(text_of(taken.delivery.payload), "new route");
  EXPECT_EQ(bus.memory().directory().type_name(late.index), "late");
}

TEST_F(BusMemoryReload, AnInstanceAttachedBeforeMapsTheNewLinkWithAttachMore) {
  std::vector<Grant> before = granted(bus.memory(), kSenderType);
  Result<std::unique_ptr<BusMemory>> attached = BusMemory::attach(before);
  ASSERT_TRUE(attached) << attached.error().message;
  BusMemory& instance = *attached.value();
  EXPECT_EQ(instance.link(to_late.index), nullptr);
  reload();
  std::vector<Grant> after = granted(bus.memory(), kSenderType);  // everything again, and the new link
  ASSERT_TRUE(instance.attach_more(after));
  ASSERT_NE(instance.link(to_late.index), nullptr);
  EXPECT_EQ(instance.tenant(late.index), nullptr) << "another type's memory is still not granted";

  DataPlane sender(instance, kSenderType, 0);
  LaneCursor sending{sender.lane(kFirstSendLane)};
  ASSERT_TRUE(send_one(sender, sending, *instance.link(to_late.index), bytes_of("after reload")).ok());
  DataPlane receiver = bus.plane(late.index, 0);
  LaneCursor taking{receiver.lane(kCommandLane)};
  Link& link = bus.link(to_late.index);
  const TakeOutcome taken = receiver.take(taking, link, link.type_channel(), 0);
  ASSERT_EQ(taken.status, TakeOutcomeStatus::ok);
  EXPECT_EQ(text_of(taken.delivery.payload), "after reload");
}

TEST_F(BusMemoryReload, AReloadedBusIsAdoptedWithItsAdditions) {
  reload();
  Result<std::unique_ptr<BusMemory>> adopted = BusMemory::adopt(kept_descriptors(bus.memory()));
  ASSERT_TRUE(adopted) << adopted.error().message;
  EXPECT_NE(adopted.value()->tenant(late.index), nullptr);
  EXPECT_NE(adopted.value()->link(to_late.index), nullptr);
}

TEST_F(BusMemoryReload, ATypeBeyondTheDirectorysSlotsIsAConfigError) {
  BusShape::Type beyond{4, "beyond", late.shape};  // type slots 0..3
  const Result<void> added = bus.memory().add_type(label, beyond);
  ASSERT_FALSE(added);
  EXPECT_EQ(added.error().code, Code::config_error);
}

}  // namespace
}  // namespace exobus::shm
