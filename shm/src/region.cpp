#include "exobus/shm/region.hpp"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <string>

namespace exobus::shm {

namespace {

constexpr int kSeals = F_SEAL_SHRINK | F_SEAL_GROW;

Error io_failure(const std::string& label, const char* action, int error) {
  if (error == ENOSPC || error == ENOMEM) {
    return Error{ErrorCode::no_space, "not enough memory for '" + label +
                                          "'; free memory, or shrink the size classes and queues"};
  }
  return Error{ErrorCode::io, "cannot " + std::string(action) + " '" + label + "': " + std::strerror(error)};
}

// A second, read-only open file description of `fd`'s memory object.
int reopen_read_only(int fd) {
  const std::string path = "/proc/self/fd/" + std::to_string(fd);
  return ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
}

}  // namespace

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

Result<std::unique_ptr<Region>> Region::create(const std::string& label, std::uint64_t bytes) {
  const int fd = ::memfd_create(label.c_str(), MFD_CLOEXEC | MFD_ALLOW_SEALING);
  if (fd == -1) return io_failure(label, "create", errno);
  const auto fail = [&](const char* action, int error) {
    ::close(fd);
    return io_failure(label, action, error);
  };
  // The inode's own mode guards /proc/<pid>/fd/N: with 0600 only the daemon's user could
  // reopen it there (and it may ptrace the daemon anyway), so a read-only grant stays one.
  if (::fchmod(fd, 0600) == -1) return fail("restrict", errno);
  if (const int error = ::posix_fallocate(fd, 0, static_cast<off_t>(bytes))) return fail("reserve", error);
  if (::fcntl(fd, F_ADD_SEALS, kSeals | F_SEAL_SEAL) == -1) return fail("seal", errno);
  const int read_only = reopen_read_only(fd);
  if (read_only == -1) return fail("reopen read-only", errno);
  void* base = ::mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  if (base == MAP_FAILED) {
    const int error = errno;
    ::close(read_only);
    return fail("map", error);
  }
  struct stat info {};
  ::fstat(fd, &info);
  return std::unique_ptr<Region>(
      new Region(fd, read_only, static_cast<std::byte*>(base), bytes, true, info.st_dev, info.st_ino));
}

Result<std::unique_ptr<Region>> Region::map(int fd, std::uint64_t bytes, bool writable) {
  const auto refuse = [fd](Error error) {
    ::close(fd);
    return error;
  };
  // Sealed against resizing, or a holder could truncate it under every mapper (SIGBUS).
  const int seals = ::fcntl(fd, F_GET_SEALS);
  if (seals == -1 || (seals & kSeals) != kSeals) {
    return refuse(Error{ErrorCode::segment_error,
                        "the memory handed over is not sealed against resizing; refusing it"});
  }
  struct stat info {};
  if (::fstat(fd, &info) == -1) return refuse(io_failure("handed-over memory", "stat", errno));
  if (static_cast<std::uint64_t>(info.st_size) != bytes) {
    return refuse(Error{ErrorCode::segment_error, "the memory handed over holds " + std::to_string(info.st_size) +
                                                      " bytes where its layout needs " + std::to_string(bytes) +
                                                      "; run services and exobusd of the same release"});
  }
  void* base = ::mmap(nullptr, bytes, writable ? PROT_READ | PROT_WRITE : PROT_READ, MAP_SHARED, fd, 0);
  if (base == MAP_FAILED) return refuse(io_failure("handed-over memory", "map", errno));
  return std::unique_ptr<Region>(
      new Region(fd, -1, static_cast<std::byte*>(base), bytes, writable, info.st_dev, info.st_ino));
}

Result<void> Region::open_read_only() {
  if (read_only_fd_ != -1) return {};
  read_only_fd_ = reopen_read_only(fd_);
  if (read_only_fd_ == -1) return io_failure("bus memory", "reopen read-only", errno);
  return {};
}

Region::~Region() {
  ::munmap(base_, size_);
  ::close(fd_);
  if (read_only_fd_ != -1) ::close(read_only_fd_);
}

}  // namespace exobus::shm
