#include "exobus/control/json_text.hpp"

#include <rapidjson/error/en.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

namespace exobus::control {

JsonText::JsonText() : text_("{}") {}

std::size_t json_nesting_depth(std::string_view text) noexcept {
  std::size_t depth = 0;
  std::size_t deepest = 0;
  bool in_string = false;
  bool escaped = false;
  for (const char c : text) {
    if (in_string) {
      // Inside a string only an unescaped quote matters; brackets are text.
      if (escaped) {
        escaped = false;
      } else if (c == '\\') {
        escaped = true;
      } else if (c == '"') {
        in_string = false;
      }
      continue;
    }
    if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      ++depth;
      if (depth > deepest) deepest = depth;
    } else if ((c == ']' || c == '}') && depth > 0) {
      --depth;
    }
  }
  return deepest;
}

Result<JsonText> JsonText::parse(std::string_view text) {
  if (json_nesting_depth(text) > kMaxJsonDepth) {
    return Error{ErrorCode::protocol, "JSON nested deeper than " + std::to_string(kMaxJsonDepth) + " levels"};
  }
  rapidjson::Document document;
  // Iterative parsing: no recursion per nesting level, whatever the input.
  document.Parse<rapidjson::kParseIterativeFlag>(text.data(), text.size());
  if (document.HasParseError()) {
    return Error{ErrorCode::protocol, std::string("malformed JSON at offset ") +
                                          std::to_string(document.GetErrorOffset()) + ": " +
                                          rapidjson::GetParseError_En(document.GetParseError())};
  }
  return from(document);
}

JsonText JsonText::from(const rapidjson::Value& value) {
  rapidjson::StringBuffer buffer;
  rapidjson::Writer<rapidjson::StringBuffer> writer(buffer);
  value.Accept(writer);
  return JsonText(std::string(buffer.GetString(), buffer.GetSize()));
}

rapidjson::Document JsonText::document() const {
  rapidjson::Document document;
  document.Parse<rapidjson::kParseIterativeFlag>(text_.data(), text_.size());
  return document;
}

}  // namespace exobus::control
