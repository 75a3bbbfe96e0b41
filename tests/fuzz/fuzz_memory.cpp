// Fuzz target: the checks of BusMemory::adopt (the daemon's, on the memory its keeper gave
// back) and BusMemory::attach (an instance's, on the grants of its registration) on memory
// whose bytes, sizes, seals and order the input chooses. Either must map it or return an
// error: never crash, read or write outside a mapping, or hang.
//
// The memory starts as a copy of a small real bus (bus_memory.hpp: registry, directory, a
// tenant per type, the two halves of each link), and the input is a program that edits it
// before it is handed over:
//
//   byte 0: mode   bit 0: attach (else adopt); bit 1: attach as type 1 (else type 0)
//   then steps, each an opcode byte and its operands (missing bytes read as 0):
//     0 write  region, offset (u16), count (1..16), bytes    scribble on a region's bytes
//     1 resize region, size (u32, below 4 MiB)                 the object's length
//     2 drop   region                                          leave it out
//     3 swap   region, region                                  hand them in another order
//     4 unseal region                                          no F_SEAL_SHRINK/GROW
//     5 fit    region                                          resize it to what the edited
//                                                              directory says it holds
//     6 retag  region, kind, index (u32), writable             what its grant says it is
//     7 copy   region                                          hand it over twice
// A region is an index into the current list (mod its length). An accepted bus memory is
// then walked: every channel and ring counted, every pool audited, and (adopt, where the
// daemon maps everything writable) recovery and the expiry pass run over it.
#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <optional>
#include <utility>
#include <vector>

#include "exobus/shm/bus_memory.hpp"
#include "exobus/shm/recovery.hpp"
#include "scratch_bus.hpp"

namespace exobus::shm {
namespace {

constexpr std::uint64_t kMaxRegionBytes = 4u << 20;  // keeps a fitted or resized region cheap

struct RegionCopy {
  RegionKind kind;
  std::uint32_t index;
  bool writable;  // of its grant (attach)
  bool sealed = true;
  std::vector<std::byte> bytes;  // the object's length is bytes.size()
};

testing::ScratchOptions fuzz_options() {
  testing::ScratchOptions options;
  options.channel_capacity = 4;
  options.reply_capacity = 2;
  options.instances = 2;
  options.lanes_per_instance = 3;
  options.leases_per_lane = 2;
  options.size_classes = {{256, 4}, {1024, 2}};
  return options;
}

// A small real bus with a message in each link, and its objects copied in the keeper's
// order (adopt) and in each type's grant order (attach).
class Originals {
 public:
  Originals() : bus_(fuzz_options(), "fuzz-memory") {
    for (std::uint16_t type : {testing::kSenderType, testing::kReceiverType}) {
      DataPlane plane = bus_.plane(type, 0);
      LaneCursor cursor{plane.lane(kFirstSendLane)};
      Link& link = bus_.link(type == testing::kSenderType ? testing::kCommandLink : testing::kReplyLink);
      const Allocation allocation = plane.allocate(link, 8);
      if (allocation.status != PoolStatus::ok) std::abort();
      std::memcpy(allocation.buffer.data(), "message", 8);
      const Part part{{&link, kTypeChannel}, allocation.handle, 8};
      if (plane.publish(cursor, std::span(&part, 1)).status != SendStatus::ok) std::abort();
    }
    const BusMemory& memory = bus_.memory();
    const Registry& registry = *memory.registry();
    const std::vector<const Region*> regions = memory.regions_in_order();
    for (std::uint32_t k = 0; k < regions.size(); ++k) {
      const RegionEntry& entry = registry.region(k);
      kept_.push_back(copy_of(entry.kind, entry.index, true, *regions[k]));
    }
    for (std::uint16_t type : {testing::kSenderType, testing::kReceiverType}) {
      for (const Grant& grant : memory.grants_for(type)) {
        granted_[type].push_back(copy_of(grant.kind, grant.index, grant.writable, *memory.region(grant.kind, grant.index)));
      }
    }
  }
  const std::vector<RegionCopy>& kept() const { return kept_; }
  const std::vector<RegionCopy>& granted(std::uint16_t type) const { return granted_[type]; }

