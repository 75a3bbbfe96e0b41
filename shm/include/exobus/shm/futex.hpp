#pragma once
// Process-shared futex calls on 32-bit words in shared memory. Not FUTEX_PRIVATE: the
// waiters and wakers are different processes mapping the same page (a waiter may map it
// read-only: waiting only reads the word).
#include <atomic>
#include <chrono>
#include <cstdint>
#include <optional>
#include <span>

namespace exobus::shm {

// Sleeps while *word == expected, at most `timeout`; returns on wake, timeout, signal or
// a changed word. Callers re-check their condition in every case.
void futex_wait(std::atomic<std::uint32_t>& word, std::uint32_t expected, std::chrono::nanoseconds timeout);
void futex_wake_all(std::atomic<std::uint32_t>& word);

// One word of a wait on several (futex_wait_any).
struct FutexWaiter {
  std::atomic<std::uint32_t>* word;
  std::uint32_t expected;
};
inline constexpr std::size_t kMaxFutexWaiters = 128;  // the kernel's limit (FUTEX_WAITV_MAX)

// Sleeps while every word still holds its expected value, at most `timeout` (futex_waitv,
// Linux 5.16). Returns the index of the word that woke it, or nothing (timeout, signal, a
// word that had already changed). Callers re-check in every case.
std::optional<std::size_t> futex_wait_any(std::span<const FutexWaiter> waiters, std::chrono::nanoseconds timeout);

static_assert(std::atomic<std::uint32_t>::is_always_lock_free);
static_assert(sizeof(std::atomic<std::uint32_t>) == sizeof(std::uint32_t));

}  // namespace exobus::shm
