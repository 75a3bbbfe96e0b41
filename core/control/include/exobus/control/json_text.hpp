#pragma once
// A JSON value carried through the control protocol without the library interpreting it:
// the daemon's registration reply, its status document, a command's arguments and result.
//
// Held as compact, validated JSON text so it is cheap to copy, compare and log; the side that
// owns the meaning parses it with document().

#include <rapidjson/document.h>

#include <cstddef>
#include <string>

#include "exobus/error.hpp"

namespace exobus::control {

// Deepest nesting of arrays and objects accepted anywhere in the protocol. RapidJSON's writer
// and value tree recurse per level; the bound keeps a hostile datagram from exhausting the
// daemon's stack.
inline constexpr std::size_t kMaxJsonDepth = 32;

class JsonText {
 public:
  // The empty object, "{}".
  JsonText();

  // Parses and re-serialises `text` compactly. Refuses malformed JSON, trailing data and
  // nesting deeper than kMaxJsonDepth (ErrorCode::protocol).
  static Result<JsonText> parse(std::string_view text);
  // Serialises a RapidJSON value. The caller keeps the depth within kMaxJsonDepth.
  static JsonText from(const rapidjson::Value& value);

  const std::string& str() const noexcept { return text_; }
  // A fresh document holding the value; never fails because str() is valid JSON.
  rapidjson::Document document() const;

  friend bool operator==(const JsonText&, const JsonText&) = default;

 private:
  explicit JsonText(std::string text) : text_(std::move(text)) {}
  std::string text_;
};

// Nesting depth of arrays and objects in `text`, counting brackets outside strings. Used
// before parsing so that depth is bounded whatever the parser does with the rest.
std::size_t json_nesting_depth(std::string_view text) noexcept;

}  // namespace exobus::control
