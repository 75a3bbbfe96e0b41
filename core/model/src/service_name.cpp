#include "exobus/service_name.hpp"

#include <array>
#include <string>

#include "exobus/message_name.hpp"

namespace exobus {
namespace {

constexpr bool is_alnum(char c) noexcept {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

// Which bytes a service name may contain, by byte value: every message carries its
// sender's name, checked on both ends, so a table lookup per byte.
constexpr std::array<bool, 256> kNameBytes = [] {
  std::array<bool, 256> allowed{};
  for (int c = 0; c < 256; ++c) allowed[c] = is_alnum(static_cast<char>(c)) || c == '-' || c == '_' || c == '.';
  return allowed;
}();

}  // namespace

bool is_valid_service_name(std::string_view name) noexcept {
  if (name.empty() || name.size() > kMaxServiceNameBytes || !is_alnum(name.front())) return false;
  for (const char c : name) {
    if (!kNameBytes[static_cast<unsigned char>(c)]) return false;
  }
  return true;
}

Result<void> validate_service_name(std::string_view name) {
  if (name.empty()) {
    return Error{ErrorCode::invalid_name, "service name is empty"};
  }
  if (name.size() > kMaxServiceNameBytes) {
    return Error{ErrorCode::invalid_name, "service name " + quote_name(name) + " is " + std::to_string(name.size()) +
                                              " bytes long; the limit is " + std::to_string(kMaxServiceNameBytes)};
  }
  if (!is_alnum(name.front())) {
    return Error{ErrorCode::invalid_name, "service name " + quote_name(name) + " must start with a letter or digit"};
  }
  for (std::size_t i = 0; i < name.size(); ++i) {
    if (!kNameBytes[static_cast<unsigned char>(name[i])]) {
      return Error{ErrorCode::invalid_name, "service name " + quote_name(name) +
                                                " has a disallowed character at byte " + std::to_string(i) +
                                                "; use letters, digits, '-', '_' and '.'"};
    }
  }
  return {};
}

}  // namespace exobus
