// Fuzz target: the checks of Segment::map (segment.hpp) on hostile memory. The input bytes
// become a sealed memory object of the input's size, handed to Segment::map as a
// registration hands one over; an accepted segment is audited (every chunk, ring and lease
// word is read).
#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>

#include "exobus/shm/data_plane.hpp"
#include "exobus/shm/segment.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const int fd = ::memfd_create("exobus-fuzz-segment", MFD_CLOEXEC | MFD_ALLOW_SEALING);
  if (fd == -1) std::abort();
  std::size_t done = 0;
  while (done < size) {
    const ssize_t written = ::write(fd, data + done, size - done);
    if (written <= 0) std::abort();
    done += static_cast<std::size_t>(written);
  }
  if (::fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW) == -1) std::abort();
  const exobus::Result<std::unique_ptr<exobus::shm::Segment>> mapped = exobus::shm::Segment::map(fd);
  if (mapped) {
    const exobus::shm::DataPlane plane(*mapped.value());
    [[maybe_unused]] const exobus::shm::BusAudit audit = plane.audit();
  }
  return 0;
}
