#pragma once
// A message's version (the spec's `version`, e.g. 1.2): a finite number of at least 0. It
// travels as the binary64 the sender set, so a receiver reads exactly that number, and it is
// written in its shortest form, so 1.2 reads back as "1.2" (never "1.2000000000000002").
#include <string>
#include <string_view>

#include "exobus/error.hpp"

namespace exobus {

inline constexpr double kDefaultVersion = 1.0;

bool is_valid_version(double version) noexcept;

// A version written as a JSON number ("1", "1.2", "2.0"); invalid_version for anything
// else, including negative numbers, exponents out of range and trailing characters.
Result<double> parse_version(std::string_view text);

// The shortest text that parses back to `version`.
std::string version_text(double version);

}  // namespace exobus
