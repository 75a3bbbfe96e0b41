#include "exobus/shm/bus_memory.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <random>
#include <utility>

namespace exobus::shm {

namespace {

constexpr std::uint64_t kMiB = 1024 * 1024;

std::uint64_t random_generation() {
  std::random_device random;
  return random() | (std::uint64_t{random()} << 32);
}

Result<std::uint64_t> size_of(int fd) {
  struct stat info {};
  if (::fstat(fd, &info) == -1) return Error{ErrorCode::io, "cannot stat the memory handed over"};
  return static_cast<std::uint64_t>(info.st_size);
}

std::string kind_name(RegionKind kind) { return std::string(to_string(kind)); }

}  // namespace

BusMemory::~BusMemory() = default;

Result<std::uint64_t> BusMemory::total_bytes(const BusShape& shape) {
  std::uint64_t total = Registry::bytes(shape.instance_slots, shape.region_slots) +
                        Directory::bytes(shape.directory.type_slots, shape.directory.link_slots);
  for (const BusShape::Type& type : shape.types) {
    const Result<TenantLayout> layout = compute_tenant_layout(type.shape);
    if (!layout) return Error{ErrorCode::config_error, "service type '" + type.name + "': " + layout.error().message};
    total += layout.value().bytes;
  }
  for (const BusShape::LinkEntry& link : shape.links) {
    const Result<LinkLayout> layout = compute_link_layout(link.shape);
    if (!layout) return layout.error();
    total += layout.value().sender_bytes + layout.value().receiver_bytes;
  }
  return total;
}

Result<std::unique_ptr<BusMemory>> BusMemory::create(const std::string& label, const BusShape& shape) {
  const Result<std::uint64_t> total = total_bytes(shape);
  if (!total) return total.error();
  if (const std::optional<std::uint64_t> available = available_memory(); available && total.value() > *available) {
    return Error{ErrorCode::no_space, "the bus's memory needs " + std::to_string(total.value() / kMiB) +
                                          " MiB and the machine has " + std::to_string(*available / kMiB) +
                                          " MiB available; shrink the size classes and queues"};
  }
  std::unique_ptr<BusMemory> memory(new BusMemory());

  const std::uint64_t registry_bytes = Registry::bytes(shape.instance_slots, shape.region_slots);
  Result<std::unique_ptr<Region>> registry = Region::create(label + ".registry", registry_bytes);
  if (!registry) return registry.error();
  memory->registry_ = std::make_unique<Registry>(registry.value()->base(), registry_bytes);
  memory->registry_->initialise(shape.instance_slots, shape.region_slots);
  if (Result<void> added = memory->add_region(RegionKind::registry, 0, std::move(registry).value()); !added) {
    return added.error();
  }

  const std::uint64_t directory_bytes = Directory::bytes(shape.directory.type_slots, shape.directory.link_slots);
  Result<std::unique_ptr<Region>> directory = Region::create(label + ".directory", directory_bytes);
  if (!directory) return directory.error();
  memory->directory_ = std::make_unique<Directory>(directory.value()->base(), directory_bytes);
  memory->directory_->initialise(shape.directory, random_generation());
  if (Result<void> added = memory->add_region(RegionKind::directory, 0, std::move(directory).value()); !added) {
    return added.error();
  }
  if (Result<void> views = memory->make_views(shape.directory.type_slots, shape.directory.link_slots); !views) {
    return views.error();
  }
  // Nothing is handed out yet, so the records go to the directory at once.
  for (const BusShape::Type& type : shape.types) {
    if (Result<void> added = memory->add_type(label, type); !added) return added.error();
    memory->publish_type(type);
  }
  for (const BusShape::LinkEntry& link : shape.links) {
    if (Result<void> added = memory->add_link(label, link); !added) return added.error();
    memory->publish_link(link);
  }
  return memory;
}

Result<void> BusMemory::make_views(std::uint32_t type_slots, std::uint32_t link_slots) {
  if (type_slots > 0xffff || link_slots > kMaxLinks) {
    return Error{ErrorCode::corrupted, "the bus's directory has more slots than a bus may"};
  }
  tenants_ = std::vector<std::atomic<Tenant*>>(type_slots);
  links_ = std::vector<std::atomic<Link*>>(link_slots);
  return {};
}

Result<void> BusMemory::add_type(const std::string& label, const BusShape::Type& type) {
  if (type.index >= tenants_.size()) return Error{ErrorCode::config_error, "no type slot left for '" + type.name + "'"};
  const Result<TenantLayout> layout = compute_tenant_layout(type.shape);
  if (!layout) return Error{ErrorCode::config_error, "service type '" + type.name + "': " + layout.error().message};
  Result<std::unique_ptr<Region>> region = Region::create(label + ".tenant." + type.name, layout.value().bytes);
  if (!region) return region.error();
  {
    std::lock_guard lock(mutex_);
    owned_tenants_.push_back(std::make_unique<Tenant>(type.index, type.shape, layout.value(), region.value()->base()));
    tenants_[type.index].store(owned_tenants_.back().get(), std::memory_order_release);
  }
  return add_region(RegionKind::tenant, type.index, std::move(region).value());
}

Result<void> BusMemory::add_link(const std::string& label, const BusShape::LinkEntry& link) {
  if (link.index >= links_.size()) return Error{ErrorCode::config_error, "no link slot left for a new route"};
  const Result<LinkLayout> layout = compute_link_layout(link.shape);
  if (!layout) return layout.error();
  const std::string name = label + ".link." + std::to_string(link.shape.sender) + "-" + std::to_string(link.shape.receiver);
  Result<std::unique_ptr<Region>> sender = Region::create(name + ".sender", layout.value().sender_bytes);
  if (!sender) return sender.error();
  Result<std::unique_ptr<Region>> receiver = Region::create(name + ".receiver", layout.value().receiver_bytes);
  if (!receiver) return receiver.error();
  {
    std::lock_guard lock(mutex_);
    owned_links_.push_back(std::make_unique<Link>(link.index, link.shape, layout.value(), sender.value()->base(),
                                                  receiver.value()->base()));
    links_[link.index].store(owned_links_.back().get(), std::memory_order_release);
  }
  if (Result<void> added = add_region(RegionKind::sender_half, link.index, std::move(sender).value()); !added) {
    return added;
  }
  return add_region(RegionKind::receiver_half, link.index, std::move(receiver).value());
}

void BusMemory::publish_type(const BusShape::Type& type) { directory_->add_type(type.index, type.name, type.shape); }

void BusMemory::publish_link(const BusShape::LinkEntry& link) { directory_->add_link(link.index, link.shape); }

Result<void> BusMemory::add_region(RegionKind kind, std::uint32_t index, std::unique_ptr<Region> region) {
  std::lock_guard lock(mutex_);
  // The daemon records every object, the registry itself first, in the order the keeper
  // holds them; an instance (no registry) only maps what it was granted.
  if (registry_ != nullptr && !registry_->append_region(kind, index)) {
    return Error{ErrorCode::config_error, "the bus's registry has no room for another memory object; restart "
                                          "exobusd with --reset to lay the bus out anew"};
  }
  regions_.push_back({kind, index, std::move(region)});
  return {};
}

Region* BusMemory::find(RegionKind kind, std::uint32_t index) const {
  for (const Mapped& mapped : regions_) {
    if (mapped.kind == kind && mapped.index == index) return mapped.region.get();
  }
  return nullptr;
}

const Region* BusMemory::region(RegionKind kind, std::uint32_t index) const {
  std::lock_guard lock(mutex_);
  return find(kind, index);
}

std::vector<Grant> BusMemory::grants_for(std::uint16_t type) const {
  std::vector<Grant> grants;
  const auto grant = [&](RegionKind kind, std::uint32_t index, bool writable) {
    const Region* region = this->region(kind, index);
    if (region != nullptr) grants.push_back({kind, index, writable, writable ? region->fd() : region->read_only_fd()});
  };
  grant(RegionKind::directory, 0, false);
  grant(RegionKind::tenant, type, true);
  for (std::uint32_t index = 0; index < links_.size(); ++index) {
    const Link* mapped = link(index);
    if (mapped == nullptr || (mapped->sender() != type && mapped->receiver() != type)) continue;
    grant(RegionKind::sender_half, index, mapped->sender() == type);
    grant(RegionKind::receiver_half, index, mapped->receiver() == type);
  }
  return grants;
}

std::vector<const Region*> BusMemory::regions_in_order() const {
  std::lock_guard lock(mutex_);
  std::vector<const Region*> ordered;
  for (const Mapped& mapped : regions_) ordered.push_back(mapped.region.get());
  return ordered;
}

Result<void> BusMemory::complete(RegionKind kind, std::uint32_t index) {
  std::lock_guard lock(mutex_);
  if (kind == RegionKind::tenant) {
    const std::optional<TenantShape> shape = directory_->type_shape(static_cast<std::uint16_t>(index));
    Region* region = find(kind, index);
    if (!shape || region == nullptr) return Error{ErrorCode::protocol, "memory granted for an unknown service type"};
    const Result<TenantLayout> layout = compute_tenant_layout(*shape);
    if (!layout) return Error{ErrorCode::corrupted, "the directory holds a bad type shape"};
    owned_tenants_.push_back(
        std::make_unique<Tenant>(static_cast<std::uint16_t>(index), *shape, layout.value(), region->base()));
    tenants_[index].store(owned_tenants_.back().get(), std::memory_order_release);
    return {};
  }
  Region* sender = find(RegionKind::sender_half, index);
  Region* receiver = find(RegionKind::receiver_half, index);
  if (sender == nullptr || receiver == nullptr) return {};  // the other half comes later
  const std::optional<LinkShape> shape = directory_->link_shape(index);
  if (!shape) return Error{ErrorCode::protocol, "memory granted for an unknown link"};
  const Result<LinkLayout> layout = compute_link_layout(*shape);
  if (!layout) return Error{ErrorCode::corrupted, "the directory holds a bad link shape"};
  owned_links_.push_back(std::make_unique<Link>(index, *shape, layout.value(), sender->base(), receiver->base()));
  links_[index].store(owned_links_.back().get(), std::memory_order_release);
  return {};
}

namespace {

// The bytes a region of this kind and index must hold, from the directory's shapes.
Result<std::uint64_t> expected_bytes(const Directory& directory, RegionKind kind, std::uint32_t index) {
  if (kind == RegionKind::tenant) {
    // An index past 16 bits must not wrap onto a known type: complete() indexes the views
    // with the whole index.
    const std::optional<TenantShape> shape =
        index <= 0xffff ? directory.type_shape(static_cast<std::uint16_t>(index)) : std::nullopt;
    if (!shape) return Error{ErrorCode::protocol, "memory granted for service type " + std::to_string(index) +
                                                      ", which the bus's directory does not know"};
    const Result<TenantLayout> layout = compute_tenant_layout(*shape);
    if (!layout) return Error{ErrorCode::corrupted, "the bus's directory holds a bad type shape"};
    return layout.value().bytes;
  }
  if (kind == RegionKind::sender_half || kind == RegionKind::receiver_half) {
    const std::optional<LinkShape> shape = directory.link_shape(index);
    if (!shape) return Error{ErrorCode::protocol, "memory granted for link " + std::to_string(index) +
                                                      ", which the bus's directory does not know"};
    const Result<LinkLayout> layout = compute_link_layout(*shape);
    if (!layout) return Error{ErrorCode::corrupted, "the bus's directory holds a bad link shape"};
    return kind == RegionKind::sender_half ? layout.value().sender_bytes : layout.value().receiver_bytes;
  }
  return Error{ErrorCode::protocol, "a " + kind_name(kind) + " is not granted to instances"};
}

}  // namespace

Result<std::unique_ptr<BusMemory>> BusMemory::attach(std::span<Grant> grants) {
  std::unique_ptr<BusMemory> memory(new BusMemory());
  // Every descriptor is ours from here on: a refusal closes those not yet taken over.
  const auto refuse = [&](Error error) {
    for (Grant& grant : grants) {
      if (grant.fd != -1) ::close(std::exchange(grant.fd, -1));
    }
    return error;
  };
  Grant* directory = nullptr;
  for (Grant& grant : grants) {
    if (grant.kind == RegionKind::directory) directory = &grant;
  }
  if (directory == nullptr) return refuse(Error{ErrorCode::protocol, "exobusd granted no directory of the bus"});
  const Result<std::uint64_t> size = size_of(directory->fd);
  if (!size) return refuse(size.error());
  Result<std::unique_ptr<Region>> mapped = Region::map(std::exchange(directory->fd, -1), size.value(), false);
  if (!mapped) return refuse(mapped.error());
  memory->directory_ = std::make_unique<Directory>(mapped.value()->base(), size.value());
  if (Result<void> checked = memory->directory_->check(); !checked) return refuse(checked.error());
  if (Result<void> added = memory->add_region(RegionKind::directory, 0, std::move(mapped).value()); !added) {
    return refuse(added.error());
  }
  if (Result<void> views = memory->make_views(memory->directory_->type_slots(), memory->directory_->link_slots());
      !views) {
    return refuse(views.error());
  }
  if (Result<void> rest = memory->attach_more(grants); !rest) return rest.error();
  return memory;
}

Result<void> BusMemory::attach_more(std::span<Grant> grants) {
  Result<void> outcome;
  for (Grant& grant : grants) {
    const int fd = std::exchange(grant.fd, -1);
    if (fd == -1) continue;
    if (!outcome || grant.kind == RegionKind::directory || region(grant.kind, grant.index) != nullptr) {
      ::close(fd);  // known already (a reload grants everything again), or given up on
      continue;
    }
    const Result<std::uint64_t> bytes = expected_bytes(*directory_, grant.kind, grant.index);
    if (!bytes) {
      ::close(fd);
      outcome = bytes.error();
      continue;
    }
    Result<std::unique_ptr<Region>> mapped = Region::map(fd, bytes.value(), grant.writable);
    if (!mapped) {
      outcome = mapped.error();
      continue;
    }
    if (Result<void> added = add_region(grant.kind, grant.index, std::move(mapped).value()); !added) {
      outcome = added;
      continue;
    }
    if (Result<void> completed = complete(grant.kind, grant.index); !completed) outcome = completed;
  }
  return outcome;
}

Result<std::unique_ptr<BusMemory>> BusMemory::adopt(std::vector<int> fds) {
  const auto close_all = [&](std::size_t from) {
    for (std::size_t k = from; k < fds.size(); ++k) ::close(fds[k]);
  };
  if (fds.size() < 2) {
    close_all(0);
    return Error{ErrorCode::segment_error, "the keeper gave back too little memory to be a bus"};
  }
  std::unique_ptr<BusMemory> memory(new BusMemory());
  const Result<std::uint64_t> registry_size = size_of(fds[0]);
  if (!registry_size) {
    close_all(0);
    return registry_size.error();
  }
  Result<std::unique_ptr<Region>> registry = Region::map(fds[0], registry_size.value(), true);
  if (!registry) {
    close_all(1);
    return registry.error();
  }
  memory->registry_ = std::make_unique<Registry>(registry.value()->base(), registry_size.value());
  if (Result<void> checked = memory->registry_->check(); !checked) {
    close_all(1);
    return checked.error();
  }
  const Registry& listed = *memory->registry_;
  // A daemon that died between recording an object and handing it to the keeper leaves the
  // registry one entry longer than the keeper's list; that object was never in use.
  const std::uint32_t count = std::min<std::uint32_t>(listed.region_count(), static_cast<std::uint32_t>(fds.size()));
  memory->regions_.push_back({RegionKind::registry, 0, std::move(registry).value()});
  if (count < 2 || listed.region(1).kind != RegionKind::directory) {
    close_all(1);
    return Error{ErrorCode::corrupted, "the bus's registry does not list its directory second"};
  }
  const Result<std::uint64_t> directory_size = size_of(fds[1]);
  if (!directory_size) {
    close_all(1);
    return directory_size.error();
  }
  Result<std::unique_ptr<Region>> directory = Region::map(fds[1], directory_size.value(), true);
  if (!directory) {
    close_all(2);
    return directory.error();
  }
  memory->directory_ = std::make_unique<Directory>(directory.value()->base(), directory_size.value());
  if (Result<void> checked = memory->directory_->check(); !checked) {
    close_all(2);
    return checked.error();
  }
  memory->regions_.push_back({RegionKind::directory, 0, std::move(directory).value()});
  if (Result<void> views = memory->make_views(memory->directory_->type_slots(), memory->directory_->link_slots());
      !views) {
    close_all(2);
    return views.error();
  }
  // Truncate the registry to what the keeper holds; recorded-but-unkept objects go.
  memory->registry_->header().region_count.store(count, std::memory_order_release);
  for (std::uint32_t k = 2; k < fds.size(); ++k) {
    if (k >= count) {
      ::close(fds[k]);  // kept but never recorded: a daemon that died in between
      continue;
    }
    const RegionEntry entry = listed.region(k);
    const Result<std::uint64_t> bytes = expected_bytes(*memory->directory_, entry.kind, entry.index);
    if (!bytes) {
      // Recorded and kept, but its directory record was never written (a daemon that died
      // at a reload): nobody was granted it. It and whatever followed it go; the daemon
      // hands the keeper the shorter list.
      close_all(k);
      memory->registry_->header().region_count.store(k, std::memory_order_release);
      break;
    }
    Result<std::unique_ptr<Region>> mapped = Region::map(fds[k], bytes.value(), true);
    if (!mapped) {
      close_all(k + 1);
      return mapped.error();
    }
    if (Result<void> opened = mapped.value()->open_read_only(); !opened) {
      close_all(k + 1);
      return opened.error();
    }
    memory->regions_.push_back({entry.kind, entry.index, std::move(mapped).value()});
    if (Result<void> completed = memory->complete(entry.kind, entry.index); !completed) {
      close_all(k + 1);
      return completed.error();
    }
  }
  if (Result<void> opened = memory->regions_[1].region->open_read_only(); !opened) return opened.error();
  return memory;
}

}  // namespace exobus::shm
