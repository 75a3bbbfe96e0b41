#pragma once
// Process-shared futex calls on a 32-bit word in shared memory. Not FUTEX_PRIVATE: the
// waiters and wakers are different processes mapping the same page.
#include <atomic>
#include <chrono>
#include <cstdint>

namespace exobus::shm {

// Sleeps while *word == expected, at most `timeout`; returns on wake, timeout, signal or
// a changed word. Callers re-check their condition in every case.
void futex_wait(std::atomic<std::uint32_t>& word, std::uint32_t expected,
                std::chrono::nanoseconds timeout);
void futex_wake_all(std::atomic<std::uint32_t>& word);

static_assert(std::atomic<std::uint32_t>::is_always_lock_free);
static_assert(sizeof(std::atomic<std::uint32_t>) == sizeof(std::uint32_t));

}  // namespace exobus::shm
