#include "exobus/uuid.hpp"

#include <pthread.h>

#include <atomic>
#include <cstring>
#include <random>

namespace exobus {
namespace {

// Incremented in the child of every fork(). A thread's generator remembers the value it was
// seeded under; a mismatch means the process was forked after seeding and the child must not
// continue the parent's stream, or both would hand out the same ids.
std::atomic<std::uint64_t> g_fork_epoch{0};

void on_fork_child() noexcept { g_fork_epoch.fetch_add(1, std::memory_order_relaxed); }

std::uint64_t splitmix64(std::uint64_t& state) noexcept {
  std::uint64_t z = (state += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

std::uint64_t rotl(std::uint64_t x, int k) noexcept { return (x << k) | (x >> (64 - k)); }

// xoshiro256** (Blackman and Vigna): 256 bits of state, period 2^256 - 1, fast and with no
// known statistical weakness in its upper bits, which is all we need for v4 UUIDs.
class Xoshiro256 {
 public:
  std::uint64_t next() noexcept {
    const std::uint64_t result = rotl(s_[1] * 5, 7) * 9;
    const std::uint64_t t = s_[1] << 17;
    s_[2] ^= s_[0];
    s_[3] ^= s_[1];
    s_[1] ^= s_[2];
    s_[0] ^= s_[3];
    s_[2] ^= t;
    s_[3] = rotl(s_[3], 45);
    return result;
  }

  // std::random_device throws only when the system has no entropy source at all; then no
  // id could be trusted to be unique, and terminating (generate() is noexcept) is honest.
  void seed() {
    std::random_device device;
    std::uint64_t seed = (std::uint64_t{device()} << 32) ^ device();
    // Mix in the generator's address so threads seeded from a weak random_device in the
    // same instant still diverge.
    seed ^= reinterpret_cast<std::uintptr_t>(this);
    for (auto& word : s_) word = splitmix64(seed);
  }

  std::uint64_t epoch = ~std::uint64_t{0};  // never equal to a real epoch before seeding

 private:
  std::uint64_t s_[4]{};
};

void register_fork_handler() {
  static const bool registered = [] {
    pthread_atfork(nullptr, nullptr, on_fork_child);
    return true;
  }();
  (void)registered;
}

int hex_value(char c) noexcept {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

constexpr bool is_hyphen_position(std::size_t i) noexcept { return i == 8 || i == 13 || i == 18 || i == 23; }

}  // namespace

Uuid Uuid::generate() noexcept {
  thread_local Xoshiro256 generator;
  const std::uint64_t epoch = g_fork_epoch.load(std::memory_order_relaxed);
  if (generator.epoch != epoch) {
    register_fork_handler();
    generator.seed();
    generator.epoch = epoch;
  }
  const std::uint64_t high = generator.next();
  const std::uint64_t low = generator.next();
  // Big-endian, most significant byte first, as the text form reads.
  const std::uint64_t halves[2] = {__builtin_bswap64(high), __builtin_bswap64(low)};
  std::array<std::uint8_t, 16> bytes;
  std::memcpy(bytes.data(), halves, sizeof halves);
  bytes[6] = static_cast<std::uint8_t>((bytes[6] & 0x0f) | 0x40);  // version 4
  bytes[8] = static_cast<std::uint8_t>((bytes[8] & 0x3f) | 0x80);  // RFC 4122 variant
  return Uuid(bytes);
}

Result<Uuid> Uuid::parse(std::string_view text) {
  if (text.size() != kTextLength) {
    return Error{ErrorCode::invalid_uuid, "UUID '" + std::string(text.substr(0, 64)) + "' has " +
                                              std::to_string(text.size()) +
                                              " characters; a UUID has 36 (8-4-4-4-12 hex digits)"};
  }
  std::array<std::uint8_t, 16> bytes{};
  std::size_t nibble = 0;
  for (std::size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (is_hyphen_position(i)) {
      if (c != '-') {
        return Error{ErrorCode::invalid_uuid,
                     "UUID '" + std::string(text) + "' needs a hyphen at position " + std::to_string(i)};
      }
      continue;
    }
    const int value = hex_value(c);
    if (value < 0) {
      return Error{ErrorCode::invalid_uuid,
                   "UUID '" + std::string(text) + "' has a non-hex character at position " + std::to_string(i)};
    }
    bytes[nibble / 2] = static_cast<std::uint8_t>(bytes[nibble / 2] | (value << (nibble % 2 ? 0 : 4)));
    ++nibble;
  }
  return Uuid(bytes);
}

void Uuid::to_chars(std::span<char, kTextLength> out) const noexcept {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::size_t pos = 0;
  for (std::size_t i = 0; i < bytes_.size(); ++i) {
    if (i == 4 || i == 6 || i == 8 || i == 10) out[pos++] = '-';
    out[pos++] = kDigits[bytes_[i] >> 4];
    out[pos++] = kDigits[bytes_[i] & 0x0f];
  }
}

std::string Uuid::to_string() const {
  std::string text(kTextLength, '\0');
  to_chars(std::span<char, kTextLength>(text.data(), kTextLength));
  return text;
}

}  // namespace exobus

std::size_t std::hash<exobus::Uuid>::operator()(const exobus::Uuid& uuid) const noexcept {
  // Random v4 ids are already uniform; folding the two halves is enough. Non-random ids
  // (v1, hostile input) are mixed so they do not cluster in hash tables.
  std::uint64_t high = 0;
  std::uint64_t low = 0;
  std::memcpy(&high, uuid.bytes().data(), 8);
  std::memcpy(&low, uuid.bytes().data() + 8, 8);
  std::uint64_t mixed = high ^ (low * 0x9e3779b97f4a7c15ULL);
  mixed ^= mixed >> 32;
  return static_cast<std::size_t>(mixed);
}
