#pragma once

// 128-bit identifiers for messages (id) and end-user requests (requestId).

#include <array>
#include <compare>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <string_view>

#include "exobus/error.hpp"

namespace exobus {

class Uuid {
 public:
  static constexpr std::size_t kTextLength = 36;  // 8-4-4-4-12 hex digits and hyphens

  // The nil UUID (all zero bits).
  constexpr Uuid() noexcept = default;
  constexpr explicit Uuid(const std::array<std::uint8_t, 16>& bytes) noexcept : bytes_(bytes) {}

  // A random RFC 4122 version 4 UUID. Makes no system call: each thread owns a generator
  // seeded once from std::random_device (and reseeded in a child after fork(), so parent
  // and child never share a stream). Not cryptographically strong; ids are unique, not
  // secret.
  static Uuid generate() noexcept;

  // Strict: exactly 36 characters, hyphens at 8, 13, 18 and 23, hex digits elsewhere
  // (either case). No braces, no "urn:uuid:" prefix, no surrounding whitespace.
  static Result<Uuid> parse(std::string_view text);

  // Canonical lowercase 8-4-4-4-12 form.
  std::string to_string() const;
  void to_chars(std::span<char, kTextLength> out) const noexcept;

  constexpr bool is_nil() const noexcept { return bytes_ == std::array<std::uint8_t, 16>{}; }
  constexpr const std::array<std::uint8_t, 16>& bytes() const noexcept { return bytes_; }

  // Byte-wise (big-endian) order, which is also the order of the canonical text.
  friend constexpr auto operator<=>(const Uuid&, const Uuid&) noexcept = default;

 private:
  std::array<std::uint8_t, 16> bytes_{};
};

}  // namespace exobus

template <>
struct std::hash<exobus::Uuid> {
  std::size_t operator()(const exobus::Uuid& uuid) const noexcept;
};
