#pragma once

// Service type names ("web", "users") and the application name. They appear in file
// names, shared-memory segment names, log lines and permission checks, so they are kept to
// a portable alphabet, unlike message names:
//   - 1 to kMaxServiceNameBytes bytes;
//   - ASCII letters, digits, '-', '_' and '.';
//   - starting with a letter or digit (no hidden-file or option look-alikes).

#include <cstddef>
#include <string_view>

#include "exobus/error.hpp"

namespace exobus {

inline constexpr std::size_t kMaxServiceNameBytes = 64;

// ErrorCode::invalid_name with a message saying what is wrong and where.
Result<void> validate_service_name(std::string_view name);

// The same judgement without the explanation, for the codec's hot path.
bool is_valid_service_name(std::string_view name) noexcept;

}  // namespace exobus
