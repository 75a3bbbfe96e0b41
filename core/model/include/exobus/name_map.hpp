#pragma once
// Hash tables keyed by message or service name, looked up with a std::string_view (no
// std::string built per lookup). Every send and every received message looks names up
// here, so the hash reads the name eight bytes at a time instead of std::hash's byte-wise
// Murmur; names are short, and the tables are built from configuration, so a peer that
// sends colliding names slows only its own lookups.
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>

namespace exobus {

struct NameHash {
  using is_transparent = void;
  std::size_t operator()(std::string_view name) const noexcept {
    constexpr std::uint64_t kMultiplier = 0x9e3779b97f4a7c15ULL;
    std::uint64_t hash = name.size() * kMultiplier;
    const char* at = name.data();
    std::size_t left = name.size();
    for (; left >= 8; at += 8, left -= 8) {
      std::uint64_t word;
      std::memcpy(&word, at, 8);
      hash = mix(hash ^ word);
    }
    if (left > 0) {
      std::uint64_t word = 0;
      for (std::size_t k = 0; k < left; ++k) word |= std::uint64_t{static_cast<unsigned char>(at[k])} << (8 * k);
      hash = mix(hash ^ word);
    }
    return static_cast<std::size_t>(hash);
  }

 private:
  static std::uint64_t mix(std::uint64_t value) {
    value *= 0xff51afd7ed558ccdULL;
    return value ^ (value >> 32);
  }
};

template <class V>
using NameMap = std::unordered_map<std::string, V, NameHash, std::equal_to<>>;
using NameSet = std::unordered_set<std::string, NameHash, std::equal_to<>>;

}  // namespace exobus
