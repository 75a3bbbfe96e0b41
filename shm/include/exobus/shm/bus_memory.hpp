#pragma once
// All the memory of a bus that one process maps, and the views over it. The memory is made
// of one object per concern, each written by one party:
//
//   object             written by                 mapped by
//   registry           the daemon                 the daemon
//   directory          the daemon                 everyone, read-only
//   tenant(T)          T's instances              T's instances
//   link(S->R) sender  S's instances              S's instances; R's read-only
//   link(S->R) recv.   R's instances              R's instances; S's read-only
//
// (the daemon maps everything writable, to recover and repair). So an instance of T maps
// the directory, its tenant memory, and the two halves of every link with T at one end,
// and nothing else: no other type's messages, queues or leases are in its address space.
//
// The daemon makes a bus with create() and keeps every descriptor with the keeper; after a
// restart, adopt() maps what the keeper gave back. An instance attach()es the grants of
// its registration. Links and types added by a reload are added to both while other
// threads use the rest: lookups are lock-free, additions take a lock.
#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <vector>

#include "exobus/error.hpp"
#include "exobus/shm/directory.hpp"
#include "exobus/shm/link.hpp"
#include "exobus/shm/region.hpp"
#include "exobus/shm/registry.hpp"
#include "exobus/shm/tenant.hpp"

namespace exobus::shm {

// What the daemon lays out: the directory's shape, the instance slots of the whole bus,
// and every type and link in use.
struct BusShape {
  struct Type {
    std::uint16_t index = 0;
    std::string name;
    TenantShape shape;
  };
  struct LinkEntry {
    std::uint32_t index = 0;
    LinkShape shape;
  };
  DirectoryShape directory;
  std::uint32_t instance_slots = 0;
  std::uint32_t region_slots = 0;
  std::vector<Type> types;
  std::vector<LinkEntry> links;
};

// One memory object an instance is granted, as its registration reply lists it.
struct Grant {
  RegionKind kind;
  std::uint32_t index = 0;  // type of a tenant, link of a half
  bool writable = false;
  int fd = -1;  // taken over by attach()
};

class BusMemory {
 public:
  // The daemon: lays out every object, after checking the total against the memory the
  // machine has. `label` prefixes the objects' names (e.g. "exobus.demo"). Errors:
  // no_space, config_error (a bad shape), io.
  static Result<std::unique_ptr<BusMemory>> create(const std::string& label, const BusShape& shape);
  // The daemon: maps the memory its keeper gave back, the registry first. Errors:
  // segment_error, corrupted, version_mismatch, io.
  static Result<std::unique_ptr<BusMemory>> adopt(std::vector<int> fds);
  // An instance: maps its grants (the directory first, then the rest in any order).
  // Errors: protocol (a grant the directory does not know), segment_error, corrupted,
  // version_mismatch, io.
  static Result<std::unique_ptr<BusMemory>> attach(std::span<Grant> grants);

  ~BusMemory();
  BusMemory(const BusMemory&) = delete;
  BusMemory& operator=(const BusMemory&) = delete;

  // The daemon, at a reload: lays out a new type or link, recorded in the registry. Its
  // record goes to the directory with publish_...(), once the keeper holds the new memory:
  // a daemon that dies in between leaves an object nobody was told of. Errors: as create().
  Result<void> add_type(const std::string& label, const BusShape::Type& type);
  Result<void> add_link(const std::string& label, const BusShape::LinkEntry& link);
  void publish_type(const BusShape::Type& type);
  void publish_link(const BusShape::LinkEntry& link);
  // An instance, after a reload: maps grants it does not hold yet (known ones are closed).
  Result<void> attach_more(std::span<Grant> grants);

  Directory& directory() const { return *directory_; }
  // Only the daemon's: null in an instance.
  Registry* registry() const { return registry_.get(); }
  // Null when this process does not map that type's memory, or both halves of that link.
  Tenant* tenant(std::uint16_t type) const {
    return type < tenants_.size() ? tenants_[type].load(std::memory_order_acquire) : nullptr;
  }
  Link* link(std::uint32_t index) const {
    return index < links_.size() ? links_[index].load(std::memory_order_acquire) : nullptr;
  }
  std::uint32_t link_slots() const { return static_cast<std::uint32_t>(links_.size()); }
  std::uint32_t type_slots() const { return static_cast<std::uint32_t>(tenants_.size()); }
  std::uint64_t bus_generation() const { return directory_->header().bus_generation; }

  // The object of a kind and index, for handing on; null when not mapped here.
  const Region* region(RegionKind kind, std::uint32_t index) const;
  // What an instance of `type` is granted, exactly what the type needs: the directory
  // (read-only), its tenant memory, and both halves of every link with `type` at one end,
  // writable on its own side, read-only on the other. Nothing of any other type's. The
  // descriptors are this memory's own: pass or duplicate them.
  std::vector<Grant> grants_for(std::uint16_t type) const;
  // Every object in the order the registry lists them (the keeper's order).
  std::vector<const Region*> regions_in_order() const;
  // Bytes of all the objects a shape makes.
  static Result<std::uint64_t> total_bytes(const BusShape& shape);

 private:
  struct Mapped {
    RegionKind kind;
    std::uint32_t index;
    std::unique_ptr<Region> region;
  };
  BusMemory() = default;
  Result<void> make_views(std::uint32_t type_slots, std::uint32_t link_slots);
  Result<void> add_region(RegionKind kind, std::uint32_t index, std::unique_ptr<Region> region);
  // Builds the view a new region completes (a tenant, or a link with both halves).
  Result<void> complete(RegionKind kind, std::uint32_t index);
  Region* find(RegionKind kind, std::uint32_t index) const;

  mutable std::mutex mutex_;  // guards regions_ and the additions; lookups need none
  std::vector<Mapped> regions_;
  std::unique_ptr<Directory> directory_;
  std::unique_ptr<Registry> registry_;
  // Views, set once each (release) and never removed while the memory is mapped.
  std::vector<std::atomic<Tenant*>> tenants_;
  std::vector<std::atomic<Link*>> links_;
  std::vector<std::unique_ptr<Tenant>> owned_tenants_;
  std::vector<std::unique_ptr<Link>> owned_links_;
};

}  // namespace exobus::shm
