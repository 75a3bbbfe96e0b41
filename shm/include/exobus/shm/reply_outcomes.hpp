#pragma once
// How often an instance replied with each outcome (a reply's name), which is how the spec
// wants outcomes monitored: a table in the instance's InstanceRecord (tenant.hpp) of up to
// kNamedOutcomes names, each held as the hash of its public name, and a count of the replies
// whose name found no free entry.
//
// Invariants: an entry's name_hash goes once from 0 to a hash, by compare-and-swap, and never
// changes after while the slot is the instance's; replies only go up. Any thread of the
// instance may reply, hence atomic adds (relaxed: the daemon reads counts, not an order). A
// death after the claim leaves an entry with no replies, which the daemon skips. The daemon
// zeroes the table when it hands out the slot, and names a hash by the type's configured
// sends: a hash that names none of them (a hostile instance's) counts among the others, so a
// liar skews only its own type's figures and cannot add label values of its choosing.
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <string_view>
#include <type_traits>

namespace exobus::shm {

inline constexpr std::size_t kNamedOutcomes = 15;

struct OutcomeCount {
  std::atomic<std::uint64_t> name_hash;  // 0: free
  std::atomic<std::uint64_t> replies;
};

struct alignas(64) ReplyOutcomes {
  OutcomeCount named[kNamedOutcomes];
  std::atomic<std::uint64_t> others;  // replies under a name no entry was free for
};
static_assert(sizeof(ReplyOutcomes) == 256 && std::is_standard_layout_v<ReplyOutcomes>);

// FNV-1a of the public name, never 0 (the free entry's mark).
constexpr std::uint64_t outcome_hash(std::string_view name) {
  std::uint64_t hash = 0xcbf29ce484222325ull;
  for (const char c : name) hash = (hash ^ static_cast<unsigned char>(c)) * 0x100000001b3ull;
  return hash == 0 ? 1 : hash;
}

// Counts one reply under `hash` (outcome_hash of its name): at most kNamedOutcomes loads and
// one compare-and-swap before the add.
inline void count_reply(ReplyOutcomes& outcomes, std::uint64_t hash) {
  for (OutcomeCount& entry : outcomes.named) {
    std::uint64_t held = entry.name_hash.load(std::memory_order_relaxed);
    // A free entry is claimed for this name; a failed claim leaves in `held` whose it became.
    if (held == 0 && entry.name_hash.compare_exchange_strong(held, hash, std::memory_order_relaxed)) held = hash;
    if (held == hash) {
      entry.replies.fetch_add(1, std::memory_order_relaxed);
      return;
    }
  }
  outcomes.others.fetch_add(1, std::memory_order_relaxed);
}

inline void clear(ReplyOutcomes& outcomes) {
  for (OutcomeCount& entry : outcomes.named) {
    entry.name_hash.store(0, std::memory_order_relaxed);
    entry.replies.store(0, std::memory_order_relaxed);
  }
  outcomes.others.store(0, std::memory_order_relaxed);
}

}  // namespace exobus::shm
