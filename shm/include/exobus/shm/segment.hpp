#pragma once
// A bus's data segment: memory the daemon creates and hands, as a file descriptor over the
// control socket, to the instances it registered. Nothing names it in a file system, so no
// other user can create it first, open it, or replace it; it is sealed against shrinking and
// growing, so nobody who holds it can make another process's access fault (SIGBUS).
//
// Creation (by the daemon; a crash at any step leaves nothing, since the memory lives only
// in the creator's descriptor until it is handed out):
//   1. memfd_create(MFD_ALLOW_SEALING), sized with posix_fallocate: a machine without the
//      memory fails here with no_space, never later at first touch.
//   2. seal it: F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL.
//   3. map, initialise every structure, write the header, store the magic last (release).
// A mapper checks the seals, the magic (acquire), the layout version, and recomputes the
// layout from the header's counts: a mismatch anywhere is refused with a clear error.
#include <sys/types.h>

#include <cstddef>
#include <memory>
#include <span>
#include <string>

#include "exobus/error.hpp"
#include "exobus/shm/bus_layout.hpp"

namespace exobus::shm {

class Segment {
 public:
  // `label` names the memory in /proc/<pid>/fd and in logs (e.g. "exobus.demo.data").
  // Errors: no_space, config_error (a bad spec), io.
  static Result<std::unique_ptr<Segment>> create(const std::string& label, const LayoutSpec& spec);
  // Takes over `fd` (closed on failure too) and maps it. Errors: segment_error (not a sealed
  // memory object, or too small), corrupted, version_mismatch, not_initialised, io.
  static Result<std::unique_ptr<Segment>> map(int fd);

  ~Segment();
  Segment(const Segment&) = delete;
  Segment& operator=(const Segment&) = delete;

  // The descriptor, to hand on (the daemon to instances, and to the keeper that holds the
  // bus's memory across daemon restarts). Owned by the segment.
  int fd() const { return fd_; }
  std::byte* base() const { return base_; }
  const Layout& layout() const { return layout_; }
  SegmentHeader& header() const { return *reinterpret_cast<SegmentHeader*>(base_); }

  ChunkPool pool() const { return ChunkPool(base_, layout_.size_classes); }
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
  Segment(int fd, std::byte* base, std::size_t size, Layout layout)
      : fd_(fd), base_(base), size_(size), layout_(std::move(layout)) {}
  int fd_;
  std::byte* base_;
  std::size_t size_;
  Layout layout_;  // process-local copy: never re-read from shared memory
};

}  // namespace exobus::shm
