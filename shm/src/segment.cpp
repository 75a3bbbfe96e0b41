#include "exobus/shm/segment.hpp"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <optional>
#include <cstring>
#include <random>

namespace exobus::shm {

namespace {

constexpr int kSeals = F_SEAL_SHRINK | F_SEAL_GROW;

Error failure(ErrorCode code, std::string message) { return Error{code, std::move(message)}; }

Error io_failure(const std::string& label, const char* action, int error) {
  if (error == ENOSPC || error == ENOMEM) {
    return failure(ErrorCode::no_space, "not enough memory for segment '" + label +
                                            "'; free memory, or shrink the size classes and queues");
  }
  return failure(ErrorCode::io, "cannot " + std::string(action) + " segment '" + label + "': " + std::strerror(error));
}

LayoutSpec spec_from(const SegmentHeader& header, const RingDescriptor* rings) {
  LayoutSpec spec;
  for (std::uint32_t c = 0; c < header.size_class_count; ++c) {
    spec.size_classes.push_back({header.size_classes[c].chunk_size, header.size_classes[c].chunk_count, 0, 0, 0});
  }
  for (std::uint32_t r = 0; r < header.ring_count; ++r) {
    spec.rings.push_back({rings[r].capacity, rings[r].lease_ms, rings[r].delivery_limit, rings[r].dead_letter_ring});
  }
  spec.max_instances = header.max_instances;
  spec.lanes_per_instance = header.lanes_per_instance;
  spec.leases_per_lane = header.leases_per_lane;
  return spec;
}

void initialise(std::byte* base, const Layout& layout) {
  for (const RingDescriptor& ring : layout.rings) {
    auto* header = reinterpret_cast<RingHeader*>(base + ring.offset);
    ReadyRing::initialise(header, reinterpret_cast<RingSlot*>(header + 1), ring.capacity);
  }
  // Chunks, lanes, leases and instance slots start all-zero: FREE with generation 0,
  // idle, FREE, free. A new memory object is zero-filled, so there is nothing to do.
  auto& header = *reinterpret_cast<SegmentHeader*>(base);
  header.layout_version = kLayoutVersion;
  header.size_class_count = static_cast<std::uint32_t>(layout.size_classes.size());
  header.ring_count = static_cast<std::uint32_t>(layout.rings.size());
  header.max_instances = layout.max_instances;
  header.lanes_per_instance = layout.lanes_per_instance;
  header.leases_per_lane = layout.leases_per_lane;
  header.total_size = layout.total_size;
  header.bus_generation = std::random_device{}() | (std::uint64_t{std::random_device{}()} << 32);
  header.rings_offset = layout.rings_offset;
  header.instances_offset = layout.instances_offset;
  header.lanes_offset = layout.lanes_offset;
  std::copy(layout.size_classes.begin(), layout.size_classes.end(), header.size_classes);
  std::memcpy(base + layout.rings_offset, layout.rings.data(), layout.rings.size() * sizeof(RingDescriptor));
  // Release: every store above is visible to a mapper that acquires the magic.
  header.magic.store(kSegmentMagic, std::memory_order_release);
}

// The layout a mapped header describes, if it is a complete segment of this version whose
// every offset agrees with the layout recomputed from its counts.
Result<Layout> check_header(const std::byte* base, std::uint64_t size) {
  const auto& header = *reinterpret_cast<const SegmentHeader*>(base);
  const std::uint64_t magic = header.magic.load(std::memory_order_acquire);
  if (magic == 0) return failure(ErrorCode::not_initialised, "the segment is not initialised");
  if (magic != kSegmentMagic) return failure(ErrorCode::corrupted, "the memory handed over is not an ExoBus segment");
  if (header.layout_version != kLayoutVersion) {
    return failure(ErrorCode::version_mismatch, "the segment has layout version " +
                                                    std::to_string(header.layout_version) +
                                                    " but this library speaks version " +
                                                    std::to_string(kLayoutVersion) +
                                                    "; run services and exobusd of the same release");
  }
  const bool counts_sane = header.size_class_count >= 1 && header.size_class_count <= kMaxSizeClasses &&
                           header.ring_count >= 1 && header.ring_count <= kMaxRings &&
                           header.rings_offset == ((sizeof(SegmentHeader) + 63) / 64 * 64) &&
                           header.rings_offset + header.ring_count * sizeof(RingDescriptor) <= size;
  if (!counts_sane) return failure(ErrorCode::corrupted, "the segment has a corrupt header");
  const auto* rings = reinterpret_cast<const RingDescriptor*>(base + header.rings_offset);
  const Result<Layout> computed = compute_layout(spec_from(header, rings));
  if (!computed) {
    return failure(ErrorCode::corrupted, "the segment has an inconsistent layout (" + computed.error().message + ")");
  }
  const Layout& layout = computed.value();
  bool consistent = layout.total_size == header.total_size && layout.total_size == size &&
                    layout.instances_offset == header.instances_offset && layout.lanes_offset == header.lanes_offset;
  for (std::size_t r = 0; consistent && r < layout.rings.size(); ++r) consistent = layout.rings[r].offset == rings[r].offset;
  for (std::size_t c = 0; consistent && c < layout.size_classes.size(); ++c) {
    consistent = layout.size_classes[c].offset == header.size_classes[c].offset &&
                 layout.size_classes[c].first_chunk == header.size_classes[c].first_chunk;
  }
  if (!consistent) return failure(ErrorCode::corrupted, "the segment has an inconsistent layout");
  return layout;
}

// MemAvailable of /proc/meminfo in bytes, or nothing when it cannot be read.
std::optional<std::uint64_t> available_memory() {
  std::FILE* meminfo = std::fopen("/proc/meminfo", "r");
  if (meminfo == nullptr) return std::nullopt;
  std::optional<std::uint64_t> available;
  char line[256];
  while (std::fgets(line, sizeof line, meminfo) != nullptr) {
    unsigned long long kib = 0;
    if (std::sscanf(line, "MemAvailable: %llu kB", &kib) == 1) available = std::uint64_t{kib} * 1024;
  }
  std::fclose(meminfo);
  return available;
}

}  // namespace

Result<std::unique_ptr<Segment>> Segment::create(const std::string& label, const LayoutSpec& spec) {
  Result<Layout> computed = compute_layout(spec);
  if (!computed) return computed.error();
  const Layout& layout = computed.value();
  // Reserving more than the machine has would not fail cleanly: the kernel would reclaim
  // and kill processes before posix_fallocate gave up.
  if (const std::optional<std::uint64_t> available = available_memory(); available && layout.total_size > *available) {
    return failure(ErrorCode::no_space, "segment '" + label + "' needs " + std::to_string(layout.total_size >> 20) +
                                            " MiB and the machine has " + std::to_string(*available >> 20) +
                                            " MiB available; shrink the size classes and queues");
  }
  const int fd = ::memfd_create(label.c_str(), MFD_CLOEXEC | MFD_ALLOW_SEALING);
  if (fd == -1) return io_failure(label, "create", errno);
  if (const int error = ::posix_fallocate(fd, 0, static_cast<off_t>(layout.total_size))) {
    ::close(fd);
    return io_failure(label, "reserve", error);
  }
  if (::fcntl(fd, F_ADD_SEALS, kSeals | F_SEAL_SEAL) == -1) {
    const int error = errno;
    ::close(fd);
    return io_failure(label, "seal", error);
  }
  void* base = ::mmap(nullptr, layout.total_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  if (base == MAP_FAILED) {
    const int error = errno;
    ::close(fd);
    return io_failure(label, "map", error);
  }
  initialise(static_cast<std::byte*>(base), layout);
  return std::unique_ptr<Segment>(new Segment(fd, static_cast<std::byte*>(base), layout.total_size, layout));
}

Result<std::unique_ptr<Segment>> Segment::map(int fd) {
  const auto refuse = [fd](Error error) {
    ::close(fd);
    return error;
  };
  // Sealed against resizing, or a holder could truncate it under every mapper (SIGBUS).
  const int seals = ::fcntl(fd, F_GET_SEALS);
  if (seals == -1 || (seals & kSeals) != kSeals) {
    return refuse(failure(ErrorCode::segment_error, "the memory handed over as the bus's segment is not sealed "
                                                    "against resizing; refusing it"));
  }
  struct stat info {};
  if (::fstat(fd, &info) == -1) return refuse(io_failure("handed over", "stat", errno));
  const auto size = static_cast<std::uint64_t>(info.st_size);
  if (size < sizeof(SegmentHeader)) {
    return refuse(failure(ErrorCode::segment_error, "the memory handed over is too small for a segment"));
  }
  void* base = ::mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  if (base == MAP_FAILED) return refuse(io_failure("handed over", "map", errno));
  Result<Layout> layout = check_header(static_cast<std::byte*>(base), size);
  if (!layout) {
    ::munmap(base, size);
    return refuse(layout.error());
  }
  return std::unique_ptr<Segment>(new Segment(fd, static_cast<std::byte*>(base), size, std::move(layout).value()));
}

Segment::~Segment() {
  ::munmap(base_, size_);
  ::close(fd_);
}

ReadyRing Segment::ring(std::uint32_t index) const {
  const RingDescriptor& descriptor = layout_.rings[index];
  auto* header = reinterpret_cast<RingHeader*>(base() + descriptor.offset);
  return ReadyRing(header, reinterpret_cast<RingSlot*>(header + 1), descriptor.capacity);
}

LaneHeader& Segment::lane(std::uint32_t index) const {
  return *reinterpret_cast<LaneHeader*>(base() + layout_.lanes_offset + index * layout_.lane_stride);
}

std::span<LeaseEntry> Segment::leases(std::uint32_t lane_index) const {
  auto* first = reinterpret_cast<LeaseEntry*>(&lane(lane_index) + 1);
  return {first, layout_.leases_per_lane};
}

InstanceSlot& Segment::instance(std::uint32_t index) const {
  return reinterpret_cast<InstanceSlot*>(base() + layout_.instances_offset)[index];
}

}  // namespace exobus::shm
