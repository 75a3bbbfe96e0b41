#pragma once

// Message names ("user.create", "file.copy.in-progress", "delete user") are opaque byte
// strings. The bus compares them byte for byte: no case folding, no Unicode normalisation,
// and no meaning given to dots. "user.create" and "User.Create" are different messages, and
// a reply outcome such as "user.create.ok" is related to "user.create" only by convention.
//
// A valid name:
//   - is not empty;
//   - is at most kMaxMessageNameBytes bytes long (bytes, not characters);
//   - is well-formed UTF-8 (no overlong forms, no surrogates, nothing above U+10FFFF);
//   - contains no control character: C0 (U+0000..U+001F), DEL (U+007F) or C1
//     (U+0080..U+009F). Spaces and all other printable characters are allowed.

#include <cstddef>
#include <string>
#include <string_view>

#include "exobus/error.hpp"

namespace exobus {

// Fits a 16-bit length field with room to spare and keeps a routing entry within a few
// cache lines; long enough for any realistic dotted name.
inline constexpr std::size_t kMaxMessageNameBytes = 200;

// ErrorCode::invalid_name with a message saying what is wrong and at which byte.
Result<void> validate_message_name(std::string_view name);

// The same judgement without the explanation, for the codec's hot path.
bool is_valid_message_name(std::string_view name) noexcept;

// The name made printable for an error message: quoted, with bytes that are not printable
// ASCII shown as \xHH, and cut after 64 bytes.
std::string quote_name(std::string_view name);

}  // namespace exobus
