#include "exobus/shm/segment.hpp"

#include <fcntl.h>
#include <sys/stat.h>

#include <boost/interprocess/shared_memory_object.hpp>
#include <cerrno>
#include <cstring>
#include <random>

namespace exobus::shm {

namespace bip = boost::interprocess;

namespace {

Error failure(ErrorCode code, std::string message) { return Error{code, std::move(message)}; }

std::string quoted(const std::string& name) { return "'/dev/shm/" + name + "'"; }

Error failure_from_errno(int error, const std::string& name, const char* action) {
  switch (error) {
    case EEXIST:
      return failure(ErrorCode::already_exists, "segment " + quoted(name) + " already exists");
    case ENOENT:
      return failure(ErrorCode::not_found,
                     "segment " + quoted(name) + " does not exist; is exobusd running for this bus?");
    case EACCES:
    case EPERM:
      return failure(ErrorCode::permission_denied,
                     "permission denied to " + std::string(action) + " segment " + quoted(name) +
                         "; run as a user or group allowed by the bus (segment-mode and group in application.yml)");
    case ENOSPC:
      return failure(ErrorCode::no_space,
                     "not enough space in /dev/shm for segment " + quoted(name) +
                         "; free space, enlarge /dev/shm, or shrink the size classes and queues");
    default:
      return failure(ErrorCode::io, "cannot " + std::string(action) + " segment " +
                                                 quoted(name) + ": " + std::strerror(error));
  }
}

int native_error(const bip::interprocess_exception& exception) {
  return exception.get_native_error() != 0 ? exception.get_native_error() : EIO;
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
  // idle, FREE, free. posix_fallocate on tmpfs hands out zeroed pages, so nothing to do.
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
  std::memcpy(base + layout.rings_offset, layout.rings.data(),
              layout.rings.size() * sizeof(RingDescriptor));
  // Release: every store above is visible to an opener that acquires the magic.
  header.magic.store(kSegmentMagic, std::memory_order_release);
}

}  // namespace

Result<std::unique_ptr<Segment>> Segment::create(const std::string& name, const LayoutSpec& spec, mode_t mode,
                              std::optional<gid_t> group) {
  if ((mode & 0007) != 0 || (mode & 0600) != 0600) {
    return failure(ErrorCode::config_error,
                   "segment mode must give the owner read-write and the world nothing");
  }
  Result<Layout> computed = compute_layout(spec);
  if (!computed) return computed.error();
  const Layout& layout = computed.value();
  try {
    bip::shared_memory_object object(bip::create_only, name.c_str(), bip::read_write,
                                     bip::permissions(0600));
    const int fd = object.get_mapping_handle().handle;
    if (const int error = ::posix_fallocate(fd, 0, static_cast<off_t>(layout.total_size))) {
      bip::shared_memory_object::remove(name.c_str());
      return failure_from_errno(error, name, "reserve");
    }
    bip::mapped_region region(object, bip::read_write);
    initialise(static_cast<std::byte*>(region.get_address()), layout);
    // The group first: chown may clear mode bits, fchmod then sets the final ones.
    if (group && ::fchown(fd, static_cast<uid_t>(-1), *group) != 0) {
      const int error = errno;
      bip::shared_memory_object::remove(name.c_str());
      return failure_from_errno(error, name, "set the group of");
    }
    if (::fchmod(fd, mode) != 0) {
      const int error = errno;
      bip::shared_memory_object::remove(name.c_str());
      return failure_from_errno(error, name, "set the mode of");
    }
    return std::unique_ptr<Segment>(new Segment(std::move(region), layout));
  } catch (const bip::interprocess_exception& exception) {
    return failure_from_errno(native_error(exception), name, "create");
  }
}

Result<std::unique_ptr<Segment>> Segment::open(const std::string& name) {
  try {
    bip::shared_memory_object object(bip::open_only, name.c_str(), bip::read_write);
    bip::offset_t size = 0;
    if (!object.get_size(size) || size < static_cast<bip::offset_t>(sizeof(SegmentHeader))) {
      return failure(ErrorCode::not_initialised,
                     "segment " + quoted(name) + " is half-initialised (too small); restart exobusd to rebuild it");
    }
    bip::mapped_region region(object, bip::read_write);
    auto* base = static_cast<std::byte*>(region.get_address());
    const auto& header = *reinterpret_cast<const SegmentHeader*>(base);
    const std::uint64_t magic = header.magic.load(std::memory_order_acquire);
    if (magic == 0) {
      return failure(ErrorCode::not_initialised,
                     "segment " + quoted(name) + " is half-initialised; restart exobusd to rebuild it");
    }
    if (magic != kSegmentMagic) {
      return failure(ErrorCode::corrupted, "segment " + quoted(name) + " is not an ExoBus segment");
    }
    if (header.layout_version != kLayoutVersion) {
      return failure(ErrorCode::version_mismatch,
                     "segment " + quoted(name) + " has layout version " +
                         std::to_string(header.layout_version) + " but this library speaks version " +
                         std::to_string(kLayoutVersion) + "; run services and exobusd of the same release");
    }
    const bool counts_sane = header.size_class_count >= 1 && header.size_class_count <= kMaxSizeClasses &&
                             header.ring_count >= 1 && header.ring_count <= kMaxRings &&
                             header.rings_offset == ((sizeof(SegmentHeader) + 63) / 64 * 64) &&
                             header.rings_offset + header.ring_count * sizeof(RingDescriptor) <=
                                 static_cast<std::uint64_t>(size);
    if (!counts_sane) {
      return failure(ErrorCode::corrupted, "segment " + quoted(name) + " has a corrupt header");
    }
    const auto* rings = reinterpret_cast<const RingDescriptor*>(base + header.rings_offset);
    const Result<Layout> computed = compute_layout(spec_from(header, rings));
    if (!computed) {
      return failure(ErrorCode::corrupted,
                     "segment " + quoted(name) + " has an inconsistent layout (" + computed.error().message + ")");
    }
    const Layout& layout = computed.value();
    bool consistent = layout.total_size == header.total_size &&
                      layout.total_size == static_cast<std::uint64_t>(size) &&
                      layout.instances_offset == header.instances_offset &&
                      layout.lanes_offset == header.lanes_offset;
    for (std::size_t r = 0; consistent && r < layout.rings.size(); ++r) {
      consistent = layout.rings[r].offset == rings[r].offset;
    }
    for (std::size_t c = 0; consistent && c < layout.size_classes.size(); ++c) {
      consistent = layout.size_classes[c].offset == header.size_classes[c].offset &&
                   layout.size_classes[c].first_chunk == header.size_classes[c].first_chunk;
    }
    if (!consistent) {
      return failure(ErrorCode::corrupted, "segment " + quoted(name) + " has an inconsistent layout");
    }
    return std::unique_ptr<Segment>(new Segment(std::move(region), layout));
  } catch (const bip::interprocess_exception& exception) {
    return failure_from_errno(native_error(exception), name, "open");
  }
}

bool Segment::remove(const std::string& name) {
  return bip::shared_memory_object::remove(name.c_str());
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
