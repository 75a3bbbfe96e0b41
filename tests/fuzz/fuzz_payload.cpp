// Fuzz target: the sender's JSON payload check (payload.hpp), a scanner written for speed,
// checked against RapidJSON's validating parser: both must accept and refuse the same
// texts. The one intended difference: numbers beyond a double's range ("1e400"), valid JSON
// that RapidJSON refuses. A payload the check accepts stays accepted with whitespace around
// it, and deep nesting must not exhaust the stack.
#include <rapidjson/error/en.h>
#include <rapidjson/memorystream.h>
#include <rapidjson/reader.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>

#include "exobus/payload.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view payload(reinterpret_cast<const char*>(data), size);
  const exobus::Result<void> checked = exobus::check_payload(payload);
  if (payload.empty()) return 0;
  if (checked) {
    const std::string padded = " \n" + std::string(payload) + "\t ";
    if (!exobus::check_payload(padded)) std::abort();
  }
  // RapidJSON's streams end at a NUL byte, so it cannot judge such input; the check must
  // refuse it (a raw NUL is never JSON).
  if (std::memchr(payload.data(), '\0', payload.size()) != nullptr) {
    if (checked) std::abort();
    return 0;
  }
  rapidjson::MemoryStream stream(payload.data(), payload.size());
  rapidjson::BaseReaderHandler<> ignore_values;
  rapidjson::Reader reader;
  const rapidjson::ParseResult reference =
      reader.Parse<rapidjson::kParseIterativeFlag | rapidjson::kParseValidateEncodingFlag>(stream, ignore_values);
  if (reference.Code() == rapidjson::kParseErrorNumberTooBig) return 0;
  if (static_cast<bool>(checked) != !reference.IsError()) {
    std::fprintf(stderr, "check_payload %s, RapidJSON %s\n",
                 checked ? "accepts" : checked.error().message.c_str(),
                 reference.IsError() ? rapidjson::GetParseError_En(reference.Code()) : "accepts");
    std::abort();
  }
  return 0;
}
