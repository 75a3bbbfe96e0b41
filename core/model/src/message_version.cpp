#include "exobus/message_version.hpp"

#include <charconv>
#include <cmath>

namespace exobus {

bool is_valid_version(double version) noexcept { return std::isfinite(version) && version >= 0.0; }

Result<double> parse_version(std::string_view text) {
  const auto invalid = [&] {
    return Error{ErrorCode::invalid_version,
                 "version '" + std::string(text.substr(0, 40)) + "' is not a number of at least 0 such as 1 or 1.2"};
  };
  // JSON number syntax without a sign: digits, an optional fraction, an optional exponent.
  // from_chars alone would also take "inf", "nan" and hexadecimal forms.
  if (text.empty() || text.front() < '0' || text.front() > '9') return invalid();
  if (text.size() > 1 && text[0] == '0' && text[1] >= '0' && text[1] <= '9') return invalid();
  double version = 0;
  const auto [end, error] =
      std::from_chars(text.data(), text.data() + text.size(), version, std::chars_format::general);
  if (error != std::errc() || end != text.data() + text.size() || !is_valid_version(version)) return invalid();
  return version;
}

std::string version_text(double version) {
  char text[32];
  const auto [end, error] = std::to_chars(text, text + sizeof text, version);
  return error == std::errc() ? std::string(text, end) : std::string("?");
}

}  // namespace exobus
