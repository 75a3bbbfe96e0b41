// Fuzz target: the checks of Segment::open (segment.hpp) on a hostile segment. The input
// bytes become a shared-memory object of the input's size, which is then opened; an
// accepted segment is audited (every chunk, ring and lease word is read). The object is
// removed after each input.
#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "exobus/shm/data_plane.hpp"
#include "exobus/shm/segment.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static const std::string name = "exobus-fuzz-segment-" + std::to_string(::getpid());
  const int fd = ::shm_open(("/" + name).c_str(), O_CREAT | O_RDWR | O_TRUNC, 0600);
  if (fd == -1) std::abort();
  std::size_t done = 0;
  while (done < size) {
    const ssize_t written = ::write(fd, data + done, size - done);
    if (written <= 0) std::abort();
    done += static_cast<std::size_t>(written);
  }
  ::close(fd);
  {
    const exobus::Result<std::unique_ptr<exobus::shm::Segment>> opened = exobus::shm::Segment::open(name);
    if (opened) {
      const exobus::shm::DataPlane plane(*opened.value());
      [[maybe_unused]] const exobus::shm::BusAudit audit = plane.audit();
    }
  }
  ::shm_unlink(("/" + name).c_str());
  return 0;
}
