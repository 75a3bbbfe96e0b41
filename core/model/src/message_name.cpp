#include "exobus/message_name.hpp"

#include <cstdint>
#include <cstdio>

namespace exobus {
namespace {

Error name_error(std::string_view name, const std::string& what) {
  return Error{ErrorCode::invalid_name, "message name " + quote_name(name) + " " + what};
}

std::string code_point_text(std::uint32_t cp) {
  char buffer[16];
  std::snprintf(buffer, sizeof buffer, "U+%04X", static_cast<unsigned>(cp));
  return buffer;
}

bool is_control(std::uint32_t cp) noexcept { return cp < 0x20 || cp == 0x7f || (cp >= 0x80 && cp <= 0x9f); }

}  // namespace

std::string quote_name(std::string_view name) {
  constexpr std::size_t kShown = 64;
  std::string out = "'";
  for (std::size_t i = 0; i < name.size() && i < kShown; ++i) {
    const auto byte = static_cast<unsigned char>(name[i]);
    if (byte >= 0x20 && byte < 0x7f) {
      out += static_cast<char>(byte);
    } else {
      char escaped[8];
      std::snprintf(escaped, sizeof escaped, "\\x%02X", byte);
      out += escaped;
    }
  }
  if (name.size() > kShown) out += "...";
  out += "'";
  return out;
}

bool is_valid_message_name(std::string_view name) noexcept {
  if (name.empty() || name.size() > kMaxMessageNameBytes) return false;
  // Printable ASCII, the common case, needs no decoding.
  for (const char c : name) {
    if (static_cast<unsigned char>(c) - 0x20u >= 0x5fu) return validate_message_name(name).ok();
  }
  return true;
}

Result<void> validate_message_name(std::string_view name) {
  if (name.empty()) {
    return Error{ErrorCode::invalid_name, "message name is empty; give the message a name such as 'user.create'"};
  }
  if (name.size() > kMaxMessageNameBytes) {
    return name_error(name, "is " + std::to_string(name.size()) + " bytes long; the limit is " +
                                std::to_string(kMaxMessageNameBytes) + " bytes");
  }
  // Strict UTF-8 decoding per RFC 3629 / Unicode table 3-7: the accepted second-byte
  // ranges after E0, ED, F0 and F4 exclude overlong forms, surrogates and values above
  // U+10FFFF.
  std::size_t i = 0;
  while (i < name.size()) {
    const std::size_t start = i;
    const auto lead = static_cast<unsigned char>(name[i]);
    std::uint32_t cp = 0;
    std::size_t continuation = 0;
    unsigned char low = 0x80;
    unsigned char high = 0xbf;
    if (lead < 0x80) {
      cp = lead;
    } else if (lead >= 0xc2 && lead <= 0xdf) {
      cp = lead & 0x1fu;
      continuation = 1;
    } else if (lead >= 0xe0 && lead <= 0xef) {
      cp = lead & 0x0fu;
      continuation = 2;
      if (lead == 0xe0) low = 0xa0;
      if (lead == 0xed) high = 0x9f;
    } else if (lead >= 0xf0 && lead <= 0xf4) {
      cp = lead & 0x07u;
      continuation = 3;
      if (lead == 0xf0) low = 0x90;
      if (lead == 0xf4) high = 0x8f;
    } else {
      return name_error(name, "is not valid UTF-8: byte " + std::to_string(start) + " cannot start a character");
    }
    ++i;
    for (std::size_t k = 0; k < continuation; ++k, ++i) {
      if (i >= name.size()) {
        return name_error(
            name, "is not valid UTF-8: the character at byte " + std::to_string(start) + " is cut off at the end");
      }
      const auto byte = static_cast<unsigned char>(name[i]);
      const unsigned char min = k == 0 ? low : 0x80;
      const unsigned char max = k == 0 ? high : 0xbf;
      if (byte < min || byte > max) {
        return name_error(name, "is not valid UTF-8: unexpected byte at " + std::to_string(i));
      }
      cp = (cp << 6) | (byte & 0x3fu);
    }
    if (is_control(cp)) {
      return name_error(name, "contains control character " + code_point_text(cp) + " at byte " +
                                  std::to_string(start) + "; names must be printable");
    }
  }
  return {};
}

}  // namespace exobus