 private:
  static RegionCopy copy_of(RegionKind kind, std::uint32_t index, bool writable, const Region& region) {
    return {kind, index, writable, true, std::vector<std::byte>(region.base(), region.base() + region.size())};
  }
  testing::ScratchBus bus_;
  std::vector<RegionCopy> kept_;
  std::vector<RegionCopy> granted_[2];
};

class Input {
 public:
  Input(const std::uint8_t* data, std::size_t size) : data_(data), size_(size) {}
  bool done() const { return at_ >= size_; }
  std::uint8_t u8() { return at_ < size_ ? data_[at_++] : 0; }
  std::uint16_t u16() { return static_cast<std::uint16_t>(u8() | u8() << 8); }
  std::uint32_t u32() { return u16() | std::uint32_t{u16()} << 16; }

 private:
  const std::uint8_t* data_;
  std::size_t size_;
  std::size_t at_ = 0;
};

// The length the edited directory gives a region of this kind and index, as a mapper
// computes it; nothing when the directory is unusable or says nothing of it.
std::optional<std::uint64_t> fitted_size(const std::vector<RegionCopy>& regions, const RegionCopy& region) {
  const auto found = std::find_if(regions.begin(), regions.end(),
                                  [](const RegionCopy& candidate) { return candidate.kind == RegionKind::directory; });
  if (found == regions.end() || found->bytes.size() < sizeof(DirectoryHeader)) return std::nullopt;
  // Mapped memory is page-aligned; a copy for reading must be aligned as its header.
  const std::size_t bytes = found->bytes.size();
  const std::unique_ptr<std::byte, decltype(&std::free)> aligned(
      static_cast<std::byte*>(std::aligned_alloc(64, (bytes + 63) / 64 * 64)), &std::free);
  std::memcpy(aligned.get(), found->bytes.data(), bytes);
  const Directory directory(aligned.get(), bytes);
  if (!directory.check()) return std::nullopt;
  if (region.kind == RegionKind::tenant) {
    if (region.index > 0xffff) return std::nullopt;
    const std::optional<TenantShape> shape = directory.type_shape(static_cast<std::uint16_t>(region.index));
    if (!shape) return std::nullopt;
    const Result<TenantLayout> layout = compute_tenant_layout(*shape);
    return layout ? std::optional(layout.value().bytes) : std::nullopt;
  }
  if (region.kind == RegionKind::sender_half || region.kind == RegionKind::receiver_half) {
    const std::optional<LinkShape> shape = directory.link_shape(region.index);
    if (!shape) return std::nullopt;
    const Result<LinkLayout> layout = compute_link_layout(*shape);
    if (!layout) return std::nullopt;
    return region.kind == RegionKind::sender_half ? layout.value().sender_bytes : layout.value().receiver_bytes;
  }
  return std::nullopt;
}

void edit(std::vector<RegionCopy>& regions, Input& input) {
  while (!input.done()) {
    const std::uint8_t op = input.u8() % 8;
    if (regions.empty()) return;
    RegionCopy& region = regions[input.u8() % regions.size()];
    switch (op) {
      case 0: {
        const std::uint16_t offset = input.u16();
        const std::uint32_t count = input.u8() % 16 + 1;
        for (std::uint32_t k = 0; k < count; ++k) {
          const std::byte value{input.u8()};
          if (!region.bytes.empty()) region.bytes[(offset + k) % region.bytes.size()] = value;
        }
        break;
      }
      case 1: region.bytes.resize(input.u32() % kMaxRegionBytes); break;
      case 2: regions.erase(regions.begin() + (&region - regions.data())); break;
      case 3: std::swap(region, regions[input.u8() % regions.size()]); break;
      case 4: region.sealed = false; break;
      case 5:
        if (const std::optional<std::uint64_t> size = fitted_size(regions, region); size && *size <= kMaxRegionBytes) {
          region.bytes.resize(*size);
        }
        break;
      case 6:
        region.kind = static_cast<RegionKind>(input.u8() % 6);
        region.index = input.u32();
        region.writable = input.u8() & 1;
        break;
      default:
        if (regions.size() < 32) regions.push_back(region);
        break;
    }
  }
}

// A memory object holding `region`'s bytes, sealed as a keeper's or a grant's would be
// (unless the input unsealed it).
int memory_object(const RegionCopy& region) {
  const int fd = ::memfd_create("exobus-fuzz-memory", MFD_CLOEXEC | MFD_ALLOW_SEALING);
  if (fd == -1 || ::ftruncate(fd, static_cast<off_t>(region.bytes.size())) == -1) std::abort();
  std::size_t done = 0;
  while (done < region.bytes.size()) {
    const ssize_t written = ::pwrite(fd, region.bytes.data() + done, region.bytes.size() - done, static_cast<off_t>(done));
    if (written <= 0) std::abort();
    done += static_cast<std::size_t>(written);
  }
  if (region.sealed && ::fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW) == -1) std::abort();
  return fd;
}

// Reads every channel, ring and pool an accepted memory has views of.
void walk(const BusMemory& memory) {
  std::uint64_t sink = 0;
  for (std::uint32_t index = 0; index < memory.link_slots(); ++index) {
    Link* link = memory.link(index);
    if (link == nullptr) continue;
    if (link->has_type_channel()) sink += link->type_channel().census().full + link->type_channel().depth();
    for (std::uint32_t r = 0; r < link->reply_channel_count(); ++r) sink += link->reply_channel(r)->census().corrupt;
    sink += link->pool().audit().published;
  }
  for (std::uint16_t type = 0; type < memory.type_slots(); ++type) {
    Tenant* tenant = memory.tenant(type);
    if (tenant == nullptr) continue;
    sink += tenant->retry_ring().census().full + tenant->dead_letters().census().full;
    for (std::uint16_t lane = 0; lane < tenant->lane_count(); ++lane) {
      tenant->leases(lane).for_each_held([&](LeaseEntry&, std::uint64_t word) { sink += word; });
    }
  }
  if (sink == 0x5eed) std::printf("%llu\n", static_cast<unsigned long long>(sink));  // keeps the reads
}

}  // namespace
}  // namespace exobus::shm

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace exobus::shm;
  static const Originals originals;
  Input input(data, size);
  const std::uint8_t mode = input.u8();
  const bool attach = (mode & 1) != 0;
  const auto type = static_cast<std::uint16_t>((mode >> 1) & 1);
  std::vector<RegionCopy> regions = attach ? originals.granted(type) : originals.kept();
  edit(regions, input);

  if (!attach) {
    std::vector<int> fds;
    for (const RegionCopy& region : regions) fds.push_back(memory_object(region));
    exobus::Result<std::unique_ptr<BusMemory>> adopted = BusMemory::adopt(std::move(fds));
    if (adopted) {
      walk(*adopted.value());
      Recovery recovery(*adopted.value());
      recovery.recover_daemon();
      recovery.reclaim_expired(DataPlane::now_ms() + 1'000'000);
    }
    return 0;
  }
  std::vector<Grant> grants;
  for (const RegionCopy& region : regions) grants.push_back({region.kind, region.index, region.writable, memory_object(region)});
  exobus::Result<std::unique_ptr<BusMemory>> attached = BusMemory::attach(grants);
  // attach takes over every descriptor, accepted or not.
  for (const Grant& grant : grants) {
    if (grant.fd != -1) std::abort();
  }
  // Read-only: a grant the input made read-only is mapped so, and writing it would be the
  // harness's fault, not the library's.
  if (attached) walk(*attached.value());
  return 0;
}
