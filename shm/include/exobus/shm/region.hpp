#pragma once
// One memory object of a bus: memory the daemon creates and hands, as a file descriptor
// over the control socket, to the instances it registered, writable or read-only as their
// service type needs. Nothing names it in a file system, so no other user can create it
// first, open it, or replace it; it is sealed against shrinking and growing, so nobody who
// holds it can make another process's access fault (SIGBUS).
//
// Creation (by the daemon; a crash at any step leaves nothing, since the memory lives only
// in the creator's descriptors until it is handed out):
//   1. memfd_create(MFD_ALLOW_SEALING), mode 0600 (no other user may reopen it through
//      /proc/<pid>/fd), sized with posix_fallocate: a machine without the memory fails here
//      with no_space, never later at first touch.
//   2. seal it: F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL.
//   3. a second descriptor opened read-only (through /proc/self/fd): what read-only grants
//      pass. Its holder cannot map it writable, nor mprotect a mapping of it to writable.
// A mapper checks the seals and that the size is exactly what the layout says.
#include <sys/types.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "exobus/error.hpp"

namespace exobus::shm {

class Region {
 public:
  // `label` names the memory in /proc/<pid>/fd and in logs (e.g. "exobus.demo.tenant.web").
  // Zero-filled. Errors: no_space, io.
  static Result<std::unique_ptr<Region>> create(const std::string& label, std::uint64_t bytes);
  // Takes over `fd` (closed on failure too) and maps it, writable or not. Errors:
  // segment_error (not a sealed memory object, or not `bytes` long), io.
  static Result<std::unique_ptr<Region>> map(int fd, std::uint64_t bytes, bool writable);

  ~Region();
  Region(const Region&) = delete;
  Region& operator=(const Region&) = delete;

  // A read-only descriptor of a writable region, for read-only grants (the daemon, after
  // mapping memory its keeper gave back). Errors: io.
  Result<void> open_read_only();

  // The descriptors, to hand on: writable (the daemon's own, the keeper's, writing
  // instances') and read-only (reading instances'); -1 when this process has none.
  int fd() const { return fd_; }
  int read_only_fd() const { return read_only_fd_; }
  std::byte* base() const { return base_; }
  std::uint64_t size() const { return size_; }
  bool writable() const { return writable_; }
  // Which memory object this is, for telling one from another without trusting its bytes.
  dev_t device() const { return device_; }
  ino_t inode() const { return inode_; }

 private:
  Region(int fd, int read_only_fd, std::byte* base, std::uint64_t size, bool writable, dev_t device, ino_t inode)
      : fd_(fd), read_only_fd_(read_only_fd), base_(base), size_(size), writable_(writable), device_(device),
        inode_(inode) {}
  int fd_;
  int read_only_fd_;
  std::byte* base_;
  std::uint64_t size_;
  bool writable_;
  dev_t device_;
  ino_t inode_;
};

// MemAvailable of /proc/meminfo in bytes, or nothing when it cannot be read: the daemon
// checks a whole bus against it before creating anything, since reserving more than the
// machine has would not fail cleanly (the kernel would reclaim and kill first).
std::optional<std::uint64_t> available_memory();

}  // namespace exobus::shm
