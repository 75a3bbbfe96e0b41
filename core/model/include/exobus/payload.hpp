#pragma once

// Payloads travel as raw JSON text. The sender's library checks the text once, so
// receivers get well-formed JSON without each parsing it defensively.

#include <string_view>

#include "exobus/error.hpp"

namespace exobus {

// Ok if `payload` is one complete JSON value (RFC 8259, UTF-8, surrounding whitespace
// allowed) or empty. An empty payload means "no payload" and is always accepted.
// Otherwise ErrorCode::malformed_json naming the byte offset and the reason.
// Parses without building a DOM and without recursion, so deeply nested hostile input
// cannot exhaust the stack.
Result<void> check_payload(std::string_view payload);

}  // namespace exobus
