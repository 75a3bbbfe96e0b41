#pragma once
// A bus's data segment: created once by the daemon, mapped by every process of the bus.
//
// Creation protocol (a crash at any step leaves either nothing, or a segment that openers
// refuse as half-initialised and the next daemon removes):
//   1. shm_open(O_CREAT | O_EXCL, 0600): only the creator can open it while it is built.
//   2. posix_fallocate the full size: a too-small /dev/shm fails here with ENOSPC, never
//      later with SIGBUS on first touch.
//   3. map, initialise every structure, write the header, store the magic last (release).
//   4. fchmod to the final mode (owner/group only): now the bus's services may open it.
// Openers check the magic (acquire), the layout version, and recompute the layout from the
// header's counts: a mismatch anywhere is refused with a clear error.
#include <sys/types.h>

#include <boost/interprocess/mapped_region.hpp>
#include <memory>
#include <optional>
#include <span>
#include <string>

#include "exobus/error.hpp"
#include "exobus/shm/bus_layout.hpp"

namespace exobus::shm {

class Segment {
 public:
  // name: the shm object name without the leading slash, e.g. "exobus.demo.data".
  // The segment gets exactly `mode`, whatever the umask, and belongs to `group` when given
  // (else to the creator's group).
  // Errors: already_exists, not_found, permission_denied, version_mismatch, not_initialised
  // (a creator has not finished, or died), corrupted, no_space, config_error (a bad spec or
  // mode), io.
  static Result<std::unique_ptr<Segment>> create(const std::string& name, const LayoutSpec& spec, mode_t mode,
                                                 std::optional<gid_t> group = std::nullopt);
  static Result<std::unique_ptr<Segment>> open(const std::string& name);
  static bool remove(const std::string& name);

  std::byte* base() const { return static_cast<std::byte*>(region_.get_address()); }
  const Layout& layout() const { return layout_; }
  SegmentHeader& header() const { return *reinterpret_cast<SegmentHeader*>(base()); }

  ChunkPool pool() const { return ChunkPool(base(), layout_.size_classes); }
  std::uint32_t ring_count() const { return static_cast<std::uint32_t>(layout_.rings.size()); }
  ReadyRing ring(std::uint32_t index) const;
  const RingDescriptor& ring_descriptor(std::uint32_t index) const { return layout_.rings[index]; }
  std::uint32_t lane_count() const { return layout_.max_instances * layout_.lanes_per_instance; }
  std::uint32_t instance_count() const { return layout_.max_instances; }
  LaneHeader& lane(std::uint32_t index) const;
  std::span<LeaseEntry> leases(std::uint32_t lane) const;
  LeaseTable lease_table(std::uint32_t lane) const { return LeaseTable(leases(lane)); }
  InstanceSlot& instance(std::uint32_t index) const;

 private:
  Segment(boost::interprocess::mapped_region region, Layout layout)
      : region_(std::move(region)), layout_(std::move(layout)) {}
  boost::interprocess::mapped_region region_;
  Layout layout_;  // process-local copy: never re-read from shared memory
};

}  // namespace exobus::shm
