#include "exobus/shm/futex.hpp"

#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <ctime>

namespace exobus::shm {

namespace {

timespec relative_timespec(std::chrono::nanoseconds timeout) {
  const auto seconds = std::chrono::duration_cast<std::chrono::seconds>(timeout);
  return {static_cast<time_t>(seconds.count()), static_cast<long>((timeout - seconds).count())};
}

}  // namespace

void futex_wait(std::atomic<std::uint32_t>& word, std::uint32_t expected, std::chrono::nanoseconds timeout) {
  timespec relative = relative_timespec(timeout);
  // EAGAIN (word changed), EINTR and ETIMEDOUT all mean "re-check": nothing to handle.
  ::syscall(SYS_futex, reinterpret_cast<std::uint32_t*>(&word), FUTEX_WAIT, expected, &relative, nullptr, 0);
}

void futex_wake_all(std::atomic<std::uint32_t>& word) {
  ::syscall(SYS_futex, reinterpret_cast<std::uint32_t*>(&word), FUTEX_WAKE, INT32_MAX, nullptr, nullptr, 0);
}

std::optional<std::size_t> futex_wait_any(std::span<const FutexWaiter> waiters, std::chrono::nanoseconds timeout) {
  if (waiters.empty()) return std::nullopt;
  if (waiters.size() == 1) {
    futex_wait(*waiters[0].word, waiters[0].expected, timeout);
    return std::nullopt;
  }
  futex_waitv vector[kMaxFutexWaiters]{};
  const std::size_t count = std::min(waiters.size(), kMaxFutexWaiters);
  for (std::size_t k = 0; k < count; ++k) {
    vector[k].val = waiters[k].expected;
    vector[k].uaddr = reinterpret_cast<std::uintptr_t>(waiters[k].word);
    vector[k].flags = FUTEX_32;  // shared: no FUTEX_PRIVATE_FLAG
  }
  // futex_waitv takes an absolute timeout on the given clock.
  timespec now{};
  ::clock_gettime(CLOCK_MONOTONIC, &now);
  const timespec relative = relative_timespec(timeout);
  timespec deadline{now.tv_sec + relative.tv_sec, now.tv_nsec + relative.tv_nsec};
  if (deadline.tv_nsec >= 1000000000L) {
    deadline.tv_sec += 1;
    deadline.tv_nsec -= 1000000000L;
  }
  const long woken = ::syscall(SYS_futex_waitv, vector, count, 0, &deadline, CLOCK_MONOTONIC);
  if (woken < 0) return std::nullopt;
  return static_cast<std::size_t>(woken);
}

}  // namespace exobus::shm
